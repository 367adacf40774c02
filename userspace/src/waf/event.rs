//! The security event a verdict becomes: the fields of the seed specification's security log
//! (`client_ip`, `attack_type`, `pattern_matched`, `confidence`, `rule_name`, `request.method/path`,
//! `action_taken`) plus the request id and where the match was. Built here, written by the proxy.

use std::net::IpAddr;

use serde::Serialize;

use super::engine::{Inspection, Verdict};

#[derive(Clone, Debug, Serialize)]
pub struct SecurityEvent {
    pub event_type: &'static str,
    pub client_ip: IpAddr,
    pub attack_type: &'static str,
    pub pattern_matched: String,
    pub confidence: f64,
    pub rule_name: String,
    /// The detector rule within the family (`sqli.union_select`).
    pub detector: &'static str,
    pub method: String,
    pub path: String,
    pub location: &'static str,
    pub argument: String,
    pub anomaly_score: f64,
    pub action_taken: &'static str,
    pub request_id: String,
}

impl SecurityEvent {
    /// The event for an inspection whose verdict is not `Allow`.
    pub fn from_inspection(i: &Inspection, client: IpAddr, method: &str, path: &str, request_id: &str) -> Option<Self> {
        let f = i.verdict.finding()?;
        Some(Self {
            event_type: match i.verdict {
                Verdict::Log(_) => "security_detection",
                Verdict::Challenge(_) => "security_challenge",
                _ => "security_block",
            },
            client_ip: client,
            attack_type: f.family.name(),
            pattern_matched: f.excerpt.clone(),
            confidence: (f64::from(f.confidence) * 100.0).round() / 100.0,
            rule_name: f.family.rule_name(),
            detector: f.rule,
            method: method.to_owned(),
            path: path.chars().take(256).collect(),
            location: f.location.as_str(),
            argument: f.name.clone(),
            anomaly_score: (f64::from(i.anomaly_score) * 100.0).round() / 100.0,
            action_taken: i.verdict.action(),
            request_id: request_id.to_owned(),
        })
    }
}
