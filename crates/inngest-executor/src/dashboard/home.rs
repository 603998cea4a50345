//! `/`: the synced apps and their functions, with triggers, the next firing time of each cron,
//! flow-control settings, and the recent error rate and durations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::Value;

use super::format::{duration, time_el, url_with};
use super::layout::{page, Nav};
use super::stats::{self, FunctionStats};
use crate::cron::CronSchedule;
use crate::registry::{AppView, FunctionView};
use crate::shared::State;

/// The keys of a function's registered configuration that are flow-control (or cancellation)
/// settings, in the order the executor applies them.
const FLOW_KEYS: &[&str] = &[
    "rateLimit",
    "idempotency",
    "debounce",
    "batchEvents",
    "singleton",
    "throttle",
    "concurrency",
    "priority",
    "timeouts",
    "cancel",
];

/// The page.
pub(crate) fn render(st: &State, now: DateTime<Utc>) -> Markup {
    let apps: Vec<AppView> = st.apps.values().map(|a| a.def.view()).collect();
    let stats = stats::window(st, now);
    let body = html! {
        h1 { "Apps and functions" }
        p.muted #stats-window {
            "Error rate and durations: runs that ended in the last "
            (stats::WINDOW_MINUTES) " minutes, at most the newest "
            (stats::WINDOW_RUNS) " per function. Error rate = failed ÷ ended."
        }
        @if apps.is_empty() {
            p #no-apps { "No app has synced yet. Point an app at this server (INNGEST_DEV=1, \
                          INNGEST_BASE_URL=<this server>) or start it with -u <app URL>." }
        }
        @for app in &apps {
            (app_section(st, app, &stats, now))
        }
    };
    page("Functions", Nav::Functions, body)
}

/// One app: its facts and its functions' table.
fn app_section(
    st: &State,
    app: &AppView,
    stats: &HashMap<String, FunctionStats>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        section.app data-app=(app.id) {
            h2 { "App " code { (app.id) } }
            p.muted {
                (app.url) " · " (app.sdk.as_deref().unwrap_or("unknown SDK"))
                @if let Some(fw) = &app.framework { " · " (fw) }
                " · synced " (time_el(app.synced_at))
            }
            table.functions {
                thead { tr {
                    th { "Function" } th { "Triggers" } th { "Flow control" } th { "Retries" }
                    th { "Ended runs" } th { "Error rate" } th { "p50" } th { "p95" }
                } }
                tbody {
                    @for f in &app.functions {
                        (function_row(st, f, stats.get(&f.id), now))
                    }
                }
            }
        }
    }
}

/// One function's row.
fn function_row(
    st: &State,
    f: &FunctionView,
    stats: Option<&FunctionStats>,
    now: DateTime<Utc>,
) -> Markup {
    let stats = stats.cloned().unwrap_or_default();
    let config = st.function(&f.id).map(|d| d.config.clone());
    let runs = url_with("/runs", &[("function", &f.id)]);
    html! {
        tr.function data-function=(f.id) {
            td { a href=(runs) { (f.name) } br; code.muted { (f.id) } }
            td.triggers { (triggers(&f.triggers, now)) }
            td.flow { (flow_settings(config.as_ref())) }
            td { (f.retries) }
            td.ended { (stats.ended) }
            td.error-rate { @match stats.error_rate() {
                Some(r) => (format!("{r:.1}%")),
                None => span.muted { "–" },
            } }
            td.p50 { (stats.p50_ms.map(duration).unwrap_or_else(|| "–".into())) }
            td.p95 { (stats.p95_ms.map(duration).unwrap_or_else(|| "–".into())) }
        }
    }
}

/// Event triggers (with their `if` expression) and crons with the next firing time.
fn triggers(list: &Value, now: DateTime<Utc>) -> Markup {
    let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        ul {
            @for t in list {
                @if let Some(ev) = t.get("event").and_then(Value::as_str) {
                    li.event-trigger { "event " code { (ev) }
                        @if let Some(e) = t.get("expression").and_then(Value::as_str) {
                            " if " code { (e) }
                        }
                    }
                } @else if let Some(cron) = t.get("cron").and_then(Value::as_str) {
                    li.cron-trigger data-cron=(cron) { "cron " code { (cron) } " · next "
                        @match CronSchedule::parse(cron).ok().and_then(|c| c.next_after(now)) {
                            Some(next) => span.next-fire { (time_el(next)) },
                            None => span.muted { "never" },
                        }
                    }
                }
            }
        }
    }
}

/// The flow-control settings present in the registered configuration, as JSON.
fn flow_settings(config: Option<&Value>) -> Markup {
    let present: Vec<(&str, &Value)> = FLOW_KEYS
        .iter()
        .filter_map(|k| {
            let v = config?.get(*k)?;
            (!v.is_null()).then_some((*k, v))
        })
        .collect();
    html! {
        @if present.is_empty() {
            span.muted { "none" }
        } @else {
            dl {
                @for (k, v) in present {
                    dt { code { (k) } }
                    dd { code { (compact(v)) } }
                }
            }
        }
    }
}

/// A setting on one line: strings as they are, anything else as compact JSON.
fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
