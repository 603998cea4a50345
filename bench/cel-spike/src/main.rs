//! Spike: the `cel` crate (0.15.0, stdlib + the Inngest functions that map onto it) against the
//! executor's expression vectors. Counts how many vectors it answers as the real server does.
use std::collections::BTreeMap;
use std::sync::Arc;

use cel::{Context, Env, Program};
use serde_json::Value;

/// The executor test's own rule for judging an answer, so the counts compare.
#[path = "../../../crates/inngest-executor/tests/vectors/judge.rs"]
mod judge;
use judge::judge;

fn context(env: &Arc<Env>, vars: &Value) -> Context<'static, 'static> {
    let mut ctx = Context::with_env(env.clone());
    ctx.add_function("lowercase", |s: Arc<String>| s.to_lowercase())
        .unwrap();
    ctx.add_function("uppercase", |s: Arc<String>| s.to_uppercase())
        .unwrap();
    ctx.add_function("b64decode", |s: Arc<String>| {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .unwrap_or_default();
        String::from_utf8_lossy(&b).into_owned()
    })
    .unwrap();
    ctx.add_function("json_parse", |s: Arc<String>| {
        let v: Value = serde_json::from_str(&s).unwrap_or(Value::Null);
        cel::to_value(v).unwrap_or(cel::Value::Null)
    })
    .unwrap();
    if let Some(m) = vars.as_object() {
        for (k, v) in m {
            ctx.add_variable(k.clone(), cel::to_value(v).unwrap())
                .unwrap();
        }
    }
    ctx
}

fn run(env: &Arc<Env>, v: &Value) -> Result<(), String> {
    let src = v["expr"].as_str().unwrap();
    let expect = &v["expect"];
    if v.get("validate").is_some() {
        // No type checker in the crate: parsing is all it can refuse.
        let parsed = env.compile(src);
        return match (expect.get("refused"), parsed) {
            (None, Ok(_)) => Ok(()),
            (None, Err(e)) => Err(format!("refused: {e}")),
            (Some(w), Ok(_)) => Err(format!("accepted, want refusal {w}")),
            (Some(_), Err(_)) => Ok(()), // refused at all (message not compared)
        };
    }
    let program: Program = env.compile(src).map_err(|e| format!("compile: {e}"))?;
    let ctx = context(env, &v["vars"]);
    let got = program.execute(&ctx).map_err(|e| e.to_string());
    let got = got.and_then(|g| g.json().map_err(|e| format!("to json: {e:?}")));
    judge(got, expect)
}

fn main() {
    let path = std::env::args().nth(1).expect("vectors path");
    let vectors: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let env = Arc::new(Env::stdlib());
    let mut by_theme: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut pass = 0;
    for v in &vectors {
        let theme = if v.get("validate").is_some() {
            "validation".to_string()
        } else {
            v["theme"].as_str().unwrap_or("?").to_string()
        };
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&env, v)))
            .unwrap_or_else(|_| Err("panic".into()));
        let e = by_theme.entry(theme).or_default();
        e.1 += 1;
        if ok.is_ok() {
            pass += 1;
            e.0 += 1;
        } else if std::env::var_os("VERBOSE").is_some() {
            println!("FAIL {:?}: {}", v["expr"], ok.unwrap_err());
        }
    }
    for (t, (p, n)) in &by_theme {
        println!("{t:24} {p:3}/{n}");
    }
    println!(
        "cel 0.15.0: {pass} of {} vectors as the server answers",
        vectors.len()
    );
}
