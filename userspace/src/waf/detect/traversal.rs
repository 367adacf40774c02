//! Path traversal and file inclusion: `../` sequences (in any of the encodings the normaliser undoes, and the
//! `....//` and `..;/` variants that survive naive filtering), absolute paths to files an attacker wants
//! (`/etc/passwd`, `win.ini`, `/proc/self/environ`), and stream wrappers that make an include read or run
//! something (`php://filter`, `file://`, `expect://`). One `../` in prose or a relative link is weak; a
//! chain of them, or one that reaches a known target, is not.

use std::sync::LazyLock;

use regex::Regex;

use super::{Ctx, Hit, regex};
use crate::waf::targets::Location;

pub const FRAGMENTS: &[&str] = &[
    "..",
    "./",
    ".\\",
    "0x2e",
    "0x5c",
    "\u{efc8}",
    "\u{f025}",
    "/opt/",
    "/logs",
    "log/",
    ".cshrc",
    "ntuser",
    "c$",
    "etc/",
    "etc\\",
    "proc/",
    "win.ini",
    "boot.ini",
    "system32",
    "system.ini",
    "php://",
    "file:",
    "expect://",
    "zip://",
    "phar://",
    "glob://",
    "data://",
    "compress.",
    "input://",
    ".htaccess",
    ".htpasswd",
    "web.config",
    "id_rsa",
    ".ssh",
    "/var/",
    "\\windows",
    "/windows",
    ".env",
    ".git/",
    "wp-config",
    "/usr/",
    "/root",
    "/home/",
    "c:\\",
    "c:/",
    "/dev/",
    "/bin/",
    "/tmp/",
    ".ini",
    ".log",
    "passwd",
    "shadow",
];

static DOTDOT: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:^|[/\\])\.\.(?:[/\\;]|$)|\.{2,}[/\\]"));
static TARGET_FILE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:^|[/\\:=]|\.\.)(?:etc[/\\]+(?:[\w.-]+[/\\]+)*[\w.-]*(?:passwd|shadow|\.conf|\.cnf|\.ini|\.pdb|access|aliases|crontab)|opt[/\\]+[\w.-]+[/\\]+(?:[\w.-]+[/\\]+)*(?:logs?|conf|etc)[/\\]|(?:[\w.-]+[/\\]+)?logs?[/\\]+(?:access|error|auth|secure|messages|syslog)[._]?(?:log)?|var[/\\]+adm[/\\]|\.(?:cshrc|tcshrc|zshrc|login|logout|mysql_history|psql_history|viminfo|netrc|rhosts|pgpass|npmrc|dockercfg|aws[/\\])|ntuser\.dat|[a-z]\$[/\\]|etc[/\\]+(?:passwd|shadow|group|hosts|issue|motd|crontab|fstab|sudoers|hostname|resolv\.conf|profile|environment|master\.passwd|security[/\\]|mysql[/\\]|apache2?[/\\]|httpd[/\\]|nginx[/\\]|php[/\\0-9.]*|ssh[/\\]|init\.d[/\\]|\w+\.conf\b|network|shells|inittab|aliases|inetd)|proc[/\\]+(?:self|\d+|version|cmdline|environ|mounts|net[/\\]|sched_debug|cpuinfo|meminfo)|(?:windows|winnt)[/\\]+(?:win\.ini|system\.ini|system32|repair|panther|debug|iis\d*\.log)|boot\.ini|win\.ini|system32[/\\]|inetpub[/\\]|\.htaccess|\.htpasswd|web\.config|\.git[/\\]+(?:config|head)|\.svn[/\\]|\.env\b|\.ssh[/\\]|id_[rd]sa\b|\.bash_history|\.bashrc|\.profile\b|var[/\\]+(?:log|www|lib|mail|spool|run|apache)|usr[/\\]+(?:local|share|lib|etc)[/\\]|wp-config\.php|config\.inc\.php|php\.ini|my\.cnf|httpd\.conf|apache2?\.conf|nginx\.conf|root[/\\]|home[/\\]+\w+[/\\]\.|dev[/\\]+(?:null|zero|random|stdin|fd)|tmp[/\\]|c:[/\\])",
    )
});
static WRAPPER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:^|[^a-z])(?:php|expect|zip|phar|glob|data|compress\.zlib|compress\.bzip2|ogg|rar|ssh2\.\w+|zlib)://|file:(?://|\\\\|/[a-z])",
    )
});
static WIN_DRIVE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^[a-z]:[/\\]+(?:windows|winnt|boot\.ini|inetpub|users[/\\]+[^/\\]+[/\\]+(?:ntuser|appdata))")
});

pub fn detect(s: &str, ctx: &Ctx) -> Option<Hit> {
    // Hex spelled out (`0x2e0x2e0x2f`), percent signs lost on the way (`..2f..2f`), and the private-use code
    // points some IIS versions map to slashes: undo them into a second form.
    let needs_variant = s.contains("0x2")
        || s.contains("0x5c")
        || s.contains("..2f")
        || s.contains("..5c")
        || s.contains(['\u{efc8}', '\u{f025}']);
    if needs_variant {
        let mut v = s
            .replace("0x2e", ".")
            .replace("0x2f", "/")
            .replace("0x5c", "\\")
            .replace(['\u{efc8}', '\u{f025}'], "/");
        if v.contains("..2f") || v.contains("..5c") {
            v = v.replace("2f", "/").replace("5c", "\\");
        }
        let direct = detect_form(s, ctx);
        let mut h = detect_form(&v, ctx)?;
        h.start = 0;
        h.end = s.len().min(60);
        return Hit::max(direct, h);
    }
    detect_form(s, ctx)
}

fn detect_form(s: &str, ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    // `/./\/././` chains: dot segments no client sends, used to defeat path matching.
    let dot_segments = s.matches("./").count() + s.matches(".\\").count();
    if dot_segments >= 3 && (s.contains("/./") || s.contains("\\.\\") || s.contains("/.\\") || s.contains("\\./")) {
        best = Hit::max(best, Hit::new(0.85, 0, s.len().min(60), "traversal.dot_segments"));
    }
    let mut ups = 0;
    let mut first = None;
    for m in DOTDOT.find_iter(s).take(64) {
        ups += 1;
        first.get_or_insert(m.start());
    }
    let target = TARGET_FILE.find(s);
    if ups > 0 {
        let start = first.unwrap_or(0);
        let c = if target.is_some() {
            0.97
        } else if ups >= 2 {
            0.92
        } else if ctx.location == Location::Path {
            // A browser resolves dot segments before sending: a path that still has one was written by hand.
            0.9
        } else if s.starts_with("..") || s.starts_with("/..") || s.starts_with("\\..") || s.ends_with("..") {
            0.8
        } else {
            0.6
        };
        best = Hit::max(best, Hit::new(c, start, s.len().min(start + 60), "traversal.dot_dot"));
    }
    if let Some(m) = target {
        // An absolute path to a sensitive file as the whole value (or after a scheme) is an inclusion attempt;
        // inside a longer sentence it is someone talking about the file.
        let whole = m.start() <= 2 || s[..m.start()].ends_with("file:") || s[..m.start()].trim_end().ends_with('=');
        let short = s.len() < 120 && !s.contains(' ');
        let c = if whole || short { 0.9 } else { 0.6 };
        best = Hit::max(best, Hit::new(c, m.start(), m.end(), "traversal.target_file"));
    }
    if let Some(m) = WRAPPER.find(s) {
        best = Hit::max(
            best,
            Hit::new(
                0.92,
                m.start(),
                m.end().max(m.start() + 12).min(s.len()),
                "traversal.stream_wrapper",
            ),
        );
    }
    if let Some(m) = WIN_DRIVE.find(s) {
        best = Hit::max(best, Hit::new(0.9, m.start(), m.end(), "traversal.windows_path"));
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::{confidence, confidence_at};
    use crate::waf::family::Family;
    use crate::waf::targets::Location;

    fn c(s: &str) -> f32 {
        confidence(Family::PathTraversal, s)
    }

    #[test]
    fn dot_dot_chains_and_target_files_are_traversal() {
        for s in [
            "../../../etc/passwd",
            "..\\..\\..\\windows\\win.ini",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "%252e%252e%252fetc%252fpasswd",
            "%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
            "....//....//etc/passwd",
            "/etc/passwd",
            "/proc/self/environ",
            "php://filter/convert.base64-encode/resource=index.php",
            "file:///etc/shadow",
            "c:\\windows\\win.ini",
        ] {
            assert!(c(s) >= 0.8, "{s}: {}", c(s));
        }
    }

    #[test]
    fn a_dot_dot_segment_in_the_request_path_is_traversal() {
        assert!(confidence_at(Family::PathTraversal, "/static/../app.py", Location::Path) >= 0.8);
    }

    #[test]
    fn relative_links_and_paths_in_prose_pass() {
        for s in [
            "see ../docs/readme for more",
            "I saved it in C:\\Users\\anna\\Documents\\report.docx",
            "wait... what?",
            "the /etc/passwd file stores accounts on linux systems, right?",
            "version 1.2..3",
        ] {
            assert!(c(s) < 0.8, "{s}: {}", c(s));
        }
    }
}
