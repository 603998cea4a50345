//! `/runs`: runs newest first, filtered by function and status (query parameters), one page at
//! a time, with a table body that refreshes itself from `/fragments/runs`.

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::format::{duration, millis_between, run_href, status, time_el, url_with};
use super::layout::{page, Nav};
use crate::shared::State;
use crate::state::{Run, RunStatus};

/// Runs shown per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// The statuses the filter offers.
const STATUSES: [RunStatus; 4] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

/// The query parameters of `/runs` and `/fragments/runs`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RunsQuery {
    /// Only runs of this function (composite id).
    #[serde(default)]
    pub(crate) function: String,
    /// Only runs with this status (`Running`, `Completed`, `Failed`, `Cancelled`).
    #[serde(default)]
    pub(crate) status: String,
    /// 1-based page number.
    #[serde(default)]
    pub(crate) page: Option<usize>,
}

impl RunsQuery {
    fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    fn matches(&self, run: &Run) -> bool {
        (self.function.is_empty() || run.function.slug == self.function)
            && (self.status.is_empty() || run.status.as_str() == self.status)
    }

    /// `path` with these filters (and `page`, when not the first).
    fn href(&self, path: &str, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        url_with(
            path,
            &[
                ("function", &self.function),
                ("status", &self.status),
                ("page", &page),
            ],
        )
    }
}

/// One page of matching runs, newest first, and whether another page follows.
fn select<'a>(st: &'a State, q: &RunsQuery) -> (Vec<&'a Run>, bool) {
    let skip = (q.page() - 1) * PAGE_SIZE;
    let mut matching = st
        .run_order
        .iter()
        .rev()
        .filter_map(|id| st.runs.get(id))
        .filter(|r| q.matches(r))
        .skip(skip);
    let rows: Vec<&Run> = matching.by_ref().take(PAGE_SIZE).collect();
    let more = matching.next().is_some();
    (rows, more)
}

/// The rows of one page (the live fragment).
pub(crate) fn rows(st: &State, q: &RunsQuery, now: DateTime<Utc>) -> Markup {
    let (runs, _) = select(st, q);
    html! {
        @for run in &runs {
            (row(run, now))
        }
        @if runs.is_empty() {
            tr #no-runs { td colspan="6" { "No runs match." } }
        }
    }
}

/// One run's row.
fn row(run: &Run, now: DateTime<Utc>) -> Markup {
    let end = run.ended_at.unwrap_or(now);
    let event = run.event.get("name").and_then(|v| v.as_str()).unwrap_or("");
    html! {
        tr.run data-run-id=(run.id) data-function=(run.function.slug) data-status=(run.status.as_str()) {
            td { a.run-link href=(run_href(&run.id)) { code { (run.id) } } }
            td.function { (run.function.slug) }
            td { (status(run.status.as_str())) }
            td.event { code { (event) } }
            td { (time_el(run.started_at)) }
            td.duration {
                (duration(millis_between(run.started_at, end)))
                @if run.ended_at.is_none() { span.muted { " so far" } }
            }
        }
    }
}

/// The page: filters, the live table, and the page links.
pub(crate) fn render(st: &State, q: &RunsQuery, now: DateTime<Utc>) -> Markup {
    let (_, more) = select(st, q);
    let page_no = q.page();
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            label { "Function"
                select name="function" {
                    option value="" { "all" }
                    @for f in st.functions.keys() {
                        option value=(f) selected[*f == q.function] { (f) }
                    }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "all" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[s.as_str() == q.status] { (s.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        table #runs {
            thead { tr {
                th { "Run" } th { "Function" } th { "Status" } th { "Event" } th { "Started" }
                th { "Duration" }
            } }
            tbody #runs-rows data-live=(q.href("/fragments/runs", page_no)) { (rows(st, q, now)) }
        }
        nav.pages {
            @if page_no > 1 { a #prev-page href=(q.href("/runs", page_no - 1)) { "← newer" } }
            span.muted { "page " (page_no) " · " (PAGE_SIZE) " per page · updates live" }
            @if more { a #next-page href=(q.href("/runs", page_no + 1)) { "older →" } }
        }
    };
    page("Runs", Nav::Runs, body)
}
