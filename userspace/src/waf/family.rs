//! The attack families the engine knows, their names (rule names in config and the admin API, `attack_type`
//! in events and metrics) and their built-in thresholds. A closed set, so metric labels stay bounded.

use std::fmt;

/// One attack family; each is one built-in rule with the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    SqlInjection,
    Xss,
    Rce,
    PathTraversal,
    Ssrf,
    Csrf,
    Protocol,
    Ssti,
    Ssi,
    Xxe,
    NosqlInjection,
    LdapInjection,
    CrlfInjection,
    MailInjection,
    OpenRedirect,
    Scanner,
    GraphqlIntrospection,
    Log4shell,
}

impl Family {
    pub const ALL: [Family; 18] = [
        Family::SqlInjection,
        Family::Xss,
        Family::Rce,
        Family::PathTraversal,
        Family::Ssrf,
        Family::Csrf,
        Family::Protocol,
        Family::Ssti,
        Family::Ssi,
        Family::Xxe,
        Family::NosqlInjection,
        Family::LdapInjection,
        Family::CrlfInjection,
        Family::MailInjection,
        Family::OpenRedirect,
        Family::Scanner,
        Family::GraphqlIntrospection,
        Family::Log4shell,
    ];

    pub const COUNT: usize = Self::ALL.len();

    /// Index into per-family arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The rule name (config `owasp_protection.rules`, the admin API) and the `attack_type` label.
    pub const fn name(self) -> &'static str {
        match self {
            Family::SqlInjection => "sql_injection",
            Family::Xss => "xss",
            Family::Rce => "rce",
            Family::PathTraversal => "path_traversal",
            Family::Ssrf => "ssrf",
            Family::Csrf => "csrf",
            Family::Protocol => "protocol",
            Family::Ssti => "ssti",
            Family::Ssi => "ssi",
            Family::Xxe => "xxe",
            Family::NosqlInjection => "nosql_injection",
            Family::LdapInjection => "ldap_injection",
            Family::CrlfInjection => "crlf_injection",
            Family::MailInjection => "mail_injection",
            Family::OpenRedirect => "open_redirect",
            Family::Scanner => "scanner",
            Family::GraphqlIntrospection => "graphql_introspection",
            Family::Log4shell => "log4shell",
        }
    }

    /// The rule name as it appears in security events (`owasp_sql_injection`, as the seed's example).
    pub fn rule_name(self) -> String {
        format!("owasp_{}", self.name())
    }

    /// Parses a rule name: the bare family name or the `owasp_`-prefixed event form.
    pub fn parse(name: &str) -> Option<Family> {
        let bare = name.strip_prefix("owasp_").unwrap_or(name);
        Self::ALL.into_iter().find(|f| f.name() == bare)
    }

    /// Built-in threshold, for families the seed specification has no key for.
    pub const fn default_threshold(self) -> f64 {
        match self {
            Family::Rce => 0.9,
            _ => 0.8,
        }
    }

    /// Protocol violations always block: they are not guesses about content but requests that different
    /// HTTP parsers would read differently.
    pub const fn always_blocks(self) -> bool {
        matches!(self, Family::Protocol)
    }

    /// Bit for prefilter masks.
    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_parses_back_from_its_name_and_its_event_rule_name() {
        for f in Family::ALL {
            assert_eq!(Family::parse(f.name()), Some(f));
            assert_eq!(Family::parse(&f.rule_name()), Some(f));
            assert_eq!(Family::ALL[f.index()], f);
        }
        assert_eq!(Family::parse("sqli"), None);
    }
}
