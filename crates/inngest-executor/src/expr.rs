//! The expression language the local executor evaluates: trigger `expression`s, `cancel[].if`,
//! `batchEvents.if`, `WaitForEvent` `opts.if`, and the keys of concurrency, rate-limit, debounce,
//! singleton and priority settings.
//!
//! Inngest writes these in CEL. This module implements the subset of CEL that Inngest expressions
//! use, with a hand-written parser and tree-walking evaluator over `serde_json` values (the
//! `cel-interpreter` 0.10 crate was evaluated and rejected: its parser panics on malformed input
//! such as `1 +` or an unterminated string, and a missing field is an evaluation error, so
//! `event.data.missing == null` could never be true).
//!
//! # Variables
//!
//! * `event` — the run's triggering event (for batches, the first event), as JSON.
//! * `async` — the incoming candidate event (the event being waited for, or the cancellation
//!   event), as JSON.
//!
//! Any other identifier is rejected by [`Expr::compile`]. See [`Vars`].
//!
//! # Supported syntax
//!
//! * Literals: `null`, `true`, `false`, integers (`42`, `0x2A`, `42u`), doubles (`1.5`, `1e3`),
//!   strings in single or double quotes with CEL escapes (`'it\'s'`, `"say \"hi\""`, `\n`, `\t`,
//!   `\\`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`, octal `\ooo`), triple-quoted strings (`'''…'''`), raw
//!   strings (`r'C:\path'`), lists `[1, 'a']` and maps `{'k': 1}` (string keys).
//! * Field access `event.data.user.id`, indexing `event.data.items[0]`, `event.data['odd-key']`.
//! * Operators, loosest first: `c ? a : b`; `||`; `&&`; `==` `!=` `<` `<=` `>` `>=` `in`;
//!   `+` `-`; `*` `/` `%`; unary `!` and `-`.
//! * Functions: `size(x)` / `x.size()`, `has(a.b)`, `s.contains(t)`, `s.startsWith(t)`,
//!   `s.endsWith(t)`, `string(x)`, `int(x)`, `double(x)`, and the list macros
//!   `l.exists(v, p)`, `l.all(v, p)`, `l.exists_one(v, p)`, `l.filter(v, p)`, `l.map(v, e)`,
//!   `l.map(v, p, e)` (over a map they iterate its keys).
//!
//! # Semantics (decided for JSON data)
//!
//! * **Missing data is `null`, never an error.** Selecting a field that does not exist, a field of
//!   something that is not an object, an index out of range, or anything of `null` yields `null`.
//!   So `event.data.missing == null` is `true`, `event.data.missing == 1` is `false`, and
//!   `event.data.a.b.c` is `null` when `a` is absent. Consequence: if *both* sides of
//!   `async.data.id == event.data.id` are missing, they are equal (`null == null`).
//! * **Numbers are JSON numbers**: integers and doubles compare by value, so `1 == 1.0` and
//!   `event.data.n < 2.5` work whatever way the JSON spelled the number. Integer arithmetic is
//!   exact (range `i64::MIN ..= u64::MAX`, overflow is an error); mixing an integer and a double
//!   gives a double; integer `/` truncates.
//! * **Equality never fails**: values of different types are simply unequal (`1 == '1'` is
//!   `false`, `!=` is `true`). Lists and maps compare element by element.
//! * **Ordering** (`<`, `<=`, `>`, `>=`) is defined between two numbers, two strings (by code point)
//!   or two bools; any other pair (including anything with `null`) compares as `false`.
//! * **`null` counts as `false`** wherever a bool is needed (`&&`, `||`, `!`, `? :`, macro
//!   predicates and the result of [`Expr::eval_bool`]), so a missing flag never matches. Other
//!   non-bool values there are errors.
//! * `&&` and `||` follow CEL's error absorption: `false && <error>` is `false` and
//!   `true || <error>` is `true`, in either order.
//! * `size(null)` is `0`; `x in null` and `null.startsWith(…)` (etc.) are `false`.
//!
//! Runtime errors (type mismatches such as `'a' - 1`, integer overflow, division by zero, a bad
//! `int('x')` conversion) are returned as [`ExprError::Eval`]; the executor treats them as
//! "no match".

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde_json::Value as Json;

use inngest_protocol::expr::{self as syntax, BinOp, Func, MacroKind, Node};

/// Why an expression could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression is not valid: a syntax error, an unknown variable or function, or a wrong
    /// number of arguments. Reported by [`Expr::compile`].
    #[error("invalid expression {expr:?}: {message} at position {position}")]
    Syntax {
        /// The expression source.
        expr: String,
        /// What is wrong.
        message: String,
        /// 1-based character position in `expr` where the problem was found.
        position: usize,
    },
    /// Evaluation failed (a type mismatch, integer overflow, division by zero, a failed
    /// conversion, or a result that cannot be represented as JSON).
    #[error("expression {expr:?} failed: {message}")]
    Eval {
        /// The expression source.
        expr: String,
        /// What went wrong.
        message: String,
    },
    /// [`Expr::eval_bool`] was used on an expression whose value is not a bool (or `null`).
    #[error("expression {expr:?} must evaluate to a bool, got {got}")]
    NotBool {
        /// The expression source.
        expr: String,
        /// The type of the value it produced (`int`, `double`, `string`, `list` or `map`).
        got: String,
    },
}

/// The variables an expression is evaluated with. A variable that is `None` evaluates as `null`
/// (so every field of it is `null` too).
///
/// ```
/// # use inngest_executor::expr::{Expr, Vars};
/// let trigger = serde_json::json!({"name": "order/created", "data": {"id": 7}});
/// let incoming = serde_json::json!({"name": "order/paid", "data": {"id": 7}});
/// let expr = Expr::compile("async.data.id == event.data.id").unwrap();
/// assert!(expr.eval_bool(&Vars::new().with_event(&trigger).with_async(&incoming)).unwrap());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// `event`: the run's triggering event as JSON (for a batch, its first event).
    pub event: Option<&'a Json>,
    /// `async`: the incoming candidate event as JSON (the awaited or cancelling event).
    pub async_: Option<&'a Json>,
}

impl<'a> Vars<'a> {
    /// No variables set: both `event` and `async` evaluate as `null`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `event`, the run's triggering event.
    pub fn with_event(mut self, event: &'a Json) -> Self {
        self.event = Some(event);
        self
    }

    /// Sets `async`, the incoming candidate event.
    pub fn with_async(mut self, async_: &'a Json) -> Self {
        self.async_ = Some(async_);
        self
    }
}

/// A compiled expression. Compile once (at sync time, so invalid expressions are reported then)
/// and evaluate many times; cloning is cheap. See the [module docs](self) for the language.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    root: Arc<Node>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&&*self.source).finish()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Expr {}

impl Expr {
    /// Parses and checks `src`. Syntax errors, unknown variables (anything but `event`, `async`
    /// and macro variables), unknown functions and wrong argument counts are reported here as
    /// [`ExprError::Syntax`], naming the expression and the 1-based character position.
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        let root = syntax::parse(src).map_err(|e| ExprError::Syntax {
            expr: e.expr,
            message: e.message,
            position: e.position,
        })?;
        Ok(Expr {
            source: src.into(),
            root: Arc::new(root),
        })
    }

    /// The expression's source text, exactly as given to [`Expr::compile`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression as a condition. `true`/`false` are returned as they are and
    /// `null` (for example a missing field) counts as `false`; any other result is
    /// [`ExprError::NotBool`].
    pub fn eval_bool(&self, vars: &Vars<'_>) -> Result<bool, ExprError> {
        match self.run(vars)? {
            Val::Bool(b) => Ok(b),
            Val::Null => Ok(false),
            other => Err(ExprError::NotBool {
                expr: self.source.to_string(),
                got: other.type_name().to_owned(),
            }),
        }
    }

    /// Evaluates the expression to a JSON value (used for concurrency, rate-limit, debounce and
    /// singleton keys and for `priority.run`). Integers become JSON integers, doubles JSON
    /// floats; a non-finite double is an error.
    pub fn eval(&self, vars: &Vars<'_>) -> Result<Json, ExprError> {
        let v = self.run(vars)?;
        v.to_json().map_err(|message| ExprError::Eval {
            expr: self.source.to_string(),
            message,
        })
    }

    fn run<'a>(&'a self, vars: &Vars<'a>) -> Result<Val<'a>, ExprError> {
        let mut env = Env {
            event: vars.event.map_or(Val::Null, Val::from_json),
            async_: vars.async_.map_or(Val::Null, Val::from_json),
            locals: Vec::new(),
        };
        eval(&self.root, &mut env).map_err(|message| ExprError::Eval {
            expr: self.source.to_string(),
            message,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Values and evaluation

/// A runtime value. JSON input is borrowed, not copied.
#[derive(Debug, Clone)]
enum Val<'a> {
    Null,
    Bool(bool),
    /// Any integer in `i64::MIN ..= u64::MAX`.
    Int(i128),
    Float(f64),
    Str(Cow<'a, str>),
    List(List<'a>),
    Map(Obj<'a>),
}

#[derive(Debug, Clone)]
enum List<'a> {
    Json(&'a [Json]),
    Owned(Vec<Val<'a>>),
}

#[derive(Debug, Clone)]
enum Obj<'a> {
    Json(&'a serde_json::Map<String, Json>),
    Owned(Vec<(String, Val<'a>)>),
}

const INT_MIN: i128 = i64::MIN as i128;
const INT_MAX: i128 = u64::MAX as i128;

fn check_int(v: Option<i128>, what: &str) -> Result<Val<'static>, String> {
    match v {
        Some(v) if (INT_MIN..=INT_MAX).contains(&v) => Ok(Val::Int(v)),
        _ => Err(format!("integer overflow in {what}")),
    }
}

impl<'a> Val<'a> {
    fn from_json(v: &'a Json) -> Val<'a> {
        match v {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Val::Int(i128::from(u))
                } else {
                    Val::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => Val::Str(Cow::Borrowed(s)),
            Json::Array(items) => Val::List(List::Json(items)),
            Json::Object(map) => Val::Map(Obj::Json(map)),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "double",
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::Map(_) => "map",
        }
    }

    fn to_json(&self) -> Result<Json, String> {
        Ok(match self {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Int(i) => match i64::try_from(*i) {
                Ok(v) => Json::from(v),
                Err(_) => Json::from(u64::try_from(*i).map_err(|_| "integer out of range")?),
            },
            Val::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .ok_or_else(|| format!("{f} cannot be represented in JSON"))?,
            Val::Str(s) => Json::String(s.to_string()),
            Val::List(List::Json(items)) => Json::Array(items.to_vec()),
            Val::List(List::Owned(items)) => {
                Json::Array(items.iter().map(Val::to_json).collect::<Result<_, _>>()?)
            }
            Val::Map(Obj::Json(map)) => Json::Object((*map).clone()),
            Val::Map(Obj::Owned(entries)) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), v.to_json()?);
                }
                Json::Object(map)
            }
        })
    }

    fn field(&self, name: &str) -> Option<Val<'a>> {
        match self {
            Val::Map(Obj::Json(map)) => map.get(name).map(Val::from_json),
            Val::Map(Obj::Owned(entries)) => entries
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }
}

impl<'a> List<'a> {
    fn len(&self) -> usize {
        match self {
            List::Json(items) => items.len(),
            List::Owned(items) => items.len(),
        }
    }

    fn get(&self, i: usize) -> Option<Val<'a>> {
        match self {
            List::Json(items) => items.get(i).map(Val::from_json),
            List::Owned(items) => items.get(i).cloned(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Val<'a>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<'a> Obj<'a> {
    fn len(&self) -> usize {
        self.keys().len()
    }

    fn keys(&self) -> Vec<Cow<'a, str>> {
        match self {
            Obj::Json(map) => map.keys().map(|k| Cow::Borrowed(k.as_str())).collect(),
            Obj::Owned(entries) => {
                let mut keys: Vec<Cow<'a, str>> = Vec::new();
                for (k, _) in entries {
                    if !keys.iter().any(|x| x == k) {
                        keys.push(Cow::Owned(k.clone()));
                    }
                }
                keys
            }
        }
    }
}

/// Numeric comparison across ints and doubles, exact for integers.
fn num_cmp(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y),
        (Val::Int(i), Val::Float(f)) => int_float_cmp(*i, *f),
        (Val::Float(f), Val::Int(i)) => int_float_cmp(*i, *f).map(Ordering::reverse),
        _ => None,
    }
}

fn int_float_cmp(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // Every integer we hold is below 2^64 in magnitude, which f64 bounds can represent exactly.
    if f >= 18_446_744_073_709_551_616.0 {
        return Some(Ordering::Less);
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    match i.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)),
        other => Some(other),
    }
}

fn val_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            num_cmp(a, b) == Some(Ordering::Equal)
        }
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| val_eq(&p, &q))
        }
        (Val::Map(x), Val::Map(y)) => {
            let keys = x.keys();
            keys.len() == y.len()
                && keys.iter().all(|k| match (a.field(k), b.field(k)) {
                    (Some(p), Some(q)) => val_eq(&p, &q),
                    _ => false,
                })
        }
        _ => false,
    }
}

fn val_cmp(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => num_cmp(a, b),
    }
}

struct Env<'a> {
    event: Val<'a>,
    async_: Val<'a>,
    locals: Vec<Val<'a>>,
}

type EResult<'a> = Result<Val<'a>, String>;

/// `null` is false; anything else that is not a bool is an error.
fn truth(v: Result<Val<'_>, String>, what: &str) -> Result<bool, String> {
    match v? {
        Val::Bool(b) => Ok(b),
        Val::Null => Ok(false),
        other => Err(format!("{what} needs a bool, got {}", other.type_name())),
    }
}

fn eval<'a>(node: &'a Node, env: &mut Env<'a>) -> EResult<'a> {
    Ok(match node {
        Node::Null => Val::Null,
        Node::Bool(b) => Val::Bool(*b),
        Node::Int(i) => check_int(Some(*i), "literal")?,
        Node::Float(f) => Val::Float(*f),
        Node::Str(s) => Val::Str(Cow::Borrowed(s)),
        Node::Event => env.event.clone(),
        Node::Async => env.async_.clone(),
        Node::Local(slot) => env.locals.get(*slot).cloned().unwrap_or(Val::Null),
        Node::Select(operand, field) => eval(operand, env)?.field(field).unwrap_or(Val::Null),
        Node::Has(operand, field) => Val::Bool(eval(operand, env)?.field(field).is_some()),
        Node::Index(operand, index) => {
            let target = eval(operand, env)?;
            let index = eval(index, env)?;
            index_of(&target, &index)
        }
        Node::Not(inner) => Val::Bool(!truth(eval(inner, env), "`!`")?),
        Node::Neg(inner) => match eval(inner, env)? {
            Val::Int(i) => check_int(i.checked_neg(), "negation")?,
            Val::Float(f) => Val::Float(-f),
            other => return Err(format!("cannot negate a {}", other.type_name())),
        },
        Node::And(lhs, rhs) => logical(lhs, rhs, env, false)?,
        Node::Or(lhs, rhs) => logical(lhs, rhs, env, true)?,
        Node::Cond(cond, then, otherwise) => {
            if truth(eval(cond, env), "the condition of `? :`")? {
                eval(then, env)?
            } else {
                eval(otherwise, env)?
            }
        }
        Node::Binary(op, lhs, rhs) => {
            let l = eval(lhs, env)?;
            let r = eval(rhs, env)?;
            binary(*op, l, r)?
        }
        Node::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(eval(item, env)?);
            }
            Val::List(List::Owned(out))
        }
        Node::Map(entries) => map_literal(entries, env)?,
        Node::Call(func, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, env)?);
            }
            call(*func, vals)?
        }
        Node::Macro {
            kind,
            range,
            slot,
            filter,
            body,
        } => {
            let items = macro_items(eval(range, env)?)?;
            run_macro(*kind, items, *slot, filter.as_deref(), body, env)?
        }
    })
}

/// `target[index]`: a list element, a map entry, else `null`.
fn index_of<'a>(target: &Val<'a>, index: &Val<'a>) -> Val<'a> {
    match (target, index) {
        (Val::List(list), Val::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| list.get(i))
            .unwrap_or(Val::Null),
        (Val::List(list), Val::Float(f)) if f.fract() == 0.0 && *f >= 0.0 => {
            list.get(*f as usize).unwrap_or(Val::Null)
        }
        (Val::Map(_), Val::Str(key)) => target.field(key).unwrap_or(Val::Null),
        _ => Val::Null,
    }
}

/// `lhs && rhs` (`decisive` false) or `lhs || rhs` (`decisive` true), with CEL's
/// commutative error handling: a decisive side wins over an error on the other.
fn logical<'a>(lhs: &'a Node, rhs: &'a Node, env: &mut Env<'a>, decisive: bool) -> EResult<'a> {
    let what = if decisive { "`||`" } else { "`&&`" };
    let l = truth(eval(lhs, env), what);
    if l == Ok(decisive) {
        return Ok(Val::Bool(decisive));
    }
    let r = truth(eval(rhs, env), what);
    match (l, r) {
        (_, Ok(b)) if b == decisive => Ok(Val::Bool(decisive)),
        (Err(e), _) | (_, Err(e)) => Err(e),
        // Both not decisive (a decisive left side returned above).
        (Ok(_), Ok(_)) => Ok(Val::Bool(!decisive)),
    }
}

/// A map literal; a repeated key keeps its last value.
fn map_literal<'a>(entries: &'a [(Node, Node)], env: &mut Env<'a>) -> EResult<'a> {
    let mut out: Vec<(String, Val<'a>)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let key = match eval(k, env)? {
            Val::Str(s) => s.into_owned(),
            other => {
                return Err(format!(
                    "map keys must be strings, got {}",
                    other.type_name()
                ))
            }
        };
        let value = eval(v, env)?;
        out.retain(|(existing, _)| *existing != key);
        out.push((key, value));
    }
    Ok(Val::Map(Obj::Owned(out)))
}

/// What a macro iterates: a list's elements or a map's keys (`null` is empty).
fn macro_items(range: Val<'_>) -> Result<Vec<Val<'_>>, String> {
    Ok(match range {
        Val::List(list) => list.iter().collect(),
        Val::Map(obj) => obj.keys().into_iter().map(Val::Str).collect(),
        Val::Null => Vec::new(),
        other => {
            return Err(format!(
                "macros need a list or map to iterate, got {}",
                other.type_name()
            ))
        }
    })
}

fn run_macro<'a>(
    kind: MacroKind,
    items: Vec<Val<'a>>,
    slot: usize,
    filter: Option<&'a Node>,
    body: &'a Node,
    env: &mut Env<'a>,
) -> EResult<'a> {
    let with_var = |item: Val<'a>, node: &'a Node, env: &mut Env<'a>| {
        env.locals.truncate(slot);
        env.locals.push(item);
        let r = eval(node, env);
        env.locals.truncate(slot);
        r
    };
    let what = match kind {
        MacroKind::All => "`all` predicate",
        MacroKind::Exists => "`exists` predicate",
        MacroKind::ExistsOne => "`exists_one` predicate",
        MacroKind::Map => "`map` filter",
        MacroKind::Filter => "`filter` predicate",
    };
    match kind {
        MacroKind::All | MacroKind::Exists => {
            // CEL semantics: a decisive result wins over errors from other elements.
            let decisive = kind == MacroKind::Exists;
            let mut first_err = None;
            for item in items {
                match truth(with_var(item, body, env), what) {
                    Ok(b) if b == decisive => return Ok(Val::Bool(decisive)),
                    Ok(_) => {}
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(Val::Bool(!decisive)),
            }
        }
        MacroKind::ExistsOne => {
            let mut count = 0usize;
            for item in items {
                if truth(with_var(item, body, env), what)? {
                    count += 1;
                }
            }
            Ok(Val::Bool(count == 1))
        }
        MacroKind::Filter => {
            let mut out = Vec::new();
            for item in items {
                if truth(with_var(item.clone(), body, env), what)? {
                    out.push(item);
                }
            }
            Ok(Val::List(List::Owned(out)))
        }
        MacroKind::Map => {
            let mut out = Vec::new();
            for item in items {
                if let Some(filter) = filter {
                    if !truth(with_var(item.clone(), filter, env), what)? {
                        continue;
                    }
                }
                out.push(with_var(item, body, env)?);
            }
            Ok(Val::List(List::Owned(out)))
        }
    }
}

fn binary<'a>(op: BinOp, l: Val<'a>, r: Val<'a>) -> EResult<'a> {
    let ord = |want: fn(Ordering) -> bool| Val::Bool(val_cmp(&l, &r).is_some_and(want));
    Ok(match op {
        BinOp::Eq => Val::Bool(val_eq(&l, &r)),
        BinOp::Ne => Val::Bool(!val_eq(&l, &r)),
        BinOp::Lt => ord(Ordering::is_lt),
        BinOp::Le => ord(Ordering::is_le),
        BinOp::Gt => ord(Ordering::is_gt),
        BinOp::Ge => ord(Ordering::is_ge),
        BinOp::In => match &r {
            Val::List(list) => Val::Bool(list.iter().any(|item| val_eq(&l, &item))),
            Val::Map(_) => match &l {
                Val::Str(k) => Val::Bool(r.field(k).is_some()),
                _ => Val::Bool(false),
            },
            Val::Null => Val::Bool(false),
            other => {
                return Err(format!(
                    "`in` needs a list or map on the right, got {}",
                    other.type_name()
                ))
            }
        },
        BinOp::Add => match (l, r) {
            (Val::Int(a), Val::Int(b)) => check_int(a.checked_add(b), "`+`")?,
            (Val::Str(a), Val::Str(b)) => Val::Str(Cow::Owned(format!("{a}{b}"))),
            (Val::List(a), Val::List(b)) => {
                Val::List(List::Owned(a.iter().chain(b.iter()).collect()))
            }
            (a, b) => Val::Float(float_operands(&a, &b, "+")?.iter().sum()),
        },
        BinOp::Sub => match (l, r) {
            (Val::Int(a), Val::Int(b)) => check_int(a.checked_sub(b), "`-`")?,
            (a, b) => {
                let [x, y] = float_operands(&a, &b, "-")?;
                Val::Float(x - y)
            }
        },
        BinOp::Mul => match (l, r) {
            (Val::Int(a), Val::Int(b)) => check_int(a.checked_mul(b), "`*`")?,
            (a, b) => {
                let [x, y] = float_operands(&a, &b, "*")?;
                Val::Float(x * y)
            }
        },
        BinOp::Div => match (l, r) {
            (Val::Int(_), Val::Int(0)) => return Err("division by zero".to_owned()),
            (Val::Int(a), Val::Int(b)) => check_int(a.checked_div(b), "`/`")?,
            (a, b) => {
                let [x, y] = float_operands(&a, &b, "/")?;
                Val::Float(x / y)
            }
        },
        BinOp::Rem => match (l, r) {
            (Val::Int(_), Val::Int(0)) => return Err("modulus by zero".to_owned()),
            (Val::Int(a), Val::Int(b)) => check_int(a.checked_rem(b), "`%`")?,
            (a, b) => {
                let [x, y] = float_operands(&a, &b, "%")?;
                Val::Float(x % y)
            }
        },
    })
}

fn as_f64(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}

fn float_operands(a: &Val<'_>, b: &Val<'_>, op: &str) -> Result<[f64; 2], String> {
    match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => Ok([x, y]),
        _ => Err(format!(
            "`{op}` is not defined for {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn call<'a>(func: Func, args: Vec<Val<'a>>) -> EResult<'a> {
    let mut args = args.into_iter();
    let first = args.next().unwrap_or(Val::Null);
    let second = args.next();
    Ok(match func {
        Func::Size => match &first {
            Val::Str(s) => Val::Int(s.chars().count() as i128),
            Val::List(l) => Val::Int(l.len() as i128),
            Val::Map(m) => Val::Int(m.len() as i128),
            Val::Null => Val::Int(0),
            other => return Err(format!("size() is not defined for {}", other.type_name())),
        },
        Func::Contains | Func::StartsWith | Func::EndsWith => {
            let name = match func {
                Func::Contains => "contains",
                Func::StartsWith => "startsWith",
                _ => "endsWith",
            };
            let needle = match second {
                Some(Val::Str(s)) => s,
                Some(other) => {
                    return Err(format!(
                        "{name}() needs a string argument, got {}",
                        other.type_name()
                    ))
                }
                None => return Err(format!("{name}() needs an argument")),
            };
            match &first {
                Val::Str(s) => Val::Bool(match func {
                    Func::Contains => s.contains(needle.as_ref()),
                    Func::StartsWith => s.starts_with(needle.as_ref()),
                    _ => s.ends_with(needle.as_ref()),
                }),
                Val::Null => Val::Bool(false),
                other => return Err(format!("{name}() is not defined on {}", other.type_name())),
            }
        }
        Func::String => match first {
            Val::Str(s) => Val::Str(s),
            Val::Int(i) => Val::Str(Cow::Owned(i.to_string())),
            Val::Float(f) => Val::Str(Cow::Owned(format_float(f))),
            Val::Bool(b) => Val::Str(Cow::Borrowed(if b { "true" } else { "false" })),
            Val::Null => Val::Str(Cow::Borrowed("null")),
            other => return Err(format!("string() is not defined for {}", other.type_name())),
        },
        Func::Int => match first {
            Val::Int(i) => Val::Int(i),
            Val::Float(f) if f.is_finite() => check_int(Some(f.trunc() as i128), "int()")?,
            Val::Str(s) => match s.trim().parse::<i128>() {
                Ok(i) => check_int(Some(i), "int()")?,
                Err(_) => return Err(format!("int() cannot convert {s:?}")),
            },
            Val::Bool(b) => Val::Int(i128::from(b)),
            other => return Err(format!("int() is not defined for {}", other.type_name())),
        },
        Func::Double => match first {
            Val::Int(i) => Val::Float(i as f64),
            Val::Float(f) => Val::Float(f),
            Val::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) => Val::Float(f),
                Err(_) => return Err(format!("double() cannot convert {s:?}")),
            },
            other => return Err(format!("double() is not defined for {}", other.type_name())),
        },
    })
}

fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(src: &str, event: &Json, async_: &Json) -> Result<bool, ExprError> {
        let expr = Expr::compile(src)?;
        expr.eval_bool(&Vars::new().with_event(event).with_async(async_))
    }

    #[test]
    fn table() {
        let ev = json!({
            "name": "app/order.created",
            "id": "01HZX",
            "ts": 1718000000000u64,
            "data": {
                "id": 7,
                "request_id": "req-1",
                "amount": 12.5,
                "count": 3,
                "one_float": 1.0,
                "flag": true,
                "off": false,
                "nothing": null,
                "note": "it's \"quoted\"",
                "email": "ann@example.com",
                "tags": ["a", "b", "c"],
                "nums": [1, 2.5, 3],
                "user": {"id": "u1", "plan": {"tier": "pro", "seats": 5}},
                "big": 18446744073709551615u64,
                "neg": -9223372036854775808i64,
                "function_id": "my-app-fn",
                "odd-key": "x",
            },
            "user": {}
        });
        let matching = json!({"name": "app/order.paid", "data": {"id": 7, "request_id": "req-1", "resume": true, "n": 1.0, "tier": "pro"}});
        let other = json!({"name": "app/order.paid", "data": {"id": 8, "request_id": "req-2", "resume": false, "n": 2}});
        let none = json!(null);

        type Row<'r> = (&'r str, &'r Json, Option<bool>);
        let rows: Vec<Row<'_>> = vec![
            // Conformance and protocol expressions.
            (
                "async.data.request_id == event.data.request_id",
                &matching,
                Some(true),
            ),
            (
                "async.data.request_id == event.data.request_id",
                &other,
                Some(false),
            ),
            (
                "async.data.resume == true && async.data.id == event.data.id",
                &matching,
                Some(true),
            ),
            (
                "async.data.resume == true && async.data.id == event.data.id",
                &other,
                Some(false),
            ),
            ("event.data.function_id == 'my-app-fn'", &none, Some(true)),
            ("event.data.function_id == 'other-fn'", &none, Some(false)),
            ("event.data.function_id == \"my-app-fn\"", &none, Some(true)),
            // Numbers: ints and doubles compare by value.
            ("event.data.id == 7", &none, Some(true)),
            ("event.data.id == 7.0", &none, Some(true)),
            ("event.data.one_float == 1", &none, Some(true)),
            ("1 == 1.0", &none, Some(true)),
            ("async.data.n == 1", &matching, Some(true)),
            ("async.data.n == event.data.one_float", &other, Some(false)),
            ("event.data.amount > 12", &none, Some(true)),
            ("event.data.amount >= 12.5", &none, Some(true)),
            ("event.data.amount < 12.5", &none, Some(false)),
            ("event.data.count <= 3", &none, Some(true)),
            ("event.data.count != 3", &none, Some(false)),
            ("event.data.count * 2 + 1 == 7", &none, Some(true)),
            ("event.data.count / 2 == 1", &none, Some(true)),
            ("event.data.count / 2.0 == 1.5", &none, Some(true)),
            ("event.data.count % 2 == 1", &none, Some(true)),
            ("-event.data.count == -3", &none, Some(true)),
            ("event.data.big == 18446744073709551615", &none, Some(true)),
            ("event.data.big > event.data.neg", &none, Some(true)),
            ("event.data.neg == -9223372036854775808", &none, Some(true)),
            ("0x10 == 16 && 16u == 16 && 1e2 == 100", &none, Some(true)),
            // Strings and quoting.
            (r#"event.data.note == 'it\'s "quoted"'"#, &none, Some(true)),
            (r#"event.data.note == "it's \"quoted\"""#, &none, Some(true)),
            (
                r#"event.data.note == '''it's "quoted"'''"#,
                &none,
                Some(true),
            ),
            (
                r#"'a\tb' == "a\u0009b" && '\x41' == 'A' && '\101' == 'A'"#,
                &none,
                Some(true),
            ),
            (r#"r'a\tb' == 'a\\tb'"#, &none, Some(true)),
            ("'abc' < 'abd' && 'b' > 'a'", &none, Some(true)),
            (
                "event.data.email.endsWith('@example.com')",
                &none,
                Some(true),
            ),
            ("event.data.email.startsWith('bob')", &none, Some(false)),
            ("event.data.email.contains('@')", &none, Some(true)),
            ("'é' + 'x' == 'éx' && size('é') == 1", &none, Some(true)),
            // Bools and logic.
            ("event.data.flag", &none, Some(true)),
            ("!event.data.off", &none, Some(true)),
            (
                "event.data.flag && !event.data.off || false",
                &none,
                Some(true),
            ),
            (
                "event.data.off || event.data.flag && false",
                &none,
                Some(false),
            ),
            (
                "(event.data.off || event.data.flag) && true",
                &none,
                Some(true),
            ),
            ("true == !false", &none, Some(true)),
            ("false < true", &none, Some(true)),
            // Null and missing fields.
            ("event.data.nothing == null", &none, Some(true)),
            ("event.data.missing == null", &none, Some(true)),
            ("event.data.missing.deeper.still == null", &none, Some(true)),
            ("event.data.missing != null", &none, Some(false)),
            ("event.data.missing == 1", &none, Some(false)),
            ("event.data.missing == ''", &none, Some(false)),
            ("event.data.missing < 1", &none, Some(false)),
            ("event.data.missing >= 1", &none, Some(false)),
            ("event.data.missing", &none, Some(false)),
            ("!event.data.missing", &none, Some(true)),
            ("event.data.missing && true", &none, Some(false)),
            ("async.data.id == event.data.id", &none, Some(false)),
            ("async == null", &none, Some(true)),
            ("event.data.count.nested == null", &none, Some(true)),
            ("event.data.tags[10] == null", &none, Some(true)),
            // Nested fields and indexing.
            ("event.data.user.plan.tier == 'pro'", &none, Some(true)),
            (
                "event.data.user.plan.tier == async.data.tier",
                &matching,
                Some(true),
            ),
            ("event.data.user['plan'].seats > 4", &none, Some(true)),
            ("event.data['odd-key'] == 'x'", &none, Some(true)),
            (
                "event.data.tags[0] == 'a' && event.data.tags[2] == 'c'",
                &none,
                Some(true),
            ),
            ("event.name == 'app/order.created'", &none, Some(true)),
            ("event.ts > 0", &none, Some(true)),
            // size, in, has, ternary.
            ("size(event.data.tags) == 3", &none, Some(true)),
            ("event.data.tags.size() == 3", &none, Some(true)),
            ("size(event.data.user) == 2", &none, Some(true)),
            ("size(event.data.missing) == 0", &none, Some(true)),
            ("'b' in event.data.tags", &none, Some(true)),
            ("'z' in event.data.tags", &none, Some(false)),
            (
                "2.5 in event.data.nums && 3.0 in event.data.nums",
                &none,
                Some(true),
            ),
            ("event.data.id in [1, 7, 9]", &none, Some(true)),
            ("'plan' in event.data.user", &none, Some(true)),
            ("'x' in event.data.missing", &none, Some(false)),
            ("has(event.data.user)", &none, Some(true)),
            ("has(event.data.nothing)", &none, Some(true)),
            ("has(event.data.missing)", &none, Some(false)),
            ("has(event.data.missing.deeper)", &none, Some(false)),
            ("has(async.data)", &none, Some(false)),
            (
                "(event.data.count > 2 ? 'many' : 'few') == 'many'",
                &none,
                Some(true),
            ),
            ("event.data.missing ? false : true", &none, Some(true)),
            (
                "event.data.flag ? event.data.id == 7 : false",
                &none,
                Some(true),
            ),
            // Macros, literals and conversions.
            ("event.data.tags.exists(t, t == 'b')", &none, Some(true)),
            ("event.data.tags.all(t, size(t) == 1)", &none, Some(true)),
            ("event.data.tags.exists_one(t, t > 'a')", &none, Some(false)),
            (
                "event.data.nums.filter(n, n > 2) == [2.5, 3]",
                &none,
                Some(true),
            ),
            (
                "event.data.nums.map(n, n * 2) == [2, 5, 6]",
                &none,
                Some(true),
            ),
            (
                "event.data.nums.map(n, n > 1, n) == [2.5, 3]",
                &none,
                Some(true),
            ),
            ("event.data.user.exists(k, k == 'plan')", &none, Some(true)),
            ("event.data.missing.all(x, false)", &none, Some(true)),
            ("[1, [2, 3]] == [1.0, [2, 3.0]]", &none, Some(true)),
            (
                "{'a': 1, 'b': [true]} == {'b': [true], 'a': 1.0}",
                &none,
                Some(true),
            ),
            ("{'a': 1} != {'a': 1, 'b': 2}", &none, Some(true)),
            (
                "string(event.data.id) == '7' && int('42') == 42",
                &none,
                Some(true),
            ),
            ("double('1.5') == 1.5 && int(2.9) == 2", &none, Some(true)),
            ("1 == '1'", &none, Some(false)),
            ("1 != '1'", &none, Some(true)),
            (
                "event.data.user == {'id': 'u1', 'plan': {'tier': 'pro', 'seats': 5}}",
                &none,
                Some(true),
            ),
            // Comments and whitespace.
            (
                "event.data.id == 7 // the order\n && true",
                &none,
                Some(true),
            ),
            // Runtime type errors.
            ("event.data.email - 1 == 0", &none, None),
            ("event.data.id && true", &none, None),
            ("1 / 0 == 0", &none, None),
            ("event.data.big + 1 > 0", &none, None),
            ("int('seven') == 7", &none, None),
            ("event.data.tags.all(t, t)", &none, None),
        ];
        assert!(rows.len() >= 40);
        for (src, async_, want) in rows {
            let got = check(src, &ev, async_);
            match want {
                Some(b) => assert_eq!(got, Ok(b), "{src}"),
                None => assert!(
                    matches!(got, Err(ExprError::Eval { .. })),
                    "{src}: expected an evaluation error, got {got:?}"
                ),
            }
        }
    }

    #[test]
    fn error_absorption_in_logic() {
        let ev = json!({"data": {"s": "x"}});
        let vars = Vars::new().with_event(&ev);
        let t = |src: &str| Expr::compile(src).unwrap().eval_bool(&vars);
        assert_eq!(t("false && event.data.s - 1 == 0"), Ok(false));
        assert_eq!(t("event.data.s - 1 == 0 && false"), Ok(false));
        assert_eq!(t("true || event.data.s - 1 == 0"), Ok(true));
        assert_eq!(t("event.data.s - 1 == 0 || true"), Ok(true));
        assert!(t("event.data.s - 1 == 0 || false").is_err());
        assert!(t("true && event.data.s - 1 == 0").is_err());
        assert_eq!(
            t("['x', 1].exists(v, v == 'x' && v.startsWith('x'))"),
            Ok(true)
        );
    }

    #[test]
    fn no_variables_means_null() {
        let e = Expr::compile("event.data.id == null && async == null").unwrap();
        assert_eq!(e.eval_bool(&Vars::new()), Ok(true));
    }

    #[test]
    fn eval_returns_json() {
        let ev = json!({"data": {"user": {"id": "u1"}, "n": 3, "f": 1.5, "tags": ["a"], "big": 18446744073709551615u64}});
        let vars = Vars::new().with_event(&ev);
        let e = |src: &str| Expr::compile(src).unwrap().eval(&vars);
        assert_eq!(e("event.data.user.id"), Ok(json!("u1")));
        assert_eq!(e("event.data.n * 100"), Ok(json!(300)));
        assert_eq!(e("event.data.f * 2"), Ok(json!(3.0)));
        assert_eq!(e("event.data.big"), Ok(json!(18446744073709551615u64)));
        assert_eq!(e("-5"), Ok(json!(-5)));
        assert_eq!(e("event.data.missing"), Ok(json!(null)));
        assert_eq!(e("event.data.user"), Ok(json!({"id": "u1"})));
        assert_eq!(e("event.data.tags + ['b']"), Ok(json!(["a", "b"])));
        assert_eq!(
            e("{'k': event.data.n, 'k2': [1, 'x']}"),
            Ok(json!({"k": 3, "k2": [1, "x"]}))
        );
        assert_eq!(e("'user-' + event.data.user.id"), Ok(json!("user-u1")));
        assert_eq!(
            e("string(event.data.f) + '/' + string(2.0)"),
            Ok(json!("1.5/2.0"))
        );
        assert_eq!(e("event.data.n > 2 ? 600 : -600"), Ok(json!(600)));
        assert!(matches!(e("1.0 / 0.0"), Err(ExprError::Eval { .. })));
    }

    #[test]
    fn eval_bool_rejects_non_bool() {
        let ev = json!({"data": {"n": 3}});
        let vars = Vars::new().with_event(&ev);
        let err = Expr::compile("event.data.n")
            .unwrap()
            .eval_bool(&vars)
            .unwrap_err();
        assert_eq!(
            err,
            ExprError::NotBool {
                expr: "event.data.n".into(),
                got: "int".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "expression \"event.data.n\" must evaluate to a bool, got int"
        );
        assert!(Expr::compile("'yes'").unwrap().eval_bool(&vars).is_err());
        assert!(Expr::compile("[true]").unwrap().eval_bool(&vars).is_err());
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, usize)] = &[
            ("", 1),
            ("   ", 4),
            ("1 +", 4),
            ("event.data.x ==", 16),
            ("event.data.x = 1", 14),
            ("a b", 1),
            ("event.data.x event.data.y", 14),
            ("'abc", 1),
            ("\"abc'", 1),
            ("event.data.x == 'a\nb'", 17),
            ("(event.data.x == 1", 19),
            ("event.data.x == 1)", 18),
            ("event.data.[0]", 12),
            ("event.data.x & true", 14),
            ("event.data.x | true", 14),
            ("foo == 1", 1),
            ("events[0] == 1", 1),
            ("matches(event.data.x, 'a')", 1),
            ("event.data.x.matches('a')", 14),
            ("size()", 1),
            ("size(1, 2)", 1),
            ("event.data.x.size(1)", 14),
            ("has(event)", 5),
            ("has(event.data['x'])", 5),
            ("[1, 2].exists(1, true)", 15),
            ("[1, 2].exists(x)", 16),
            ("event.data.x ? 1", 17),
            ("'\\q'", 2),
            ("'\\u12'", 2),
            ("'\\uD800'", 2),
            ("b'abc' == 1", 1),
            ("18446744073709551616 == 1", 1),
            ("1e == 1", 2),
            ("0x == 1", 1),
            ("event.data.x == #", 17),
            ("if == 1", 1),
            ("{'a' 1}", 6),
            ("[1, 2", 6),
            ("x.exists(y, y) ", 1),
            ("[1].exists(v, w == v)", 15),
        ];
        for (src, position) in cases {
            match Expr::compile(src) {
                Err(ExprError::Syntax {
                    expr,
                    position: p,
                    message,
                }) => {
                    assert_eq!(&expr, src);
                    assert_eq!(p, *position, "{src:?}: {message}");
                }
                other => panic!("{src:?}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn syntax_error_message_names_expression_and_position() {
        let err = Expr::compile("event.data.x == = 1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid expression \"event.data.x == = 1\": unexpected `=` (use `==` to compare) at position 17"
        );
        let err = Expr::compile("foo.bar == 1").unwrap_err();
        assert!(err.to_string().contains("unknown variable `foo`"), "{err}");
        // Positions count characters, not bytes.
        let err = Expr::compile("'é' == = 1").unwrap_err();
        assert!(
            matches!(err, ExprError::Syntax { position: 8, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(
            Expr::compile(&deep),
            Err(ExprError::Syntax { .. })
        ));
        let deep = format!("{}true", "!".repeat(10_000));
        assert!(matches!(
            Expr::compile(&deep),
            Err(ExprError::Syntax { .. })
        ));
        let long_chain = vec!["true"; 10_000].join(" && ");
        assert!(matches!(
            Expr::compile(&long_chain),
            Err(ExprError::Syntax { .. })
        ));
        let ok = format!("{}1{} == 1", "(".repeat(50), ")".repeat(50));
        assert_eq!(
            Expr::compile(&ok).unwrap().eval_bool(&Vars::new()),
            Ok(true)
        );
    }

    #[test]
    fn accepts_literals_rendered_by_sdk_helpers() {
        // The forms `inngest_protocol::quote::literal` produces: double-quoted strings with \" \\ \n \uXXXX
        // escapes, lists and maps.
        let ev =
            json!({"data": {"note": "a\"b\\c\nd\u{1}", "list": ["x", 1, null], "obj": {"k": "v"}}});
        let vars = Vars::new().with_event(&ev);
        let src = r#"event.data.note == "a\"b\\c\nd\u0001" && event.data.list == ["x", 1, null] && event.data.obj == {"k": "v"}"#;
        assert_eq!(Expr::compile(src).unwrap().eval_bool(&vars), Ok(true));
    }

    #[test]
    fn source_display_clone_and_threads() {
        let e = Expr::compile("event.data.id == 1").unwrap();
        assert_eq!(e.source(), "event.data.id == 1");
        assert_eq!(e.to_string(), "event.data.id == 1");
        assert_eq!(format!("{e:?}"), "Expr(\"event.data.id == 1\")");
        let c = e.clone();
        assert_eq!(c, e);
        fn send_sync<T: Send + Sync>(_: &T) {}
        send_sync(&e);
        let handle = std::thread::spawn(move || {
            let ev = json!({"data": {"id": 1}});
            c.eval_bool(&Vars::new().with_event(&ev))
        });
        assert_eq!(handle.join().unwrap(), Ok(true));
    }

    #[test]
    fn macro_variables_are_scoped() {
        // Shadowing `event` inside a macro, nested macros, and the variable going out of scope.
        let ev = json!({"data": {"rows": [[1, 2], [3]], "id": 3}});
        let vars = Vars::new().with_event(&ev);
        let t = |src: &str| Expr::compile(src).map(|e| e.eval_bool(&vars));
        assert_eq!(
            t("event.data.rows.exists(r, r.exists(c, c == event.data.id))"),
            Ok(Ok(true))
        );
        assert_eq!(
            t("[{'data': {'id': 9}}].all(event, event.data.id == 9)"),
            Ok(Ok(true))
        );
        assert_eq!(t("event.data.rows.map(r, size(r)) == [2, 1]"), Ok(Ok(true)));
        assert!(t("[1].exists(v, true) && v == 1").is_err());
    }
}
