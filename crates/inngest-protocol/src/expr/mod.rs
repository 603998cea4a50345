//! Parsing of Inngest expressions (CEL): trigger `expression`s, `cancel[].if`, `batchEvents.if`,
//! `WaitForEvent` `opts.if`, and the keys of concurrency, rate-limit, debounce, singleton and
//! priority settings.
//!
//! Both sides need the parser: the SDK checks every expression of a function when the router is
//! built (so a typo is an error at startup, not at sync), and the local executor evaluates the
//! [`Node`] tree this module produces. Evaluation itself lives in the executor crate; this module
//! only knows the syntax, the variables (`event`, `async` and macro variables), the functions and
//! their argument counts.
//!
//! Two entry points mirror the real Inngest server's two paths:
//!
//! * [`parse`] is the evaluation path: the server lifts string and number literals into
//!   variables before parsing, so string literals keep their raw text (escapes are not
//!   processed), and any root identifier parses (it has no value at evaluation).
//! * [`validate`] / [`validate_with`] are the sync-time checks: plain CEL parsing (escapes
//!   resolved, roots other than `event`, `async` and `vars` refused with cel-go's
//!   `undeclared reference to 'x' (in container '')`), a type check where `+ == != < <= > >=`
//!   accept any operands (as the server re-declares them) and, for [`Policy::Restrictive`], the
//!   server's refusal of macros and most function calls.
//!
//! The parser is hand-written because it must report errors with the expression and a 1-based
//! position and never panic on malformed input (see the executor's `expr` module for the
//! language, its semantics and the remaining differences from the server).
//!
//! ```
//! use inngest_protocol::expr;
//! assert!(expr::validate("event.data.amount > 100 && event.data.currency == 'EUR'").is_ok());
//! let err = expr::validate("event.data.amount >").unwrap_err();
//! assert_eq!(err.position, 20);
//! ```

use std::fmt;

mod check;

/// Maximum nesting of parentheses, brackets, operators and calls accepted by [`parse`].
const MAX_DEPTH: usize = 200;

/// Why an expression was refused: a syntax error, an unknown variable or function, or a wrong
/// number of arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The expression source.
    pub expr: String,
    /// What is wrong.
    pub message: String,
    /// 1-based character position in `expr` where the problem was found.
    pub position: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid expression {:?}: {} at position {}",
            self.expr, self.message, self.position
        )
    }
}

impl std::error::Error for SyntaxError {}

/// How many literals the server's literal lifting turns into variables (`vars.a` … `vars.z`).
const LIFTED_LITERALS: usize = 26;

/// Parses `src` for evaluation, the way the server prepares an expression before running it:
/// string literals keep their raw text (the server lifts them into variables unprocessed, so
/// `'\w'` is the two characters `\` `w`), unless the text mentions `vars.` or the literal is
/// past the 26th; any root identifier is accepted (it has no value at evaluation). Functions and
/// argument counts are checked.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let lift = if src.contains("vars.") {
        0
    } else {
        LIFTED_LITERALS
    };
    parse_with(src, lift, false)
}

/// Parses `src` as plain CEL (escapes resolved, unknown roots refused), as the server's
/// validation does before type-checking.
pub fn parse_cel(src: &str) -> Result<Node, SyntaxError> {
    parse_with(src, 0, true)
}

fn parse_with(src: &str, lift_left: usize, strict_roots: bool) -> Result<Node, SyntaxError> {
    let syntax = |e: SyntaxErr| SyntaxError {
        expr: src.to_owned(),
        message: e.message,
        position: src[..e.at.min(src.len())].chars().count() + 1,
    };
    let tokens = lex(src).map_err(syntax)?;
    let mut parser = Parser {
        toks: tokens,
        pos: 0,
        scopes: Vec::new(),
        depth: 0,
        lift_left,
        brackets: 0,
        strict_roots,
        undeclared: None,
    };
    parser.parse_root().map_err(syntax)
}

/// Checks `src` the way the server validates a trigger `if` or a key at sync time (no policy):
/// CEL syntax, declared variables (`event`, `async`, `vars`), functions and operand types.
/// What the SDK runs on every expression at build time.
pub fn validate(src: &str) -> Result<(), SyntaxError> {
    validate_with(src, Policy::Default)
}

/// Checks `src` at the given [`Policy`].
pub fn validate_with(src: &str, policy: Policy) -> Result<(), SyntaxError> {
    if policy == Policy::Parse {
        // cel-go's parser alone: escapes checked, roots not (that is the type checker's job).
        return parse_with(src, 0, false).map(|_| ());
    }
    let node = parse_cel(src)?;
    let fail = |message: String| SyntaxError {
        expr: src.to_owned(),
        message,
        position: 1,
    };
    check::type_check(&node).map_err(fail)?;
    if policy == Policy::Restrictive {
        let violations = check::restrictive_violations(&node);
        if !violations.is_empty() {
            return Err(fail(check::policy_message(&violations)));
        }
    }
    Ok(())
}

/// How strictly an expression is checked at sync time (the server applies a different check
/// per setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Parse only (concurrency keys, `priority.run` at sync).
    Parse,
    /// Parse and type-check (trigger `if`, debounce, batch and rate-limit keys, `batchEvents.if`).
    Default,
    /// Type-check, then refuse macros and every function call except comparisons, logic,
    /// indexing, `in` and `int`/`uint`/`double` (`cancel[].if`, `waitForEvent` `if`).
    Restrictive,
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i128),
    Uint(u64),
    Float(f64),
    /// A string literal: its value with escapes resolved (or the first bad escape) and its raw text.
    Str {
        value: Result<String, (usize, String)>,
        raw: String,
    },
    True,
    False,
    Null,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Dot,
    Comma,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("identifier `{name}`"),
            Tok::Int(_) | Tok::Uint(_) | Tok::Float(_) => "number".to_owned(),
            Tok::Str { .. } => "string".to_owned(),
            Tok::True => "`true`".to_owned(),
            Tok::False => "`false`".to_owned(),
            Tok::Null => "`null`".to_owned(),
            Tok::In => "`in`".to_owned(),
            Tok::Eof => "end of expression".to_owned(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Dot => ".",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Question => "?",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Bang => "!",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            _ => "",
        }
    }
}

#[derive(Debug)]
struct SyntaxErr {
    message: String,
    /// Byte offset into the source.
    at: usize,
}

fn serr<T>(at: usize, message: impl Into<String>) -> Result<T, SyntaxErr> {
    Err(SyntaxErr {
        message: message.into(),
        at,
    })
}

/// CEL's reserved words: not usable as identifiers.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, SyntaxErr> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            // Line comment.
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, end) = lex_number(src, i)?;
            out.push((tok, start));
            i = end;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (tok, end) = lex_string(src, i, false)?;
            out.push((tok, start));
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut end = i;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            let word = &src[i..end];
            let next = bytes.get(end).copied();
            if matches!(next, Some(b'\'' | b'"')) {
                match word {
                    "r" | "R" => {
                        let (tok, after) = lex_string(src, end, true)?;
                        out.push((tok, start));
                        i = after;
                        continue;
                    }
                    "b" | "B" | "rb" | "rB" | "Rb" | "RB" | "br" | "bR" | "Br" | "BR" => {
                        return serr(start, "bytes literals are not supported");
                    }
                    _ => {}
                }
            }
            let tok = match word {
                "true" => Tok::True,
                "false" => Tok::False,
                "null" => Tok::Null,
                "in" => Tok::In,
                w => Tok::Ident(w.to_owned()),
            };
            out.push((tok, start));
            i = end;
            continue;
        }
        let two = bytes.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b'=', Some(b'=')) => (Tok::EqEq, 2),
            (b'!', Some(b'=')) => (Tok::NotEq, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'=', _) => return Err(lone_equals(src, start)),
            (b'&', _) => return serr(start, "unexpected `&` (use `&&`)"),
            (b'|', _) => return serr(start, "unexpected `|` (use `||`)"),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b',', _) => (Tok::Comma, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'?', _) => (Tok::Question, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return serr(start, format!("unexpected character {ch:?}"));
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

/// A single `=` (or `===`): cel-go's lexer reports the `=` and the character after it.
fn lone_equals(src: &str, at: usize) -> SyntaxErr {
    let seen: String = src[at..].chars().take(2).collect();
    SyntaxErr {
        message: format!("token recognition error at: '{seen}'"),
        at,
    }
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), SyntaxErr> {
    let bytes = src.as_bytes();
    let mut i = start;
    let digits = |from: usize| {
        let mut j = from;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let unsigned_suffix = |j: usize| matches!(bytes.get(j), Some(b'u' | b'U'));
    let int_tok = |text: &str, radix: u32, end: usize| -> Result<(Tok, usize), SyntaxErr> {
        match u64::from_str_radix(text, radix) {
            Ok(v) if end > 0 && unsigned_suffix(end - 1) => Ok((Tok::Uint(v), end)),
            Ok(v) => Ok((Tok::Int(i128::from(v)), end)),
            Err(_) => serr(start, format!("integer literal {text} is out of range")),
        }
    };

    if bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        let hex_start = i + 2;
        let mut j = hex_start;
        while j < bytes.len() && bytes[j].is_ascii_hexdigit() {
            j += 1;
        }
        if j == hex_start {
            return serr(start, "hex literal needs digits after 0x");
        }
        let end = if unsigned_suffix(j) { j + 1 } else { j };
        return int_tok(&src[hex_start..j], 16, end);
    }

    i = digits(i);
    let mut is_float = false;
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        is_float = true;
        i = digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            is_float = true;
            i = digits(j);
        } else {
            return serr(i, "exponent needs digits");
        }
    }
    let text = &src[start..i];
    if is_float {
        return match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((Tok::Float(f), i)),
            _ => serr(start, format!("number {text} is out of range")),
        };
    }
    let end = if unsigned_suffix(i) { i + 1 } else { i };
    int_tok(text, 10, end)
}

/// Lexes a quoted string starting at `start` (which holds the opening quote). The token keeps
/// both the decoded value (or the first bad escape, reported only where escapes matter) and the
/// raw text between the quotes (what the server's literal lifting uses).
fn lex_string(src: &str, start: usize, raw: bool) -> Result<(Tok, usize), SyntaxErr> {
    let quote = src.as_bytes()[start] as char;
    let triple_str: String = [quote; 3].iter().collect();
    let triple = src[start..].starts_with(&triple_str);
    let body_start = start + if triple { 3 } else { 1 };
    let mut out = String::new();
    let mut bad: Option<(usize, String)> = None;
    let mut chars = src[body_start..].char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        let at = body_start + off;
        let closing = if triple {
            src[at..].starts_with(&triple_str)
        } else {
            c == quote
        };
        if closing {
            let value = match bad {
                Some(e) => Err(e),
                None => Ok(out),
            };
            let raw = src[body_start..at].to_owned();
            let end = at + if triple { 3 } else { 1 };
            return Ok((Tok::Str { value, raw }, end));
        }
        if !triple && (c == '\n' || c == '\r') {
            return serr(
                start,
                "unterminated string (use a triple-quoted string for newlines)",
            );
        }
        if c != '\\' || raw {
            out.push(c);
            continue;
        }
        match decode_escape(&mut chars, at) {
            Ok(Some(d)) => out.push(d),
            Ok(None) => break,
            Err(e) => {
                bad.get_or_insert((e.at, e.message));
            }
        }
    }
    serr(start, "unterminated string")
}

type CharIter<'s> = std::iter::Peekable<std::str::CharIndices<'s>>;

/// Decodes the escape after a backslash at `at`; `Ok(None)` at the end of input.
fn decode_escape(chars: &mut CharIter<'_>, at: usize) -> Result<Option<char>, SyntaxErr> {
    let Some((_, e)) = chars.next() else {
        return Ok(None);
    };
    let mut hex = |n: usize| -> Result<char, SyntaxErr> {
        let mut v: u32 = 0;
        for _ in 0..n {
            match chars.peek() {
                Some((_, h)) if h.is_ascii_hexdigit() => {
                    v = v * 16 + h.to_digit(16).unwrap_or(0);
                    chars.next();
                }
                _ => return serr(at, "invalid hex escape"),
            }
        }
        char::from_u32(v).map_or_else(
            || serr(at, format!("invalid code point U+{v:X} in escape")),
            Ok,
        )
    };
    let decoded = match e {
        '\\' => '\\',
        '\'' => '\'',
        '"' => '"',
        '`' => '`',
        '?' => '?',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        'x' | 'X' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        '0'..='3' => {
            let mut v = e.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.peek() {
                    Some((_, o)) if ('0'..='7').contains(o) => {
                        v = v * 8 + o.to_digit(8).unwrap_or(0);
                        chars.next();
                    }
                    _ => return serr(at, "invalid octal escape (needs three digits)"),
                }
            }
            char::from_u32(v).unwrap_or('\0')
        }
        other => return serr(at, format!("invalid escape sequence \\{other}")),
    };
    Ok(Some(decoded))
}

// ---------------------------------------------------------------------------------------------
// Syntax tree and parser

/// A parsed expression: the tree the executor evaluates.
///
/// The AST enums are deliberately exhaustive: an evaluator must handle every node, so a new node
/// is a breaking change of this crate.
#[derive(Debug)]
pub enum Node {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal (range `i64::MIN ..= u64::MAX`).
    Int(i128),
    /// An unsigned literal (`5u`).
    Uint(u64),
    /// A double literal.
    Float(f64),
    /// A string literal: escapes resolved, or the raw text between the quotes when the
    /// expression was parsed for evaluation (see [`parse`]).
    Str(String),
    /// The variable `event`: the run's triggering event.
    Event,
    /// The variable `async`: the incoming candidate event.
    Async,
    /// A macro variable: index into the evaluation's local stack.
    Local(usize),
    /// Any other root identifier (`vars`, `user`, …): accepted when parsing for evaluation,
    /// where it has no value (the server treats it as unknown).
    Ident(String),
    /// Field selection `a.b` (or `a['b']` with a literal key).
    Select(Box<Node>, String),
    /// `has(a.b)`: whether the field is present.
    Has(Box<Node>, String),
    /// Indexing `a[i]`.
    Index(Box<Node>, Box<Node>),
    /// `!a`.
    Not(Box<Node>),
    /// `-a`.
    Neg(Box<Node>),
    /// A binary operator other than `&&` and `||`.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// `a && b`.
    And(Box<Node>, Box<Node>),
    /// `a || b`.
    Or(Box<Node>, Box<Node>),
    /// `c ? a : b`.
    Cond(Box<Node>, Box<Node>, Box<Node>),
    /// A list literal.
    List(Vec<Node>),
    /// A map literal, as key/value pairs.
    Map(Vec<(Node, Node)>),
    /// A function call, receiver first for method-style calls.
    Call(Func, Vec<Node>),
    /// A list macro such as `l.exists(v, p)`.
    Macro {
        /// Which macro.
        kind: MacroKind,
        /// The list or map iterated over.
        range: Box<Node>,
        /// The local slot of the macro variable.
        slot: usize,
        /// The filter of the three-argument `map(v, p, e)`.
        filter: Option<Box<Node>>,
        /// The predicate or the mapped expression.
        body: Box<Node>,
    },
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
}

/// A built-in function: CEL's standard functions the server enables and Inngest's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `size(x)` / `x.size()`.
    Size,
    /// `s.contains(t)`.
    Contains,
    /// `s.startsWith(t)`.
    StartsWith,
    /// `s.endsWith(t)`.
    EndsWith,
    /// `s.matches(re)` / `matches(s, re)`: RE2 search.
    Matches,
    /// `string(x)`.
    String,
    /// `int(x)`.
    Int,
    /// `uint(x)`.
    Uint,
    /// `double(x)`.
    Double,
    /// `bool(x)`.
    Bool,
    /// `dyn(x)`.
    Dyn,
    /// `type(x)`.
    Type,
    /// `duration(s)`.
    Duration,
    /// `timestamp(s)`.
    Timestamp,
    /// `lowercase(s)` (Inngest).
    Lowercase,
    /// `uppercase(s)` (Inngest).
    Uppercase,
    /// `b64decode(s)` (Inngest).
    B64Decode,
    /// `json_parse(s)` (Inngest).
    JsonParse,
    /// `date(x)` (Inngest).
    Date,
    /// `now()` (Inngest).
    Now,
    /// `now_plus(d)` (Inngest).
    NowPlus,
    /// `now_minus(d)` (Inngest).
    NowMinus,
    /// A timestamp accessor such as `t.getFullYear()` or `t.getHours('Europe/Paris')`.
    TimePart(TimePart),
}

/// The timestamp accessors (`getFullYear`, …); `getSeconds` etc. also apply to durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePart {
    /// `getFullYear`
    FullYear,
    /// `getMonth` (0-based)
    Month,
    /// `getDayOfYear` (0-based)
    DayOfYear,
    /// `getDayOfMonth` (0-based)
    DayOfMonth,
    /// `getDate` (1-based day of month)
    Date,
    /// `getDayOfWeek` (0 = Sunday)
    DayOfWeek,
    /// `getHours`
    Hours,
    /// `getMinutes`
    Minutes,
    /// `getSeconds`
    Seconds,
    /// `getMilliseconds`
    Milliseconds,
}

impl Func {
    /// The function's CEL name (as the server's policy messages spell it).
    pub fn name(self) -> &'static str {
        match self {
            Func::Size => "size",
            Func::Contains => "contains",
            Func::StartsWith => "startsWith",
            Func::EndsWith => "endsWith",
            Func::Matches => "matches",
            Func::String => "string",
            Func::Int => "int",
            Func::Uint => "uint",
            Func::Double => "double",
            Func::Bool => "bool",
            Func::Dyn => "dyn",
            Func::Type => "type",
            Func::Duration => "duration",
            Func::Timestamp => "timestamp",
            Func::Lowercase => "lowercase",
            Func::Uppercase => "uppercase",
            Func::B64Decode => "b64decode",
            Func::JsonParse => "json_parse",
            Func::Date => "date",
            Func::Now => "now",
            Func::NowPlus => "now_plus",
            Func::NowMinus => "now_minus",
            Func::TimePart(p) => p.name(),
        }
    }
}

impl TimePart {
    fn name(self) -> &'static str {
        match self {
            TimePart::FullYear => "getFullYear",
            TimePart::Month => "getMonth",
            TimePart::DayOfYear => "getDayOfYear",
            TimePart::DayOfMonth => "getDayOfMonth",
            TimePart::Date => "getDate",
            TimePart::DayOfWeek => "getDayOfWeek",
            TimePart::Hours => "getHours",
            TimePart::Minutes => "getMinutes",
            TimePart::Seconds => "getSeconds",
            TimePart::Milliseconds => "getMilliseconds",
        }
    }

    fn from_name(name: &str) -> Option<TimePart> {
        Some(match name {
            "getFullYear" => TimePart::FullYear,
            "getMonth" => TimePart::Month,
            "getDayOfYear" => TimePart::DayOfYear,
            "getDayOfMonth" => TimePart::DayOfMonth,
            "getDate" => TimePart::Date,
            "getDayOfWeek" => TimePart::DayOfWeek,
            "getHours" => TimePart::Hours,
            "getMinutes" => TimePart::Minutes,
            "getSeconds" => TimePart::Seconds,
            "getMilliseconds" => TimePart::Milliseconds,
            _ => return None,
        })
    }
}

/// A method-style call `target.name(args)`: the function and its accepted argument counts
/// (not counting the target).
fn method(name: &str) -> Option<(Func, &'static [usize])> {
    Some(match name {
        "size" => (Func::Size, &[0]),
        "contains" => (Func::Contains, &[1]),
        "startsWith" => (Func::StartsWith, &[1]),
        "endsWith" => (Func::EndsWith, &[1]),
        "matches" => (Func::Matches, &[1]),
        n => (Func::TimePart(TimePart::from_name(n)?), &[0, 1]),
    })
}

/// A global call `name(args)`: the function and its argument count.
fn global(name: &str) -> Option<(Func, usize)> {
    Some(match name {
        "size" => (Func::Size, 1),
        "matches" => (Func::Matches, 2),
        "string" => (Func::String, 1),
        "int" => (Func::Int, 1),
        "uint" => (Func::Uint, 1),
        "double" => (Func::Double, 1),
        "bool" => (Func::Bool, 1),
        "dyn" => (Func::Dyn, 1),
        "type" => (Func::Type, 1),
        "duration" => (Func::Duration, 1),
        "timestamp" => (Func::Timestamp, 1),
        "lowercase" => (Func::Lowercase, 1),
        "uppercase" => (Func::Uppercase, 1),
        "b64decode" => (Func::B64Decode, 1),
        "json_parse" => (Func::JsonParse, 1),
        "date" => (Func::Date, 1),
        "now" => (Func::Now, 0),
        "now_plus" => (Func::NowPlus, 1),
        "now_minus" => (Func::NowMinus, 1),
        _ => return None,
    })
}

/// A list macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroKind {
    /// `l.all(v, p)`.
    All,
    /// `l.exists(v, p)`.
    Exists,
    /// `l.exists_one(v, p)`.
    ExistsOne,
    /// `l.map(v, e)` / `l.map(v, p, e)`.
    Map,
    /// `l.filter(v, p)`.
    Filter,
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    scopes: Vec<String>,
    depth: usize,
    /// How many more literals the server's literal lifting would turn into variables (0 when
    /// parsing as plain CEL). Lifted strings keep their raw text.
    lift_left: usize,
    /// Nesting of `[...]`: numbers inside are not lifted.
    brackets: usize,
    /// Refuse root identifiers other than `event`, `async` and `vars` (type-checking).
    strict_roots: bool,
    /// The first undeclared root seen in strict mode, reported after syntax errors.
    undeclared: Option<SyntaxErr>,
}

/// `undeclared reference to 'name' (in container '')`, cel-go's message.
fn undeclared(name: &str) -> String {
    format!("undeclared reference to '{name}' (in container '')")
}

type PResult<T> = Result<T, SyntaxErr>;

impl Parser {
    /// Counts one literal against the lifting budget; true if this literal is lifted.
    fn lift(&mut self, number: bool) -> bool {
        if self.lift_left == 0 || (number && self.brackets > 0) {
            return false;
        }
        self.lift_left -= 1;
        true
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn at(&self) -> usize {
        self.toks[self.pos].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok, context: &str) -> PResult<()> {
        if self.eat(t) {
            Ok(())
        } else {
            serr(
                self.at(),
                format!(
                    "expected `{}` {context}, found {}",
                    t.symbol(),
                    self.peek().describe()
                ),
            )
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return serr(self.at(), "expression is nested too deeply");
        }
        Ok(())
    }

    fn parse_root(&mut self) -> PResult<Node> {
        if *self.peek() == Tok::Eof {
            return serr(self.at(), "empty expression");
        }
        let node = self.parse_expr()?;
        if *self.peek() != Tok::Eof {
            return serr(
                self.at(),
                format!(
                    "unexpected {} after a complete expression",
                    self.peek().describe()
                ),
            );
        }
        match self.undeclared.take() {
            Some(e) => Err(e),
            None => Ok(node),
        }
    }

    fn parse_expr(&mut self) -> PResult<Node> {
        self.enter()?;
        let cond = self.parse_or()?;
        let node = if self.eat(&Tok::Question) {
            let then = self.parse_or()?;
            self.expect(&Tok::Colon, "in conditional `c ? a : b`")?;
            let otherwise = self.parse_expr()?;
            Node::Cond(Box::new(cond), Box::new(then), Box::new(otherwise))
        } else {
            cond
        };
        self.depth -= 1;
        Ok(node)
    }

    fn parse_or(&mut self) -> PResult<Node> {
        let saved = self.depth;
        let mut lhs = self.parse_and()?;
        while self.eat(&Tok::OrOr) {
            self.enter()?;
            let rhs = self.parse_and()?;
            lhs = Node::Or(Box::new(lhs), Box::new(rhs));
        }
        self.depth = saved;
        Ok(lhs)
    }

    fn parse_and(&mut self) -> PResult<Node> {
        let saved = self.depth;
        let mut lhs = self.parse_relation()?;
        while self.eat(&Tok::AndAnd) {
            self.enter()?;
            let rhs = self.parse_relation()?;
            lhs = Node::And(Box::new(lhs), Box::new(rhs));
        }
        self.depth = saved;
        Ok(lhs)
    }

    fn parse_relation(&mut self) -> PResult<Node> {
        let saved = self.depth;
        let mut lhs = self.parse_additive()?;
        loop {
            let op = match self.peek() {
                Tok::EqEq => BinOp::Eq,
                Tok::NotEq => BinOp::Ne,
                Tok::Lt => BinOp::Lt,
                Tok::Le => BinOp::Le,
                Tok::Gt => BinOp::Gt,
                Tok::Ge => BinOp::Ge,
                Tok::In => BinOp::In,
                _ => {
                    self.depth = saved;
                    return Ok(lhs);
                }
            };
            self.bump();
            self.enter()?;
            let rhs = self.parse_additive()?;
            lhs = Node::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn parse_additive(&mut self) -> PResult<Node> {
        let saved = self.depth;
        let mut lhs = self.parse_multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => {
                    self.depth = saved;
                    return Ok(lhs);
                }
            };
            self.bump();
            self.enter()?;
            let rhs = self.parse_multiplicative()?;
            lhs = Node::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn parse_multiplicative(&mut self) -> PResult<Node> {
        let saved = self.depth;
        let mut lhs = self.parse_unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => {
                    self.depth = saved;
                    return Ok(lhs);
                }
            };
            self.bump();
            self.enter()?;
            let rhs = self.parse_unary()?;
            lhs = Node::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn parse_unary(&mut self) -> PResult<Node> {
        match self.peek() {
            Tok::Bang => {
                self.bump();
                self.enter()?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Tok::Minus => {
                self.bump();
                self.enter()?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(match inner {
                    // Fold negative literals so `-9223372036854775808` is a plain constant.
                    Node::Int(i) => Node::Int(-i),
                    Node::Float(f) => Node::Float(-f),
                    other => Node::Neg(Box::new(other)),
                })
            }
            _ => self.parse_member(),
        }
    }

    fn parse_member(&mut self) -> PResult<Node> {
        let saved = self.depth;
        let mut node = self.parse_primary()?;
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    self.enter()?;
                    let at = self.at();
                    let name = match self.bump().0 {
                        Tok::Ident(n) => n,
                        Tok::True => "true".to_owned(),
                        Tok::False => "false".to_owned(),
                        Tok::Null => "null".to_owned(),
                        Tok::In => "in".to_owned(),
                        other => {
                            return serr(
                                at,
                                format!(
                                    "expected a field name after `.`, found {}",
                                    other.describe()
                                ),
                            )
                        }
                    };
                    if *self.peek() == Tok::LParen {
                        node = self.parse_method(node, &name, at)?;
                    } else {
                        node = Node::Select(Box::new(node), name);
                    }
                }
                Tok::LBracket => {
                    self.bump();
                    self.enter()?;
                    self.brackets += 1;
                    let index = self.parse_expr();
                    self.brackets -= 1;
                    let index = index?;
                    self.expect(&Tok::RBracket, "to close the index")?;
                    node = Node::Index(Box::new(node), Box::new(index));
                }
                _ => {
                    self.depth = saved;
                    return Ok(node);
                }
            }
        }
    }

    /// Parses `(args)` after `target.name`; the `(` has not been consumed.
    fn parse_method(&mut self, target: Node, name: &str, at: usize) -> PResult<Node> {
        let kind = match name {
            "all" => Some(MacroKind::All),
            "exists" => Some(MacroKind::Exists),
            "exists_one" => Some(MacroKind::ExistsOne),
            "map" => Some(MacroKind::Map),
            "filter" => Some(MacroKind::Filter),
            _ => None,
        };
        if let Some(kind) = kind {
            return self.parse_macro(kind, target, name);
        }
        self.bump(); // (
        let args = self.parse_args(Tok::RParen, "to close the argument list")?;
        let Some((func, arities)) = method(name) else {
            return serr(at, undeclared(name));
        };
        if !arities.contains(&args.len()) {
            return serr(
                at,
                format!(
                    "found no matching overload for '{name}' with {} argument(s)",
                    args.len()
                ),
            );
        }
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(target);
        all.extend(args);
        Ok(Node::Call(func, all))
    }

    fn parse_macro(&mut self, kind: MacroKind, range: Node, name: &str) -> PResult<Node> {
        self.bump(); // (
        let var_at = self.at();
        let var = match self.bump().0 {
            Tok::Ident(v) => v,
            other => {
                return serr(
                    var_at,
                    format!(
                        "`{name}` expects a variable name as its first argument, found {}",
                        other.describe()
                    ),
                )
            }
        };
        if RESERVED.contains(&var.as_str()) {
            return serr(var_at, format!("`{var}` is a reserved word"));
        }
        self.expect(&Tok::Comma, &format!("after the variable of `{name}`"))?;
        let slot = self.scopes.len();
        self.scopes.push(var);
        let first = self.parse_expr();
        let second = match first {
            Ok(_) if kind == MacroKind::Map && self.eat(&Tok::Comma) => Some(self.parse_expr()),
            _ => None,
        };
        self.scopes.pop();
        let first = first?;
        let (filter, body) = match second {
            Some(body) => (Some(Box::new(first)), body?),
            None => (None, first),
        };
        self.expect(&Tok::RParen, &format!("to close `{name}(…)`"))?;
        Ok(Node::Macro {
            kind,
            range: Box::new(range),
            slot,
            filter,
            body: Box::new(body),
        })
    }

    fn parse_args(&mut self, close: Tok, context: &str) -> PResult<Vec<Node>> {
        let mut args = Vec::new();
        if self.eat(&close) {
            return Ok(args);
        }
        loop {
            args.push(self.parse_expr()?);
            if self.eat(&Tok::Comma) {
                // Allow a trailing comma.
                if self.eat(&close) {
                    return Ok(args);
                }
                continue;
            }
            self.expect(&close, context)?;
            return Ok(args);
        }
    }

    fn parse_primary(&mut self) -> PResult<Node> {
        let (tok, at) = self.bump();
        Ok(match tok {
            Tok::Null => Node::Null,
            Tok::True => Node::Bool(true),
            Tok::False => Node::Bool(false),
            Tok::Int(i) => {
                self.lift(true);
                Node::Int(i)
            }
            Tok::Uint(u) => Node::Uint(u),
            Tok::Float(f) => {
                self.lift(true);
                Node::Float(f)
            }
            Tok::Str { value, raw } => {
                if self.lift(false) {
                    Node::Str(raw)
                } else {
                    match value {
                        Ok(v) => Node::Str(v),
                        Err((at, message)) => return serr(at, message),
                    }
                }
            }
            Tok::LParen => {
                self.enter()?;
                let inner = self.parse_expr()?;
                self.expect(&Tok::RParen, "to close `(`")?;
                self.depth -= 1;
                inner
            }
            Tok::LBracket => {
                self.enter()?;
                self.brackets += 1;
                let items = self.parse_args(Tok::RBracket, "to close the list");
                self.brackets -= 1;
                let items = items?;
                self.depth -= 1;
                Node::List(items)
            }
            Tok::LBrace => {
                self.enter()?;
                let mut entries = Vec::new();
                if !self.eat(&Tok::RBrace) {
                    loop {
                        let key = self.parse_expr()?;
                        self.expect(&Tok::Colon, "after a map key")?;
                        let value = self.parse_expr()?;
                        entries.push((key, value));
                        if self.eat(&Tok::Comma) {
                            if self.eat(&Tok::RBrace) {
                                break;
                            }
                            continue;
                        }
                        self.expect(&Tok::RBrace, "to close the map")?;
                        break;
                    }
                }
                self.depth -= 1;
                Node::Map(entries)
            }
            Tok::Ident(name) => {
                if *self.peek() == Tok::LParen {
                    self.enter()?;
                    let call = self.parse_global_call(&name, at);
                    self.depth -= 1;
                    return call;
                }
                if let Some(slot) = self.scopes.iter().rposition(|s| *s == name) {
                    return Ok(Node::Local(slot));
                }
                match name.as_str() {
                    "event" => Node::Event,
                    "async" => Node::Async,
                    n if RESERVED.contains(&n) => {
                        return serr(at, format!("`{n}` is a reserved word"))
                    }
                    "vars" => Node::Ident(name),
                    n if self.strict_roots => {
                        self.undeclared.get_or_insert(SyntaxErr {
                            message: undeclared(n),
                            at,
                        });
                        Node::Ident(name)
                    }
                    _ => Node::Ident(name),
                }
            }
            Tok::Eof => return serr(at, "unexpected end of expression"),
            other => return serr(at, format!("unexpected {}", other.describe())),
        })
    }

    fn parse_global_call(&mut self, name: &str, at: usize) -> PResult<Node> {
        self.bump(); // (
        if name == "has" {
            let arg_at = self.at();
            let args = self.parse_args(Tok::RParen, "to close `has(…)`")?;
            return match <[Node; 1]>::try_from(args) {
                Ok([Node::Select(operand, field)]) => Ok(Node::Has(operand, field)),
                _ => serr(
                    arg_at,
                    "`has` takes a single field selection such as `has(event.data.id)`",
                ),
            };
        }
        let args = self.parse_args(Tok::RParen, "to close the argument list")?;
        let Some((func, arity)) = global(name) else {
            return serr(at, undeclared(name));
        };
        if args.len() != arity {
            return serr(
                at,
                format!(
                    "found no matching overload for '{name}' with {} argument(s)",
                    args.len()
                ),
            );
        }
        Ok(Node::Call(func, args))
    }
}
