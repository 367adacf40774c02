//! A SQL lexer for fragments: what the text would be read as if it were pasted into a query, in the three
//! places an application pastes it (as-is after a number, inside a `'...'` string, inside a `"..."` string).
//! Tokens carry a class only (the scorer needs shapes, not values), so lexing allocates nothing but the
//! token vector, which the caller reuses.
//!
//! Dialect coverage is the union that matters for injection: MySQL (`#` comments, `/*! ... */` executable
//! comments, backtick names, `0x` literals, `@@` variables), PostgreSQL (`::` casts, `$$`), MSSQL (`[name]`,
//! `waitfor`), Oracle and SQLite function names.

/// The class of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A quoted string; `closed` is false when the input ended inside it.
    Str {
        closed: bool,
    },
    Num,
    /// An identifier that is not a keyword.
    Word,
    /// A word followed by `(` that is a known SQL function.
    Func,
    /// A word followed by `(` that is not a known function.
    Call,
    Union,
    /// `select`.
    Select,
    /// A statement keyword: insert update delete drop create alter truncate exec execute declare grant
    /// revoke shutdown replace merge call rename load handler.
    Stmt,
    /// A clause keyword: from where into values set table like-family, case/when/then/else/end, as, on, join.
    Clause,
    /// `order by`, `group by`, `having`, `limit`, `offset`, `procedure analyse`, `into outfile`.
    Tail,
    /// and or xor eqv imp && || not
    Logic,
    /// Comparison and arithmetic operators, including `like`, `rlike`, `regexp`, `between`, `in`, `is`, `div`, `mod`.
    Op,
    /// `=` specifically (a comparison).
    Eq,
    /// null true false
    Literal,
    LParen,
    RParen,
    Comma,
    Semi,
    Dot,
    Comment,
    /// `@x`, `@@x`, `:x`.
    Var,
    /// waitfor (MSSQL time delay), benchmark etc. are Func; `waitfor delay` is its own token.
    Waitfor,
}

const STMT: &[&str] = &[
    "insert", "update", "delete", "drop", "create", "alter", "truncate", "exec", "execute", "declare", "grant",
    "revoke", "shutdown", "merge", "rename", "handler", "attach", "load", "pragma",
];
const CLAUSE: &[&str] = &[
    "from", "where", "into", "values", "set", "case", "when", "then", "else", "end", "as", "on", "join", "distinct",
    "all", "top", "exists", "outfile", "dumpfile", "collate", "escape", "asc", "desc",
];
/// Unary prefix operators: skipped when looking for an operand (`BINARY 'a'`, `NOT 1`, `-1`).
pub const PREFIX: &[&str] = &["binary", "not", "!", "-", "+", "~", "distinct"];
const TAIL: &[&str] = &["having", "limit", "offset", "procedure", "order", "group"];
const OPWORDS: &[&str] = &[
    "like", "rlike", "regexp", "between", "in", "is", "div", "mod", "sounds", "glob", "match", "ilike", "similar",
];
/// `eqv` and `imp` are MS Access's logical equivalence and implication.
const LOGIC: &[&str] = &["and", "or", "xor", "not", "eqv", "imp"];
const LITERAL: &[&str] = &["null", "true", "false", "unknown"];
/// Functions SQL calls without parentheses: written bare they are values (`or utc_date`), not names. `user` is
/// left out: as a bare word it is far more often English than SQL.
const NILADIC_VALUES: &[&str] = &[
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "session_user",
    "system_user",
    "current_schema",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "localtime",
    "localtimestamp",
];

/// SQL functions that appear in injections (time delays, error-based extraction, string building, metadata).
pub const FUNCTIONS: &[&str] = &[
    "lpad",
    "rpad",
    "charset",
    "collation",
    "coercibility",
    "pi",
    "cos",
    "sin",
    "tan",
    "atan",
    "cot",
    "ln",
    "log",
    "log2",
    "log10",
    "sqrt",
    "pow",
    "power",
    "degrees",
    "radians",
    "sign",
    "utc_date",
    "utc_time",
    "curdate",
    "curtime",
    "localtime",
    "localtimestamp",
    "current_date",
    "current_time",
    "current_timestamp",
    "sleep",
    "benchmark",
    "pg_sleep",
    "pg_sleep_for",
    "randomblob",
    "dbms_pipe.receive_message",
    "char",
    "chr",
    "nchar",
    "concat",
    "concat_ws",
    "group_concat",
    "string_agg",
    "substring",
    "substr",
    "mid",
    "ascii",
    "ord",
    "hex",
    "unhex",
    "bin",
    "conv",
    "version",
    "database",
    "user",
    "current_user",
    "system_user",
    "session_user",
    "schema",
    "load_file",
    "extractvalue",
    "updatexml",
    "count",
    "if",
    "ifnull",
    "isnull",
    "nullif",
    "coalesce",
    "cast",
    "convert",
    "md5",
    "sha1",
    "sha2",
    "length",
    "len",
    "char_length",
    "lower",
    "upper",
    "lcase",
    "ucase",
    "rand",
    "floor",
    "ceil",
    "exp",
    "elt",
    "make_set",
    "name_const",
    "row",
    "json_keys",
    "json_extract",
    "sqlite_version",
    "iif",
    "least",
    "greatest",
    "instr",
    "locate",
    "position",
    "replace",
    "reverse",
    "trim",
    "ltrim",
    "rtrim",
    "unicode",
    "db_name",
    "host_name",
    "suser_name",
    "user_name",
    "xp_cmdshell",
    "xp_dirtree",
    "sp_executesql",
    "openrowset",
    "opendatasource",
    "utl_inaddr.get_host_address",
    "utl_http.request",
    "ctxsys.drithsx.sn",
    "dbms_xmlgen.getxml",
    "xmltype",
    "to_char",
    "to_number",
    "extract",
    "now",
    "sysdate",
    "current_database",
    "pg_read_file",
    "lo_import",
    "query_to_xml",
    "array_agg",
    "polygon",
    "multipoint",
    "geometrycollection",
    "linestring",
    "exp",
    "gtid_subset",
    "procedure_analyse",
    "left",
    "right",
    "space",
    "repeat",
    "strcmp",
    "soundex",
    "quote",
    "table_name",
    "column_name",
    "sum",
    "avg",
    "min",
    "max",
    "abs",
    "round",
    "mid",
    "ascii",
    "uuid",
    "connection_id",
    "last_insert_id",
    "row_count",
    "found_rows",
    "char_length",
    "octet_length",
    "bit_length",
    "unhex",
    "from_base64",
    "to_base64",
    "compress",
    "uncompress",
    "aes_encrypt",
    "aes_decrypt",
    "des_encrypt",
    "encode",
    "decode",
    "password",
    "old_password",
    "encrypt",
    "crc32",
    "weight_string",
    "updatexml",
    "dbms_lock.sleep",
    "sys_context",
    "sys.fn_sqlvarbasetostr",
    "fn_varbintohexstr",
    "waitfor",
    "exec",
    "execute",
    "master..xp_cmdshell",
    "load_extension",
    "typeof",
    "zeroblob",
    "printf",
    "format",
    "sqlite_compileoption_get",
    "pg_ls_dir",
    "current_setting",
    "inet_server_addr",
];

/// Lexes `s` as SQL starting in `start` (`None`: code; `Some(q)`: inside a string quoted with `q`).
/// At most `max` tokens are produced.
pub fn lex(s: &str, start: Option<u8>, max: usize, out: &mut Vec<(Tok, usize, usize)>) {
    out.clear();
    let b = s.as_bytes();
    let mut i = 0;
    if let Some(q) = start {
        let end = string_end(b, 0, q);
        match end {
            Some(e) => {
                out.push((Tok::Str { closed: true }, 0, e + 1));
                i = e + 1;
            }
            None => {
                out.push((Tok::Str { closed: false }, 0, b.len()));
                return;
            }
        }
    }
    while i < b.len() && out.len() < max {
        let c = b[i];
        let at = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 => {
                i += 1;
            }
            // U+00A0 (no-break space) and U+FFFD (what an undecodable byte such as `%A0` became): MySQL and
            // others take them for whitespace.
            0xc2 if b.get(i + 1) == Some(&0xa0) => {
                i += 2;
            }
            0xef if b.get(i + 1) == Some(&0xbf) && b.get(i + 2) == Some(&0xbd) => {
                i += 3;
            }
            b'\'' | b'"' | b'`' => {
                let tok = if c == b'`' {
                    Tok::Word
                } else {
                    Tok::Str { closed: true }
                };
                match string_end(b, i + 1, c) {
                    Some(e) => {
                        out.push((tok, at, e + 1));
                        i = e + 1;
                    }
                    None => {
                        out.push((
                            if c == b'`' {
                                Tok::Word
                            } else {
                                Tok::Str { closed: false }
                            },
                            at,
                            b.len(),
                        ));
                        i = b.len();
                    }
                }
            }
            b'[' => {
                // MSSQL bracketed name.
                let e = memchr::memchr(b']', &b[i..]).map_or(b.len(), |p| i + p + 1);
                out.push((Tok::Word, at, e));
                i = e;
            }
            b'#' => {
                out.push((Tok::Comment, at, b.len()));
                i = line_end(b, i);
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                out.push((Tok::Comment, at, b.len()));
                i = line_end(b, i);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                if b.get(i + 2) == Some(&b'!') {
                    // MySQL executable comment: its content is code; skip the marker and version digits.
                    i += 3;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    out.push((Tok::Comment, at, i));
                    continue;
                }
                let e = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |p| i + 2 + p + 2);
                out.push((Tok::Comment, at, e));
                i = e;
            }
            b'*' if b.get(i + 1) == Some(&b'/') => {
                // End of an executable comment: whitespace.
                i += 2;
            }
            b'(' => {
                out.push((Tok::LParen, at, i + 1));
                i += 1;
            }
            b')' => {
                out.push((Tok::RParen, at, i + 1));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, at, i + 1));
                i += 1;
            }
            b';' => {
                out.push((Tok::Semi, at, i + 1));
                i += 1;
            }
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push((Tok::Dot, at, i + 1));
                i += 1;
            }
            b'@' => {
                let mut e = i + 1;
                while e < b.len() && b[e] == b'@' {
                    e += 1;
                }
                while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'_' | b'.' | b'$')) {
                    e += 1;
                }
                out.push((Tok::Var, at, e));
                i = e;
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push((Tok::Logic, at, i + 2));
                i += 2;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                out.push((Tok::Logic, at, i + 2));
                i += 2;
            }
            b'=' => {
                out.push((Tok::Eq, at, i + 1));
                i += 1;
            }
            b'<' | b'>' | b'!' | b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' | b':' => {
                let mut e = i + 1;
                while e < b.len() && matches!(b[e], b'<' | b'>' | b'=' | b'!' | b':') && e - i < 3 {
                    e += 1;
                }
                let text = &b[i..e];
                let tok = if text.contains(&b'=') && text != b"=>" {
                    Tok::Eq
                } else if c == b':' && e == i + 1 && b.get(e).is_some_and(|x| x.is_ascii_alphabetic()) {
                    // :name bind variable.
                    let mut v = e;
                    while v < b.len() && (b[v].is_ascii_alphanumeric() || b[v] == b'_') {
                        v += 1;
                    }
                    e = v;
                    Tok::Var
                } else {
                    Tok::Op
                };
                out.push((tok, at, e));
                i = e;
            }
            b'0'..=b'9' | b'.' => {
                let mut e = number_end(b, i);
                // Oracle's `1f`/`1d` (binary float/double) literals end a number that a keyword may follow with no
                // space: `-1fUNION SELECT`.
                if matches!(b.get(e), Some(b'f' | b'd'))
                    && b[i..e].iter().all(|c| c.is_ascii_digit() || *c == b'.')
                    && next_word(b, e + 1).is_some_and(|(w, _)| {
                        std::str::from_utf8(w).is_ok_and(|w| {
                            matches!(
                                KEYWORDS.words.get(w),
                                Some(Kw::Union | Kw::Select | Kw::Logic | Kw::Tail)
                            )
                        })
                    })
                    && b.get(e + 1).is_some_and(u8::is_ascii_alphabetic)
                {
                    e += 1;
                }
                out.push((Tok::Num, at, e));
                i = e;
            }
            b'$' if b.get(i + 1) == Some(&b'$') => {
                // PostgreSQL dollar quoting.
                let e = memchr::memmem::find(&b[i + 2..], b"$$").map_or(b.len(), |p| i + 2 + p + 2);
                out.push((
                    Tok::Str {
                        closed: e < b.len() || b.ends_with(b"$$"),
                    },
                    at,
                    e,
                ));
                i = e;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let mut e = i;
                while e < b.len()
                    && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'_' | b'$') || b[e] >= 0x80)
                    && !(b[e] == 0xc2 && b.get(e + 1) == Some(&0xa0))
                    && !(b[e] == 0xef && b.get(e + 1) == Some(&0xbf) && b.get(e + 2) == Some(&0xbd))
                {
                    e += 1;
                }
                // Dotted function names (`dbms_pipe.receive_message`, `master..xp_cmdshell`).
                let mut word_end = e;
                let mut k = e;
                while k < b.len() && b[k] == b'.' {
                    let mut n = k;
                    while n < b.len() && b[n] == b'.' {
                        n += 1;
                    }
                    let mut m = n;
                    while m < b.len() && (b[m].is_ascii_alphanumeric() || b[m] == b'_') {
                        m += 1;
                    }
                    if m == n {
                        break;
                    }
                    if is_function(&s[i..m]) {
                        word_end = m;
                    }
                    k = m;
                }
                let mut e = word_end;
                let word = &s[i..e];
                let mut tok = classify(word, b, e);
                // Two-word keywords: `order by` and `group by` are one token; `order` alone is a word.
                if tok == Tok::Tail && matches!(word, "order" | "group") {
                    match next_word(b, e) {
                        Some((w, end)) if w == b"by" => e = end,
                        _ => tok = Tok::Word,
                    }
                }
                // MySQL's `SOUNDS LIKE` is one comparison operator; read as two, its right operand would be `like`.
                if word == "sounds"
                    && let Some((w, end)) = next_word(b, e)
                    && w == b"like"
                {
                    e = end;
                }
                out.push((tok, at, e));
                i = e;
            }
            _ => {
                i += s[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
}

/// What a word is as a keyword, looked up once per word (a hash lookup instead of scanning every list).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kw {
    Union,
    Select,
    Waitfor,
    Logic,
    Literal,
    OpWord,
    Tail,
    Stmt,
    Clause,
}

struct Keywords {
    words: std::collections::HashMap<&'static str, Kw>,
    functions: std::collections::HashSet<&'static str>,
}

static KEYWORDS: std::sync::LazyLock<Keywords> = std::sync::LazyLock::new(|| {
    let mut words = std::collections::HashMap::new();
    // Later lists win where a word is in two (`not` is logic, `distinct` a clause).
    for (list, kw) in [
        (CLAUSE, Kw::Clause),
        (STMT, Kw::Stmt),
        (TAIL, Kw::Tail),
        (OPWORDS, Kw::OpWord),
        (LITERAL, Kw::Literal),
        (LOGIC, Kw::Logic),
    ] {
        for w in list {
            words.insert(*w, kw);
        }
    }
    words.insert("union", Kw::Union);
    words.insert("select", Kw::Select);
    words.insert("waitfor", Kw::Waitfor);
    Keywords {
        words,
        functions: FUNCTIONS.iter().copied().collect(),
    }
});

/// Whether `word` is a known SQL function name.
pub fn is_function(word: &str) -> bool {
    KEYWORDS.functions.contains(word)
}

fn classify(word: &str, b: &[u8], end: usize) -> Tok {
    // Keywords and functions are short; a long word is a name.
    let kw = if word.len() <= 32 {
        KEYWORDS.words.get(word).copied()
    } else {
        None
    };
    let called = next_non_space(b, end) == Some(b'(');
    if called {
        if word.len() <= 40 && is_function(word) {
            return Tok::Func;
        }
        return match kw {
            Some(Kw::Select) => Tok::Select,
            Some(Kw::Logic) => Tok::Logic,
            Some(Kw::Union) => Tok::Union,
            Some(Kw::OpWord) => Tok::Op,
            // Keywords stay keywords before a parenthesis (`union all (select`, `values (`).
            Some(Kw::Clause) if word == "exists" => Tok::Op,
            Some(Kw::Clause) => Tok::Clause,
            Some(Kw::Stmt) => Tok::Stmt,
            Some(Kw::Tail) => Tok::Tail,
            Some(Kw::Literal) => Tok::Literal,
            Some(Kw::Waitfor) => Tok::Waitfor,
            None => Tok::Call,
        };
    }
    match kw {
        Some(Kw::Union) => Tok::Union,
        Some(Kw::Select) => Tok::Select,
        Some(Kw::Waitfor) => Tok::Waitfor,
        Some(Kw::Logic) => Tok::Logic,
        Some(Kw::Literal) => Tok::Literal,
        Some(Kw::OpWord) => Tok::Op,
        Some(Kw::Tail) => Tok::Tail,
        Some(Kw::Stmt) => Tok::Stmt,
        Some(Kw::Clause) => Tok::Clause,
        None if word.len() > 2 && (word.starts_with("0x") || word.starts_with("0b")) => Tok::Num,
        None if NILADIC_VALUES.contains(&word) => Tok::Literal,
        None => Tok::Word,
    }
}

fn next_non_space(b: &[u8], mut i: usize) -> Option<u8> {
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
            c => return Some(c),
        }
    }
    None
}

fn next_word(b: &[u8], mut i: usize) -> Option<(&[u8], usize)> {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    if i < b.len() && b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
        i = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |p| i + 2 + p + 2);
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
    }
    let s = i;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    (i > s).then(|| (&b[s..i], i))
}

/// Index of the closing quote `q` from `from`, honouring doubled quotes and backslash escapes.
fn string_end(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

fn line_end(b: &[u8], i: usize) -> usize {
    memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |p| i + p + 1)
}

fn number_end(b: &[u8], i: usize) -> usize {
    let mut e = i;
    if b[e] == b'0' && matches!(b.get(e + 1), Some(b'x' | b'b')) {
        e += 2;
        while e < b.len() && b[e].is_ascii_hexdigit() {
            e += 1;
        }
        return e;
    }
    while e < b.len() && (b[e].is_ascii_digit() || b[e] == b'.') {
        e += 1;
    }
    // MySQL reads `1.e` (an exponent marker with no digits) as the number 1, so `1.e(`, `1.e.name` and
    // `1.eunion` hide what follows from lexers that stop at the `e`.
    if b[i..e].contains(&b'.')
        && b.get(e) == Some(&b'e')
        && !b
            .get(e + 1)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'_'))
    {
        return e + 1;
    }
    if e < b.len()
        && b[e] == b'e'
        && b.get(e + 1)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
    {
        e += 2;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str, start: Option<u8>) -> Vec<Tok> {
        let mut out = Vec::new();
        lex(s, start, 64, &mut out);
        out.into_iter().map(|t| t.0).collect()
    }

    #[test]
    fn a_classic_tautology_lexes_into_string_logic_and_comparison() {
        assert_eq!(
            kinds("x' or 1=1--", Some(b'\'')),
            vec![
                Tok::Str { closed: true },
                Tok::Logic,
                Tok::Num,
                Tok::Eq,
                Tok::Num,
                Tok::Comment
            ]
        );
    }

    #[test]
    fn comments_separate_tokens_like_whitespace() {
        assert_eq!(
            kinds("1/**/union/**/select", None),
            vec![Tok::Num, Tok::Comment, Tok::Union, Tok::Comment, Tok::Select]
        );
    }

    #[test]
    fn executable_comments_are_read_as_code() {
        let k = kinds("/*!50000union*/ /*!select*/ 1", None);
        assert!(k.contains(&Tok::Union) && k.contains(&Tok::Select), "{k:?}");
    }

    #[test]
    fn known_functions_are_told_from_other_calls() {
        assert_eq!(kinds("sleep(5)", None)[0], Tok::Func);
        assert_eq!(kinds("foo(5)", None)[0], Tok::Call);
        assert_eq!(kinds("sleep 5", None)[0], Tok::Word);
    }

    #[test]
    fn sounds_like_is_one_operator_and_sounds_alone_a_word() {
        assert_eq!(kinds("a sounds like b", None), vec![Tok::Word, Tok::Op, Tok::Word]);
        assert_eq!(kinds("it sounds good", None), vec![Tok::Word, Tok::Op, Tok::Word]);
        assert_eq!(kinds("sounds", None), vec![Tok::Op]);
    }

    #[test]
    fn number_suffixes_end_numbers_only_before_keywords() {
        assert_eq!(kinds("1funion", None), vec![Tok::Num, Tok::Union]);
        assert_eq!(kinds("1fish", None), vec![Tok::Num, Tok::Word]);
        assert_eq!(
            kinds("1.e(1)", None),
            vec![Tok::Num, Tok::LParen, Tok::Num, Tok::RParen]
        );
        assert_eq!(kinds("1.example", None), vec![Tok::Num, Tok::Word]);
    }

    #[test]
    fn bare_niladic_functions_are_literals_and_called_ones_functions() {
        assert_eq!(kinds("utc_date", None), vec![Tok::Literal]);
        assert_eq!(kinds("utc_date()", None), vec![Tok::Func, Tok::LParen, Tok::RParen]);
        assert_eq!(kinds("user", None), vec![Tok::Word]);
    }

    #[test]
    fn order_by_is_a_tail_keyword_but_order_alone_is_a_word() {
        assert_eq!(kinds("order by 1", None)[0], Tok::Tail);
        assert_eq!(kinds("order 66", None)[0], Tok::Word);
    }
}
