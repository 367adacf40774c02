//! Cross-site scripting, by the context the value would land in. In HTML: a tag that runs script by itself
//! (`<script>`, `<iframe>`, `<svg>`...), any tag with an event handler attribute, or a URL attribute with a
//! `javascript:`/`vbscript:`/`data:` scheme, or CSS that runs code. In an attribute: a quote that closes it
//! followed by an event handler. In a script: a quote or `</script>` that breaks out followed by code. Tags
//! and attributes of rich text (`<p>`, `<a href="https://...">`, `<img src alt>`) are not script and pass.

use std::sync::LazyLock;

use regex::Regex;

use super::{Ctx, Hit, regex};

pub const FRAGMENTS: &[&str] = &[
    "onabort",
    "onactivate",
    "onafter",
    "onanimation",
    "onbefore",
    "onbegin",
    "onblur",
    "onbounce",
    "oncell",
    "onchange",
    "onclick",
    "oncontext",
    "oncontrol",
    "oncopy",
    "oncut",
    "ondata",
    "ondblclick",
    "ondeactivate",
    "ondrag",
    "ondrop",
    "onend",
    "onerror",
    "onfilter",
    "onfinish",
    "onfocus",
    "onhash",
    "onhelp",
    "oninput",
    "onkey",
    "onlayout",
    "onload",
    "onlose",
    "onmedia",
    "onmessage",
    "onmouse",
    "onmove",
    "onoffline",
    "ononline",
    "onoutof",
    "onpage",
    "onpaste",
    "onpause",
    "onpop",
    "onprogress",
    "onproperty",
    "onready",
    "onredo",
    "onrepeat",
    "onreset",
    "onresize",
    "onresume",
    "onreverse",
    "onrow",
    "onscroll",
    "onseek",
    "onselect",
    "onstart",
    "onstop",
    "onstorage",
    "onsubmit",
    "onsync",
    "ontime",
    "ontoggle",
    "ontrack",
    "ontransition",
    "onundo",
    "onunload",
    "onurl",
    "onwheel",
    "onpointer",
    "ontouch",
    "onplay",
    "onshow",
    "onsearch",
    "<",
    "javascript",
    "vbscript",
    "livescript",
    "data:",
    "expression",
    "-moz-binding",
    "behavior",
    " on",
    "\"on",
    "'on",
    "/on",
    "alert",
    "prompt",
    "confirm",
    "eval",
    "document.",
    "window.",
    "fromcharcode",
    "settimeout",
    "constructor",
    "\tscript",
    "script:",
    "location",
    "innerhtml",
    "srcdoc",
    "import(",
];

/// Tags that run script or load active content whatever their attributes.
const ACTIVE_TAGS: &[&str] = &[
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "xml",
    "import",
    "portal",
    "isindex",
    "bgsound",
    "layer",
    "ilayer",
    "xss",
    "vmlframe",
    "handler",
    "listener",
    "template",
    "noscript",
    "animate",
    "set",
    "discard",
    "foreignobject",
];

/// Tags that are dangerous with certain attributes (checked by attribute) or by being injected at all.
const RISKY_TAGS: &[&str] = &[
    "meta", "base", "link", "style", "form", "input", "button", "textarea", "keygen", "video", "audio", "source",
    "details", "marquee", "body", "html", "image", "img", "a", "table", "td", "div", "object", "select", "option",
    "dialog", "menu", "picture", "track",
];

/// DOM event names (without `on`), for values that name a handler.
const EVENTS: &[&str] = &[
    "abort",
    "activate",
    "afterprint",
    "afterupdate",
    "animationend",
    "animationstart",
    "beforeactivate",
    "beforecopy",
    "beforecut",
    "beforedeactivate",
    "beforeeditfocus",
    "beforepaste",
    "beforeprint",
    "beforeunload",
    "beforeupdate",
    "begin",
    "blur",
    "bounce",
    "cellchange",
    "change",
    "click",
    "contextmenu",
    "controlselect",
    "copy",
    "cut",
    "dataavailable",
    "datasetchanged",
    "datasetcomplete",
    "dblclick",
    "deactivate",
    "drag",
    "dragdrop",
    "dragend",
    "dragenter",
    "dragleave",
    "dragover",
    "dragstart",
    "drop",
    "end",
    "error",
    "errorupdate",
    "filterchange",
    "finish",
    "focus",
    "focusin",
    "focusout",
    "hashchange",
    "help",
    "input",
    "keydown",
    "keypress",
    "keyup",
    "layoutcomplete",
    "load",
    "losecapture",
    "mediacomplete",
    "mediaerror",
    "message",
    "mousedown",
    "mouseenter",
    "mouseleave",
    "mousemove",
    "mouseout",
    "mouseover",
    "mouseup",
    "mousewheel",
    "move",
    "moveend",
    "movestart",
    "offline",
    "online",
    "outofsync",
    "pagehide",
    "pageshow",
    "paste",
    "pause",
    "popstate",
    "progress",
    "propertychange",
    "readystatechange",
    "redo",
    "repeat",
    "reset",
    "resize",
    "resizeend",
    "resizestart",
    "resume",
    "reverse",
    "rowdelete",
    "rowexit",
    "rowinserted",
    "rowsenter",
    "scroll",
    "seek",
    "select",
    "selectionchange",
    "selectstart",
    "start",
    "stop",
    "storage",
    "submit",
    "syncrestored",
    "timeerror",
    "toggle",
    "trackchange",
    "transitionend",
    "undo",
    "unload",
    "urlflip",
    "wheel",
    "pointerdown",
    "pointerup",
    "pointerover",
    "pointerenter",
    "pointermove",
    "touchstart",
    "touchend",
    "touchmove",
    "animationiteration",
    "auxclick",
    "canplay",
    "durationchange",
    "ended",
    "invalid",
    "loadeddata",
    "play",
    "playing",
    "ratechange",
    "search",
    "seeked",
    "seeking",
    "show",
    "stalled",
    "suspend",
    "timeupdate",
    "volumechange",
    "waiting",
];

/// Attributes whose value is a URL the browser may navigate to or load.
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "xlink:href",
    "background",
    "dynsrc",
    "lowsrc",
    "poster",
    "code",
    "codebase",
    "to",
    "from",
    "values",
    "by",
    "content",
    "ping",
    "cite",
    "longdesc",
    "usemap",
    "profile",
    "srcset",
    "manifest",
    "icon",
    "archive",
    "classid",
    "folder",
    "xmlns",
    "datasrc",
];

static SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:java|vb|live|ecma|j|mocha)script:|data:(?:text/html|image/svg|application/(?:x-|xhtml|javascript)|text/javascript|[^,]*;base64)",
    )
});
static JS_SINK: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:\b(?:alert|prompt|confirm|eval|settimeout|setinterval|execscript|fetch|import|atob|fromcharcode|write|writeln|open|print)\s*(?:\(|`)|document\s*(?:\.\s*|\[\s*['\x22`])(?:cookie|domain|write|location|body)|\b(?:alert|prompt|confirm|eval)\s*\.\s*(?:call|apply|bind)\s*\(|window\s*\.\s*(?:location|name|open)|\.innerhtml\s*=|\blocation\s*(?:\.href\s*)?=|constructor\s*\(|\bself\s*\[|\btop\s*\[|\bthis\s*\[|\[\s*['\x22]constructor|\bfunction\s*\(\s*\)\s*\{)",
    )
});
static CSS_CODE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"expression\s*\(|-moz-binding|behavior\s*:|@import|url\s*\(\s*['\x22]?\s*(?:java|vb)script:")
});
static ATTR_BREAKOUT: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"["'`][\s/]*(?:[a-z-]+\s*=\s*["'][^"']*["'][\s/]*)*on[a-z]{3,}\s*="#));
static BARE_HANDLER: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:^|[\s/;])on[a-z]{3,}\s*=\s*[^\s]"));
static FALLBACK: LazyLock<regex::RegexSet> = LazyLock::new(|| {
    regex::RegexSet::new([
        ATTR_BREAKOUT.as_str(),
        BARE_HANDLER.as_str(),
        CSS_CODE.as_str(),
        JS_SINK.as_str(),
    ])
    .unwrap_or_else(|e| panic!("built-in XSS patterns are invalid: {e}"))
});
static SCRIPT_BREAKOUT: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:['"`]\s*[-+*/%;,|&^)\]}]|\\['"]\s*[;)]|</script)"#));

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    // Markup.
    let b = s.as_bytes();
    let mut i = 0;
    let mut tags = 0;
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        let at = i + p;
        i = at + 1;
        if tags > 64 {
            break;
        }
        let rest = &s[at + 1..];
        if rest.starts_with("!--") {
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name: &str = {
            let r = &rest[name_start..];
            let len = r
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b':' | b'_'))
                .count();
            &r[..len]
        };
        if name.is_empty() || !name.as_bytes()[0].is_ascii_alphabetic() {
            continue;
        }
        tags += 1;
        let after_name = at + 1 + name_start + name.len();
        let tag_end = s[after_name..].find('>').map_or(s.len(), |e| after_name + e + 1);
        let attrs = &s[after_name..tag_end];
        let bare_name = name.rsplit(':').next().unwrap_or(name);
        if closing {
            if bare_name == "script" || bare_name == "title" || bare_name == "textarea" || bare_name == "style" {
                best = Hit::max(best, Hit::new(0.9, at, tag_end, "xss.closing_tag_breakout"));
            }
            continue;
        }
        // Namespaced SVG/MathML elements (`<svg:mask>`) and whole-document tags are never rich text.
        let namespace = name.split_once(':').map(|(ns, _)| ns);
        if matches!(namespace, Some("svg" | "math" | "xhtml" | "html")) || matches!(bare_name, "html" | "body" | "head")
        {
            best = Hit::max(best, Hit::new(0.85, at, tag_end, "xss.document_or_namespaced_tag"));
        }
        if ACTIVE_TAGS.contains(&bare_name) {
            best = Hit::max(best, Hit::new(0.95, at, tag_end, "xss.active_tag"));
            continue;
        }
        if let Some(h) = attributes(attrs, after_name, bare_name) {
            best = Hit::max(best, Hit::new(h.confidence, at, h.end, h.rule));
        }
        if RISKY_TAGS.contains(&bare_name) && matches!(bare_name, "meta" | "base" | "link" | "style") {
            let c = if attrs.contains("http-equiv") || attrs.contains("href") || bare_name == "style" {
                0.85
            } else {
                0.6
            };
            best = Hit::max(best, Hit::new(c, at, tag_end, "xss.risky_tag"));
        }
    }
    if best.is_some_and(|h| h.confidence >= 0.9) {
        return best;
    }
    // A value that is only a DOM event handler name: probing which handler attributes get through.
    let trimmed = s.trim();
    if trimmed.len() > 4 && trimmed.starts_with("on") && EVENTS.contains(&&trimmed[2..]) {
        best = Hit::max(best, Hit::new(0.8, 0, s.len(), "xss.event_handler_name"));
    }
    // Outside markup: a URL with a script scheme, an attribute breakout, a script breakout.
    if let Some(m) = squeezed_scheme(s) {
        best = Hit::max(best, m);
    }
    // One pass tells which of the patterns below can match at all.
    let any = FALLBACK.matches(s);
    if !any.matched_any() {
        return best;
    }
    if let Some(m) = ATTR_BREAKOUT.find(s) {
        best = Hit::max(best, Hit::new(0.9, m.start(), m.end(), "xss.attribute_breakout"));
    } else if let Some(m) = BARE_HANDLER.find(s) {
        let sink = JS_SINK.is_match(&s[m.start()..]);
        let c = if sink { 0.88 } else { 0.6 };
        best = Hit::max(best, Hit::new(c, m.start(), m.end(), "xss.event_handler"));
    }
    if let Some(m) = CSS_CODE.find(s) {
        best = Hit::max(best, Hit::new(0.85, m.start(), m.end(), "xss.css_code"));
    }
    if let Some(m) = JS_SINK.find(s) {
        let breakout = SCRIPT_BREAKOUT.find(s).is_some_and(|b| b.start() <= m.start());
        // A call with its parenthesis right after the name (`alert(1)`, `confirm.call(`), or property access
        // by string (`document["cookie"]`), is code; "confirm (yes)" in a sentence is not.
        let name = m.as_str().trim_end_matches(['(', '`']);
        let strong_sink = matches!(
            name,
            "alert"
                | "prompt"
                | "confirm"
                | "eval"
                | "settimeout"
                | "setinterval"
                | "execscript"
                | "fromcharcode"
                | "atob"
        ) || !name.bytes().all(|c| c.is_ascii_alphabetic());
        let tight = strong_sink && !m.as_str().contains(char::is_whitespace);
        let c = if breakout {
            0.9
        } else if tight {
            0.82
        } else {
            0.65
        };
        best = Hit::max(best, Hit::new(c, m.start(), m.end(), "xss.script_code"));
    }
    best
}

/// A script scheme even when split by whitespace or control characters (`java\tscript:`), which browsers
/// strip from URLs.
fn squeezed_scheme(s: &str) -> Option<Hit> {
    if !s.contains(':') {
        return None;
    }
    let has_gap = s.bytes().any(|c| c.is_ascii_whitespace() || c.is_ascii_control());
    let found = if has_gap {
        let squeezed: String = s
            .chars()
            .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
            .collect();
        SCHEME
            .find(&squeezed)
            .map(|m| (m.start(), m.as_str().starts_with("data:")))
    } else {
        SCHEME.find(s).map(|m| (m.start(), m.as_str().starts_with("data:")))
    };
    let (start, data) = found?;
    // `javascript: basics of the language` is a title; `javascript:alert(1)` is code right after the colon.
    if !has_gap
        && let Some(colon) = s[start..].find(':')
        && s[start + colon + 1..].starts_with(' ')
        && s[start + colon + 1..]
            .trim_start()
            .starts_with(|c: char| c.is_alphabetic())
        && !s[start + colon + 1..].contains(['(', '`', '='])
    {
        return Some(Hit::new(0.5, start, s.len().min(start + 40), "xss.script_url"));
    }
    let at_start = start == 0 || s.trim_start().len() + start >= s.len();
    let c = match (data, at_start) {
        (false, _) => 0.9,
        (true, true) => 0.85,
        (true, false) => 0.7,
    };
    Some(Hit::new(c, 0, s.len().min(start + 40), "xss.script_url"))
}

/// Scores a tag's attributes; `offset` is where `attrs` starts in the value.
fn attributes(attrs: &str, offset: usize, tag: &str) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    let b = attrs.as_bytes();
    let mut i = 0;
    let mut count = 0;
    while i < b.len() && count < 32 {
        // Separators between attributes: whitespace, `/`, quotes left over from sloppy markup.
        while i < b.len() && (b[i].is_ascii_whitespace() || matches!(b[i], b'/' | b'"' | b'\'' | b'>')) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'/' | b'>') {
            i += 1;
        }
        let name = &attrs[start..i];
        if name.is_empty() {
            i += 1;
            continue;
        }
        count += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && matches!(b[i], b'"' | b'\'' | b'`') {
                let q = b[i];
                let vs = i + 1;
                let ve = memchr::memchr(q, &b[vs..]).map_or(b.len(), |p| vs + p);
                value = &attrs[vs..ve];
                i = (ve + 1).min(b.len());
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = &attrs[vs..i];
            }
        }
        let end = offset + i;
        if name.len() > 2 && name.starts_with("on") && name[2..].bytes().all(|c| c.is_ascii_alphabetic()) {
            return Some(Hit::new(0.95, 0, end, "xss.event_handler_attribute"));
        }
        let bare = name.rsplit(':').next().unwrap_or(name);
        if (URL_ATTRIBUTES.contains(&name) || URL_ATTRIBUTES.contains(&bare))
            && !value.is_empty()
            && let Some(h) = squeezed_scheme(value)
            && h.confidence >= 0.7
        {
            return Some(Hit::new(0.95, 0, end, "xss.script_url_attribute"));
        }
        if name == "style" && CSS_CODE.is_match(value) {
            best = Hit::max(best, Hit::new(0.92, 0, end, "xss.css_code_attribute"));
        }
        if name == "srcdoc" || (name == "formaction") || (name == "http-equiv" && value.contains("refresh")) {
            best = Hit::max(best, Hit::new(0.9, 0, end, "xss.risky_attribute"));
        }
        if tag == "a" && name == "href" && value.starts_with("data:") {
            best = Hit::max(best, Hit::new(0.9, 0, end, "xss.data_url_link"));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::Xss, s)
    }

    #[test]
    fn script_tags_and_event_handlers_are_xss() {
        for s in [
            "<script>alert(1)</script>",
            "<ScRiPt src=//evil.example/x.js>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "<body onload=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"java&#x09;script:alert(1)\">x</a>",
            "<div style=\"width: expression(alert(1))\">",
            "<iframe src=\"data:text/html;base64,PHNjcmlwdD4=\">",
        ] {
            assert!(c(s) >= 0.9, "{s}: {}", c(s));
        }
    }

    #[test]
    fn entity_encoded_and_full_width_payloads_are_xss() {
        assert!(c("&lt;script&gt;alert(1)&lt;/script&gt;") >= 0.9);
        assert!(c("%EF%BC%9Cscript%EF%BC%9Ealert(1)") >= 0.9);
        assert!(c("%253Cscript%253E") >= 0.9);
    }

    #[test]
    fn attribute_and_script_breakouts_are_xss() {
        assert!(c("\" onmouseover=\"alert(1)") >= 0.85);
        assert!(c("';alert(document.cookie);//") >= 0.85);
        assert!(c("javascript:alert(1)") >= 0.85);
        assert!(c("</script><script>alert(1)</script>") >= 0.9);
    }

    #[test]
    fn rich_text_html_and_prose_pass() {
        for s in [
            "<p>Great product, <strong>highly</strong> recommended!</p>",
            "<a href=\"https://example.com/docs\" title=\"Docs\">read the docs</a>",
            "<img src=\"https://cdn.example.com/a.png\" alt=\"photo\">",
            "<!-- draft --><ul><li>one</li><li>two</li></ul>",
            "if a<b and c>d then done",
            "I <3 this place",
            "Turn on the lights=yes",
            "Let's confirm the order",
            "<span style=\"color: red\">note</span>",
        ] {
            assert!(c(s) < 0.8, "{s}: {}", c(s));
        }
    }
}
