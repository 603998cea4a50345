//! `/events`: events newest first, one page at a time, each with the runs it started and the
//! functions flow control kept from starting one (idempotency, rate limit, debounce, singleton).

use std::collections::{HashMap, HashSet};

use maud::{html, Markup};
use serde::Deserialize;

use super::format::{json, run_href, status, time_el, url_with};
use super::layout::{page, Nav};
use crate::flow::SkipView;
use crate::shared::State;
use crate::state::StoredEvent;

/// Events shown per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// The query parameters of `/events`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct EventsQuery {
    /// 1-based page number.
    #[serde(default)]
    pub(crate) page: Option<usize>,
}

/// The page.
pub(crate) fn render(st: &State, q: &EventsQuery) -> Markup {
    let page_no = q.page.unwrap_or(1).max(1);
    let skip = (page_no - 1) * PAGE_SIZE;
    let shown: Vec<&StoredEvent> = st.events.iter().rev().skip(skip).take(PAGE_SIZE).collect();
    let more = st.events.len() > skip + shown.len();
    let skips = skips_of(st, &shown);
    let href = |n: usize| url_with("/events", &[("page", &n.to_string())]);
    let body = html! {
        h1 { "Events" }
        table #events {
            thead { tr { th { "Event" } th { "Received" } th { "Runs started" } th { "Skipped by flow control" } } }
            tbody {
                @for e in &shown {
                    (event_row(st, e, skips.get(e.internal_id.as_str()).map(Vec::as_slice).unwrap_or_default()))
                }
                @if shown.is_empty() { tr #no-events { td colspan="4" { "No events yet." } } }
            }
        }
        nav.pages {
            @if page_no > 1 { a #prev-page href=(href(page_no - 1)) { "← newer" } }
            span.muted { "page " (page_no) " · " (PAGE_SIZE) " per page" }
            @if more { a #next-page href=(href(page_no + 1)) { "older →" } }
        }
    };
    page("Events", Nav::Events, body)
}

/// The skips of the shown events, by internal event id: one pass over the skip records.
fn skips_of<'a>(st: &'a State, shown: &[&StoredEvent]) -> HashMap<&'a str, Vec<&'a SkipView>> {
    let ids: HashSet<&str> = shown.iter().map(|e| e.internal_id.as_str()).collect();
    let mut out: HashMap<&str, Vec<&SkipView>> = HashMap::new();
    for s in st.flow.skipped() {
        if ids.contains(s.event_id.as_str()) {
            out.entry(s.event_id.as_str()).or_default().push(s);
        }
    }
    out
}

/// One event: name, id and payload, its runs, its skips.
fn event_row(st: &State, e: &StoredEvent, skips: &[&SkipView]) -> Markup {
    let name = e.event.get("name").and_then(|v| v.as_str()).unwrap_or("");
    let runs = st.run_views_of_event(&e.internal_id);
    html! {
        tr.event data-event-id=(e.internal_id) data-name=(name) {
            td {
                code.event-name { (name) } br;
                code.muted { (e.internal_id) }
                details { summary { "payload" } pre { (json(&e.event)) } }
            }
            td { (time_el(e.received_at)) }
            td.runs { ul {
                @for r in &runs {
                    li.event-run data-run-id=(r.id) {
                        a href=(run_href(&r.id)) { (r.function_id) } " " (status(r.status.as_str()))
                    }
                }
                @if runs.is_empty() { li.muted { "none" } }
            } }
            td.skips { ul {
                @for s in skips {
                    li.skip data-function=(s.function_id) {
                        (s.function_id) " — " (format!("{:?}", s.reason))
                        @if !s.key.is_empty() { " (key " code { (s.key) } ")" }
                    }
                }
                @if skips.is_empty() { li.muted { "none" } }
            } }
        }
    }
}
