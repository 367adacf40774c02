//! SQL injection: the value is lexed as SQL (`lexer`) in each place an application could paste it — after a
//! number or name, inside a single-quoted string, inside a double-quoted string — and the token sequence is
//! scored by shape, the way libinjection does it (but with rules written here, not its fingerprint list). A
//! value is an injection when, read in one of those places, it *breaks out* (closes the string, ends the
//! expression) and continues as SQL: a tautology, a `UNION SELECT`, a stacked statement, a comment that cuts
//! the rest of the query, a time-delay or error-extraction function. Prose with quotes (`O'Brien`) and SQL
//! words ("select a plan", "drop me a line") lexes into shapes that do neither.
//!
//! Comment-stuffed keywords (`SEL/**/ECT`) are also read with comments removed.

pub mod lexer;

use lexer::Tok;

use super::{Ctx, Hit};

/// Tokens looked at per context: injections show their shape early; long prose is not lexed to its end.
const MAX_TOKENS: usize = 48;

/// Literal fragments that can start or mark an injection (the prefilter's list for this family).
pub const FRAGMENTS: &[&str] = &[
    "'",
    "\"",
    "`",
    "--",
    "#",
    "/*",
    ";",
    "(",
    "=",
    "<",
    ">",
    "||",
    "&&",
    " or ",
    " and ",
    "xor",
    "union",
    "select",
    "insert",
    "update",
    "delete",
    "drop",
    "exec",
    "sleep",
    "benchmark",
    "waitfor",
    "having",
    "order by",
    "group by",
    "@@",
    "0x",
    "like",
    "between",
    "null",
    "true",
    "false",
    "limit",
    "where",
    "from",
];

thread_local! {
    static TOKENS: std::cell::RefCell<(Vec<(Tok, usize, usize)>, String)> =
        const { std::cell::RefCell::new((Vec::new(), String::new())) };
}

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    TOKENS.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (toks, stripped) = &mut *guard;
        let mut best: Option<Hit> = None;
        for start in [None, Some(b'\''), Some(b'"')] {
            if let Some(q) = start
                && !s.as_bytes().contains(&q)
            {
                continue;
            }
            lexer::lex(s, start, MAX_TOKENS, toks);
            if let Some(h) = score(s, toks, start.is_some()) {
                best = Hit::max(best, h);
            }
        }
        if s.contains("/*") {
            stripped.clear();
            let mut rest = s;
            while let Some(p) = rest.find("/*") {
                stripped.push_str(&rest[..p]);
                rest = rest[p..].find("*/").map_or("", |e| &rest[p + e + 2..]);
            }
            stripped.push_str(rest);
            lexer::lex(stripped, None, MAX_TOKENS, toks);
            if let Some(mut h) = score(stripped, toks, false) {
                h.start = 0;
                h.end = s.len().min(80);
                best = Hit::max(best, h);
            }
        }
        best
    })
}

fn is_operand(t: Tok) -> bool {
    matches!(
        t,
        Tok::Num | Tok::Str { .. } | Tok::Word | Tok::Literal | Tok::Var | Tok::Func | Tok::Call | Tok::LParen
    )
}

fn is_value(t: Tok) -> bool {
    matches!(t, Tok::Num | Tok::Str { .. } | Tok::Literal | Tok::Var | Tok::Func)
}

fn is_cmp(t: Tok) -> bool {
    matches!(t, Tok::Eq | Tok::Op)
}

/// Functions whose mere call is an attack signature (time delays, file access, error-based extraction).
const ATTACK_FUNCTIONS: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "pg_sleep_for",
    "randomblob",
    "dbms_pipe.receive_message",
    "load_file",
    "extractvalue",
    "updatexml",
    "xp_cmdshell",
    "xp_dirtree",
    "utl_inaddr.get_host_address",
    "utl_http.request",
    "name_const",
    "sqlite_version",
    "dbms_lock.sleep",
    "ctxsys.drithsx.sn",
    "dbms_xmlgen.getxml",
    "pg_read_file",
    "lo_import",
    "master..xp_cmdshell",
    "load_extension",
    "gtid_subset",
    "json_keys",
    "procedure_analyse",
    "openrowset",
    "sys.fn_sqlvarbasetostr",
    "group_concat",
    "concat_ws",
    "make_set",
];

/// Scores one lexing; `breakout`: the first token is the string the input closed.
fn score(s: &str, all: &[(Tok, usize, usize)], breakout: bool) -> Option<Hit> {
    // Work on the tokens without comments, remembering where comments were.
    let mut v: [Tok; MAX_TOKENS] = [Tok::Comment; MAX_TOKENS];
    let mut span: [(usize, usize); MAX_TOKENS] = [(0, 0); MAX_TOKENS];
    let mut comment_after = [false; MAX_TOKENS];
    let mut n = 0;
    let mut comments = 0;
    let mut leading_comment = false;
    for &(t, a, e) in all {
        if t == Tok::Comment {
            comments += 1;
            if n == 0 {
                leading_comment = true;
            } else {
                comment_after[n - 1] = true;
            }
            continue;
        }
        if n < MAX_TOKENS {
            v[n] = t;
            span[n] = (a, e);
            n += 1;
        }
    }
    let v = &v[..n];
    if n == 0 {
        return None;
    }
    let text = |i: usize| &s[span[i].0..span[i].1];
    let hit = |c: f32, from: usize, to: usize, rule: &'static str| Hit {
        confidence: c,
        start: span[from].0,
        end: span[to.min(n - 1)].1,
        rule,
    };
    let at = |i: usize| v.get(i).copied();
    let ends_after = |i: usize| i + 1 >= n || comment_after[i];
    let mut best: Option<Hit> = None;
    let mut keep = |h: Hit| best = Hit::max(best.take(), h);

    for i in 0..n {
        match v[i] {
            // UNION [ALL|DISTINCT] [(] SELECT
            Tok::Union => {
                let mut j = i + 1;
                while matches!(at(j), Some(Tok::Clause | Tok::LParen)) && j < i + 4 {
                    j += 1;
                }
                if at(j) == Some(Tok::Select) {
                    keep(hit(0.97, i, j, "sqli.union_select"));
                } else if at(j).is_some_and(is_value) && i > 0 {
                    keep(hit(0.6, i, j, "sqli.union"));
                }
            }
            // Stacked statement: `; DROP TABLE`, `; SELECT`, `; WAITFOR`, `; EXEC`.
            Tok::Semi => match at(i + 1) {
                Some(Tok::Select) if at(i + 2).is_some_and(|t| is_operand(t) || t == Tok::Op) => {
                    keep(hit(0.95, i, i + 2, "sqli.stacked_select"))
                }
                Some(Tok::Stmt) => {
                    let stmt_ok = match at(i + 2) {
                        None => text(i + 1) == "shutdown" || comment_after[i + 1],
                        Some(t) => matches!(t, Tok::Clause | Tok::Word | Tok::Var | Tok::Func | Tok::Call),
                    };
                    if stmt_ok {
                        keep(hit(0.93, i, i + 2, "sqli.stacked_statement"));
                    }
                }
                Some(Tok::Waitfor | Tok::Func) => keep(hit(0.93, i, i + 1, "sqli.stacked_call")),
                None if i > 0 && (breakout || leading_comment || comment_after[i]) && i + 1 >= n => {
                    if breakout && i == 1 {
                        keep(hit(0.8, 0, i, "sqli.breakout_terminate"));
                    }
                }
                _ => {}
            },
            Tok::Waitfor => {
                if at(i + 1) == Some(Tok::Word) && text(i + 1) == "delay" {
                    keep(hit(0.95, i, i + 2, "sqli.waitfor_delay"));
                }
            }
            Tok::Func => {
                let name = text(i);
                if ATTACK_FUNCTIONS.contains(&name) {
                    keep(hit(0.88, i, i + 3, "sqli.attack_function"));
                }
                // char(...) / concat(0x..) string building.
                if matches!(name, "char" | "chr" | "concat" | "unhex") && at(i + 2) == Some(Tok::Num) {
                    let hex = text(i + 2).starts_with("0x");
                    let chained = v[i..].iter().filter(|t| matches!(t, Tok::Func)).count() >= 2;
                    if hex || chained {
                        keep(hit(0.85, i, i + 3, "sqli.string_building"));
                    }
                }
            }
            Tok::Var => {
                if text(i).starts_with("@@") {
                    let c = if v
                        .iter()
                        .any(|t| matches!(t, Tok::Select | Tok::Union | Tok::Logic | Tok::Eq))
                    {
                        0.9
                    } else {
                        0.6
                    };
                    keep(hit(c, i, i, "sqli.system_variable"));
                }
            }
            Tok::Select => {
                // A SELECT with structure: select <expr list> [from <name>] with SQL punctuation.
                let from = (i + 2..n).find(|&k| v[k] == Tok::Clause && text(k) == "from");
                // SQL punctuation in the column list, or a clause right after the table name.
                let punct = from.is_some_and(|f| {
                    v[i + 1..f]
                        .iter()
                        .any(|t| matches!(t, Tok::Comma | Tok::Op | Tok::Eq | Tok::LParen | Tok::Dot))
                        || matches!(
                            at(f + 2),
                            Some(Tok::Clause | Tok::Semi | Tok::Tail | Tok::Union | Tok::Eq)
                        )
                        || comment_after.get(f + 1).copied().unwrap_or(false)
                });
                match at(i + 1) {
                    Some(Tok::Func | Tok::Var) => keep(hit(0.88, i, i + 1, "sqli.select_call")),
                    Some(Tok::Num | Tok::Literal)
                        if at(i + 2).is_none_or(|t| {
                            matches!(t, Tok::Comma | Tok::Clause | Tok::Eq | Tok::Op | Tok::RParen)
                        }) =>
                    {
                        keep(hit(0.85, i, i + 2, "sqli.select_values"))
                    }
                    Some(Tok::Op) if text(i + 1) == "*" => keep(hit(0.9, i, i + 2, "sqli.select_star")),
                    Some(Tok::Word | Tok::Str { .. } | Tok::Clause) => {
                        if let Some(f) = from
                            && f > i
                            && text(f) == "from"
                        {
                            let c = if punct { 0.88 } else { 0.55 };
                            keep(hit(c, i, f + 1, "sqli.select_from"));
                        }
                    }
                    _ => {}
                }
                if i > 0 && matches!(v[i - 1], Tok::LParen) && at(i + 1).is_some_and(is_operand) {
                    keep(hit(0.88, i - 1, i + 1, "sqli.subquery"));
                }
            }
            Tok::Stmt => {
                let word = text(i);
                let next = at(i + 1);
                let next_text = if i + 1 < n { text(i + 1) } else { "" };
                let c =
                    match (word, next, next_text) {
                        ("insert" | "replace", Some(Tok::Clause), "into") if at(i + 2) == Some(Tok::Word) => 0.85,
                        ("delete", Some(Tok::Clause), "from")
                            if at(i + 2) == Some(Tok::Word)
                                && (i + 3 >= n || matches!(at(i + 3), Some(Tok::Clause | Tok::Semi))) =>
                        {
                            0.85
                        }
                        ("update", Some(Tok::Word), _)
                            if at(i + 2) == Some(Tok::Clause) && i + 2 < n && text(i + 2) == "set" =>
                        {
                            0.88
                        }
                        ("drop" | "create" | "alter" | "truncate", Some(Tok::Clause | Tok::Word), t)
                            if matches!(
                                t,
                                "table"
                                    | "database"
                                    | "schema"
                                    | "view"
                                    | "procedure"
                                    | "function"
                                    | "user"
                                    | "index"
                                    | "trigger"
                            ) && at(i + 2).is_some_and(|t| matches!(t, Tok::Word | Tok::Clause)) =>
                        {
                            if ends_after(i + 2) { 0.85 } else { 0.6 }
                        }
                        ("exec" | "execute", Some(Tok::Func | Tok::Word | Tok::Var | Tok::Call), t)
                            if t.starts_with("xp_")
                                || t.starts_with("sp_")
                                || t.starts_with("master")
                                || t.starts_with('@') =>
                        {
                            0.9
                        }
                        ("declare", Some(Tok::Var), _) => 0.88,
                        ("shutdown", None, _) if comments > 0 || breakout => 0.85,
                        _ => 0.0,
                    };
                if c > 0.0 {
                    keep(hit(c, i, i + 2, "sqli.statement"));
                }
            }
            _ => {}
        }
    }

    // Breakout from a string: what follows the closing quote.
    if breakout {
        let closed = matches!(v[0], Tok::Str { closed: true });
        if closed {
            if let Some(h) = after_value(v, 1, &ends_after, &text, true) {
                keep(hit(h.0, 0, h.1, h.2));
            }
            if n == 1 && comment_after[0] {
                keep(hit(0.85, 0, 0, "sqli.breakout_comment"));
            }
        }
    } else {
        // After the application's own value (a number or a name), or at the very start.
        let first = v[0];
        if matches!(first, Tok::Num | Tok::Word | Tok::Literal | Tok::Var) {
            if let Some(h) = after_value(v, 1, &ends_after, &text, false) {
                keep(hit(h.0, 0, h.1, h.2));
            }
        }
        if matches!(first, Tok::Logic | Tok::RParen) {
            if let Some(h) = after_value(v, 0, &ends_after, &text, false) {
                keep(hit(h.0 - 0.05, 0, h.1, h.2));
            }
        }
        // `-1 union`, `-1 or`: an operator before the number.
        if matches!(first, Tok::Op | Tok::Eq) && at(1) == Some(Tok::Num) {
            if let Some(h) = after_value(v, 2, &ends_after, &text, false) {
                keep(hit(h.0, 0, h.1, h.2));
            }
        }
    }
    best
}

/// The shape after a value that ends where the application's own value ended, starting at token `i`.
/// Returns confidence, last token index and rule.
fn after_value<'s>(
    v: &[Tok],
    i: usize,
    ends_after: &dyn Fn(usize) -> bool,
    text: &dyn Fn(usize) -> &'s str,
    from_string: bool,
) -> Option<(f32, usize, &'static str)> {
    let n = v.len();
    let at = |k: usize| v.get(k).copied();
    let mut i = i;
    // Closing parentheses of the application's expression: `1) or (1=1`.
    let mut parens = 0;
    while at(i) == Some(Tok::RParen) {
        i += 1;
        parens += 1;
    }
    let bonus = if parens > 0 { 0.02 } else { 0.0 };
    let next = at(i)?;
    match next {
        Tok::Logic => {
            let mut j = i + 1;
            // `not`, `!` and opening parentheses before the operand.
            while matches!(at(j), Some(Tok::LParen)) || (at(j) == Some(Tok::Logic) && text(j) == "not") {
                j += 1;
            }
            let a = at(j)?;
            if a == Tok::Select {
                return Some((0.95, j, "sqli.logic_subquery"));
            }
            if a == Tok::Func {
                return Some((0.9 + bonus, j, "sqli.logic_function"));
            }
            if !is_operand(a) {
                return None;
            }
            match at(j + 1) {
                Some(t) if is_cmp(t) => {
                    let b = at(j + 2)?;
                    if is_operand(b) || b == Tok::Select {
                        // A comparison after a logic operator: a tautology or a boolean probe.
                        let prose = a == Tok::Word && b == Tok::Word && !from_string && text(j + 1) != "=";
                        return Some((if prose { 0.6 } else { 0.95 } + bonus, j + 2, "sqli.tautology"));
                    }
                    None
                }
                None | Some(Tok::RParen) if ends_after(j) || matches!(a, Tok::Str { closed: false }) => {
                    // `' or 1--`, `' or 'x` (the application's quote closes it), `1 or true#`.
                    if is_value(a) || from_string {
                        Some((0.88 + bonus, j, "sqli.logic_truncated"))
                    } else {
                        Some((0.55, j, "sqli.logic_word"))
                    }
                }
                Some(Tok::Logic) if is_value(a) && from_string => Some((0.85, j, "sqli.logic_chain")),
                Some(Tok::Tail | Tok::Semi | Tok::Union) if is_value(a) => Some((0.9, j + 1, "sqli.logic_then_clause")),
                _ if is_value(a) && !matches!(a, Tok::Str { .. }) && from_string => Some((0.75, j, "sqli.logic_value")),
                _ => None,
            }
        }
        Tok::Eq | Tok::Op if from_string => {
            let a = at(i + 1)?;
            let op = text(i);
            if matches!(a, Tok::Func | Tok::Select) {
                return Some((0.9, i + 1, "sqli.breakout_expression"));
            }
            if matches!(a, Tok::Str { .. } | Tok::Num | Tok::Literal | Tok::Var) {
                // `x'='x`, `'||'`, `'-0-'`, `' like '%`.
                let strong = matches!(a, Tok::Str { closed: false })
                    || ends_after(i + 1)
                    || at(i + 2).is_some_and(|t| is_cmp(t) || t == Tok::Logic);
                let wordy_op = op.chars().all(|c| c.is_ascii_alphabetic());
                if strong {
                    return Some((if wordy_op { 0.8 } else { 0.88 }, i + 1, "sqli.breakout_comparison"));
                }
            }
            None
        }
        Tok::Tail => {
            // `' order by 3--`, `1 having 1=1`, `' limit 1`
            let a = at(i + 1)?;
            if matches!(a, Tok::Num | Tok::Func | Tok::Var) || (a == Tok::Word && ends_after(i + 1)) {
                let c = if ends_after(i + 1) || at(i + 2).is_some_and(|t| is_cmp(t) || t == Tok::Comma) || from_string {
                    0.9
                } else {
                    0.6
                };
                return Some((c + bonus, i + 1, "sqli.clause_injection"));
            }
            None
        }
        Tok::Semi => {
            if ends_after(i) && from_string {
                return Some((0.82, i, "sqli.breakout_terminate"));
            }
            None
        }
        Tok::Clause if from_string || parens > 0 => {
            let t = text(i);
            if matches!(t, "into" | "from" | "where") && at(i + 1).is_some_and(is_operand) {
                return Some((0.85, i + 1, "sqli.breakout_clause"));
            }
            None
        }
        Tok::Eq | Tok::Op if parens > 0 || i > 0 => {
            // `1 = 1 --`, `1)=1`, `1 and`: a comparison after the number, ended by a comment.
            let a = at(i + 1)?;
            if is_value(a)
                && ends_after(i + 1)
                && n <= i + 3
                && (parens > 0 || v[0] == Tok::Num)
                && ends_comment(ends_after, i + 1, n)
            {
                return Some((0.8, i + 1, "sqli.comparison_comment"));
            }
            None
        }
        _ => None,
    }
}

fn ends_comment(ends_after: &dyn Fn(usize) -> bool, i: usize, n: usize) -> bool {
    ends_after(i) && i + 1 <= n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::targets::Location;

    fn conf(s: &str) -> f32 {
        let lower = s.to_ascii_lowercase();
        detect(
            &lower,
            &Ctx {
                location: Location::QueryValue,
            },
        )
        .map_or(0.0, |h| h.confidence)
    }

    #[test]
    fn classic_tautologies_are_injections() {
        for s in [
            "' or 1=1--",
            "admin' or '1'='1",
            "1 or 1=1",
            "1' and 'a'='a",
            "') or ('x'='x",
            "\" or \"\"=\"",
            "' or true--",
        ] {
            assert!(conf(s) >= 0.8, "{s}: {}", conf(s));
        }
    }

    #[test]
    fn union_select_is_an_injection_in_any_case_and_with_comments_inside() {
        for s in [
            "-1 UNION SELECT 1,2,3",
            "1 UnIoN/**/SeLeCt password from users",
            "1'/*!50000union*/ select 1--",
            "1 union all select null",
        ] {
            assert!(conf(s) >= 0.9, "{s}: {}", conf(s));
        }
    }

    #[test]
    fn comments_inside_keywords_are_folded_away() {
        assert!(conf("1 UNI/**/ON SEL/**/ECT 1,2") >= 0.9);
    }

    #[test]
    fn stacked_queries_and_time_delays_are_injections() {
        for s in [
            "1; DROP TABLE users--",
            "'; exec master..xp_cmdshell 'dir'--",
            "1 and sleep(5)",
            "1'; waitfor delay '0:0:5'--",
            "1 AND (SELECT 1 FROM (SELECT SLEEP(5))a)",
            "' AND extractvalue(1,concat(0x7e,version()))--",
        ] {
            assert!(conf(s) >= 0.85, "{s}: {}", conf(s));
        }
    }

    #[test]
    fn comment_truncation_after_a_breakout_is_an_injection() {
        assert!(conf("admin'--") >= 0.8);
        assert!(conf("admin'#") >= 0.8);
        assert!(conf("1' order by 3--") >= 0.8);
    }

    #[test]
    fn names_and_prose_with_quotes_and_sql_words_pass() {
        for s in [
            "O'Brien",
            "Dwayne 'The Rock' Johnson",
            "select a plan that fits you",
            "please drop me a line",
            "I can't select from these options, can you?",
            "rock 'n' roll",
            "delete from my account the old card",
            "Tom & Jerry or Mickey",
            "It's 5 o'clock and I'm done",
            "order 66",
            "The union of workers; select members",
            "1-800-FLOWERS",
            "email@example.com",
        ] {
            assert!(conf(s) < 0.8, "{s}: {}", conf(s));
        }
    }
}
