//! Small formatting helpers for the dashboard: durations, times, JSON and URLs with a query.

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::Value;

/// Milliseconds between two instants (0 when `end` is earlier).
pub(crate) fn millis_between(start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    (end - start).num_milliseconds().max(0)
}

/// A duration for people: `850 ms`, `1.25 s`, `3m 05s`, `2h 10m`.
pub(crate) fn duration(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.2} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// An instant as `2026-12-02 15:04:05.123 UTC`.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// A `<time>` element with the machine-readable instant and the readable one.
pub(crate) fn time_el(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (time(t)) } }
}

/// Pretty-printed JSON (compact when it cannot be pretty-printed).
pub(crate) fn json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A run status, coloured by its CSS class.
pub(crate) fn status(s: &str) -> Markup {
    html! { span class={"status status-" (s)} { (s) } }
}

/// `path?k=v&…` with the non-empty parameters, form-encoded.
pub(crate) fn url_with(path: &str, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

/// `/runs/{id}` with the id percent-encoded as a path segment.
pub(crate) fn run_href(id: &str) -> String {
    let mut u = url::Url::parse("http://x/runs/").expect("a valid base");
    u.path_segments_mut()
        .expect("a base URL")
        .pop_if_empty()
        .push(id);
    u.path().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(1250), "1.25 s");
        assert_eq!(duration(185_000), "3m 05s");
        assert_eq!(duration(7_800_000), "2h 10m");
    }

    #[test]
    fn urls_keep_only_set_parameters() {
        assert_eq!(
            url_with("/runs", &[("status", ""), ("function", "")]),
            "/runs"
        );
        assert_eq!(
            url_with("/runs", &[("status", "Failed"), ("function", "a b&c")]),
            "/runs?status=Failed&function=a+b%26c"
        );
        assert_eq!(run_href("01J/x"), "/runs/01J%2Fx");
    }
}
