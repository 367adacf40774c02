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
    "case",
    // A value that *is* the appended condition (`AND 0`, `or 1`) has no space before the operator.
    "and ",
    "or ",
];

/// A token with its byte span in the lexed text.
type Spanned = (Tok, usize, usize);

thread_local! {
    static TOKENS: std::cell::RefCell<(Vec<Spanned>, String)> =
        const { std::cell::RefCell::new((Vec::new(), String::new())) };
}

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    TOKENS.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (toks, stripped) = &mut *guard;
        let mut best: Option<Hit> = None;
        for start in [None, Some(b'\''), Some(b'"')] {
            // A quote context is worth lexing only if some quote could close a string: one with a letter on both
            // sides is an apostrophe (`it's`, `sister's`).
            if let Some(q) = start
                && !s
                    .as_bytes()
                    .iter()
                    .enumerate()
                    .any(|(i, &c)| c == q && !apostrophe(s.as_bytes(), i))
            {
                continue;
            }
            lexer::lex(s, start, MAX_TOKENS, toks);
            if let Some(h) = score(s, toks, start) {
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
            if let Some(mut h) = score(stripped, toks, None) {
                h.start = 0;
                h.end = s.len().min(80);
                best = Hit::max(best, h);
            }
        }
        best
    })
}

fn apostrophe(b: &[u8], i: usize) -> bool {
    if !(i > 0 && b[i - 1].is_ascii_alphabetic() && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)) {
        return false;
    }
    // `cont'union`, `aa'or`, `name'declare`: a keyword right after the quote makes it a delimiter after all.
    let word: &[u8] = {
        let rest = &b[i + 1..];
        let len = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        &rest[..len]
    };
    !matches!(
        word,
        b"or"
            | b"and"
            | b"xor"
            | b"union"
            | b"select"
            | b"having"
            | b"order"
            | b"group"
            | b"where"
            | b"like"
            | b"rlike"
            | b"regexp"
            | b"sounds"
            | b"is"
            | b"in"
            | b"between"
            | b"div"
            | b"limit"
            | b"into"
            | b"from"
            | b"declare"
            | b"exec"
            | b"execute"
            | b"waitfor"
            | b"insert"
            | b"update"
            | b"delete"
            | b"drop"
            | b"shutdown"
    )
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

/// Whether an operator token compares (as opposed to doing arithmetic).
fn is_comparison(t: Tok, text: &str) -> bool {
    t == Tok::Eq
        || (t == Tok::Op
            && (text.bytes().any(|c| matches!(c, b'<' | b'>' | b'=' | b'!'))
                || matches!(
                    text,
                    "like" | "rlike" | "regexp" | "is" | "in" | "between" | "glob" | "match" | "ilike" | "similar"
                )
                || text.starts_with("sounds")))
}

/// Whether an operator is spelled as words (`like`, `div`, `sounds like`) rather than symbols.
fn is_word_operator(text: &str) -> bool {
    text.starts_with("sounds") || text.bytes().all(|c| c.is_ascii_alphabetic())
}

/// The token list of one lexing, without comments, with where the comments were.
struct Shape<'s> {
    s: &'s str,
    v: [Tok; MAX_TOKENS],
    span: [(usize, usize); MAX_TOKENS],
    comment_after: [bool; MAX_TOKENS],
    n: usize,
    comments: usize,
    /// In a quote context: the input ends so that the application's closing quote still makes valid SQL
    /// (inside a string opened with the same quote, or commented out).
    valid_end: bool,
}

impl<'s> Shape<'s> {
    fn new(s: &'s str, all: &[(Tok, usize, usize)], quote: Option<u8>) -> Self {
        let mut sh = Shape {
            s,
            v: [Tok::Comment; MAX_TOKENS],
            span: [(0, 0); MAX_TOKENS],
            comment_after: [false; MAX_TOKENS],
            n: 0,
            comments: 0,
            valid_end: true,
        };
        let mut leading = false;
        for &(t, a, e) in all {
            if t == Tok::Comment {
                sh.comments += 1;
                if sh.n == 0 {
                    leading = true;
                } else {
                    sh.comment_after[sh.n - 1] = true;
                }
                continue;
            }
            if sh.n < MAX_TOKENS {
                sh.v[sh.n] = t;
                sh.span[sh.n] = (a, e);
                sh.n += 1;
            }
        }
        let _ = leading;
        if let Some(q) = quote
            && sh.n > 0
        {
            let last = sh.n - 1;
            let unclosed_same =
                sh.v[last] == (Tok::Str { closed: false }) && s.as_bytes().get(sh.span[last].0) == Some(&q);
            // The first token of a quote context starts inside the string: it is "unclosed" only if the whole input is.
            let first_is_whole = last == 0 && sh.v[0] == (Tok::Str { closed: false });
            sh.valid_end = (unclosed_same && !first_is_whole) || sh.comment_after[last];
        }
        sh
    }

    fn at(&self, i: usize) -> Option<Tok> {
        (i < self.n).then(|| self.v[i])
    }

    fn text(&self, i: usize) -> &'s str {
        if i < self.n {
            &self.s[self.span[i].0..self.span[i].1]
        } else {
            ""
        }
    }

    fn cmp(&self, i: usize) -> bool {
        self.at(i).is_some_and(|t| is_comparison(t, self.text(i)))
    }

    fn ends_after(&self, i: usize) -> bool {
        i + 1 >= self.n || self.comment_after[i]
    }

    /// Skips unary prefixes and opening parentheses from `i`.
    fn operand_from(&self, mut i: usize) -> usize {
        while i < self.n
            && (self.v[i] == Tok::LParen
                || (matches!(self.v[i], Tok::Word | Tok::Op | Tok::Logic | Tok::Clause | Tok::Call)
                    && lexer::PREFIX.contains(&self.text(i)))
                || (self.v[i] == Tok::Op && self.text(i).bytes().all(|c| matches!(c, b'!' | b'-' | b'+' | b'~'))))
        {
            i += 1;
        }
        i
    }

    fn hit(&self, c: f32, from: usize, to: usize, rule: &'static str) -> Hit {
        let last = self.n.saturating_sub(1);
        Hit {
            confidence: c,
            start: self.span[from.min(last)].0,
            end: self.span[to.min(last)].1,
            rule,
        }
    }
}

/// Functions that exist in SQL dialects but not in spreadsheet formulas or everyday text.
const SQL_SPECIFIC: &[&str] = &[
    "ascii",
    "substring",
    "substr",
    "mid",
    "database",
    "schema",
    "version",
    "user",
    "current_user",
    "session_user",
    "system_user",
    "charset",
    "concat",
    "concat_ws",
    "group_concat",
    "char",
    "chr",
    "hex",
    "unhex",
    "sleep",
    "benchmark",
    "if",
    "ifnull",
    "isnull",
    "cast",
    "convert",
    "ord",
    "length",
    "char_length",
    "db_name",
    "user_name",
    "schema_name",
    "table_name",
    "column_name",
    "load_file",
    "md5",
    "sha1",
    "bin",
    "conv",
    "elt",
];

/// SQL functions called without parentheses.
const NILADIC: &[&str] = &[
    "current_user",
    "session_user",
    "system_user",
    "user",
    "current_database",
    "current_schema",
];

/// Scores one lexing; `quote`: the context the input was read in (`None`: after a number or name).
fn score(s: &str, all: &[(Tok, usize, usize)], quote: Option<u8>) -> Option<Hit> {
    let sh = Shape::new(s, all, quote);
    let n = sh.n;
    if n == 0 {
        return None;
    }
    let v = &sh.v[..n];
    let at = |i: usize| sh.at(i);
    let text = |i: usize| sh.text(i);
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
                let commented = sh.comment_after[i]
                    || (i > 0 && sh.comment_after[i - 1])
                    || (at(i + 1) == Some(Tok::Clause) && sh.comment_after[i + 1]);
                if at(j) == Some(Tok::Select) {
                    keep(sh.hit(0.97, i, j, "sqli.union_select"));
                } else if i > 0 && commented {
                    keep(sh.hit(0.85, i, i, "sqli.union_obfuscated"));
                } else if i > 0 && at(j).is_some_and(is_value) {
                    keep(sh.hit(0.6, i, j, "sqli.union"));
                } else if i > 0 && j >= n && matches!(v[i - 1], Tok::Num | Tok::Str { .. } | Tok::RParen) {
                    // `-1 union`: a value then UNION and nothing else, probing for the clause.
                    keep(sh.hit(0.82, i - 1, i, "sqli.union_probe"));
                }
            }
            // Stacked statement: `; DROP TABLE`, `; SELECT`, `; WAITFOR`, `; EXEC`.
            Tok::Semi => match at(i + 1) {
                Some(Tok::Select)
                    if at(i + 2).is_some_and(|t| {
                        matches!(t, Tok::Func | Tok::Var | Tok::Num | Tok::Literal | Tok::Str { .. })
                    }) || text(i + 2) == "*"
                        || (i + 3..n).any(|k| v[k] == Tok::Clause && text(k) == "from") =>
                {
                    keep(sh.hit(0.95, i, i + 2, "sqli.stacked_select"))
                }
                Some(Tok::Stmt) if statement(&sh, i + 1) >= 0.5 => {
                    keep(sh.hit(0.93, i, i + 2, "sqli.stacked_statement"))
                }
                // `10;DROP members --`: a statement keyword after a semicolon, the rest commented out.
                Some(Tok::Stmt)
                    if i > 0
                        && sh.comment_after[n - 1]
                        && at(i + 2).is_some_and(|t| matches!(t, Tok::Word | Tok::Clause)) =>
                {
                    keep(sh.hit(0.88, i, i + 2, "sqli.stacked_statement"))
                }
                Some(Tok::Waitfor) => keep(sh.hit(0.93, i, i + 1, "sqli.stacked_call")),
                Some(Tok::Func) if ATTACK_FUNCTIONS.contains(&text(i + 1)) => {
                    keep(sh.hit(0.93, i, i + 1, "sqli.stacked_call"))
                }
                None if i > 0 && sh.comment_after[i] => keep(sh.hit(0.85, 0, i, "sqli.terminate_and_comment")),
                Some(Tok::Clause) if text(i + 1) == "set" && at(i + 2) == Some(Tok::Var) => {
                    keep(sh.hit(0.9, i, i + 2, "sqli.stacked_set"))
                }
                // `; BEGIN SHUTDOWN END`, `; begin exec ... end`: a stacked block.
                Some(Tok::Word)
                    if text(i + 1) == "begin"
                        && (matches!(at(i + 2), Some(Tok::Select | Tok::Waitfor))
                            || (at(i + 2) == Some(Tok::Stmt) && statement(&sh, i + 2) >= 0.5)
                            || (text(i + 2) == "shutdown" && text(i + 3) == "end" && sh.ends_after(i + 3)))
                        && (i + 3..n).any(|k| v[k] == Tok::Clause && text(k) == "end") =>
                {
                    keep(sh.hit(0.88, i, i + 2, "sqli.stacked_block"))
                }
                // `;do (1=1)`: MySQL's DO evaluates an expression; in prose `do (` is not followed by a comparison.
                Some(Tok::Word | Tok::Call)
                    if text(i + 1) == "do"
                        && at(i + 2) == Some(Tok::LParen)
                        && (i + 3..n.min(i + 8)).any(|k| sh.cmp(k) || v[k] == Tok::Func) =>
                {
                    keep(sh.hit(0.85, i, i + 2, "sqli.stacked_do"))
                }
                // `; IF EXISTS (SELECT`, `; if not exists(` then nothing: MSSQL's conditional statement, which
                // takes a subquery.
                Some(Tok::Word | Tok::Func)
                    if text(i + 1) == "if" && {
                        let paren = if text(i + 2) == "not" { i + 4 } else { i + 3 };
                        text(paren - 1) == "exists"
                            && at(paren) == Some(Tok::LParen)
                            && (at(paren + 1) == Some(Tok::Select) || sh.ends_after(paren))
                    } =>
                {
                    keep(sh.hit(0.88, i, i + 3, "sqli.stacked_if_exists"))
                }
                _ => {}
            },
            Tok::Waitfor if at(i + 1) == Some(Tok::Word) && text(i + 1) == "delay" => {
                keep(sh.hit(0.95, i, i + 2, "sqli.waitfor_delay"));
            }
            Tok::Func => {
                let name = text(i);
                // Nested or combined SQL functions (`ascii(substring(`, `database() like schema()`): formulas
                // people write use spreadsheet functions, not these.
                if let Some(k) = (i + 1..n.min(i + 12)).find(|&k| v[k] == Tok::Func)
                    && (SQL_SPECIFIC.contains(&name) || SQL_SPECIFIC.contains(&text(k)))
                    && at(i + 1) == Some(Tok::LParen)
                    && (k == i + 2 || SQL_SPECIFIC.contains(&name) && SQL_SPECIFIC.contains(&text(k)))
                {
                    keep(sh.hit(0.85, i, k, "sqli.function_chain"));
                }
                if matches!(name, "if" | "iif" | "ifnull" | "nullif") && (i + 2..n.min(i + 6)).any(|k| sh.cmp(k)) {
                    keep(sh.hit(0.85, i, i + 4, "sqli.conditional_function"));
                }
                if ATTACK_FUNCTIONS.contains(&name) {
                    keep(sh.hit(0.88, i, i + 3, "sqli.attack_function"));
                }
                // `EXEC(@sql)`, `execute('...')`: dynamic SQL. `exec` is lexed as a function when called, so
                // `statement` never sees it.
                if matches!(name, "exec" | "execute")
                    && at(i + 1) == Some(Tok::LParen)
                    && (at(i + 2) == Some(Tok::Var)
                        || (matches!(at(i + 2), Some(Tok::Str { .. }))
                            && text(i + 2)
                                .get(1..)
                                .and_then(|t| t.split_whitespace().next())
                                .is_some_and(|w| matches!(w, "select" | "insert" | "update" | "delete" | "drop"))))
                {
                    keep(sh.hit(0.88, i, i + 2, "sqli.dynamic_exec"));
                }
                // `mid(@@hostname, 1, 1)`: a server variable read inside a SQL function.
                if at(i + 1) == Some(Tok::LParen)
                    && at(i + 2) == Some(Tok::Var)
                    && text(i + 2).starts_with("@@")
                    && text(i + 2).len() > 2
                {
                    keep(sh.hit(0.88, i, i + 2, "sqli.system_variable_call"));
                }
                if matches!(name, "char" | "chr" | "concat" | "unhex") && at(i + 2) == Some(Tok::Num) {
                    let hex = text(i + 2).starts_with("0x");
                    let chained = v[i..].iter().filter(|t| matches!(t, Tok::Func)).count() >= 2;
                    if hex || chained {
                        keep(sh.hit(0.85, i, i + 3, "sqli.string_building"));
                    }
                }
            }
            Tok::Var
                if matches!(
                    text(i).trim_start_matches('@'),
                    "version" | "datadir" | "hostname" | "basedir" | "servername" | "tmpdir" | "version_compile_os"
                ) && (sh.comment_after[i] || (n == 1 && text(i).starts_with("@@"))) =>
            {
                // `@@version--`, `@version /*`: a server variable and the rest of the query cut.
                keep(sh.hit(0.85, i, i, "sqli.server_variable"));
            }
            Tok::Var if text(i).starts_with("@@") => {
                let c = if v
                    .iter()
                    .any(|t| matches!(t, Tok::Select | Tok::Union | Tok::Logic | Tok::Eq))
                {
                    0.9
                } else {
                    0.6
                };
                keep(sh.hit(c, i, i, "sqli.system_variable"));
            }
            Tok::Select => {
                let from = (i + 2..n).find(|&k| v[k] == Tok::Clause && text(k) == "from");
                let punct = from.is_some_and(|f| {
                    v[i + 1..f]
                        .iter()
                        .any(|t| matches!(t, Tok::Comma | Tok::Op | Tok::Eq | Tok::LParen | Tok::Dot))
                        || matches!(
                            at(f + 2),
                            Some(Tok::Clause | Tok::Semi | Tok::Tail | Tok::Union | Tok::Eq)
                        )
                        || sh.comment_after.get(f + 1).copied().unwrap_or(false)
                });
                match at(i + 1) {
                    Some(Tok::Func | Tok::Var) => keep(sh.hit(0.88, i, i + 1, "sqli.select_call")),
                    Some(Tok::Word | Tok::Literal)
                        if NILADIC.contains(&text(i + 1)) && (sh.ends_after(i + 1) || at(i + 2) == Some(Tok::Semi)) =>
                    {
                        keep(sh.hit(0.88, i, i + 1, "sqli.select_niladic"))
                    }
                    Some(Tok::Num | Tok::Literal | Tok::Str { .. })
                        if at(i + 2).is_none_or(|t| {
                            matches!(t, Tok::Comma | Tok::Clause | Tok::Eq | Tok::Op | Tok::RParen)
                        }) && (i > 0 || at(i + 2).is_some()) =>
                    {
                        keep(sh.hit(0.85, i, i + 2, "sqli.select_values"))
                    }
                    Some(Tok::Op) if text(i + 1) == "*" => keep(sh.hit(0.9, i, i + 2, "sqli.select_star")),
                    Some(_) if from.is_some() => {
                        let c = if punct { 0.88 } else { 0.55 };
                        keep(sh.hit(c, i, from.unwrap_or(i) + 1, "sqli.select_from"));
                    }
                    _ => {}
                }
                if i > 0 && v[i - 1] == Tok::LParen && at(i + 1).is_some_and(|t| is_operand(t) || t == Tok::Op) {
                    keep(sh.hit(0.88, i - 1, i + 1, "sqli.subquery"));
                }
            }
            Tok::Stmt => {
                let c = statement(&sh, i);
                if c > 0.0 {
                    keep(sh.hit(c, i, i + 2, "sqli.statement"));
                }
            }
            // `select 1.e.table_name`: MySQL reads `1.e` as a number and the rest as a qualified name, a
            // parser quirk used to slip names past filters; no text writes a number, `e`, then `.name`.
            Tok::Num
                if text(i).ends_with('e')
                    && text(i).contains('.')
                    && at(i + 1) == Some(Tok::Dot)
                    && at(i + 2) == Some(Tok::Word)
                    && v[..i].contains(&Tok::Select) =>
            {
                keep(sh.hit(0.85, i, i + 2, "sqli.float_qualified_name"));
            }
            // `copy t from '/etc/passwd';`: PostgreSQL's COPY reads and writes server files, named by absolute path.
            Tok::Word
                if text(i) == "copy"
                    && at(i + 1) == Some(Tok::Word)
                    && matches!(text(i + 2), "from" | "to")
                    && at(i + 3) == Some(Tok::Str { closed: true })
                    && text(i + 3).get(1..).is_some_and(|p| p.starts_with('/'))
                    && (sh.ends_after(i + 3) || at(i + 4) == Some(Tok::Semi)) =>
            {
                keep(sh.hit(0.85, i, i + 3, "sqli.copy_file"));
            }
            Tok::Clause if text(i) == "into" && matches!(text(i + 1), "outfile" | "dumpfile") => {
                keep(sh.hit(0.93, i, i + 1, "sqli.into_outfile"));
            }
            // `WHERE 1=1`, `where 'a'='a'`: a constant condition.
            Tok::Clause
                if text(i) == "where"
                    && at(i + 1).is_some_and(is_value)
                    && sh.cmp(i + 2)
                    && at(i + 3).is_some_and(is_value) =>
            {
                keep(sh.hit(0.85, i, i + 3, "sqli.constant_condition"));
            }
            // `CASE [x] WHEN x THEN y [ELSE z] END`. English has "in case ... when ... then" too, so what stands
            // between the keywords must be an expression: no bare words, or words compared (`when id=1`).
            Tok::Clause if text(i) == "case" => {
                let when = (i + 1..n.min(i + 6)).find(|&k| v[k] == Tok::Clause && text(k) == "when");
                let then = when.and_then(|w| (w + 1..n.min(w + 8)).find(|&k| v[k] == Tok::Clause && text(k) == "then"));
                let expression = |from: usize, to: usize| {
                    (from..to).any(|k| sh.cmp(k))
                        || (from..to).all(|k| v[k] != Tok::Word || lexer::PREFIX.contains(&text(k)))
                };
                if let (Some(w), Some(t)) = (when, then)
                    && expression(i + 1, w)
                    && expression(w + 1, t)
                {
                    keep(sh.hit(0.85, i, t, "sqli.case_expression"));
                }
            }
            _ => {}
        }
    }

    if quote.is_some() {
        if matches!(v[0], Tok::Str { closed: true }) {
            if let Some((c, to, rule)) = after_value(&sh, 1, true, false) {
                keep(sh.hit(c, 0, to, rule));
            }
            // `0' '1' like 0`: MySQL joins adjacent string literals into one value, so the shape starts after
            // the second. Only for a one-token breakout (`0'`); prose puts quotations after words and spaces.
            let prefix = &s[..sh.span[0].1.saturating_sub(1)];
            if at(1) == Some(Tok::Str { closed: true })
                && !prefix.is_empty()
                && !prefix.contains(char::is_whitespace)
                && prefix.len() <= 24
                && let Some((c, to, rule)) = after_value(&sh, 2, true, false)
            {
                keep(sh.hit(c, 0, to, rule));
            }
            // `admin'--`, `admin'#`: the rest of the query commented out. Not when the quote opens a quotation or
            // the "comment" is itself quoted (`'#'`).
            let quote_char = quote.unwrap_or(b'\'');
            let after = &s[sh.span[0].1..];
            let opening = opens_quotation(s, sh.span[0].1);
            if n == 1 && sh.comment_after[0] && !opening && !after.as_bytes().contains(&quote_char) {
                keep(sh.hit(0.85, 0, 0, "sqli.breakout_comment"));
            }
            // `',NULL) ... /*`, `'),NULL) --`: the string, then the rest of the application's argument or VALUES
            // list closed, the remainder cut by a comment. The comma keeps emoticons (`:') --`) out.
            let opens = v[1..].iter().filter(|t| **t == Tok::LParen).count();
            let closes = v[1..].iter().filter(|t| **t == Tok::RParen).count();
            if !opening
                && closes > opens
                && sh.comment_after[n - 1]
                && v[1..]
                    .iter()
                    .position(|t| *t == Tok::Comma)
                    .is_some_and(|c| at(c + 2).is_some_and(is_value) && v[c + 3..].contains(&Tok::RParen))
            {
                keep(sh.hit(0.85, 0, n - 1, "sqli.breakout_close_list"));
            }
        }
    } else {
        let first = v[0];
        if matches!(first, Tok::Num | Tok::Word | Tok::Literal | Tok::Var)
            && let Some((c, to, rule)) = after_value(&sh, 1, false, first == Tok::Word)
        {
            keep(sh.hit(c, 0, to, rule));
        }
        // A single-quoted literal is a value like a number: `'s' || binary(1)#` pasted after `=`.
        if first == (Tok::Str { closed: true })
            && s.as_bytes().get(sh.span[0].0) == Some(&b'\'')
            && let Some((c, to, rule)) = after_value(&sh, 1, false, false)
        {
            keep(sh.hit(c, 0, to, rule));
        }
        if matches!(first, Tok::Logic | Tok::RParen | Tok::Tail | Tok::Clause)
            && let Some((c, to, rule)) = after_value(&sh, 0, false, false)
        {
            keep(sh.hit(c - 0.03, 0, to, rule));
        }
        // The application's value may itself be an expression (`8-9`, `((1))*x`, `456 + ascii(...)-10`,
        // `1+('12')`): skip it to the first logic operator or clause and judge what follows. A string in it is
        // judged like a word, as text could have put it there.
        if let Some(k) = (1..n.min(24)).find(|&k| matches!(v[k], Tok::Logic | Tok::Tail | Tok::Union | Tok::Semi))
            && k > 1
            && v[..k].iter().all(|t| {
                matches!(
                    t,
                    Tok::Num
                        | Tok::Word
                        | Tok::Op
                        | Tok::LParen
                        | Tok::RParen
                        | Tok::Func
                        | Tok::Call
                        | Tok::Comma
                        | Tok::Literal
                        | Tok::Dot
                        | Tok::Var
                        | Tok::Str { closed: true }
                )
            })
            && v[..k].iter().any(|t| matches!(t, Tok::Op | Tok::LParen | Tok::RParen))
            && let Some((c, to, rule)) = after_value(
                &sh,
                k,
                false,
                v[..k].iter().any(|t| matches!(t, Tok::Word | Tok::Str { .. })),
            )
        {
            keep(sh.hit(c, 0, to, rule));
        }
        if matches!(first, Tok::Op | Tok::Eq)
            && at(1) == Some(Tok::Num)
            && let Some((c, to, rule)) = after_value(&sh, 2, false, false)
        {
            keep(sh.hit(c, 0, to, rule));
        }
        // More closing than opening parentheses, then a comment: the input closes the application's
        // expression and cuts the rest of the query.
        // A parenthesised SQL expression cut by a comment: `( COS ( 'a' OR @a) ) --`.
        if first == Tok::LParen
            && v[n - 1] == Tok::RParen
            && sh.comment_after[n - 1]
            && v.iter().any(|t| {
                matches!(
                    t,
                    Tok::Func | Tok::Call | Tok::Var | Tok::Str { .. } | Tok::Logic | Tok::Select
                )
            })
        {
            keep(sh.hit(0.85, 0, n - 1, "sqli.parenthesised_expression_comment"));
        }
        // A comparison of constants, then more logic: `1=1 AND ...`, `'a'='a' or`.
        if n >= 4
            && matches!(first, Tok::Num | Tok::Str { .. })
            && sh.cmp(1)
            && at(2).is_some_and(is_value)
            && at(3) == Some(Tok::Logic)
        {
            keep(sh.hit(0.85, 0, 3, "sqli.leading_tautology"));
        }
        // Arithmetic on numbers cut by a comment: `1*1--`, `1 * 1 /*`.
        if n == 3 && first == Tok::Num && v[1] == Tok::Op && v[2] == Tok::Num && sh.comment_after[2] {
            keep(sh.hit(0.82, 0, 2, "sqli.arithmetic_comment"));
        }
        // `like '%'` appended to the application's column: a pattern of wildcards only matches every row.
        if first == Tok::Op
            && text(0) == "like"
            && at(1) == Some(Tok::Str { closed: true })
            && sh.ends_after(1)
            && text(1).len() > 2
            && text(1)[1..text(1).len() - 1].bytes().all(|c| c == b'%')
        {
            keep(sh.hit(0.85, 0, 1, "sqli.like_everything"));
        }
        // A number, maybe in balanced parentheses, and nothing but a comment: `1--`, `1 #`, `((1)) --`.
        let parens = v.iter().take_while(|t| **t == Tok::LParen).count();
        if n == 2 * parens + 1
            && v[parens] == Tok::Num
            && v[parens + 1..].iter().all(|t| *t == Tok::RParen)
            && sh.comment_after[n - 1]
            && s.len() - sh.span[n - 1].1 <= 4
        {
            keep(sh.hit(0.82, 0, n - 1, "sqli.number_comment"));
        }
        let opens = v.iter().filter(|t| **t == Tok::LParen).count();
        let closes = v.iter().filter(|t| **t == Tok::RParen).count();
        if closes > opens && sh.comment_after[n - 1] {
            keep(sh.hit(0.85, 0, n - 1, "sqli.unbalanced_close_comment"));
        }
    }
    best
}

/// The confidence that a statement keyword at `i` starts a real statement.
fn statement(sh: &Shape<'_>, i: usize) -> f32 {
    let word = sh.text(i);
    let next = sh.at(i + 1);
    let next_text = sh.text(i + 1);
    match (word, next, next_text) {
        ("insert" | "replace", Some(Tok::Clause), "into") if sh.at(i + 2) == Some(Tok::Word) => 0.85,
        ("delete", Some(Tok::Clause), "from")
            if sh.at(i + 2) == Some(Tok::Word)
                && (i + 3 >= sh.n || matches!(sh.at(i + 3), Some(Tok::Clause | Tok::Semi))) =>
        {
            0.85
        }
        ("update", Some(Tok::Word), _) if sh.at(i + 2) == Some(Tok::Clause) && sh.text(i + 2) == "set" => 0.88,
        // `create user x identified by 'pw'`: the account clause no sentence has.
        ("create" | "alter", Some(Tok::Word), "user")
            if matches!(sh.at(i + 2), Some(Tok::Word | Tok::Str { .. })) && sh.text(i + 3) == "identified" =>
        {
            0.88
        }
        ("drop" | "create" | "alter" | "truncate", Some(Tok::Clause | Tok::Word), t)
            if matches!(
                t,
                "table" | "database" | "schema" | "view" | "procedure" | "function" | "user" | "index" | "trigger"
            ) && sh.at(i + 2).is_some_and(|t| matches!(t, Tok::Word | Tok::Clause)) =>
        {
            if sh.ends_after(i + 2) {
                0.85
            } else {
                0.6
            }
        }
        ("exec" | "execute", Some(Tok::Func | Tok::Word | Tok::Var | Tok::Call), t)
            if t.starts_with("xp_") || t.starts_with("sp_") || t.starts_with("master") || t.starts_with('@') =>
        {
            0.9
        }
        ("declare", Some(Tok::Var), _) => 0.88,
        ("exec" | "execute", Some(Tok::LParen), _) if matches!(sh.at(i + 2), Some(Tok::Var | Tok::Str { .. })) => 0.88,
        ("delete", Some(Tok::Word), "quick" | "low_priority" | "ignore") => 0.88,
        ("load", Some(Tok::Word), "data" | "xml") => 0.9,
        ("create", Some(Tok::Word | Tok::Clause), "table") if sh.at(i + 3) == Some(Tok::LParen) => 0.85,
        ("shutdown", None, _) if sh.comments > 0 => 0.85,
        _ => 0.0,
    }
}

/// Whether the quote that ends at byte `end` opens a quotation in prose (`is '#' allowed`): it has a space before
/// it and words before that. A quote with only whitespace before it starts the input and breaks out at once.
fn opens_quotation(s: &str, end: usize) -> bool {
    let before = &s[..end.saturating_sub(1)];
    before.ends_with(char::is_whitespace) && !before.trim_start().is_empty()
}

/// The shape after a value that ends where the application's own value ended, starting at token `i`.
/// Returns confidence, last token index and rule.
fn after_value(sh: &Shape<'_>, i: usize, from_string: bool, word_first: bool) -> Option<(f32, usize, &'static str)> {
    let at = |k: usize| sh.at(k);
    let mut i = i;
    let mut parens = 0;
    while at(i) == Some(Tok::RParen) {
        i += 1;
        parens += 1;
    }
    let bonus = if parens > 0 { 0.02 } else { 0.0 };
    // In a quote context, a quote with a space before it opens a quotation in prose (`is '#' allowed`); a
    // string the input closes ends at a quote attached to what precedes it (`admin'`).
    let opening_quote = from_string && opens_quotation(sh.s, sh.span[0].1);
    // A breakout string that is one short token (`A'`, `admin'`, `1'`) reads as a value, not a quotation.
    let token_string = from_string && {
        let first = &sh.s[..sh.span[0].1.saturating_sub(1)];
        first.len() <= 24 && !first.contains(char::is_whitespace)
    };
    let next = at(i)?;
    match next {
        // `A' NOT LIKE 'B`, `' not regexp '`: a negated comparison operator.
        Tok::Logic if sh.text(i) == "not" && from_string && at(i + 1) == Some(Tok::Op) => {
            let k = sh.operand_from(i + 2);
            let ok = matches!(
                at(k),
                Some(Tok::Str { .. } | Tok::Num | Tok::Word | Tok::Var | Tok::Func | Tok::Select)
            );
            (ok && sh.valid_end && !opening_quote).then_some((0.85, k, "sqli.breakout_negated_comparison"))
        }
        Tok::Logic if sh.text(i) != "not" => {
            let j = sh.operand_from(i + 1);
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
            // The operand may be an arithmetic expression before the comparison: `column+(1)=1`.
            let mut k = j + 1;
            while k < sh.n
                && k < j + 16
                && !sh.cmp(k)
                && (matches!(
                    sh.v[k],
                    Tok::Op
                        | Tok::LParen
                        | Tok::RParen
                        | Tok::Num
                        | Tok::Word
                        | Tok::Str { .. }
                        | Tok::Dot
                        | Tok::Call
                        | Tok::Func
                        | Tok::Comma
                        | Tok::Literal
                ) || sh.v[k] == Tok::Logic)
            {
                k += 1;
            }
            if sh.cmp(k) {
                let b_at = sh.operand_from(k + 1);
                let b = at(b_at)?;
                if is_operand(b) || b == Tok::Select {
                    let wordy_cmp = is_word_operator(sh.text(k));
                    let prose = (a == Tok::Word && b == Tok::Word && k == j + 1 && sh.text(k) != "=")
                        || ((j + 1..k).any(|x| sh.v[x] == Tok::Word) && (word_first || wordy_cmp))
                        || (word_first && wordy_cmp);
                    let mut c = if prose { 0.6 } else { 0.95 };
                    if from_string && !sh.valid_end {
                        c -= 0.07;
                    }
                    if word_first && !prose && a == Tok::Word && b == Tok::Word {
                        c = 0.6;
                    }
                    // `aa'or col like col --`: a one-token breakout, a comparison of names and the rest of the
                    // query cut; prose does not comment itself out.
                    if prose && token_string && !opening_quote && sh.comment_after[b_at] && b_at + 1 >= sh.n {
                        c = 0.88;
                    }
                    return Some((c + bonus, b_at, "sqli.tautology"));
                }
                return None;
            }
            if !from_string && !word_first && k >= sh.n && sh.comment_after[sh.n - 1] && is_value(a) {
                // `1 OR ((1 OR 1)) --`: logic over values to the end, the rest of the query commented out.
                return Some((0.85, sh.n - 1, "sqli.logic_chain_comment"));
            }
            if from_string && sh.valid_end && k > j + 1 && k >= sh.n && (j + 1..k).any(|x| sh.v[x] == Tok::Op) {
                // `' or ''-'`: the operand is an expression the application's quote completes.
                return Some((0.85, sh.n - 1, "sqli.logic_expression"));
            }
            // `x' or col && '1`, `' or '' '`: more logic, or a string literal right after another (MySQL joins
            // adjacent literals), up to a string the application's quote completes.
            let joined = |x: usize| {
                sh.v[x] == Tok::Logic || (matches!(sh.v[x], Tok::Str { .. }) && matches!(sh.v[x - 1], Tok::Str { .. }))
            };
            if from_string
                && sh.valid_end
                && !opening_quote
                && k > j + 1
                && k >= sh.n
                && (j + 1..k).any(joined)
                && (j + 1..k).all(|x| sh.v[x] != Tok::Word || !matches!(sh.v[x - 1], Tok::Word))
            {
                return Some((0.85, sh.n - 1, "sqli.logic_expression"));
            }
            let end = sh.ends_after(j) || (j + 1 < sh.n && sh.v[j + 1] == Tok::RParen && sh.ends_after(j + 1));
            match at(j + 1) {
                _ if end => {
                    // `' or 1--`, `' or 'x` (the application's quote closes it), `1 or true#`.
                    let commented = sh.comment_after[(j + 1).min(sh.n - 1)] || sh.comment_after[j];
                    // `' or 'x` is a probe only when the new string is empty or starts like a value, not a word.
                    let wordish = a == (Tok::Str { closed: false })
                        && sh
                            .text(j)
                            .get(1..)
                            .is_some_and(|t| t.starts_with(|c: char| c.is_alphabetic()));
                    let c = if from_string {
                        if sh.valid_end && !opening_quote && (!wordish || token_string) {
                            0.88
                        } else {
                            0.6
                        }
                    } else if (commented && !word_first && is_value(a))
                        || (i == 0 && matches!(a, Tok::Num | Tok::Literal))
                    {
                        // `1 or 1--`, or a value that is only `AND 0` / `OR true` (appended to a condition).
                        0.88
                    } else {
                        0.55
                    };
                    Some((c + bonus, j, "sqli.logic_truncated"))
                }
                Some(Tok::Logic) if is_value(a) && from_string => Some((0.85, j, "sqli.logic_chain")),
                Some(Tok::Tail | Tok::Semi | Tok::Union) if is_value(a) => Some((0.9, j + 1, "sqli.logic_then_clause")),
                _ if is_value(a) && !matches!(a, Tok::Str { .. }) && from_string => Some((0.75, j, "sqli.logic_value")),
                _ => None,
            }
        }
        Tok::Eq | Tok::Op if from_string => {
            let k = sh.operand_from(i + 1);
            let a = at(k)?;
            if matches!(a, Tok::Func | Tok::Select) {
                return Some((0.9, k, "sqli.breakout_expression"));
            }
            if a == Tok::Call && (sh.valid_end || sh.comment_after[sh.n - 1]) {
                return Some((0.85, k, "sqli.breakout_expression"));
            }
            if matches!(a, Tok::Str { .. } | Tok::Num | Tok::Literal | Tok::Var | Tok::Word) {
                // `x'='x`, `'||'`, `'-0-'`, `' like '%`: valid only if the application's quote still closes it.
                let op = sh.text(i);
                let wordy = is_word_operator(op);
                // Arithmetic and bare `<`/`>` between a quote and a word or number is how people write inches,
                // search exclusions and markup (`48" x 36"`, `-shoes' -toys`, `"><img`); in SQL it needs a string
                // or a call on the other side.
                let arithmetic = sh.v[i] == Tok::Op && !wordy && !op.contains('=') && op != "<>";
                // The arithmetic goes on over operands and operators (`^0+0+1-1`, `/ + (1) / + (1)`) to `chain`.
                let chain = (k + 1..sh.n.min(k + 24))
                    .find(|&x| {
                        !matches!(
                            sh.v[x],
                            Tok::Num | Tok::Word | Tok::Literal | Tok::Var | Tok::LParen | Tok::RParen
                        ) && (sh.v[x] != Tok::Op || sh.cmp(x))
                    })
                    .unwrap_or(sh.n.min(k + 24));
                // `+` alone between words is a form's encoded space (`36"+x+48+"+frame`), not arithmetic.
                let spaces = (k + 1..chain).all(|x| sh.v[x] != Tok::Op || sh.text(x) == "+");
                let string_operand = matches!(a, Tok::Str { .. })
                    || (matches!(a, Tok::Num | Tok::Word | Tok::Var)
                        && matches!(at(k + 1), Some(Tok::Op))
                        && matches!(at(k + 2), Some(Tok::Str { .. })))
                    || (matches!(a, Tok::Num | Tok::Word | Tok::Var)
                        && !spaces
                        && chain < sh.n
                        && matches!(sh.v[chain], Tok::Str { .. })
                        && sh.v[chain - 1] == Tok::Op);
                if arithmetic && !string_operand {
                    // Unless the expression goes on into SQL logic or a comparison (`1' -1 or '1`, `'/1/1='`).
                    let goes_on = (k + 1..sh.n.min(k + 6)).any(|x| sh.v[x] == Tok::Logic || sh.cmp(x))
                        || (chain < sh.n && (sh.v[chain] == Tok::Logic || sh.cmp(chain)));
                    if goes_on && (sh.valid_end || sh.comment_after[sh.n - 1]) && !opening_quote {
                        return Some((0.85, sh.n - 1, "sqli.breakout_expression"));
                    }
                    return None;
                }
                if sh.valid_end {
                    let c = if wordy { 0.85 } else { 0.88 };
                    // An opening quote weakens only arithmetic and wordy operators; `a '=' b`-style comparisons
                    // of quoted things are SQL-shaped whatever the spacing.
                    let weak = opening_quote && (wordy || arithmetic);
                    return Some((if weak { 0.6 } else { c }, k, "sqli.breakout_comparison"));
                }
                if sh.cmp(k + 1) || at(k + 1) == Some(Tok::Logic) {
                    return Some((
                        if opening_quote { 0.6 } else { 0.82 },
                        k + 1,
                        "sqli.breakout_comparison",
                    ));
                }
            }
            None
        }
        Tok::Tail if sh.text(i) == "having" && (i + 1..sh.n.min(i + 8)).any(|x| sh.v[x] == Tok::Logic || sh.cmp(x)) => {
            Some((0.88, sh.n - 1, "sqli.having_condition"))
        }
        Tok::Tail => {
            let a = at(sh.operand_from(i + 1))?;
            if matches!(a, Tok::Num | Tok::Func | Tok::Var | Tok::Word) {
                let c = if sh.comment_after[i + 1] || (from_string && sh.valid_end) || a == Tok::Func {
                    0.9
                } else if sh.cmp(i + 2) || at(i + 2) == Some(Tok::Tail) || at(i + 2) == Some(Tok::Comma) {
                    0.88
                } else if a == Tok::Num && sh.ends_after(sh.operand_from(i + 1)) {
                    // `1 order by 3`, `) group by 2`: column counting.
                    0.85
                } else {
                    0.6
                };
                return Some((c + bonus, i + 1, "sqli.clause_injection"));
            }
            None
        }
        Tok::Semi if from_string => {
            let c = if sh.comment_after[i] { 0.85 } else { 0.6 };
            Some((c, i, "sqli.breakout_terminate"))
        }
        Tok::Clause if from_string || parens > 0 || i == 0 => {
            let t = sh.text(i);
            let j = sh.operand_from(i + 1);
            if t == "where" && at(j).is_some_and(is_operand) && sh.cmp(j + 1) {
                return Some((0.9, j + 1, "sqli.where_injection"));
            }
            if t == "from"
                && at(j) == Some(Tok::Word)
                && (sh.ends_after(j) || matches!(at(j + 1), Some(Tok::Clause | Tok::Semi | Tok::Tail | Tok::Union)))
            {
                return Some((0.85, j, "sqli.breakout_clause"));
            }
            None
        }
        Tok::Eq | Tok::Op if parens > 0 || i > 0 => {
            // `1 = 1 --`, `1)=1--`: a comparison after the number, cut by a comment.
            let a = at(i + 1)?;
            if is_value(a)
                && sh.comment_after[i + 1]
                && i + 2 >= sh.n
                && (parens > 0 || sh.v[0] == Tok::Num)
                && sh.cmp(i)
            {
                return Some((0.8, i + 1, "sqli.comparison_comment"));
            }
            None
        }
        _ => None,
    }
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

    fn flagged(attacks: &[&str], benign: &[&str]) {
        for s in attacks {
            assert!(conf(s) >= 0.8, "attack {s}: {}", conf(s));
        }
        for s in benign {
            assert!(conf(s) < 0.8, "benign {s}: {}", conf(s));
        }
    }

    #[test]
    fn sounds_like_is_one_comparison_after_a_breakout() {
        flagged(
            &["a' sounds like 'b", "'sounds like'", "aa' sounds like+'1"],
            &[
                "it sounds like a plan",
                "sounds like 'fun'",
                "is 'sounds like' a phrase",
            ],
        );
    }

    #[test]
    fn bare_niladic_functions_are_values_after_logic() {
        flagged(
            &[".1or-utc_date--", "1 or current_date--"],
            &["utc_date", "localtime", "sort by current_date"],
        );
    }

    #[test]
    fn a_keyword_glued_to_an_oracle_float_suffix_is_read() {
        flagged(
            &["-1funion select column_name from table_name"],
            &["1f union", "2d or 3d", "4f selection"],
        );
    }

    #[test]
    fn a_statement_keyword_after_a_glued_quote_is_a_breakout() {
        flagged(
            &["username'declare @s varchar(8000)"],
            &["l'update du systeme", "o'brien", "d'exec pour le cas"],
        );
    }

    #[test]
    fn a_quote_with_only_whitespace_before_it_breaks_out() {
        flagged(
            &[" ' / 1 / 1 ='", " '/1='"],
            &["is '/' allowed", "is '#' allowed", "is '+' allowed"],
        );
    }

    #[test]
    fn long_arithmetic_after_a_breakout_is_followed_to_its_comparison_or_string() {
        flagged(
            &[
                "aa'^0+0+1-1=(0)-- -a",
                " aa' & +(0)-(1)='aa",
                " ' / + (1) / + (1) ='",
                "1'*column-0-'0",
            ],
            &["36\"+x+48+\"+frame", "5' - 10'", "5' x 10' rug", "-shoes' -toys -games"],
        );
    }

    #[test]
    fn logic_or_adjacent_literals_up_to_the_closing_quote_are_an_expression() {
        flagged(
            &[
                "asd' or column&&'1",
                "aa' or intcolumn && '1",
                "' or '' '",
                "' || myappadmin.adduser('admin', 'newpass') || '",
            ],
            &["rock 'n' roll or 'x' and 'y", "i said 'yes' or 'no' and 'maybe"],
        );
    }

    #[test]
    fn a_string_inside_the_applications_expression_is_skipped() {
        flagged(&["1+('12') and (3=pi())--"], &["5 ('great') and 3 stars"]);
    }

    #[test]
    fn case_expressions_need_expressions_between_their_keywords() {
        flagged(
            &[
                "case 1 when 2 then 2 end",
                "case when 2 then 3 end",
                "case when id=1 then 1 else 0 end",
            ],
            &[
                "in case when you arrive then call me",
                "in case when 2 people arrive then 3 seats",
                "iphone case 4",
            ],
        );
    }

    #[test]
    fn stacked_if_exists_begin_and_do_are_statements() {
        flagged(
            &[
                "1; if exists ( /* anything */",
                "1; if not exists (select 1 from users)",
                "'; begin shutdown end-- -a",
                "1;do (1=1)",
            ],
            &[
                "yes; if exists (see above)",
                "ok; begin update later end",
                "sure; do (not) forget",
            ],
        );
    }

    #[test]
    fn dynamic_exec_and_system_variables_in_calls_are_injections() {
        flagged(
            &[
                "exec(@stored_proc @param)",
                "mid(@@hostname, 1, 1)",
                "execute('select 1')",
            ],
            &["exec(\"ls\")", "email me @@ foo(bar)", "execute('the plan')"],
        );
    }

    #[test]
    fn create_user_identified_by_is_a_statement() {
        flagged(
            &["'create user name identified by 'pass123' --"],
            &["create user accounts for the team", "create user name and password"],
        );
    }

    #[test]
    fn a_value_that_is_only_an_appended_condition_reaches_the_detector() {
        assert!(FRAGMENTS.iter().any(|f| "and 0".contains(f)));
        flagged(
            &["and 0", "and 1"],
            &["and 5 more", "or best offer", "brand new or used"],
        );
    }

    #[test]
    fn mysql_float_without_exponent_digits_hides_nothing() {
        flagged(&["1' or 1.e(1) or '1'='1"], &["1.example.com", "version 1.e"]);
    }

    #[test]
    fn a_one_token_breakout_comparing_names_then_commenting_is_an_injection() {
        flagged(
            &["aa'or column like column -- #a"],
            &["cats like dogs -- really", "it's or like that -- x"],
        );
    }

    #[test]
    fn a_float_glued_to_a_qualified_name_after_select_is_an_injection() {
        flagged(
            &[
                "select $.`` 1.e.table_name",
                "select information_schema 1337.e.tables 13.37e.table_name",
            ],
            &["see 1.e.g. the point", "select 1.5 e.g. the point"],
        );
    }

    #[test]
    fn postgres_copy_of_an_absolute_path_is_an_injection() {
        flagged(
            &["copy myfile from '/etc/passwd'; "],
            &["copy notes from 'hamlet'", "copy my file from /etc please"],
        );
    }

    #[test]
    fn like_with_only_wildcards_appended_is_an_injection() {
        flagged(&[" like '%'"], &["like '%' please", "i like '%' signs", "50% like '%'"]);
    }

    #[test]
    fn access_eqv_and_imp_are_logic_operators() {
        flagged(
            &["foo' eqv strcomp(username, 0x12+0x34+0xab+0xcd,0) imp 'a"],
            &["the imp and the elf", "an imp's 'trick' or two"],
        );
    }

    #[test]
    fn closing_the_applications_list_after_a_breakout_then_a_comment_is_an_injection() {
        flagged(
            &["',null) waifor delay '0:0:20' /*", "'),null) --"],
            &["smile :') -- bob", "yes', he said) -- ok"],
        );
    }

    #[test]
    fn a_parenthesised_number_cut_by_a_comment_is_a_probe() {
        flagged(
            &[" ( ( 1 ) )  --", "(1)#"],
            &["((1)) -- 2023 edition", "(1) -- see note", "(1 2) --"],
        );
    }

    #[test]
    fn a_leading_string_literal_is_a_value_like_a_number() {
        flagged(
            &["'s' || binary(1)# and n='foo\""],
            &[
                "'wood' and 'sign' and 'polka dots'",
                "'hello' or world",
                "\"s\" || binary(1)# tag",
            ],
        );
    }

    #[test]
    fn adjacent_string_literals_after_a_breakout_are_one_value() {
        flagged(
            &["0' '1' like (0) and 1 sounds like a or true#1"],
            &["say 'hi' 'there' like a friend"],
        );
    }
}
