//! Sync-time checks the server runs on top of parsing: a type check (cel-go's checker with
//! Inngest's declarations, where `+ == != < <= > >=` accept any operands) and the restrictive
//! policy (no macros, only comparisons, logic, indexing, `in` and numeric conversions).

use super::{BinOp, Func, MacroKind, Node};

/// A static type, as far as the checker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    List,
    Map,
    Timestamp,
    Duration,
    Type,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Dyn => "dyn",
            Ty::Null => "null_type",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Uint => "uint",
            Ty::Double => "double",
            Ty::String => "string",
            Ty::List => "list(dyn)",
            Ty::Map => "map(dyn, dyn)",
            Ty::Timestamp => "google.protobuf.Timestamp",
            Ty::Duration => "google.protobuf.Duration",
            Ty::Type => "type",
        }
    }

    /// Whether a value of this type can stand where `want` is declared.
    fn fits(self, want: Ty) -> bool {
        self == want || self == Ty::Dyn || want == Ty::Dyn
    }
}

fn no_overload(op: &str, args: &[Ty]) -> String {
    let list: Vec<&str> = args.iter().map(|t| t.name()).collect();
    format!(
        "found no matching overload for '{op}' applied to '({})'",
        list.join(", ")
    )
}

/// Type-checks `node`; the error is cel-go's message.
pub(super) fn type_check(node: &Node) -> Result<(), String> {
    ty(node).map(|_| ())
}

fn ty(node: &Node) -> Result<Ty, String> {
    Ok(match node {
        Node::Null => Ty::Null,
        Node::Bool(_) | Node::Has(..) => Ty::Bool,
        Node::Int(_) => Ty::Int,
        Node::Uint(_) => Ty::Uint,
        Node::Float(_) => Ty::Double,
        Node::Str(_) => Ty::String,
        Node::Event | Node::Async | Node::Local(_) | Node::Ident(_) => Ty::Dyn,
        Node::Select(inner, _) | Node::Index(inner, _) => {
            ty(inner)?;
            if let Node::Index(_, i) = node {
                ty(i)?;
            }
            Ty::Dyn
        }
        Node::Not(inner) => expect_one("!_", ty(inner)?, Ty::Bool)?,
        Node::Neg(inner) => match ty(inner)? {
            t @ (Ty::Int | Ty::Double | Ty::Dyn | Ty::Duration) => t,
            t => return Err(no_overload("-_", &[t])),
        },
        Node::And(a, b) | Node::Or(a, b) => {
            let op = if matches!(node, Node::And(..)) {
                "_&&_"
            } else {
                "_||_"
            };
            let (x, y) = (ty(a)?, ty(b)?);
            if !x.fits(Ty::Bool) || !y.fits(Ty::Bool) {
                return Err(no_overload(op, &[x, y]));
            }
            Ty::Bool
        }
        Node::Cond(c, a, b) => {
            let c = ty(c)?;
            let (x, y) = (ty(a)?, ty(b)?);
            if !c.fits(Ty::Bool) {
                return Err(no_overload("_?_:_", &[c, x, y]));
            }
            if x == y {
                x
            } else {
                Ty::Dyn
            }
        }
        Node::Binary(op, a, b) => binary(*op, ty(a)?, ty(b)?)?,
        Node::List(items) => {
            for i in items {
                ty(i)?;
            }
            Ty::List
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                ty(k)?;
                ty(v)?;
            }
            Ty::Map
        }
        Node::Call(func, args) => {
            let mut tys = Vec::with_capacity(args.len());
            for a in args {
                tys.push(ty(a)?);
            }
            call(*func, &tys)?
        }
        Node::Macro {
            kind,
            range,
            filter,
            body,
            ..
        } => {
            ty(range)?;
            if let Some(f) = filter {
                ty(f)?;
            }
            ty(body)?;
            match kind {
                MacroKind::Map | MacroKind::Filter => Ty::List,
                _ => Ty::Bool,
            }
        }
    })
}

fn expect_one(op: &str, got: Ty, want: Ty) -> Result<Ty, String> {
    if got.fits(want) {
        Ok(want)
    } else {
        Err(no_overload(op, &[got]))
    }
}

fn binary(op: BinOp, x: Ty, y: Ty) -> Result<Ty, String> {
    let name = match op {
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            return Ok(Ty::Bool)
        }
        BinOp::Add => return Ok(if x == y { x } else { Ty::Dyn }),
        BinOp::In => {
            return match y {
                Ty::List | Ty::Map | Ty::Dyn => Ok(Ty::Bool),
                _ => Err(no_overload("@in", &[x, y])),
            }
        }
        BinOp::Sub => "_-_",
        BinOp::Mul => "_*_",
        BinOp::Div => "_/_",
        BinOp::Rem => "_%_",
    };
    if x == Ty::Dyn || y == Ty::Dyn {
        return Ok(Ty::Dyn);
    }
    let numeric = matches!(x, Ty::Int | Ty::Uint | Ty::Double) && x == y;
    let ok = match op {
        BinOp::Rem => matches!(x, Ty::Int | Ty::Uint) && x == y,
        BinOp::Sub => {
            return match (x, y) {
                _ if numeric => Ok(x),
                (Ty::Timestamp, Ty::Timestamp) | (Ty::Duration, Ty::Duration) => Ok(Ty::Duration),
                (Ty::Timestamp, Ty::Duration) => Ok(Ty::Timestamp),
                _ => Err(no_overload(name, &[x, y])),
            }
        }
        _ => numeric,
    };
    if ok {
        Ok(x)
    } else {
        Err(no_overload(name, &[x, y]))
    }
}

fn call(func: Func, args: &[Ty]) -> Result<Ty, String> {
    let need = |want: &[Ty], result: Ty| {
        if args.len() == want.len() && args.iter().zip(want).all(|(a, w)| a.fits(*w)) {
            Ok(result)
        } else {
            Err(no_overload(func.name(), args))
        }
    };
    let s = Ty::String;
    match func {
        Func::Size => match args.first() {
            Some(Ty::String | Ty::List | Ty::Map | Ty::Dyn) => Ok(Ty::Int),
            _ => Err(no_overload("size", args)),
        },
        Func::Contains | Func::StartsWith | Func::EndsWith | Func::Matches => {
            need(&[s, s], Ty::Bool)
        }
        Func::String => Ok(Ty::String),
        Func::Int => Ok(Ty::Int),
        Func::Uint => Ok(Ty::Uint),
        Func::Double => Ok(Ty::Double),
        Func::Bool => Ok(Ty::Bool),
        Func::Dyn => Ok(Ty::Dyn),
        Func::Type => Ok(Ty::Type),
        Func::Duration => need(&[s], Ty::Duration),
        Func::Timestamp => match args.first() {
            Some(Ty::String | Ty::Int | Ty::Timestamp | Ty::Dyn) => Ok(Ty::Timestamp),
            _ => Err(no_overload("timestamp", args)),
        },
        Func::Lowercase | Func::Uppercase | Func::B64Decode => need(&[s], Ty::String),
        Func::JsonParse => need(&[s], Ty::Dyn),
        Func::Date => Ok(Ty::Timestamp),
        Func::Now => Ok(Ty::Timestamp),
        Func::NowPlus | Func::NowMinus => need(&[s], Ty::Timestamp),
        Func::TimePart(_) => match args.first() {
            Some(Ty::Timestamp | Ty::Duration | Ty::Dyn) => Ok(Ty::Int),
            _ => Err(no_overload(func.name(), args)),
        },
    }
}

/// Every violation of the restrictive policy, in source order.
pub(super) fn restrictive_violations(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    walk(node, &mut out);
    out
}

fn walk(node: &Node, out: &mut Vec<String>) {
    let refuse = |name: &str, out: &mut Vec<String>| {
        out.push(format!("function calls are disallowed (uses '{name}')"));
    };
    match node {
        Node::Null
        | Node::Bool(_)
        | Node::Int(_)
        | Node::Uint(_)
        | Node::Float(_)
        | Node::Str(_)
        | Node::Event
        | Node::Async
        | Node::Local(_)
        | Node::Ident(_) => {}
        Node::Has(..) => out.push("macros are disallowed (uses 'has')".to_owned()),
        Node::Macro { kind, .. } => {
            let name = match kind {
                MacroKind::All => "all",
                MacroKind::Exists => "exists",
                MacroKind::ExistsOne => "exists_one",
                MacroKind::Map => "map",
                MacroKind::Filter => "filter",
            };
            out.push(format!(
                "macros are disallowed (contains '{name}' comprehension)"
            ));
        }
        Node::Select(inner, _) | Node::Not(inner) => walk(inner, out),
        Node::Neg(inner) => {
            refuse("-_", out);
            walk(inner, out);
        }
        Node::Index(a, b) | Node::And(a, b) | Node::Or(a, b) => {
            walk(a, out);
            walk(b, out);
        }
        Node::Cond(c, a, b) => {
            walk(c, out);
            walk(a, out);
            walk(b, out);
        }
        Node::Binary(op, a, b) => {
            let name = match op {
                BinOp::Add => Some("_+_"),
                BinOp::Sub => Some("_-_"),
                BinOp::Mul => Some("_*_"),
                BinOp::Div => Some("_/_"),
                BinOp::Rem => Some("_%_"),
                _ => None,
            };
            if let Some(name) = name {
                refuse(name, out);
            }
            walk(a, out);
            walk(b, out);
        }
        Node::List(items) => items.iter().for_each(|i| walk(i, out)),
        Node::Map(entries) => entries.iter().for_each(|(k, v)| {
            walk(k, out);
            walk(v, out);
        }),
        Node::Call(func, args) => {
            if !matches!(func, Func::Int | Func::Uint | Func::Double) {
                refuse(func.name(), out);
            }
            args.iter().for_each(|a| walk(a, out));
        }
    }
}

/// The server's message for policy violations (a multi-error list).
pub(super) fn policy_message(violations: &[String]) -> String {
    let n = violations.len();
    let mut msg = format!(
        "validation failed: {n} error{} occurred:\n",
        if n == 1 { "" } else { "s" }
    );
    for v in violations {
        msg.push_str("\t* ");
        msg.push_str(v);
        msg.push('\n');
    }
    msg.push('\n');
    msg
}
