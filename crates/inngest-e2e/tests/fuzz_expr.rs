//! Fuzz: the local executor's expression evaluator (`inngest_executor::expr::Expr`).
//!
//! * Token soup and arbitrary text: `compile` never panics; whatever compiles evaluates without
//!   panicking against random `event`/`async` JSON, deterministically, with `eval_bool` agreeing
//!   with `eval`, and its `Display` form compiles back to an expression with the same results.
//! * Well-typed random expressions (integers, strings, bools, field access, lists) always compile
//!   and evaluate exactly as an independent reference evaluator in this file says: the Inngest
//!   server's rules (64-bit ints, errors on overflow and division by zero carried as values,
//!   the server's fixed answers for operators beside an error or unknown, `%v` concatenation
//!   for mixed `+`, truthy `&&`/`||` returning an operand, an unknown result reported as false).
//! * Very long operator chains neither overflow the stack nor are silently accepted wrongly.

mod fuzz_common;

use inngest_executor::expr::{Expr, ExprError, Vars};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Shared checks for anything that compiled.

fn arb_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(
                prop_oneof!["[a-z]{1,3}", Just("data".to_owned()), Just("id".to_owned())],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn arb_event() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (arb_json(), "[a-z/.]{0,8}").prop_map(|(data, name)| json!({ "name": name, "data": data, "id": "e" })),
        1 => arb_json(),
    ]
    .boxed()
}

fn consistent(expr: &Expr, event: &Value, async_: &Value) -> Result<(), TestCaseError> {
    let vars = Vars::new().with_event(event).with_async(async_);
    let v1 = expr.eval(&vars);
    let v2 = expr.eval(&vars);
    ensure!(v1 == v2, "not deterministic: {v1:?} vs {v2:?}");
    let b = expr.eval_bool(&vars);
    match (&v1, &b) {
        (Ok(Value::Bool(x)), Ok(y)) => ensure!(x == y, "eval {x} but eval_bool {y}"),
        (Ok(Value::Null), Ok(y)) => ensure!(!y, "null counted as true"),
        (Ok(_), Err(ExprError::NotBool { .. })) => {}
        (Err(ExprError::Eval { .. }), Err(ExprError::Eval { .. })) => {}
        // A value that is not representable as JSON (a non-finite double) still has a truth value
        // only if it is a bool; anything else is NotBool.
        (Err(ExprError::Eval { .. }), Err(ExprError::NotBool { .. })) => {}
        other => {
            return Err(TestCaseError::fail(format!(
                "eval and eval_bool disagree: {other:?}"
            )))
        }
    }
    // Display round trip.
    let text = expr.to_string();
    ensure!(text == expr.source(), "Display differs from source");
    let again = Expr::compile(&text)
        .map_err(|e| TestCaseError::fail(format!("its own text does not compile: {e}")))?;
    ensure!(
        again.eval(&vars) == v1,
        "recompiled expression evaluates differently"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Campaign 1: token soup.

const TOKENS: &[&str] = &[
    "event",
    "async",
    ".",
    "data",
    "id",
    "name",
    "items",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "?",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "in",
    "size",
    "has",
    "exists",
    "all",
    "exists_one",
    "filter",
    "map",
    "contains",
    "startsWith",
    "endsWith",
    "string",
    "int",
    "double",
    "x",
    "y",
    "'a'",
    "\"b\"",
    "r'\\d'",
    "'''t'''",
    "'\\x41'",
    "'\\u00e9'",
    "'\\U0001F600'",
    "'\\101'",
    "'\\z'",
    "'",
    "\"",
    "\\",
    "1",
    "0",
    "-1",
    "1.5",
    "1e308",
    "1e309",
    ".5",
    "0x7fffffffffffffff",
    "0xFFFFFFFFFFFFFFFF",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "42u",
    "null",
    "true",
    "false",
    " ",
    "\n",
    "é",
    "🙂",
    "$",
    "#",
    "@",
];

fn arb_soup() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => vec(proptest::sample::select(TOKENS), 0..30).prop_map(|t| t.concat()),
        2 => vec(proptest::sample::select(TOKENS), 0..30).prop_map(|t| t.join(" ")),
        1 => "\\PC{0,40}",
        1 => ".{0,20}",
    ]
}

#[test]
fn fuzz_expr_soup() {
    fuzz_common::campaign(
        "expr_soup",
        2048,
        (arb_soup(), arb_event(), arb_event()),
        |(src, event, async_)| {
            match Expr::compile(&src) {
                Ok(expr) => consistent(&expr, &event, &async_)?,
                Err(ExprError::Syntax { expr, position, .. }) => {
                    ensure!(expr == src, "error names another expression");
                    ensure!(
                        position >= 1 && position <= src.chars().count() + 1,
                        "position {position} outside the expression"
                    );
                }
                Err(other) => {
                    return Err(TestCaseError::fail(format!(
                        "compile returned a non-syntax error: {other:?}"
                    )))
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Campaign 2: well-typed expressions against a reference evaluator.

#[derive(Debug, Clone)]
enum I {
    Lit(u64),
    Field,
    Neg(Box<I>),
    Bin(char, Box<I>, Box<I>),
    Size(Box<S>),
    Cond(Box<B>, Box<I>, Box<I>),
}

#[derive(Debug, Clone)]
enum S {
    Lit(String),
    Field,
    Cat(Box<S>, Box<S>),
    Of(Box<I>),
}

#[derive(Debug, Clone)]
enum B {
    Lit(bool),
    Cmp(&'static str, Box<I>, Box<I>),
    StrEq(bool, Box<S>, Box<S>),
    And(Box<B>, Box<B>),
    Or(Box<B>, Box<B>),
    Not(Box<B>),
    Str(&'static str, Box<S>, Box<S>),
    In(Box<I>, Vec<I>),
    HasField(bool),
}

fn arb_i_leaf() -> BoxedStrategy<I> {
    prop_oneof![
        4 => (0u64..20).prop_map(I::Lit),
        2 => any::<u64>().prop_map(I::Lit),
        1 => proptest::sample::select(vec![
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
            u64::MAX - 1,
            1 << 32,
        ])
        .prop_map(I::Lit),
        2 => Just(I::Field),
    ]
    .boxed()
}

fn arb_s_leaf() -> BoxedStrategy<S> {
    prop_oneof![
        3 => "[a-z0-9 é]{0,4}".prop_map(S::Lit),
        1 => Just(S::Field),
    ]
    .boxed()
}

/// Three mutually recursive typed generators, built to a fixed depth.
fn gen(depth: u32) -> (BoxedStrategy<I>, BoxedStrategy<S>, BoxedStrategy<B>) {
    if depth == 0 {
        let b = prop_oneof![
            any::<bool>().prop_map(B::Lit),
            any::<bool>().prop_map(B::HasField)
        ]
        .boxed();
        return (arb_i_leaf(), arb_s_leaf(), b);
    }
    let (i, s, b) = gen(depth - 1);
    let ii = prop_oneof![
        3 => arb_i_leaf(),
        1 => i.clone().prop_map(|x| I::Neg(Box::new(x))),
        4 => (proptest::sample::select(vec!['+', '-', '*', '/', '%']), i.clone(), i.clone())
            .prop_map(|(op, l, r)| I::Bin(op, Box::new(l), Box::new(r))),
        1 => s.clone().prop_map(|x| I::Size(Box::new(x))),
        1 => (b.clone(), i.clone(), i.clone())
            .prop_map(|(c, t, e)| I::Cond(Box::new(c), Box::new(t), Box::new(e))),
    ]
    .boxed();
    let ss = prop_oneof![
        3 => arb_s_leaf(),
        2 => (s.clone(), s.clone()).prop_map(|(l, r)| S::Cat(Box::new(l), Box::new(r))),
        1 => i.clone().prop_map(|x| S::Of(Box::new(x))),
    ]
    .boxed();
    let bb = prop_oneof![
        1 => any::<bool>().prop_map(B::Lit),
        3 => (proptest::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]), i.clone(), i.clone())
            .prop_map(|(op, l, r)| B::Cmp(op, Box::new(l), Box::new(r))),
        1 => (any::<bool>(), s.clone(), s.clone())
            .prop_map(|(eq, l, r)| B::StrEq(eq, Box::new(l), Box::new(r))),
        2 => (b.clone(), b.clone()).prop_map(|(l, r)| B::And(Box::new(l), Box::new(r))),
        2 => (b.clone(), b.clone()).prop_map(|(l, r)| B::Or(Box::new(l), Box::new(r))),
        1 => b.clone().prop_map(|x| B::Not(Box::new(x))),
        1 => (proptest::sample::select(vec!["contains", "startsWith", "endsWith"]), s.clone(), s.clone())
            .prop_map(|(m, l, r)| B::Str(m, Box::new(l), Box::new(r))),
        1 => (i.clone(), vec(i, 0..4)).prop_map(|(x, l)| B::In(Box::new(x), l)),
        1 => any::<bool>().prop_map(B::HasField),
    ]
    .boxed();
    (ii, ss, bb)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn ri(e: &I) -> String {
    match e {
        I::Lit(n) => n.to_string(),
        I::Field => "event.data.n".into(),
        I::Neg(x) => format!("-({})", ri(x)),
        I::Bin(op, l, r) => format!("({}) {op} ({})", ri(l), ri(r)),
        I::Size(s) => format!("size({})", rs(s)),
        I::Cond(c, t, f) => format!("({}) ? ({}) : ({})", rb(c), ri(t), ri(f)),
    }
}

fn rs(e: &S) -> String {
    match e {
        S::Lit(s) => quote(s),
        S::Field => "event.data.s".into(),
        S::Cat(l, r) => format!("({}) + ({})", rs(l), rs(r)),
        S::Of(i) => format!("string({})", ri(i)),
    }
}

fn rb(e: &B) -> String {
    match e {
        B::Lit(b) => b.to_string(),
        B::Cmp(op, l, r) => format!("({}) {op} ({})", ri(l), ri(r)),
        B::StrEq(eq, l, r) => format!("({}) {} ({})", rs(l), if *eq { "==" } else { "!=" }, rs(r)),
        B::And(l, r) => format!("({}) && ({})", rb(l), rb(r)),
        B::Or(l, r) => format!("({}) || ({})", rb(l), rb(r)),
        B::Not(x) => format!("!({})", rb(x)),
        B::Str(m, l, r) => format!("({}).{m}({})", rs(l), rs(r)),
        B::In(x, l) => format!(
            "({}) in [{}]",
            ri(x),
            l.iter().map(ri).collect::<Vec<_>>().join(", ")
        ),
        B::HasField(present) => {
            if *present {
                "has(event.data.n)".into()
            } else {
                "has(event.data.nope)".into()
            }
        }
    }
}

/// The reference evaluator: the server's rules restated over the values this generator can
/// produce (ints, strings, bools), with cel-go's error values (`E`) and unknowns (`U`, a missing
/// field) carried through operators as the server's call wrapper answers them.
struct Data {
    n: i64,
    s: String,
}

#[derive(Debug, Clone, PartialEq)]
enum V {
    I(i64),
    S(String),
    B(bool),
    /// An error value.
    E,
    /// Unknown (a missing field).
    U,
}

impl V {
    fn bad(&self) -> bool {
        matches!(self, V::E | V::U)
    }

    /// The server's truthiness: unknown, error, `false`, `""` and `0` are falsy.
    fn truthy(&self) -> bool {
        match self {
            V::I(i) => *i != 0,
            V::S(s) => !s.is_empty(),
            V::B(b) => *b,
            V::E | V::U => false,
        }
    }

    /// Go's `%v`.
    fn fmt(&self) -> String {
        match self {
            V::I(i) => i.to_string(),
            V::S(s) => s.clone(),
            V::B(b) => b.to_string(),
            V::E | V::U => unreachable!("formatted only when known"),
        }
    }
}

fn int(v: Option<i128>) -> V {
    v.and_then(|v| i64::try_from(v).ok()).map_or(V::E, V::I)
}

/// Negated literals are folded at compile time (`-(-(9223372036854775808))` is the constant
/// 9223372036854775808): only the folded value is range-checked (CEL ints are 64-bit).
fn folded(e: &I) -> Option<i128> {
    match e {
        I::Lit(n) => Some(i128::from(*n)),
        I::Neg(x) => folded(x).map(|v| -v),
        _ => None,
    }
}

/// `+`: with an unknown or error operand, the first operand that is not unknown (both unknown:
/// `false`); ints add (overflow is an error), strings concatenate, other pairs concatenate `%v`.
fn plus(a: V, b: V) -> V {
    match (a, b) {
        (V::U, V::U) => V::B(false),
        (V::U, x) => x,
        (x, _) if x.bad() => x,
        (x, y) if y.bad() => x,
        (V::I(x), V::I(y)) => int(i128::from(x).checked_add(i128::from(y))),
        (V::S(x), V::S(y)) => V::S(x + &y),
        (x, y) => V::S(x.fmt() + &y.fmt()),
    }
}

fn arith(op: char, a: V, b: V) -> V {
    if a.bad() || b.bad() {
        return V::B(false);
    }
    let (V::I(a), V::I(b)) = (a, b) else {
        return V::E;
    };
    let (a, b) = (i128::from(a), i128::from(b));
    match op {
        '-' => int(a.checked_sub(b)),
        '*' => int(a.checked_mul(b)),
        '/' | '%' if b == 0 => V::E,
        '/' => int(a.checked_div(b)),
        _ => int(a.checked_rem(b)),
    }
}

fn oi(e: &I, d: &Data) -> V {
    if let Some(v) = folded(e) {
        return int(Some(v));
    }
    match e {
        I::Lit(n) => int(Some(i128::from(*n))),
        I::Field => V::I(d.n),
        I::Neg(x) => match oi(x, d) {
            V::I(i) => int(Some(-i128::from(i))),
            x if x.bad() => V::B(false),
            _ => V::E,
        },
        I::Bin('+', l, r) => plus(oi(l, d), oi(r, d)),
        I::Bin(op, l, r) => arith(*op, oi(l, d), oi(r, d)),
        I::Size(s) => match os(s, d) {
            V::S(s) => V::I(s.chars().count() as i64),
            x if x.bad() => V::I(0),
            _ => V::E,
        },
        I::Cond(c, t, f) => {
            if ob(c, d).truthy() {
                oi(t, d)
            } else {
                oi(f, d)
            }
        }
    }
}

fn os(e: &S, d: &Data) -> V {
    match e {
        S::Lit(s) => V::S(s.clone()),
        S::Field => V::S(d.s.clone()),
        S::Cat(l, r) => plus(os(l, d), os(r, d)),
        S::Of(i) => match oi(i, d) {
            x if x.bad() => V::B(false),
            x => V::S(x.fmt()),
        },
    }
}

/// `== != < <= > >=`: with an unknown or error operand, `==` false and `!=` true (no nulls
/// here), `<`/`<=` true iff the left side is the bad one, `>`/`>=` the opposite. Otherwise
/// same-type comparison; equality across types is false, ordering across types an error.
fn cmp(op: &str, a: V, b: V) -> V {
    if a.bad() || b.bad() {
        let left = a.bad();
        return V::B(match op {
            "==" => false,
            "!=" => true,
            "<" | "<=" => left,
            _ => !left,
        });
    }
    let ord = match (&a, &b) {
        (V::I(x), V::I(y)) => Some(x.cmp(y)),
        (V::S(x), V::S(y)) => Some(x.cmp(y)),
        (V::B(x), V::B(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match (op, ord) {
        ("==", o) => V::B(o == Some(std::cmp::Ordering::Equal)),
        ("!=", o) => V::B(o != Some(std::cmp::Ordering::Equal)),
        (_, None) => V::E,
        ("<", Some(o)) => V::B(o.is_lt()),
        ("<=", Some(o)) => V::B(o.is_le()),
        (">", Some(o)) => V::B(o.is_gt()),
        (_, Some(o)) => V::B(o.is_ge()),
    }
}

/// `&&` / `||`: plain logic on two bools, else (both evaluated) the first falsy (`&&`) or
/// truthy (`||`) operand, else the last.
fn logic(or: bool, a: V, b: V) -> V {
    if let (V::B(x), V::B(y)) = (&a, &b) {
        return V::B(if or { *x || *y } else { *x && *y });
    }
    if a.truthy() == or {
        a
    } else {
        b
    }
}

fn ob(e: &B, d: &Data) -> V {
    match e {
        B::Lit(b) => V::B(*b),
        B::Cmp(op, l, r) => cmp(op, oi(l, d), oi(r, d)),
        B::StrEq(eq, l, r) => cmp(if *eq { "==" } else { "!=" }, os(l, d), os(r, d)),
        B::And(l, r) => logic(false, ob(l, d), ob(r, d)),
        B::Or(l, r) => logic(true, ob(l, d), ob(r, d)),
        B::Not(x) => match ob(x, d) {
            V::B(b) => V::B(!b),
            x if x.bad() => V::B(false),
            _ => V::E,
        },
        B::Str(m, l, r) => match (os(l, d), os(r, d)) {
            (a, b) if a.bad() || b.bad() => V::B(false),
            (V::S(a), V::S(b)) => V::B(match *m {
                "contains" => a.contains(&b),
                "startsWith" => a.starts_with(&b),
                _ => a.ends_with(&b),
            }),
            _ => V::E,
        },
        B::In(x, l) => {
            let x = oi(x, d);
            let items: Vec<V> = l.iter().map(|i| oi(i, d)).collect();
            // A list literal with an unknown or error element is itself unknown or an error.
            if x.bad() || items.iter().any(V::bad) {
                return V::B(false);
            }
            V::B(
                items
                    .iter()
                    .any(|i| cmp("==", x.clone(), i.clone()) == V::B(true)),
            )
        }
        B::HasField(present) => {
            if *present {
                V::B(true)
            } else {
                V::U
            }
        }
    }
}

/// The top-level result: unknown is `false`, an error fails the evaluation.
fn result(v: V) -> Result<Value, ()> {
    match v {
        V::I(i) => Ok(Value::from(i)),
        V::S(s) => Ok(Value::from(s)),
        V::B(b) => Ok(Value::from(b)),
        V::U => Ok(Value::from(false)),
        V::E => Err(()),
    }
}

#[derive(Debug, Clone)]
enum Typed {
    I(I),
    S(S),
    B(B),
}

fn arb_typed() -> impl Strategy<Value = (Typed, i64, String)> {
    let (i, s, b) = gen(4);
    (
        prop_oneof![
            2 => i.prop_map(Typed::I),
            1 => s.prop_map(Typed::S),
            3 => b.prop_map(Typed::B),
        ],
        prop_oneof![3 => -5i64..20, 1 => any::<i64>()],
        "[a-z é]{0,4}",
    )
}

#[test]
fn fuzz_expr_against_reference() {
    fuzz_common::campaign("expr_reference", 1024, arb_typed(), |(typed, n, s)| {
        let data = Data { n, s: s.clone() };
        let (src, want) = match &typed {
            Typed::I(e) => (ri(e), result(oi(e, &data))),
            Typed::S(e) => (rs(e), result(os(e, &data))),
            Typed::B(e) => (rb(e), result(ob(e, &data))),
        };
        let expr = Expr::compile(&src)
            .map_err(|e| TestCaseError::fail(format!("{src}: does not compile: {e}")))?;
        let event = json!({ "name": "t", "data": { "n": n, "s": s } });
        // JSON integers stay ints here (the server's typing for data built in Go).
        let got = expr.eval(&Vars::new().with_event(&event).with_typed_numbers());
        match (&want, &got) {
            (Ok(w), Ok(g)) => ensure!(w == g, "{src}\n  reference {w}\n  evaluator {g}"),
            (Err(()), Err(ExprError::Eval { .. })) => {}
            _ => {
                return Err(TestCaseError::fail(format!(
                    "{src}\n  reference {want:?}\n  evaluator {got:?}"
                )))
            }
        }
        consistent(&expr, &event, &Value::Null)
    });
}

// ---------------------------------------------------------------------------------------------
// Long inputs.

/// Runs `f` on a thread with the default 2 MiB test stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    on_small_stack(|| {
        for n in [60usize, 100_000] {
            let cases: Vec<(String, Value)> = vec![
                (vec!["1"; n].join(" + "), json!(n)),
                (vec!["1"; n].join(" * "), json!(1)),
                (vec!["true"; n].join(" && "), json!(true)),
                (vec!["false"; n].join(" || "), json!(false)),
                (vec!["1 == 1"; n].join(" && "), json!(true)),
                (
                    format!("{}1", "- ".repeat(n)),
                    json!(if n % 2 == 0 { 1 } else { -1 }),
                ),
                (format!("{}true", "!".repeat(n)), json!(n % 2 == 0)),
                (format!("{}1{}", "(".repeat(n), ")".repeat(n)), json!(1)),
                (
                    format!("size({}1{})", "[".repeat(n), "]".repeat(n)),
                    json!(1),
                ),
                // No event: unknown, which is reported as `false`.
                (format!("event{}", ".data".repeat(n)), json!(false)),
                (format!("event{}", "[0]".repeat(n)), json!(false)),
                (
                    (0..n).map(|_| "true ? 1 : ").collect::<String>() + "0",
                    json!(1),
                ),
                (format!("'{}'", "a".repeat(n)), json!("a".repeat(n))),
            ];
            for (i, (src, want)) in cases.into_iter().enumerate() {
                // Either the right value, or refused at compile time as too deep; never a crash.
                // (Messages quote the expression, so only the case number is printed.)
                match Expr::compile(&src) {
                    Ok(e) => {
                        let got = e.eval(&Vars::new());
                        assert!(
                            got.as_ref().ok() == Some(&want),
                            "case {i} (n = {n}) evaluated wrongly"
                        );
                        drop(e);
                    }
                    Err(ExprError::Syntax { message, .. }) => {
                        assert!(n > 60, "case {i} (n = {n}) refused: {message}");
                        assert!(message.contains("too deep"), "case {i}: {message}");
                    }
                    Err(_) => panic!("case {i} (n = {n}): compile returned a non-syntax error"),
                }
            }
        }
    });
}
