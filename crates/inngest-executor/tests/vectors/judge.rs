//! How an evaluation is judged against a vector's `expect`: one rule for the executor's test
//! (`tests/expr_vectors.rs`) and for the `cel` spike (`bench/cel-spike`), so both count the same
//! answers as the server's.

use serde_json::Value;

/// `Ok` when `got` (a value, or an evaluation error as text) is what `expect` says: an error for
/// `{"error": …}`, else a value equal to `expect` with numbers compared by value.
pub fn judge(got: Result<Value, String>, expect: &Value) -> Result<(), String> {
    let want_error =
        expect.get("error").is_some() && expect.as_object().is_some_and(|o| o.len() == 1);
    match got {
        Err(_) if want_error => Ok(()),
        Err(e) => Err(format!("error {e}, want {expect}")),
        Ok(g) if want_error => Err(format!("got {g}, want an error")),
        Ok(g) if json_eq(&g, expect) => Ok(()),
        Ok(g) => Err(format!("got {g}, want {expect}")),
    }
}

/// JSON equality with numbers compared by value (`9` equals `9.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}
