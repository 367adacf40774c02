//! Scores of recorded header sets: real browsers (recorded here from Chromium, and the documented sets of
//! Chrome, Firefox and Safari) against curl, python-requests, urllib, wget, Go's client, headless Chromium
//! and scripts dressed as Chrome. Each file says what it is and the verdict expected with the default
//! thresholds.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use super::*;
use crate::config::schema::BotConfig;

macro_rules! recorded {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("recorded/", $name, ".txt")))),*]
    };
}

const RECORDED: [(&str, &str); 18] = recorded!(
    "chromium_156_linux",
    "chromium_156_linux_image",
    "chrome_131_windows",
    "chrome_131_android",
    "firefox_133_windows",
    "firefox_133_plain_http",
    "safari_18_macos",
    "headless_chromium_156",
    "curl_7_88",
    "python_requests_2_34",
    "python_urllib_3_11",
    "wget_1_21",
    "go_http_client",
    "curl_as_chrome",
    "script_as_chrome_with_headers",
    "chrome_claims_with_old_hints",
    "sqlmap",
    "no_user_agent",
);

struct Recorded {
    headers: HeaderMap,
    expect: BotVerdict,
    secure: bool,
}

fn parse(text: &str) -> Recorded {
    let mut headers = HeaderMap::new();
    let mut expect = None;
    let mut secure = None;
    for line in text.lines() {
        if let Some(meta) = line.strip_prefix("# ") {
            if let Some(e) = meta.strip_prefix("expect: ") {
                expect = Some(match e {
                    "human" => BotVerdict::Human,
                    "challenge" => BotVerdict::Challenge,
                    "block" => BotVerdict::Block,
                    other => panic!("unknown expectation {other}"),
                });
            }
            if let Some(s) = meta.strip_prefix("secure: ") {
                secure = Some(s == "true");
            }
            continue;
        }
        let (name, value) = line.split_once(": ").unwrap();
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    Recorded {
        headers,
        expect: expect.unwrap(),
        secure: secure.unwrap(),
    }
}

fn policy(edit: impl FnOnce(&mut BotConfig)) -> BotPolicy {
    let mut c = BotConfig {
        enabled: true,
        behavioral_analysis: false,
        ..BotConfig::default()
    };
    edit(&mut c);
    BotPolicy::build(&c).unwrap().unwrap()
}

#[tokio::test]
async fn recorded_clients_get_their_verdicts() {
    let p = policy(|_| {});
    let state = BotState::new(&BotConfig::default());
    let client: IpAddr = "192.0.2.10".parse().unwrap();
    let mut wrong = Vec::new();
    for (name, text) in RECORDED {
        let r = parse(text);
        let a = p.assess(&state, &r.headers, "/", client, r.secure).await;
        if a.verdict != r.expect {
            wrong.push(format!(
                "{name}: expected {:?}, got {:?} (score {:.2}: {})",
                r.expect,
                a.verdict,
                a.score,
                a.reasons.names()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn lists_come_before_scores() {
    let state = BotState::new(&BotConfig::default());
    let client: IpAddr = "192.0.2.10".parse().unwrap();
    let curl = parse(RECORDED[8].1);
    let allowed = policy(|c| c.allowed_user_agents = vec!["CURL/7".into()]);
    assert_eq!(
        allowed.assess(&state, &curl.headers, "/", client, true).await.verdict,
        BotVerdict::Human
    );
    let chrome = parse(RECORDED[2].1);
    let blocked = policy(|c| c.blocked_user_agents = vec!["windows nt".into()]);
    let a = blocked.assess(&state, &chrome.headers, "/", client, true).await;
    assert_eq!(a.verdict, BotVerdict::Block);
    assert!(a.reasons.contains(Reason::BlockedAgent));
}

/// A crawler is believed when its address resolves to its domain and back (loopback: `localhost` from
/// /etc/hosts), and scored as a forger when it does not.
#[tokio::test]
async fn crawlers_are_verified_by_dns() {
    let state = BotState::new(&BotConfig::default());
    let mut h = HeaderMap::new();
    h.insert(
        header::USER_AGENT,
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
            .parse()
            .unwrap(),
    );
    let crawler = |domain: &str| VerifiedBot {
        name: "googlebot".into(),
        user_agent: "Googlebot".into(),
        domains: vec![domain.into()],
    };
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let verified = policy(|c| c.verified_bots = vec![crawler("localhost")]);
    let a = verified.assess(&state, &h, "/", lo, true).await;
    assert_eq!(a.verdict, BotVerdict::Verified(0));
    assert_eq!(verified.crawler_name(0), "googlebot");
    let forged = policy(|c| c.verified_bots = vec![crawler("googlebot.com")]);
    let a = forged.assess(&state, &h, "/", lo, true).await;
    assert_eq!(a.verdict, BotVerdict::Block, "{}", a.reasons.names());
    assert!(a.reasons.contains(Reason::ForgedCrawler));
    // Without verification configured, a self-declared crawler is only challenged.
    let a = policy(|_| {}).assess(&state, &h, "/", lo, true).await;
    assert_eq!(a.verdict, BotVerdict::Challenge, "{}", a.reasons.names());
}
