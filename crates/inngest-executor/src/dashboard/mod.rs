//! The run dashboard: server-rendered HTML pages at `/`, like the UI of `inngest dev`, served by
//! the executor's HTTP API next to its JSON routes.
//!
//! | route | page |
//! |---|---|
//! | `GET /` | apps and functions: triggers, crons with their next firing time, flow-control settings, error rate and p50/p95 duration over the last hour |
//! | `GET /runs?function=&status=&page=` | runs newest first, filtered, 50 a page, updating live |
//! | `GET /runs/{id}` | one run: event payload, step waterfall, retries and errors, output or error, history |
//! | `POST /runs/{id}/cancel` | cancels the run (same-origin form posts only), then back to its page |
//! | `GET /events?page=` | events newest first, with the runs each started and the flow-control skips |
//! | `GET /fragments/runs?…`, `GET /fragments/runs/{id}` | the live parts of the two run pages |
//!
//! Templates are [`maud`] (compile-time checked, escaped); the stylesheet and the small polling
//! script are inlined, so the pages work offline. Every page says in its footer that this is a
//! local development server showing event data. Keys are never rendered. Pages render under the
//! state lock from indexed data (`run_order`, `runs_by_event`) and one page of rows at a time,
//! so they stay fast with many runs (see `benches/dashboard.rs`).

mod events;
mod format;
mod home;
mod layout;
mod run;
mod runs;
mod stats;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use crate::shared::Inner;
use events::EventsQuery;
use layout::{page, Nav};
use runs::RunsQuery;

/// The dashboard's routes, merged into the executor's router.
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/", get(home_page))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/events", get(events_page))
        .route("/fragments/runs", get(runs_fragment))
        .route("/fragments/runs/{id}", get(run_fragment))
}

/// `200 text/html`, never cached (the pages show live state).
fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The 404 page of an unknown run.
fn run_not_found(id: &str) -> Response {
    let body = html! {
        h1 { "Run not found" }
        p #not-found { "No run has the id " code { (id) } ". " a href="/runs" { "All runs" } }
    };
    html_response(
        StatusCode::NOT_FOUND,
        page("Run not found", Nav::Runs, body),
    )
}

async fn home_page(State(inner): State<Arc<Inner>>) -> Response {
    let now = inner.now();
    let markup = home::render(&inner.lock(), now);
    html_response(StatusCode::OK, markup)
}

async fn runs_page(State(inner): State<Arc<Inner>>, Query(q): Query<RunsQuery>) -> Response {
    let now = inner.now();
    let markup = runs::render(&inner.lock(), &q, now);
    html_response(StatusCode::OK, markup)
}

async fn runs_fragment(State(inner): State<Arc<Inner>>, Query(q): Query<RunsQuery>) -> Response {
    let now = inner.now();
    let markup = runs::rows(&inner.lock(), &q, now);
    html_response(StatusCode::OK, markup)
}

async fn run_page(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let now = inner.now();
    let view = inner.lock().run_view(&id);
    match view {
        Some(v) => html_response(StatusCode::OK, run::render(&v, now)),
        None => run_not_found(&id),
    }
}

async fn run_fragment(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let now = inner.now();
    let view = inner.lock().run_view(&id);
    match view {
        Some(v) => html_response(StatusCode::OK, run::content(&v, now)),
        None => run_not_found(&id),
    }
}

async fn events_page(State(inner): State<Arc<Inner>>, Query(q): Query<EventsQuery>) -> Response {
    let markup = events::render(&inner.lock(), &q);
    html_response(StatusCode::OK, markup)
}

/// Whether a form post comes from a page of this server: an `Origin` header, when sent (every
/// browser sends one on a POST), must name the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = url::Url::parse(origin).ok().map(|u| match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_owned(),
    });
    host.is_some() && origin_host.as_deref() == host
}

/// `POST /runs/{id}/cancel`: the executor's cancel, then `303` back to the run's page.
async fn cancel(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin cancel refused").into_response();
    }
    // A run only in the store has ended: nothing to cancel, back to its page.
    if inner.lock().run_view(&id).is_none() {
        return run_not_found(&id);
    }
    if inner.cancel(&id, "cancelled from the dashboard") {
        tracing::info!(run_id = %id, "run cancelled from the dashboard");
    }
    Redirect::to(&format::run_href(&id)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cancel_posts_must_come_from_this_host() {
        assert!(same_origin(&headers(&[(header::HOST, "127.0.0.1:8288")])));
        assert!(same_origin(&headers(&[
            (header::HOST, "127.0.0.1:8288"),
            (header::ORIGIN, "http://127.0.0.1:8288"),
        ])));
        assert!(!same_origin(&headers(&[
            (header::HOST, "127.0.0.1:8288"),
            (header::ORIGIN, "https://evil.example"),
        ])));
        assert!(!same_origin(&headers(&[(
            header::ORIGIN,
            "http://127.0.0.1:8288"
        )])));
    }
}
