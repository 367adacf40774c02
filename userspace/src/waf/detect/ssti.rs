//! Server-side template injection: template delimiters of the common engines (Jinja/Twig `{{ }}` and `{% %}`,
//! ERB/JSP `<%= %>`, Spring/Thymeleaf/JSF/Freemarker `${ }` `#{ }` `*{ }` `[[ ]]`, Freemarker `<#...>`,
//! Velocity `#set`, Smarty `{php}`) with an *expression* inside: arithmetic, attribute chains, dunder access,
//! filters, method calls. A placeholder with a bare name (`{{ name }}`) is how templates look in content and
//! scores low.

use std::sync::LazyLock;

use regex::Regex;

use super::{Ctx, Hit, Signatures, regex};

pub const FRAGMENTS: &[&str] = &[
    "{{", "{%", "<%", "${", "#{", "*{", "[[", "<#", "#set", "#foreach", "{php", "{$", "@(", "$class",
];

static DELIMITED: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        // Unbounded classes, length-checked after the match: bounded repetitions (`{0,300}`) would multiply the
        // automaton's size by their bound and push the regex engine off its fast path on long values.
        r"\{\{(?P<a>[^}]*)\}\}|\{%(?P<b>[^%]*)%\}|<%=?(?P<c>[^%]*)%>|[$#*@]\{(?P<d>[^}]*)\}|\[\[(?P<e>[^\]]*)\]\]|\{\{(?P<f>[^}]+)$|\$\{(?P<g>[^}]+)$",
    )
});
static EXPRESSION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"\d\s*[*+/%-]\s*\d|['"]\d*['"]\s*\*\s*\d|__\w+__|\.__|\|\s*(?:attr|safe|e|join|format|string|lower|upper|first|last|list|map|select|reverse|sort|int|float)\b|\b(?:self|config|request|lipsum|cycler|joiner|namespace|range|url_for|get_flashed_messages|session|g|settings|app|_self|env|module|runtime|this|class|constructor|object|system|exec|popen|import|getclass|forname|getruntime|t\s*\(|new\s+\w|product|application|facescontext|freemarker|java\.|javax\.|org\.|com\.|os|subprocess|process|global)\b|\w\s*\(.*\)|\[\s*['"]\w+['"]\s*\]|\.\w+\s*\("#,
    )
});
static DIRECTIVES: LazyLock<Signatures> = LazyLock::new(|| {
    Signatures::new(&[
        (
            r"<#(?:assign|import|include|list|if|macro|function|setting)\b",
            0.92,
            "ssti.freemarker_directive",
        ),
        (
            r"freemarker\.template\.utility\.(?:execute|objectconstructor|jythonruntime)|\?new\s*\(",
            0.97,
            "ssti.freemarker_execute",
        ),
        (
            r"#set\s*\(\s*\$|#foreach\s*\(|\$class\.inspect|\$\w+\.getclass\(\)",
            0.9,
            "ssti.velocity",
        ),
        (
            r"\{php\}|\{/php\}|\{\$smarty\.|\{system\(|\{literal\}",
            0.9,
            "ssti.smarty",
        ),
        (
            r"\{%\s*(?:import|include|extends|set|for|if|debug|load|macro|block|raw|autoescape|with|filter|call)\b",
            0.88,
            "ssti.jinja_tag",
        ),
        (r"\{\{\s*=", 0.88, "ssti.dot_js"),
        (r"\$\{\s*\{", 0.85, "ssti.nested_expression"),
    ])
});

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    if let Some(h) = DIRECTIVES.best(s) {
        best = Hit::max(best, h);
    }
    for caps in DELIMITED.captures_iter(s).take(16) {
        let Some(whole) = caps.get(0) else { continue };
        let inner = ["a", "b", "c", "d", "e", "f", "g"]
            .iter()
            .find_map(|n| caps.name(n))
            .map_or("", |m| m.as_str());
        if inner.len() > 300 {
            continue;
        }
        // `${jndi:...}` belongs to log4shell; `${x}` shell variables to RCE.
        if inner.trim_start().starts_with("jndi") || inner.contains(":-") {
            continue;
        }
        let closed = !whole.as_str().ends_with(inner)
            || whole.as_str().ends_with('}')
            || whole.as_str().ends_with('>')
            || whole.as_str().ends_with(']');
        let c = if EXPRESSION.is_match(inner) {
            if closed { 0.92 } else { 0.85 }
        } else if inner.trim().is_empty() {
            0.3
        } else {
            0.5
        };
        best = Hit::max(best, Hit::new(c, whole.start(), whole.end(), "ssti.expression"));
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::Ssti, s)
    }

    #[test]
    fn template_expressions_are_ssti() {
        for s in [
            "{{7*7}}",
            "{{config.items()}}",
            "{{''.__class__.__mro__[1].__subclasses__()}}",
            "${7*7}",
            "<%= 7 * 7 %>",
            "#{7*7}",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
            "{% import os %}",
            "<#assign ex=\"freemarker.template.utility.Execute\"?new()>",
            "{{request|attr('application')}}",
            "${self.module.cache.util.os.system(\"id\")}",
        ] {
            assert!(c(s) >= 0.8, "{s}: {}", c(s));
        }
    }

    #[test]
    fn placeholders_and_braces_in_data_pass() {
        for s in [
            "Hello {{ name }}",
            "{\"a\": {\"b\": 1}}",
            "price is $5 {tax included}",
            "query { product(id: $id) { name } }",
        ] {
            assert!(c(s) < 0.8, "{s}: {}", c(s));
        }
    }
}
