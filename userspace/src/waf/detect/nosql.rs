//! NoSQL (MongoDB-style) injection: query operators smuggled in as argument names or JSON keys
//! (`user[$ne]=`, `{"$gt": ""}`, `$where`), and JavaScript injected into server-side evaluation
//! (`'; return true; var x='`, `this.password.match(/.*/)`, `|| 1==1`, `sleep(5000)` in a `$where`).

use std::sync::LazyLock;

use super::{Ctx, Hit, Signatures};
use crate::waf::targets::Location;

pub const FRAGMENTS: &[&str] = &[
    "$ne",
    "$eq",
    "$gt",
    "$lt",
    "$in",
    "$nin",
    "$regex",
    "$where",
    "$exists",
    "$or",
    "$and",
    "$nor",
    "$not",
    "$expr",
    "$elemmatch",
    "$comment",
    "$type",
    "$size",
    "$all",
    "$function",
    "$accumulator",
    "$mod",
    "$text",
    "$lookup",
    "$merge",
    "$out",
    "this.",
    "this .",
    "db.",
    "db .",
    "return",
    "==",
    "sleep",
    "while",
    "new date",
];

const OPERATORS: &[&str] = &[
    "ne",
    "eq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "regex",
    "where",
    "exists",
    "or",
    "and",
    "not",
    "nor",
    "expr",
    "elemmatch",
    "type",
    "mod",
    "all",
    "size",
    "text",
    "function",
    "accumulator",
    "lookup",
    "merge",
    "out",
];

static JS: LazyLock<Signatures> = LazyLock::new(|| {
    Signatures::new(&[
        (
            r"\bthis\s*\.\s*\w+\s*(?:\.\s*(?:match|tostring|constructor|valueof)\s*\(|[=!]==?|\[)",
            0.9,
            "nosql.this_access",
        ),
        (
            r#"['"]\s*(?:;|\|\||&&)\s*(?:return\b|sleep\s*\(|while\s*\(|this\.|db\.|true|false|\d+\s*==)"#,
            0.92,
            "nosql.js_breakout",
        ),
        (
            r"\bdb\s*\.\s*(?:\w+\s*\.\s*)?(?:find|insert|update|remove|drop|getcollection|eval|runcommand|getsiblingdb)\w*\s*\(",
            0.9,
            "nosql.db_call",
        ),
        (
            r"\$(?:where|expr|function|accumulator)\b\s*['\x22]?\s*:",
            0.9,
            "nosql.server_js_operator",
        ),
        (
            r"\[\s*\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|not|nor|expr|elemmatch)\s*\]",
            0.92,
            "nosql.bracket_operator",
        ),
        (
            r#"\{\s*['"]?\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|nor|expr|elemmatch)['"]?\s*:"#,
            0.92,
            "nosql.object_operator",
        ),
        (
            r#"\$(?:or|and|nor|ne|eq|gt|lt|gte|lte|in|nin|regex|exists|comment|where|expr|elemmatch|not|type|size|all)\s*['"]?\s*:"#,
            0.88,
            "nosql.operator_pair",
        ),
        (
            r"\bnew\s+date\s*\(\s*\)\s*;\s*do\s*\{|\bdo\s*\{[^}]*\}\s*while\s*\(|(?:^|[;'\x22])\s*var\s+\w+\s*=\s*new\s+\w+\s*\(",
            0.88,
            "nosql.js_statement",
        ),
        (
            r"(?:\|\||&&)\s*['\x22]?\w*['\x22]?\s*==\s*['\x22]?\w*|\breturn\s+(?:true|1|this)\b|;\s*sleep\s*\(\s*\d+|\bwhile\s*\(\s*true\s*\)",
            0.85,
            "nosql.js_condition",
        ),
    ])
});

pub fn detect(s: &str, ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    // A key that is itself an operator.
    if matches!(
        ctx.location,
        Location::JsonKey | Location::QueryName | Location::FormName | Location::CookieName
    ) && let Some(op) = s.trim().strip_prefix('$')
        && OPERATORS.contains(&op)
    {
        best = Hit::max(best, Hit::new(0.92, 0, s.len(), "nosql.operator_key"));
    }
    if let Some(h) = JS.best(s) {
        best = Hit::max(best, h);
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::{confidence, confidence_at};
    use crate::waf::family::Family;
    use crate::waf::targets::Location;

    fn c(s: &str) -> f32 {
        confidence(Family::NosqlInjection, s)
    }

    #[test]
    fn operators_in_names_and_keys_are_nosql_injection() {
        assert!(confidence_at(Family::NosqlInjection, "username[$ne]", Location::QueryName) >= 0.9);
        assert!(confidence_at(Family::NosqlInjection, "$gt", Location::JsonKey) >= 0.9);
        assert!(c("{\"$where\": \"sleep(100)\"}") >= 0.9);
    }

    #[test]
    fn server_side_javascript_is_nosql_injection() {
        assert!(c("' && this.password.match(/.*/)//") >= 0.85);
        assert!(c("'; return true; var x='") >= 0.85);
        assert!(c("db.users.find()") >= 0.85);
    }

    #[test]
    fn prices_and_prose_pass() {
        assert!(c("costs $5 or less") < 0.8);
        assert!(c("return policy: 30 days") < 0.8);
        assert!(confidence_at(Family::NosqlInjection, "$price", Location::JsonKey) < 0.8);
    }
}
