//! Helpers that build Inngest (CEL) expressions with correct quoting, so users never hand-escape
//! strings in `if` expressions, cancellation rules or concurrency keys.
//!
//! ```
//! use inngest_protocol::quote as expr;
//! assert_eq!(
//!     expr::fields_equal("data.order_id", "data.order_id"),
//!     "event.data.order_id == async.data.order_id"
//! );
//! assert_eq!(
//!     expr::async_equals("data.note", &serde_json::json!("it's \"fine\"")),
//!     r#"async.data.note == "it's \"fine\"""#
//! );
//! ```

/// `event.<event_field> == async.<async_field>`: the incoming event (`async`) must carry the same
/// value as the run's triggering event (`event`). Fields are dotted paths such as `data.user_id`.
pub fn fields_equal(event_field: &str, async_field: &str) -> String {
    format!(
        "event.{} == async.{}",
        trim_root(event_field, "event"),
        trim_root(async_field, "async")
    )
}

/// `async.<field> == <literal>` with the value rendered as a CEL literal.
pub fn async_equals(field: &str, value: &serde_json::Value) -> String {
    format!("async.{} == {}", trim_root(field, "async"), literal(value))
}

/// `event.<field> == <literal>` with the value rendered as a CEL literal.
pub fn event_equals(field: &str, value: &serde_json::Value) -> String {
    format!("event.{} == {}", trim_root(field, "event"), literal(value))
}

/// Renders a JSON value as a CEL literal: strings are double-quoted with `\\`, `"` and control
/// characters escaped; numbers, booleans and `null` as themselves; arrays as lists and objects as
/// maps.
pub fn literal(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => quote(s),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", parts.join(", "))
        }
        serde_json::Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", quote(k), literal(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn trim_root<'a>(field: &'a str, root: &str) -> &'a str {
    field
        .strip_prefix(root)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_match_expressions() {
        assert_eq!(
            fields_equal("event.data.id", "async.data.id"),
            "event.data.id == async.data.id"
        );
        assert_eq!(
            async_equals("data.resume", &json!(true)),
            "async.data.resume == true"
        );
        assert_eq!(event_equals("data.n", &json!(4.5)), "event.data.n == 4.5");
    }

    #[test]
    fn quotes_strings_safely() {
        assert_eq!(literal(&json!("a\"b\\c\nd")), r#""a\"b\\c\nd""#);
        assert_eq!(literal(&json!("\u{1}")), r#""\u0001""#);
        assert_eq!(literal(&json!(["x", 1, null])), r#"["x", 1, null]"#);
        assert_eq!(literal(&json!({"k": "v"})), r#"{"k": "v"}"#);
    }
}
