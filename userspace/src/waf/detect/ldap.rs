//! LDAP filter injection: filter syntax that closes the application's filter and opens another
//! (`*)(uid=*`, `)(|(`, `(&(objectClass=*))`), extensible-match rules (`userPassword:2.5.13.18:=`), and
//! the wildcard-everything filters used to dump a directory. Parentheses in prose have no `attr=` inside.

use std::sync::LazyLock;

use super::{Ctx, Hit, Signatures};

pub const FRAGMENTS: &[&str] = &[
    ")(",
    ") (",
    "(|",
    "(&",
    "(!",
    "( |",
    "( &",
    "*)",
    "* )",
    "=*",
    "= *",
    ":=",
    "objectclass",
    "userpassword",
    "samaccountname",
    "memberof",
    "objectcategory",
];

static RULES: LazyLock<Signatures> = LazyLock::new(|| {
    Signatures::new(&[
        (
            r"\)\s*\(\s*[|&!]?\s*\(?\s*[a-z][\w.-]*\s*[~<>]?=",
            0.9,
            "ldap.filter_breakout",
        ),
        (r"\(\s*[|&!]\s*\(\s*[a-z][\w.-]*\s*[~<>]?=", 0.9, "ldap.compound_filter"),
        (
            r"\*\s*\)\s*\(|\*\s*\)\s*\)|\(\s*[a-z][\w.-]*\s*=\s*\*\s*\)",
            0.85,
            "ldap.wildcard_filter",
        ),
        (
            r"\b[a-z][\w-]*:(?:\d+(?:\.\d+)+|caseignorematch|caseexactmatch|dn):=",
            0.88,
            "ldap.extensible_match",
        ),
        (
            r"\bobjectclass\s*=\s*\*|\b(?:userpassword|samaccountname|memberof|objectcategory)\s*[~<>]?=\s*\*",
            0.88,
            "ldap.directory_dump",
        ),
        (r"^\s*\*\s*\)|^\s*\)\s*\(", 0.8, "ldap.leading_close"),
    ])
});

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    RULES.best(s)
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::LdapInjection, s)
    }

    #[test]
    fn filter_breakouts_are_ldap_injection() {
        for s in [
            "*)(uid=*))(|(uid=*",
            "admin)(&(objectClass=*)",
            "*(|(objectclass=*))",
            "userPassword:2.5.13.18:=123",
            "x)(|(cn=*)",
        ] {
            assert!(c(s) >= 0.8, "{s}: {}", c(s));
        }
    }

    #[test]
    fn parentheses_in_prose_pass() {
        for s in ["call me (after 5)(or later)", "5 * (3 + 2)", "smile :)", "(see above)"] {
            assert!(c(s) < 0.8, "{s}: {}", c(s));
        }
    }
}
