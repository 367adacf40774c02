//! Server-side includes: an SSI directive (`<!--#exec cmd=...-->`, `<!--#include virtual=...-->`) in a value a
//! server may render. An HTML comment that is not a directive is rich text and passes.

use super::{Ctx, Hit};

pub const FRAGMENTS: &[&str] = &["<!--#"];

const DIRECTIVES: &[&str] = &[
    "exec", "include", "echo", "config", "fsize", "flastmod", "printenv", "set", "if", "elif", "else", "endif",
];

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let mut from = 0;
    while let Some(p) = s[from..].find("<!--#") {
        let at = from + p;
        let rest = s[at + 5..].trim_start();
        if let Some(d) = DIRECTIVES.iter().find(|d| rest.starts_with(**d)) {
            let end = s[at..].find("-->").map_or(s.len(), |e| at + e + 3);
            let c = if matches!(*d, "exec" | "include" | "printenv" | "config" | "echo") {
                0.95
            } else {
                0.85
            };
            return Some(Hit::new(c, at, end.min(at + 120), "ssi.directive"));
        }
        from = at + 5;
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    #[test]
    fn ssi_directives_are_detected_and_html_comments_pass() {
        assert!(confidence(Family::Ssi, "<!--#exec cmd=\"ls\" -->") >= 0.9);
        assert!(confidence(Family::Ssi, "%3C%21--%23include+virtual%3D%22%2Fetc%2Fpasswd%22+--%3E") >= 0.9);
        assert!(confidence(Family::Ssi, "<!-- note to self -->") < 0.5);
        assert!(confidence(Family::Ssi, "<!--#1 fan-->") < 0.5);
    }
}
