//! Fuzz: the local executor's expression evaluator (`inngest_executor::expr::Expr`).
//!
//! * Token soup and arbitrary text: `compile` never panics; whatever compiles evaluates without
//!   panicking against random `event`/`async` JSON, deterministically, with `eval_bool` agreeing
//!   with `eval`, and its `Display` form compiles back to an expression with the same results.
//! * Well-typed random expressions (integers, strings, bools, field access, lists) always compile
//!   and evaluate exactly as an independent reference evaluator in this file says (exact integer
//!   arithmetic over `i64::MIN ..= u64::MAX`, truncating `/` and `%`, errors on overflow and
//!   division by zero, CEL's error absorption in `&&`/`||`).
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

const INT_MIN: i128 = i64::MIN as i128;
const INT_MAX: i128 = u64::MAX as i128;

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

/// The reference evaluator. `Err(())` = the expression must fail to evaluate.
struct Data {
    n: i64,
    s: String,
}

fn range(v: Option<i128>) -> Result<i128, ()> {
    match v {
        Some(v) if (INT_MIN..=INT_MAX).contains(&v) => Ok(v),
        _ => Err(()),
    }
}

/// Negated literals are folded at compile time (`-(-(9223372036854775809))` is the constant
/// 9223372036854775809): only the folded value is range-checked.
fn folded(e: &I) -> Option<i128> {
    match e {
        I::Lit(n) => Some(i128::from(*n)),
        I::Neg(x) => folded(x).map(|v| -v),
        _ => None,
    }
}

fn oi(e: &I, d: &Data) -> Result<i128, ()> {
    if let Some(v) = folded(e) {
        return range(Some(v));
    }
    match e {
        I::Lit(n) => Ok(i128::from(*n)),
        I::Field => Ok(i128::from(d.n)),
        I::Neg(x) => range(oi(x, d)?.checked_neg()),
        I::Bin(op, l, r) => {
            let (a, b) = (oi(l, d)?, oi(r, d)?);
            match op {
                '+' => range(a.checked_add(b)),
                '-' => range(a.checked_sub(b)),
                '*' => range(a.checked_mul(b)),
                '/' if b == 0 => Err(()),
                '/' => range(a.checked_div(b)),
                '%' if b == 0 => Err(()),
                _ => range(a.checked_rem(b)),
            }
        }
        I::Size(s) => Ok(os(s, d)?.chars().count() as i128),
        I::Cond(c, t, f) => {
            if ob(c, d)? {
                oi(t, d)
            } else {
                oi(f, d)
            }
        }
    }
}

fn os(e: &S, d: &Data) -> Result<String, ()> {
    match e {
        S::Lit(s) => Ok(s.clone()),
        S::Field => Ok(d.s.clone()),
        S::Cat(l, r) => Ok(os(l, d)? + &os(r, d)?),
        S::Of(i) => Ok(oi(i, d)?.to_string()),
    }
}

fn ob(e: &B, d: &Data) -> Result<bool, ()> {
    match e {
        B::Lit(b) => Ok(*b),
        B::Cmp(op, l, r) => {
            let (a, b) = (oi(l, d)?, oi(r, d)?);
            Ok(match *op {
                "==" => a == b,
                "!=" => a != b,
                "<" => a < b,
                "<=" => a <= b,
                ">" => a > b,
                _ => a >= b,
            })
        }
        B::StrEq(eq, l, r) => Ok((os(l, d)? == os(r, d)?) == *eq),
        // CEL: false absorbs an error on either side of `&&`, true on either side of `||`.
        B::And(l, r) => match (ob(l, d), ob(r, d)) {
            (Ok(false), _) | (_, Ok(false)) => Ok(false),
            (Ok(true), Ok(true)) => Ok(true),
            _ => Err(()),
        },
        B::Or(l, r) => match (ob(l, d), ob(r, d)) {
            (Ok(true), _) | (_, Ok(true)) => Ok(true),
            (Ok(false), Ok(false)) => Ok(false),
            _ => Err(()),
        },
        B::Not(x) => Ok(!ob(x, d)?),
        B::Str(m, l, r) => {
            let (a, b) = (os(l, d)?, os(r, d)?);
            Ok(match *m {
                "contains" => a.contains(&b),
                "startsWith" => a.starts_with(&b),
                _ => a.ends_with(&b),
            })
        }
        B::In(x, l) => {
            let x = oi(x, d)?;
            let mut items = Vec::new();
            for i in l {
                items.push(oi(i, d)?);
            }
            Ok(items.contains(&x))
        }
        B::HasField(present) => Ok(*present),
    }
}

fn int_json(v: i128) -> Value {
    match i64::try_from(v) {
        Ok(i) => Value::from(i),
        Err(_) => Value::from(u64::try_from(v).expect("in range")),
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
            Typed::I(e) => (ri(e), oi(e, &data).map(int_json)),
            Typed::S(e) => (rs(e), os(e, &data).map(Value::from)),
            Typed::B(e) => (rb(e), ob(e, &data).map(Value::from)),
        };
        let expr = Expr::compile(&src)
            .map_err(|e| TestCaseError::fail(format!("{src}: does not compile: {e}")))?;
        let event = json!({ "name": "t", "data": { "n": n, "s": s } });
        let got = expr.eval(&Vars::new().with_event(&event));
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
                (format!("event{}", ".data".repeat(n)), Value::Null),
                (format!("event{}", "[0]".repeat(n)), Value::Null),
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
