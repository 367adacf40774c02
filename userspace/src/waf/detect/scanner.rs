//! Vulnerability scanners and attack tools, by the names they put in `User-Agent` (and the out-of-band
//! interaction domains they plant there). A closed list of tool names, not a bot score: ordinary clients
//! and crawlers pass.

use super::Hit;

const TOOLS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap scripting engine",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "openvas",
    "nessus",
    "acunetix",
    "netsparker",
    "invicti",
    "w3af",
    "wpscan",
    "dirbuster",
    "gobuster",
    "dirb/",
    "ffuf",
    "fuzz faster u fool",
    "wfuzz",
    "burp",
    "qualys",
    "zaproxy",
    "owasp zap",
    "arachni",
    "skipfish",
    "havij",
    "jaeles",
    "xsstrike",
    "commix",
    "whatweb",
    "joomscan",
    "hydra",
    "medusa",
    "metasploit",
    "morfeus",
    "zmeu",
    "jorgee",
    "appscan",
    "webinspect",
    "paros",
    "grabber",
    "vega/",
    "brutus",
    "bsqlbf",
    "sqlninja",
    "nsauditor",
    "absinthe",
    "pangolin",
    "webshag",
    "feroxbuster",
    "katana",
    "httpx - open-source",
    "interactsh",
    "interact.sh",
    "oast.pro",
    "oast.live",
    "oast.site",
    "oast.online",
    "oast.fun",
    "oast.me",
    "burpcollaborator",
    "oastify.com",
    "dnslog.cn",
    "canarytokens",
    "crowdstrike scanner",
    "detectify",
    "tenable",
    "struts-pwn",
    "log4j-scan",
    "nessus",
    "cgichk",
    "webvulnscan",
];

static MATCHER: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(TOOLS)
        .unwrap_or_else(|e| panic!("the scanner names must compile: {e}"))
});

/// Scores a `User-Agent` (any case) in one scan for every tool name.
pub fn detect(user_agent: &str) -> Option<Hit> {
    MATCHER
        .find(user_agent)
        .map(|m| Hit::new(0.95, m.start(), m.end(), "scanner.tool_user_agent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_user_agents_are_recognised_and_browsers_pass() {
        assert!(detect("sqlmap/1.7.4#stable (https://sqlmap.org)").is_some());
        assert!(detect("mozilla/5.0 [en] (x11, u; openvas-vt 22.4.1)").is_some());
        assert!(detect("fuzz faster u fool v2.0.0").is_some());
        assert!(detect("mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) chrome/124.0.0.0 safari/537.36").is_none());
        assert!(detect("mozilla/5.0 (compatible; googlebot/2.1; +http://www.google.com/bot.html)").is_none());
    }
}
