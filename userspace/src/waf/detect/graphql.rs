//! GraphQL introspection: queries for the schema itself (`__schema`, `__type(`), which map an API for an
//! attacker. `__typename`, which ordinary clients ask for, passes.

use super::{Ctx, Hit};

pub const FRAGMENTS: &[&str] = &["__schema", "__type", "introspectionquery"];

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    if let Some(at) = s.find("__schema") {
        return Some(Hit::new(0.9, at, at + 8, "graphql.schema_introspection"));
    }
    let mut from = 0;
    while let Some(p) = s[from..].find("__type") {
        let at = from + p;
        let rest = &s[at + 6..];
        if rest.trim_start().starts_with('(') {
            return Some(Hit::new(0.88, at, at + 6, "graphql.type_introspection"));
        }
        from = at + 6;
    }
    s.find("introspectionquery")
        .map(|at| Hit::new(0.85, at, at + 18, "graphql.introspection_query"))
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    #[test]
    fn schema_introspection_is_detected_and_typename_passes() {
        assert!(confidence(Family::GraphqlIntrospection, "{__schema{types{name}}}") >= 0.85);
        assert!(
            confidence(
                Family::GraphqlIntrospection,
                "{ __type(name: \"User\") { fields { name } } }"
            ) >= 0.85
        );
        assert!(confidence(Family::GraphqlIntrospection, "{ product { __typename id } }") < 0.5);
    }
}
