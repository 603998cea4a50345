//! `/runs/{id}`: one run — its facts, the event payload, a waterfall of its steps with
//! durations and attempts, retries and their errors, the output or final error, its history, and
//! a Cancel button while it runs. The body refreshes itself from `/fragments/runs/{id}`.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::format::{duration, json, millis_between, run_href, status, time_el, url_with};
use super::layout::{page, Nav};
use crate::state::{HistoryEntry, HistoryKind, RunStatus, RunView, StepView};

/// History kinds that are a failed attempt or its retry.
const RETRY_KINDS: &[HistoryKind] = &[
    HistoryKind::StepErrored,
    HistoryKind::StepFailed,
    HistoryKind::FunctionError,
    HistoryKind::RequestFailed,
    HistoryKind::InvalidResponse,
    HistoryKind::UnsupportedOp,
    HistoryKind::RetryScheduled,
];

/// The whole page.
pub(crate) fn render(run: &RunView, now: DateTime<Utc>) -> Markup {
    let live =
        (run.status == RunStatus::Running).then(|| format!("/fragments{}", run_href(&run.id)));
    let body = html! {
        div #run data-live=[live] { (content(run, now)) }
    };
    page(&format!("Run {}", run.id), Nav::Runs, body)
}

/// The page's content (the live fragment).
pub(crate) fn content(run: &RunView, now: DateTime<Utc>) -> Markup {
    let end = run.ended_at.unwrap_or(now);
    html! {
        h1 { "Run " code #run-id { (run.id) } }
        dl.facts {
            dt { "Function" }
            dd #run-function { a href=(url_with("/runs", &[("function", &run.function_id)])) { (run.function_id) } }
            dt { "Status" } dd #run-status { (status(run.status.as_str())) }
            dt { "Started" } dd { (time_el(run.started_at)) }
            dt { "Ended" } dd { @match run.ended_at { Some(t) => (time_el(t)), None => "not yet" } }
            dt { "Duration" } dd #run-duration { (duration(millis_between(run.started_at, end))) }
            dt { "Requests to the app" } dd { (run.requests) }
            dt { "Event id" } dd { code { (run.event_id) } }
        }
        @if run.status == RunStatus::Running {
            form #cancel method="post" action={(run_href(&run.id)) "/cancel"} {
                p { button.cancel type="submit" { "Cancel run" } }
            }
        }
        h2 { "Steps" }
        (waterfall(run, end))
        (retries(run))
        (outcome(run))
        h2 { "Event" }
        @for (i, ev) in run.events.iter().enumerate() {
            @let name = ev.get("name").and_then(|v| v.as_str()).unwrap_or("");
            p { code { (name) } @if run.events.len() > 1 { " (" (i + 1) " of " (run.events.len()) ")" } }
            pre.event-payload { (json(ev)) }
        }
        h2 { "History" }
        (history(run))
    }
}

/// The output of a completed run, or the final error of a failed or cancelled one.
fn outcome(run: &RunView) -> Markup {
    html! {
        @if let Some(err) = &run.error {
            h2 { "Error" }
            p.error #run-error { strong { (err.name) } ": " span #run-error-message { (err.message) } }
            @if let Some(stack) = &err.stack { pre.stack { (stack) } }
        } @else if let Some(out) = &run.output {
            h2 { "Output" }
            pre #run-output { (json(out)) }
        }
    }
}

/// Steps in the order they were first seen: a bar from the step's start to its end on the
/// run's time axis, its duration and its attempts.
fn waterfall(run: &RunView, end: DateTime<Utc>) -> Markup {
    let total = millis_between(run.started_at, end).max(1) as f64;
    html! {
        @if run.steps.is_empty() {
            p.muted #no-steps { "No steps (yet)." }
        } @else {
            ol.waterfall #steps {
                @for step in &run.steps {
                    (step_row(run, step, end, total))
                }
            }
        }
    }
}

/// One step of the waterfall.
fn step_row(run: &RunView, step: &StepView, end: DateTime<Utc>, total: f64) -> Markup {
    let step_end = step.ended_at.unwrap_or(end);
    let ms = millis_between(step.started_at, step_end);
    let left = millis_between(run.started_at, step.started_at) as f64 * 100.0 / total;
    let width = ms as f64 * 100.0 / total;
    let style = format!(
        "left:{:.2}%;width:{:.2}%",
        left.min(100.0),
        width.min(100.0 - left.min(100.0))
    );
    let state = format!("{:?}", step.status);
    html! {
        li.step data-step=(step.name) data-status=(state) data-attempts=(step.attempts) data-duration-ms=(ms) {
            span { code.step-name { (step.name) } " " span.muted { (step.op) } }
            span.track { span class={"bar " (state)} style=(style) {} }
            span {
                span.step-duration { (duration(ms)) } " · " (state) " · "
                span.step-attempts { (step.attempts) " attempt" @if step.attempts != 1 { "s" } }
                @if let Some(err) = &step.error {
                    br; span.error.step-error { (error_text(err)) }
                }
            }
        }
    }
}

/// Failed attempts and scheduled retries, with their errors.
fn retries(run: &RunView) -> Markup {
    let entries: Vec<&HistoryEntry> = run
        .history
        .iter()
        .filter(|h| RETRY_KINDS.contains(&h.kind))
        .collect();
    html! {
        h2 { "Retries and errors" }
        @if entries.is_empty() {
            p.muted #no-retries { "None: every attempt succeeded." }
        } @else {
            table #retries {
                thead { tr { th { "At" } th { "What" } th { "Step" } th { "Attempt" } th { "Message" } } }
                tbody { @for h in entries { (history_row(run, h)) } }
            }
        }
    }
}

/// The full history.
fn history(run: &RunView) -> Markup {
    html! {
        table #history {
            thead { tr { th { "At" } th { "What" } th { "Step" } th { "Attempt" } th { "Message" } } }
            tbody { @for h in &run.history { (history_row(run, h)) } }
        }
    }
}

/// One history line; the step is named by its user id when the run knows it.
fn history_row(run: &RunView, h: &HistoryEntry) -> Markup {
    let step = h.step_id.as_deref().map(|id| {
        run.steps
            .iter()
            .find(|s| s.id == id)
            .map_or(id, |s| s.name.as_str())
    });
    html! {
        tr data-kind=(format!("{:?}", h.kind)) {
            td { (time_el(h.at)) }
            td { (format!("{:?}", h.kind)) }
            td { @if let Some(s) = step { code { (s) } } }
            td { @if let Some(a) = h.attempt { (a) } }
            td.message { (h.message) }
        }
    }
}

/// A step error (`{"name", "message"}` or any JSON) on one line.
fn error_text(err: &serde_json::Value) -> String {
    let field = |k: &str| err.get(k).and_then(|v| v.as_str());
    match (field("name"), field("message")) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (None, Some(m)) => m.to_owned(),
        _ => err.to_string(),
    }
}
