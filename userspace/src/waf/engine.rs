//! The engine: built once per configuration generation, then asked about each request.
//!
//! `inspect` runs the phases in order — protocol checks and the user agent, then every value of the head,
//! then every value of the body — and for each value: canonical form (`normalize`), one Aho-Corasick pass
//! over it that yields the families whose fragments occur, then only those families' detectors. Each
//! family keeps its most confident hit; the policy turns those into a verdict. The prefilter is what keeps a
//! clean request at a few microseconds: most values contain no fragment of any family and cost one scan.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::detect::{self, Ctx, Hit, csrf::CsrfSettings};
use super::family::Family;
use super::normalize::{self, Buffers, Encoding};
use super::policy::{Action, Overrides, Policy, PolicyError, RuleState};
use super::request::RequestView;
use super::targets::{self, Location, Target};
use crate::config::schema::{BodyOverflow, WafConfig};

/// What one family's best hit was, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub family: Family,
    pub confidence: f32,
    /// The detector rule that matched (`sqli.union_select`).
    pub rule: &'static str,
    pub location: Location,
    /// The argument, header or cookie name; empty when none.
    pub name: String,
    /// The matched part of the canonical value, at most [`EXCERPT_LEN`] bytes.
    pub excerpt: String,
}

/// Longest excerpt kept in a finding (and so in a log line).
pub const EXCERPT_LEN: usize = 120;

/// The decision about a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Allow,
    Block(Finding),
    Challenge(Finding),
    /// A rule fired but the policy (monitor mode, a `log` action) only records it.
    Log(Finding),
}

impl Verdict {
    pub fn action(&self) -> &'static str {
        match self {
            Verdict::Allow => "allowed",
            Verdict::Block(_) => "blocked",
            Verdict::Challenge(_) => "challenged",
            Verdict::Log(_) => "logged",
        }
    }

    pub fn finding(&self) -> Option<&Finding> {
        match self {
            Verdict::Allow => None,
            Verdict::Block(f) | Verdict::Challenge(f) | Verdict::Log(f) => Some(f),
        }
    }
}

/// The result of inspecting a request: the verdict, every family's best confidence and the anomaly score.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Sum of the confidences (each at least [`ANOMALY_FLOOR`]) of the enabled families that matched.
    pub anomaly_score: f32,
    /// Values inspected.
    pub targets: u32,
}

/// Confidences below this do not count towards the anomaly score.
pub const ANOMALY_FLOOR: f32 = 0.5;

/// The engine of one configuration generation. `Send + Sync`; `inspect` takes `&self`.
pub struct Engine {
    policy: Policy,
    prefilter: AhoCorasick,
    /// Family bits per prefilter pattern.
    pattern_families: Vec<u32>,
    enabled: u32,
    passes: u8,
    max_targets: u32,
    max_value: usize,
    limits: targets::Limits,
    body_limit: usize,
    overflow: BodyOverflow,
    csrf: CsrfSettings,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
    /// The values already inspected in the current request, reused from request to request.
    static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
    static BASE64: RefCell<(Vec<u8>, Buffers)> = RefCell::new((Vec::new(), Buffers::default()));
}

/// The values a request has had inspected, so that a repeat (the keys of every object in a JSON array, a
/// query parameter given twice) is not inspected again: detectors are pure functions of (location,
/// encoding, families asked for, bytes), so a repeat would only find again what the first one found.
/// Repeats are confirmed byte for byte, so a hash collision can only cost a second inspection, never skip
/// one. Reused from request to request (cleared, capacity kept).
#[derive(Default)]
struct Seen {
    /// Hash of a key → the spans in `bytes` of the keys with that hash.
    index: HashMap<u64, Span, BuildHasherDefault<Prehashed>>,
    /// Every first-seen value's bytes, back to back.
    bytes: Vec<u8>,
    hasher: foldhash::fast::RandomState,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    /// Another key with the same hash: such values are always inspected.
    collided: bool,
}

/// Values longer than this are inspected every time (hashing and keeping them would cost more than a rare
/// repeat saves).
const SEEN_MAX_VALUE: usize = 1024;

impl Seen {
    fn first_time(&mut self, t: &Target<'_>, mask: u32) -> bool {
        if t.value.len() > SEEN_MAX_VALUE {
            return true;
        }
        // One word for what the answer depends on besides the bytes (cheaper to hash than three fields).
        let context = u64::from(mask) << 16 | (t.location as u64) << 8 | t.encoding as u64;
        let key = self.hasher.hash_one((context, t.value));
        match self.index.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let span = e.get_mut();
                let start = span.start as usize;
                if !span.collided && self.bytes.get(start..start + span.len as usize) == Some(t.value) {
                    return false;
                }
                span.collided = true;
                true
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                let (Ok(start), Ok(len)) = (u32::try_from(self.bytes.len()), u32::try_from(t.value.len())) else {
                    return true;
                };
                self.bytes.extend_from_slice(t.value);
                e.insert(Span {
                    start,
                    len,
                    collided: false,
                });
                true
            }
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.bytes.clear();
    }
}

/// The hasher of a map whose keys are already hash values.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// What the value detectors found in a user agent, by the agent's exact bytes. A site sees few distinct
/// agents (each browser build sends the same string on every request), and an agent is long, full of the
/// parentheses and semicolons that wake the SQL and command detectors: inspecting it again costs more than
/// the rest of a clean request. Detectors are pure, so a cached answer is the answer; the key carries what
/// else the answer depends on.
struct AgentEntry {
    key: AgentKey,
    agent: Vec<u8>,
    findings: Vec<Finding>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct AgentKey {
    mask: u32,
    enabled: u32,
    passes: u8,
}

/// Agents remembered per thread (most recent first; each agent takes two entries, its scanner check and its
/// value findings), and the longest remembered.
const AGENT_CACHE_ENTRIES: usize = 32;
const AGENT_CACHE_MAX_LEN: usize = 512;

thread_local! {
    static AGENTS: RefCell<std::collections::VecDeque<AgentEntry>> = const {
        RefCell::new(std::collections::VecDeque::new())
    };
}

/// Per-request accumulation.
struct State {
    best: [Option<Finding>; Family::COUNT],
    targets: u32,
    token_seen: bool,
    /// More values than `limits.max_targets`: the rest is inspected as one raw block.
    overflowed: bool,
    seen: Seen,
}

impl State {
    fn new(seen: Seen) -> Self {
        Self {
            best: Default::default(),
            targets: 0,
            token_seen: false,
            overflowed: false,
            seen,
        }
    }

    /// Whether `confidence` beats `family`'s best finding so far (the first one wins a tie).
    fn beats(&self, family: Family, confidence: f32) -> bool {
        self.best[family.index()]
            .as_ref()
            .is_none_or(|f| f.confidence < confidence)
    }

    /// Keeps a finding made earlier (a remembered user agent's) on the same terms as `record`.
    fn keep(&mut self, f: Finding) {
        if self.beats(f.family, f.confidence) {
            let slot = f.family.index();
            self.best[slot] = Some(f);
        }
    }

    fn record(&mut self, family: Family, hit: &Hit, location: Location, name: &str, text: &str) {
        if !self.beats(family, hit.confidence) {
            return;
        }
        self.best[family.index()] = Some(Finding {
            family,
            confidence: hit.confidence,
            rule: hit.rule,
            location,
            name: name.chars().take(64).collect(),
            excerpt: excerpt(text, hit.start, hit.end),
        });
    }
}

/// Keeps in `st` what `inspect` finds in the user agent `agent`, from the thread's memory of recent agents when
/// `key` and the bytes match, else by running `inspect` on a fresh state and remembering its findings.
fn remembered(agent: &[u8], key: AgentKey, st: &mut State, inspect: impl FnOnce(&mut State)) {
    if agent.len() > AGENT_CACHE_MAX_LEN {
        return inspect(st);
    }
    let cached = AGENTS.with(|cell| {
        let cache = cell.try_borrow().ok()?;
        cache
            .iter()
            .find(|e| e.key == key && e.agent == agent)
            .map(|e| e.findings.clone())
    });
    let findings = match cached {
        Some(findings) => findings,
        None => {
            let mut own = State::new(Seen::default());
            inspect(&mut own);
            let findings: Vec<Finding> = own.best.into_iter().flatten().collect();
            AGENTS.with(|cell| {
                if let Ok(mut cache) = cell.try_borrow_mut() {
                    if cache.len() >= AGENT_CACHE_ENTRIES {
                        cache.pop_back();
                    }
                    cache.push_front(AgentEntry {
                        key,
                        agent: agent.to_vec(),
                        findings: findings.clone(),
                    });
                }
            });
            findings
        }
    };
    for f in findings {
        st.keep(f);
    }
}

/// `s` without trailing `%3D`s, then without trailing `%3d`s (URL-encoded base64 padding), as
/// `trim_end_matches` twice but without building a substring searcher per value.
fn without_encoded_padding(mut s: &str) -> &str {
    while let Some(head) = s.strip_suffix("%3D") {
        s = head;
    }
    while let Some(head) = s.strip_suffix("%3d") {
        s = head;
    }
    s
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// At most `EXCERPT_LEN` bytes of `text[start..end]`, on character boundaries.
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let s = floor_char(text, start);
    let e = floor_char(text, end.max(s).min(s + EXCERPT_LEN));
    let e = if e <= s {
        floor_char(text, (s + EXCERPT_LEN).min(text.len()))
    } else {
        e
    };
    text[s..e].to_owned()
}

impl Engine {
    /// Compiles the engine for `cfg` with runtime `overrides` applied.
    pub fn build(cfg: &WafConfig, overrides: &Overrides) -> Result<Self, PolicyError> {
        let policy = Policy::build(cfg, overrides)?;
        let mut patterns: Vec<&'static str> = Vec::new();
        let mut pattern_families: Vec<u32> = Vec::new();
        for (family, fragments) in detect::value_families() {
            for frag in fragments {
                match patterns.iter().position(|p| p == frag) {
                    Some(i) => pattern_families[i] |= family.bit(),
                    None => {
                        patterns.push(frag);
                        pattern_families.push(family.bit());
                    }
                }
            }
        }
        detect::warm_up();
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .or_else(|_| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
            })
            .unwrap_or_else(|e| panic!("the built-in prefilter fragments must compile: {e}"));
        let c = &cfg.owasp_protection.csrf_protection;
        let limits = &cfg.limits;
        let enabled = policy.enabled_mask();
        Ok(Self {
            policy,
            prefilter,
            pattern_families,
            enabled,
            passes: limits.decode_passes.max(1),
            max_targets: limits.max_targets.max(1),
            max_value: usize::try_from(limits.max_value_length.get())
                .unwrap_or(usize::MAX)
                .max(64),
            limits: targets::Limits {
                max_depth: usize::from(limits.max_depth),
                max_targets: usize::try_from(limits.max_targets.max(1)).unwrap_or(usize::MAX),
                file_content_bytes: usize::try_from(limits.file_content_bytes.get()).unwrap_or(usize::MAX),
            },
            body_limit: usize::try_from(cfg.body_inspection_limit.get()).unwrap_or(usize::MAX),
            overflow: cfg.body_overflow,
            csrf: CsrfSettings {
                allowed_origins: c.allowed_origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
                token_validation: c.token_validation,
                token_paths: c.token_paths.clone(),
                token_field: c.token_field.to_ascii_lowercase(),
                token_header: c.token_header.to_ascii_lowercase(),
            },
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The rules as in force: name → state.
    pub fn rules(&self) -> impl Iterator<Item = (Family, &RuleState)> {
        Family::ALL.into_iter().map(|f| (f, self.policy.rule(f)))
    }

    /// Largest body prefix the detectors read.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    pub fn body_overflow(&self) -> BodyOverflow {
        self.overflow
    }

    /// Inspects a request; `body` in the view is what the caller read (at most `body_limit`).
    pub fn inspect(&self, req: &RequestView<'_>) -> Inspection {
        let mut st = State::new(SEEN.with(|cell| {
            cell.try_borrow_mut()
                .map(|mut s| std::mem::take(&mut *s))
                .unwrap_or_default()
        }));
        let excluded = self.policy.excluded(req.route, req.path);
        let active = self.enabled & !excluded.whole;

        if active & Family::Protocol.bit() != 0
            && let Some(h) = detect::protocol::check(req)
        {
            st.record(Family::Protocol, &h, Location::Header, "", "");
        }
        if active & Family::Scanner.bit() != 0
            && let Some(ua) = req.header("user-agent")
        {
            // The tool-name scan is remembered per agent like the value detectors' findings (its own key: the
            // value detectors never set the scanner bit), and costs as much as the rest of a clean request.
            let key = AgentKey {
                mask: Family::Scanner.bit(),
                enabled: self.enabled,
                passes: 0,
            };
            remembered(ua.as_bytes(), key, &mut st, |own| {
                if let Some(h) = detect::scanner::detect(ua) {
                    own.record(
                        Family::Scanner,
                        &h,
                        Location::UserAgent,
                        "user-agent",
                        &ua.to_ascii_lowercase(),
                    );
                }
            });
        }
        let value_mask = active & !(Family::Protocol.bit() | Family::Scanner.bit() | Family::Csrf.bit());
        if value_mask != 0 {
            let mut visit = |t: Target<'_>| self.visit(&t, value_mask, &excluded, &mut st);
            targets::each_in_head(req, self.limits, &mut visit);
            if !req.body.is_empty() {
                targets::each_in_body(req, self.limits, &mut visit);
            }
            if st.overflowed {
                // Too many values to inspect one by one: the raw block they came in, bounded.
                let (location, raw) = if req.body.is_empty() {
                    (Location::QueryValue, req.query.as_bytes())
                } else {
                    (Location::RawBody, req.body)
                };
                let block = Target {
                    location,
                    name: std::borrow::Cow::Borrowed(""),
                    value: &raw[..raw.len().min(self.max_value)],
                    encoding: normalize::Encoding::Form,
                };
                self.value(block.value, &block, value_mask, &mut st);
            }
            if value_mask & Family::Xxe.bit() != 0
                && targets::body_kind(req.content_type().as_deref(), req.body) == targets::BodyKind::Xml
                && let Some(prolog) = detect::xxe::prolog(req.body)
                && let Some(h) = detect::xxe::detect(
                    &prolog,
                    &Ctx {
                        location: Location::RawBody,
                    },
                )
            {
                st.record(Family::Xxe, &h, Location::RawBody, "", &prolog);
            }
        }
        if active & Family::Csrf.bit() != 0
            && let Some(h) = detect::csrf::check(req, &self.csrf, st.token_seen)
        {
            st.record(Family::Csrf, &h, Location::Header, "origin", "");
        }
        let mut seen = std::mem::take(&mut st.seen);
        seen.clear();
        SEEN.with(|cell| {
            if let Ok(mut s) = cell.try_borrow_mut() {
                *s = seen;
            }
        });
        self.decide(st)
    }

    /// The answer for a body longer than the inspection limit under `body_overflow: block`.
    pub fn overflow_verdict(&self, len: u64) -> Verdict {
        let f = Finding {
            family: Family::Protocol,
            confidence: 1.0,
            rule: "protocol.body_over_inspection_limit",
            location: Location::RawBody,
            name: String::new(),
            excerpt: format!(
                "body of {len} bytes over the inspection limit of {} bytes",
                self.body_limit
            ),
        };
        match self.policy.apply_mode(Family::Protocol, Action::Block) {
            Action::Log => Verdict::Log(f),
            _ => Verdict::Block(f),
        }
    }

    fn visit(&self, t: &Target<'_>, mask: u32, excluded: &super::policy::Excluded<'_>, st: &mut State) {
        st.targets += 1;
        if st.targets > self.max_targets {
            st.overflowed = true;
            return;
        }
        let mask = mask & !excluded.for_arg(&t.name);
        if mask == 0 {
            return;
        }
        if !self.csrf.token_field.is_empty()
            && t.location.is_body()
            && !t.value.is_empty()
            && t.name.eq_ignore_ascii_case(&self.csrf.token_field)
        {
            st.token_seen = true;
        }
        if !st.seen.first_time(t, mask) {
            return;
        }
        if t.value.len() > self.max_value {
            // Inspect the start and the end: payloads hide behind padding in either direction.
            let half = self.max_value / 2;
            self.value(&t.value[..half], t, mask, st);
            self.value(&t.value[t.value.len() - half..], t, mask, st);
        } else {
            self.value(t.value, t, mask, st);
        }
    }

    fn value(&self, raw: &[u8], t: &Target<'_>, mask: u32, st: &mut State) {
        if t.location != Location::UserAgent {
            return self.value_uncached(raw, t, mask, st);
        }
        let key = AgentKey {
            mask,
            enabled: self.enabled,
            passes: self.passes,
        };
        remembered(raw, key, st, |own| self.value_uncached(raw, t, mask, own));
    }

    fn value_uncached(&self, raw: &[u8], t: &Target<'_>, mask: u32, st: &mut State) {
        BUFFERS.with(|cell| {
            let Ok(mut buf) = cell.try_borrow_mut() else { return };
            let c = normalize::decoded(raw, t.encoding, self.passes, &mut buf, false);
            // Encodings no client produces: overlong UTF-8 (a filter bypass), and a NUL byte in what looks
            // like a file name (extension truncation).
            if c.anomalies.url.overlong_utf8 {
                let h = Hit::new(0.85, 0, c.text.len().min(60), "protocol.overlong_utf8");
                let fam = if c.text.contains("..") {
                    Family::PathTraversal
                } else {
                    Family::Protocol
                };
                if self.enabled & fam.bit() != 0 {
                    st.record(fam, &h, t.location, &t.name, c.text);
                }
            }
            if c.anomalies.encoded_angle && mask & Family::Xss.bit() != 0 {
                let h = Hit::new(0.8, 0, c.text.len().min(60), "xss.numeric_reference_to_angle");
                st.record(Family::Xss, &h, t.location, &t.name, c.text);
            }
            if c.anomalies.url.null_byte && mask & Family::PathTraversal.bit() != 0 && c.text.contains(['/', '\\', '.'])
            {
                let h = Hit::new(0.85, 0, c.text.len().min(60), "traversal.null_byte");
                st.record(Family::PathTraversal, &h, t.location, &t.name, c.text);
            }
            self.detect(c.text, t, mask, st);
        });
        // Values that look base64-encoded are also inspected decoded (an application that decodes them sees this).
        // A path is tried segment by segment.
        if raw.len() < 12 {
            return;
        }
        let Ok(all) = std::str::from_utf8(raw) else { return };
        let pieces: &mut dyn Iterator<Item = &str> = if t.location == Location::Path {
            &mut all.split('/').filter(|p| p.len() >= 12).take(4)
        } else {
            &mut std::iter::once(all)
        };
        for text in pieces {
            let text = without_encoded_padding(text);
            if normalize::base64::looks_encoded(text) {
                BASE64.with(|cell| {
                    let Ok(mut guard) = cell.try_borrow_mut() else { return };
                    let (bytes, buf) = &mut *guard;
                    if normalize::base64::decode_text(text, bytes) {
                        let decoded = std::mem::take(bytes);
                        let c = normalize::canonical(&decoded, Encoding::Text, self.passes, buf);
                        self.detect(c.text, t, mask, st);
                        *bytes = decoded;
                    }
                });
            }
        }
    }

    fn detect(&self, text: &str, t: &Target<'_>, mask: u32, st: &mut State) {
        let mut families = 0u32;
        for m in self.prefilter.find_overlapping_iter(text) {
            families |= self.pattern_families[m.pattern().as_usize()];
            if families & mask == mask {
                break;
            }
        }
        let families = families & mask;
        if families == 0 {
            return;
        }
        // The prefilter ignores ASCII case; the detectors read lower case.
        let lowered;
        let text: &str = if text.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = text.to_ascii_lowercase();
            &lowered
        } else {
            text
        };
        let ctx = Ctx { location: t.location };
        for f in Family::ALL {
            if families & f.bit() == 0 || !detect::applies(f, t.location) {
                continue;
            }
            if let Some(h) = detect::run(f, text, &ctx) {
                st.record(f, &h, t.location, &t.name, text);
            }
        }
    }

    fn decide(&self, st: State) -> Inspection {
        let findings: Vec<Finding> = st.best.into_iter().flatten().collect();
        let mut anomaly = 0.0f32;
        let mut chosen: Option<(Action, &Finding)> = None;
        for f in &findings {
            let rule = self.policy.rule(f.family);
            if !rule.enabled {
                continue;
            }
            if f.confidence >= ANOMALY_FLOOR {
                anomaly += f.confidence;
            }
            if f64::from(f.confidence) + 1e-6 >= rule.threshold {
                let action = self.policy.apply_mode(f.family, rule.action);
                let better = match chosen {
                    None => true,
                    Some((a, c)) => action < a || (action == a && f.confidence > c.confidence),
                };
                if better {
                    chosen = Some((action, f));
                }
            }
        }
        if chosen.is_none()
            && f64::from(anomaly) >= self.policy.anomaly_threshold
            && let Some(top) = findings
                .iter()
                .filter(|f| self.policy.rule(f.family).enabled)
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        {
            chosen = Some((self.policy.apply_mode(top.family, Action::Block), top));
        }
        let verdict = match chosen {
            None => Verdict::Allow,
            Some((Action::Block, f)) => Verdict::Block(f.clone()),
            Some((Action::Challenge, f)) => Verdict::Challenge(f.clone()),
            Some((Action::Log, f)) => Verdict::Log(f.clone()),
            Some((Action::Allow, _)) => Verdict::Allow,
        };
        Inspection {
            verdict,
            findings,
            anomaly_score: anomaly,
            targets: st.targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::config::schema::{WafExclusion, WafMode};

    fn engine(cfg: &WafConfig) -> Engine {
        Engine::build(cfg, &Overrides::new()).expect("engine builds")
    }

    fn inspect(e: &Engine, path: &str, query: &str, body: &[u8], ct: Option<&'static str>) -> Inspection {
        let mut h = HeaderMap::new();
        h.insert("user-agent", HeaderValue::from_static("Mozilla/5.0"));
        if let Some(ct) = ct {
            h.insert("content-type", HeaderValue::from_static(ct));
        }
        let view = RequestView {
            method: if body.is_empty() { "GET" } else { "POST" },
            path,
            query,
            headers: &h,
            body,
            body_truncated: false,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: None,
        };
        e.inspect(&view)
    }

    #[test]
    fn the_engine_is_send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<Engine>();
    }

    #[test]
    fn an_attack_in_a_query_argument_is_blocked_with_its_family_and_excerpt() {
        let e = engine(&WafConfig::default());
        let i = inspect(
            &e,
            "/search",
            "q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
            b"",
            None,
        );
        let Verdict::Block(f) = i.verdict else {
            panic!("expected a block: {i:?}")
        };
        assert_eq!(f.family, Family::SqlInjection);
        assert_eq!(f.name, "q");
        assert!(f.excerpt.contains("union select"), "{}", f.excerpt);
    }

    fn inspect_agent(e: &Engine, agent: &'static str) -> Inspection {
        let mut h = HeaderMap::new();
        h.insert("user-agent", HeaderValue::from_static(agent));
        e.inspect(&RequestView {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
            body: b"",
            body_truncated: false,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: None,
        })
    }

    #[test]
    fn a_remembered_user_agent_gets_the_same_findings_as_a_new_one() {
        let e = engine(&WafConfig::default());
        for agent in [
            "sqlmap/1.7.4#stable (https://sqlmap.org)",
            "Mozilla/5.0' UNION SELECT password FROM users--",
        ] {
            let first = inspect_agent(&e, agent);
            assert!(matches!(first.verdict, Verdict::Block(_)), "{agent}: {first:?}");
            for _ in 0..3 {
                assert_eq!(inspect_agent(&e, agent).findings, first.findings, "{agent} from memory");
            }
        }
        let browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0";
        for _ in 0..2 {
            assert_eq!(inspect_agent(&e, browser).verdict, Verdict::Allow);
        }
        // A configuration without the scanner family must not be answered from the default engine's memory.
        let mut cfg = WafConfig::default();
        cfg.owasp_protection.rules.insert(
            "scanner".into(),
            crate::config::schema::RuleSetting {
                enabled: Some(false),
                ..Default::default()
            },
        );
        let quiet = inspect_agent(&engine(&cfg), "sqlmap/1.7.4#stable (https://sqlmap.org)");
        assert!(quiet.findings.iter().all(|f| f.family != Family::Scanner), "{quiet:?}");
    }

    #[test]
    fn a_clean_request_is_allowed() {
        let e = engine(&WafConfig::default());
        let i = inspect(&e, "/products/42", "page=2&sort=price&q=blue+shoes", b"", None);
        assert_eq!(i.verdict, Verdict::Allow, "{:?}", i.findings);
    }

    #[test]
    fn attacks_in_json_multipart_and_xml_bodies_are_found() {
        let e = engine(&WafConfig::default());
        let i = inspect(
            &e,
            "/api",
            "",
            br#"{"a": {"b": ["<script>alert(1)</script>"]}}"#,
            Some("application/json"),
        );
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::Xss),
            "{i:?}"
        );
        let i = inspect(&e, "/api", "", br#"{"q": "\u0027 OR 1=1--"}"#, Some("application/json"));
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::SqlInjection),
            "{i:?}"
        );
        let mp =
            b"--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"\r\n\r\nhi\r\n--X--\r\n";
        let i = inspect(&e, "/up", "", mp, Some("multipart/form-data; boundary=X"));
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::PathTraversal),
            "{i:?}"
        );
        let xml = b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
        let i = inspect(&e, "/xml", "", xml, Some("application/xml"));
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::Xxe),
            "{i:?}"
        );
    }

    #[test]
    fn a_base64_encoded_attack_is_decoded_and_found() {
        let e = engine(&WafConfig::default());
        // base64("<script>alert(1)</script>")
        let i = inspect(&e, "/", "x=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg%3D%3D", b"", None);
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::Xss),
            "{i:?}"
        );
    }

    #[test]
    fn monitor_mode_logs_instead_of_blocking() {
        let cfg = WafConfig {
            mode: WafMode::Monitor,
            ..WafConfig::default()
        };
        let e = engine(&cfg);
        let i = inspect(&e, "/", "q=<script>alert(1)</script>", b"", None);
        assert!(matches!(i.verdict, Verdict::Log(_)), "{i:?}");
    }

    #[test]
    fn an_argument_exclusion_lets_that_argument_through_but_not_others() {
        let mut cfg = WafConfig::default();
        cfg.exclusions.push(WafExclusion {
            args: vec!["html".into()],
            rules: vec!["xss".into()],
            ..WafExclusion::default()
        });
        let e = engine(&cfg);
        assert_eq!(
            inspect(&e, "/", "html=<script>x</script>", b"", None).verdict,
            Verdict::Allow
        );
        assert!(matches!(
            inspect(&e, "/", "other=<script>x</script>", b"", None).verdict,
            Verdict::Block(_)
        ));
    }

    #[test]
    fn weak_signals_of_several_families_add_up_to_a_block() {
        let mut cfg = WafConfig::default();
        cfg.owasp_protection.anomaly_threshold = 1.0;
        for f in ["xss", "sql_injection"] {
            cfg.owasp_protection.rules.insert(
                f.into(),
                crate::config::schema::RuleSetting {
                    threshold: Some(crate::config::types::Fraction::new_const(1.0)),
                    ..Default::default()
                },
            );
        }
        let e = engine(&cfg);
        let i = inspect(&e, "/", "a=%27%20or%201%3D1--&b=<script>", b"", None);
        assert!(i.anomaly_score >= 1.0, "{i:?}");
        assert!(matches!(i.verdict, Verdict::Block(_)), "{i:?}");
    }

    #[test]
    fn values_beyond_the_target_limit_are_still_inspected_as_one_block() {
        let e = engine(&WafConfig::default());
        let mut q = "a=1&".repeat(2000);
        q.push_str("z=%3Cscript%3Ealert(1)%3C/script%3E");
        let i = inspect(&e, "/", &q[..q.len().min(16_000)], b"", None);
        assert!(i.targets > 1024);
        let body = format!("{}x=<script>alert(1)</script>", "a=1&".repeat(1500));
        let i = inspect(&e, "/", "", body.as_bytes(), Some("application/x-www-form-urlencoded"));
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::Xss),
            "{i:?}"
        );
    }

    #[test]
    fn sql_keywords_and_markup_in_different_case_are_found_through_the_case_blind_prefilter() {
        let e = engine(&WafConfig::default());
        let i = inspect(&e, "/", "q=1%20UnIoN%20SeLeCt%20NULL--", b"", None);
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::SqlInjection),
            "{i:?}"
        );
        let i = inspect(&e, "/", "q=%3CSCRIPT%3E", b"", None);
        assert!(
            matches!(i.verdict, Verdict::Block(ref f) if f.family == Family::Xss),
            "{i:?}"
        );
    }

    #[test]
    fn an_attack_after_many_bare_names_is_still_inspected() {
        // 600 bare names are 600 values, under the 1,024 limit: every value after them is inspected too.
        let e = engine(&WafConfig::default());
        let names: Vec<String> = (0..600).map(|i| format!("n{i}")).collect();
        let query = format!("{}&q=1'+union+select+password+from+users--", names.join("&"));
        let i = inspect(&e, "/", &query, b"", None);
        assert!(matches!(i.verdict, Verdict::Block(_)), "{:?}", i.findings);
    }

    #[test]
    fn pathological_inputs_are_bounded() {
        let e = engine(&WafConfig::default());
        let deep = "[".repeat(50_000);
        let _ = inspect(&e, "/", "", deep.as_bytes(), Some("application/json"));
        let encoded = "%25".repeat(30_000);
        let _ = inspect(&e, "/", &format!("a={encoded}"), b"", None);
        let many = "a=1&".repeat(20_000);
        let i = inspect(&e, "/", &many, b"", None);
        assert!(i.targets > 1024);
    }
}
