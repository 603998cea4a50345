//! The server's expression semantics as test vectors (`tests/fixtures/expr-vectors.json`): each
//! vector is an expression, its variables and what the real Inngest server answers, translated
//! from the server's tests or derived from its code (`source` says which, `note` says why).
//!
//! Vector format: `expr`; `vars` (`event` and/or `async` as JSON; a number written without
//! fraction or exponent is a CEL int, see [`Vars::with_typed_numbers`]); `kind` (`value`: the
//! key evaluation [`Expr::eval`], `bool`: conditions, [`Expr::eval_bool`]); `expect` (a JSON
//! value, `{"error": "eval"}`, `{"refused": "<substring of the server's message>"}` or
//! `{"accepted": true}`); `validate` on validation vectors (`parse`, `default`, `restrictive`,
//! see [`Policy`]); `now` (RFC 3339) for vectors calling `now()`; optional `fixed` (a note on a
//! vector corrected after checking the server's source).
//!
//! The test fails if any vector disagrees, except those listed in [`KNOWN_DIVERGENCES`].

use inngest_executor::expr::{Expr, Policy, Vars};
use serde_json::Value;

#[path = "vectors/judge.rs"]
mod judge;
use judge::judge;

/// Vectors (by index in the fixture) the executor does not match, with the reason.
const KNOWN_DIVERGENCES: &[(usize, &str)] = &[];

fn run(v: &Value) -> Result<(), String> {
    let src = v["expr"].as_str().ok_or("no expr")?;
    let expect = &v["expect"];
    if let Some(policy) = v.get("validate").and_then(Value::as_str) {
        let policy = match policy {
            "parse" => Policy::Parse,
            "default" => Policy::Default,
            "restrictive" => Policy::Restrictive,
            other => return Err(format!("unknown policy {other}")),
        };
        let got = Expr::check(src, policy);
        return match (expect.get("refused").and_then(Value::as_str), got) {
            (None, Ok(_)) => Ok(()),
            (None, Err(e)) => Err(format!(
                "refused: {}",
                e.server_message().unwrap_or_default()
            )),
            (Some(want), Ok(_)) => Err(format!("accepted, want refusal with {want:?}")),
            (Some(want), Err(e)) => {
                let msg = e.server_message().unwrap_or_default();
                if msg.contains(want) {
                    Ok(())
                } else {
                    Err(format!("refused with {msg:?}, want {want:?}"))
                }
            }
        };
    }
    let expr = Expr::compile(src).map_err(|e| format!("compile: {e}"))?;
    let vars_json = &v["vars"];
    let others: Vec<(String, Value)> = vars_json
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "event" && *k != "async")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut vars = Vars::new().with_typed_numbers().with_others(&others);
    if let Some(ev) = vars_json.get("event") {
        vars = vars.with_event(ev);
    }
    if let Some(a) = vars_json.get("async") {
        vars = vars.with_async(a);
    }
    if let Some(now) = v.get("now").and_then(Value::as_str) {
        let now = chrono::DateTime::parse_from_rfc3339(now).map_err(|e| e.to_string())?;
        vars = vars.with_now(now.with_timezone(&chrono::Utc));
    }
    let got = match v["kind"].as_str() {
        Some("bool") => expr.eval_bool(&vars).map(Value::Bool),
        _ => expr.eval(&vars),
    };
    judge(got.map_err(|e| e.to_string()), expect)
}

#[test]
fn every_vector_matches_the_server() {
    let text = include_str!("fixtures/expr-vectors.json");
    let vectors: Vec<Value> = serde_json::from_str(text).expect("vectors parse");
    assert!(vectors.len() >= 300, "{} vectors", vectors.len());
    let mut failures = Vec::new();
    let mut passing = 0;
    for (i, v) in vectors.iter().enumerate() {
        let known = KNOWN_DIVERGENCES.iter().find(|(k, _)| *k == i);
        match (run(v), known) {
            (Ok(()), None) => passing += 1,
            (Ok(()), Some(_)) => failures.push(format!("#{i} is listed as divergent but passes")),
            (Err(_), Some(_)) => {}
            (Err(e), None) => failures.push(format!("#{i} {:?}: {e}", v["expr"])),
        }
    }
    eprintln!(
        "{passing} of {} vectors match the server ({} known divergences)",
        vectors.len(),
        KNOWN_DIVERGENCES.len()
    );
    assert!(passing >= 200, "only {passing} vectors pass");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
