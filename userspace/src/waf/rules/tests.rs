//! Every target and operator of custom rules, groups, priorities and actions.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use http::HeaderMap;

use super::*;
use crate::policy::ratelimit::Refusal;

struct Req {
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: HeaderMap,
    body: &'static [u8],
    client: IpAddr,
    country: Option<&'static str>,
}

fn req() -> Req {
    let mut headers = HeaderMap::new();
    headers.insert(
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".parse().unwrap(),
    );
    headers.insert("x-api-key", "Secret-Key".parse().unwrap());
    headers.insert("cookie", "session=abc123; theme=dark".parse().unwrap());
    Req {
        method: "POST",
        path: "/admin/users/42",
        query: "q=hello%20world&page=3&flag",
        headers,
        body: b"{\"name\":\"bob\"}",
        client: "192.168.1.77".parse().unwrap(),
        country: Some("DE"),
    }
}

fn rules(yaml: &str) -> CustomRules {
    let rules: Vec<CustomRule> = serde_saphyr::from_str(yaml).unwrap();
    CustomRules::build(&rules).unwrap()
}

/// The name of the deciding rule (`continue` when none), with the log rules that fired.
fn decide(rules: &CustomRules, r: &Req) -> (String, Vec<String>) {
    let view = RequestView {
        method: r.method,
        path: r.path,
        query: r.query,
        headers: &r.headers,
        body: r.body,
        body_truncated: false,
        client: r.client,
        route: None,
    };
    let input = RuleInput {
        view: &view,
        country: r.country,
        declared_body: None,
    };
    let mut logged = Vec::new();
    let d = rules.evaluate(&input, |rule| logged.push(rule.name.clone()), |_, _| None);
    let name = match d {
        Decision::Continue => "continue".to_owned(),
        Decision::Allow(r) | Decision::Block(r) | Decision::Challenge(r) | Decision::Limited(r, _) => r.name.clone(),
    };
    (name, logged)
}

/// Whether a one-condition block rule fires on the standard request.
fn fires(condition: &str) -> bool {
    let yaml = format!("- {{name: t, action: block, conditions: [{condition}]}}\n");
    decide(&rules(&yaml), &req()).0 == "t"
}

#[test]
fn equals_on_every_target() {
    assert!(fires("{type: path, operator: equals, value: /admin/users/42}"));
    assert!(!fires("{type: path, operator: equals, value: /admin/users/4}"));
    assert!(fires("{type: method, operator: equals, value: POST}"));
    assert!(fires(
        "{type: header, name: X-Api-Key, operator: equals, value: Secret-Key}"
    ));
    assert!(
        fires("{type: query, name: q, operator: equals, value: hello world}"),
        "query values are decoded"
    );
    assert!(fires(
        "{type: query, operator: equals, value: \"q=hello%20world&page=3&flag\"}"
    ));
    assert!(fires("{type: cookie, name: theme, operator: equals, value: dark}"));
    assert!(fires("{type: body, operator: equals, value: '{\"name\":\"bob\"}'}"));
    assert!(fires("{type: ip, operator: equals, value: 192.168.1.77}"));
    assert!(fires("{type: country, operator: equals, value: DE}"));
    assert!(!fires("{type: country, operator: equals, value: FR}"));
    assert!(fires(
        "{type: user_agent, operator: equals, value: \"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\"}"
    ));
}

#[test]
fn contains_starts_with_ends_with() {
    assert!(fires("{type: user_agent, operator: contains, value: Firefox}"));
    assert!(!fires("{type: user_agent, operator: contains, value: curl}"));
    assert!(fires("{type: path, operator: starts_with, value: /admin/}"));
    assert!(!fires("{type: path, operator: starts_with, value: /api/}"));
    assert!(fires("{type: path, operator: ends_with, value: /42}"));
    assert!(!fires("{type: path, operator: ends_with, value: /43}"));
    assert!(fires("{type: body, operator: contains, value: bob}"));
}

#[test]
fn regex_and_glob() {
    assert!(fires("{type: path, operator: regex, value: \"^/admin/users/[0-9]+$\"}"));
    assert!(!fires(
        "{type: path, operator: regex, value: \"^/admin/users/[a-z]+$\"}"
    ));
    assert!(fires("{type: path, operator: glob, value: \"/admin/*/42\"}"));
    assert!(!fires("{type: path, operator: glob, value: \"/admin/*/4?3\"}"));
    assert!(fires("{type: path, operator: glob, value: \"/admin/users/4?\"}"));
    let bad = serde_saphyr::from_str::<Vec<CustomRule>>(
        "- {name: bad, action: block, conditions: [{type: path, operator: regex, value: \"(\"}]}\n",
    )
    .unwrap();
    let e = CustomRules::build(&bad).err().unwrap().to_string();
    assert!(
        e.contains("custom rule `bad`, condition 0") && e.contains("regex"),
        "{e}"
    );
}

#[test]
fn in_subnet_and_not_in_subnet() {
    assert!(fires(
        "{type: ip, operator: in_subnet, value: \"10.0.0.0/8, 192.168.1.0/24\"}"
    ));
    assert!(!fires("{type: ip, operator: in_subnet, value: 10.0.0.0/8}"));
    assert!(fires("{type: ip, operator: not_in_subnet, value: 10.0.0.0/8}"));
    assert!(!fires("{type: ip, operator: not_in_subnet, value: 192.168.0.0/16}"));
    let bad = serde_saphyr::from_str::<Vec<CustomRule>>(
        "- {name: bad, action: block, conditions: [{type: path, operator: in_subnet, value: 10.0.0.0/8}]}\n",
    )
    .unwrap();
    assert!(CustomRules::build(&bad).is_err(), "subnets apply to ip only");
}

#[test]
fn exists_and_missing_targets() {
    assert!(fires("{type: header, name: x-api-key, operator: exists}"));
    assert!(!fires("{type: header, name: x-other, operator: exists}"));
    assert!(fires("{type: cookie, name: session, operator: exists}"));
    assert!(!fires("{type: cookie, name: nope, operator: exists}"));
    assert!(fires("{type: query, name: flag, operator: exists}"));
    assert!(
        !fires("{type: header, name: x-other, operator: contains, value: a}"),
        "absent: nothing matches"
    );
}

#[test]
fn gt_and_lt_compare_sizes() {
    assert!(fires("{type: body, operator: gt, value: \"10\"}"));
    assert!(!fires("{type: body, operator: gt, value: 1KB}"));
    assert!(fires("{type: body, operator: lt, value: 1KB}"));
    assert!(fires("{type: header, name: x-api-key, operator: lt, value: \"11\"}"));
    assert!(!fires("{type: header, name: x-api-key, operator: gt, value: \"10\"}"));
    assert!(fires("{type: path, operator: gt, value: \"5\"}"));
}

#[test]
fn transforms_apply_before_matching() {
    assert!(!fires(
        "{type: header, name: x-api-key, operator: equals, value: secret-key}"
    ));
    assert!(fires(
        "{type: header, name: x-api-key, operator: equals, value: secret-key, transforms: [lowercase]}"
    ));
    assert!(fires(
        "{type: query, operator: contains, value: hello world, transforms: [url_decode]}"
    ));
}

#[test]
fn all_of_any_of_and_groups() {
    let r = rules(
        "- name: admin_outside\n  action: block\n  conditions:\n    - {type: path, operator: starts_with, value: /admin/}\n    - {type: ip, operator: not_in_subnet, value: 10.0.0.0/8}\n",
    );
    assert_eq!(decide(&r, &req()).0, "admin_outside", "all conditions hold");
    let mut inside = req();
    inside.client = "10.1.1.1".parse().unwrap();
    assert_eq!(decide(&r, &inside).0, "continue", "one fails: no match");
    let any = rules(
        "- name: either\n  match: any\n  action: block\n  conditions:\n    - {type: path, operator: equals, value: /nope}\n    - {type: method, operator: equals, value: POST}\n",
    );
    assert_eq!(decide(&any, &req()).0, "either");
    let group = rules(
        "- name: g\n  action: block\n  conditions:\n    - {type: path, operator: starts_with, value: /admin/}\n    - any:\n        - {type: country, operator: equals, value: FR}\n        - {type: country, operator: equals, value: DE}\n",
    );
    assert_eq!(decide(&group, &req()).0, "g");
    let mut fr = req();
    fr.country = Some("US");
    assert_eq!(decide(&group, &fr).0, "continue");
}

#[test]
fn priority_orders_rules_and_log_rules_continue() {
    let r = rules(
        "- {name: late_block, priority: 50, action: block, conditions: [{type: method, operator: equals, value: POST}]}\n\
         - {name: early_allow, priority: 10, action: allow, conditions: [{type: ip, operator: in_subnet, value: 192.168.1.0/24}]}\n\
         - {name: logger, priority: 1, action: log, conditions: [{type: path, operator: starts_with, value: /}]}\n\
         - {name: off, enabled: false, priority: 0, action: block, conditions: [{type: path, operator: starts_with, value: /}]}\n",
    );
    let (decided, logged) = decide(&r, &req());
    assert_eq!(decided, "early_allow", "the lower priority decides first");
    assert_eq!(logged, ["logger"]);
    let mut other = req();
    other.client = "203.0.113.1".parse().unwrap();
    assert_eq!(decide(&r, &other).0, "late_block");
}

#[test]
fn rate_limit_rules_ask_the_caller_and_decide_only_when_refused() {
    let r = rules(
        "- {name: slow, action: rate_limit, rate_limit: {requests_per_minute: 5}, conditions: [{type: path, operator: starts_with, value: /admin/}]}\n\
         - {name: after, action: block, conditions: [{type: method, operator: equals, value: POST}]}\n",
    );
    assert_eq!(r.windows().len(), 1);
    let x = req();
    let view = RequestView {
        method: x.method,
        path: x.path,
        query: x.query,
        headers: &x.headers,
        body: x.body,
        body_truncated: false,
        client: x.client,
        route: None,
    };
    let input = RuleInput {
        view: &view,
        country: None,
        declared_body: None,
    };
    let refusal = Refusal {
        scope: "rule",
        limit: 5,
        reset_secs: 60,
        retry_after_secs: 12,
    };
    let d = r.evaluate(&input, |_| {}, |id, w| (id == 0 && w.limit == 5).then_some(refusal));
    assert!(matches!(d, Decision::Limited(rule, got) if rule.name == "slow" && got == refusal));
    let d = r.evaluate(&input, |_| {}, |_, _| None);
    assert!(
        matches!(d, Decision::Block(rule) if rule.name == "after"),
        "under the limit evaluation goes on"
    );
    let missing = serde_saphyr::from_str::<Vec<CustomRule>>(
        "- {name: nolimit, action: rate_limit, conditions: [{type: path, operator: exists}]}\n",
    )
    .unwrap();
    assert!(
        CustomRules::build(&missing)
            .err()
            .unwrap()
            .to_string()
            .contains("nolimit")
    );
}
