//! Following the demo's runs: in the embedded executor's memory, or through any Inngest server's
//! REST API (`GET /v1/events/{id}/runs`, `GET /v1/runs/{id}`), as the real `inngest dev` serves
//! it.
//!
//! Through a server the demo knows each stage's triggering event id (the webhook routes answer
//! with the ids they sent; the functions send theirs with deterministic ids), so it follows
//! exactly the runs its scenario started. Run snapshots come back in the executor's
//! [`RunView`] shape so the summary is the same; their steps are filled from
//! `GET /v1/runs/{id}/steps` where the server has it (our `inngest-dev-server`), and left empty
//! where it does not (the real dev server's REST API has no steps endpoint).

use std::time::{Duration, Instant};

use inngest_executor::{Executor, RunStatus, RunView, StepView};
use serde_json::{json, Value};

use crate::functions::APP_ID;

/// One run the scenario expects: the event that triggers it, the function (id without the app
/// prefix) it runs, and the event's name (for the summary).
#[derive(Debug, Clone, Copy)]
pub(super) struct Expect<'a> {
    pub event_id: &'a str,
    pub function: &'a str,
    pub event_name: &'a str,
}

/// Where the runs are read.
pub(super) enum Follow<'a> {
    /// The embedded executor, read in memory.
    Embedded(&'a Executor),
    /// An Inngest server at `api` (its origin), read over REST.
    Server(ServerRuns),
}

/// The runs followed through a server so far.
pub(super) struct ServerRuns {
    http: reqwest::Client,
    api: String,
    seen: Vec<RunView>,
}

impl ServerRuns {
    /// Follows runs through the server at `api` (`http://127.0.0.1:8288`).
    pub(super) fn new(api: &str) -> ServerRuns {
        ServerRuns {
            http: reqwest::Client::new(),
            api: api.trim_end_matches('/').to_owned(),
            seen: Vec::new(),
        }
    }

    async fn get(&self, path: &str) -> Result<Option<Value>, String> {
        let url = format!("{}{path}", self.api);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url} failed: {e}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(format!("GET {url} answered {}", resp.status()));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("GET {url}: not JSON: {e}"))?;
        Ok(Some(body.get("data").cloned().unwrap_or(body)))
    }

    /// Waits until `expect`'s event has a run and that run has ended.
    async fn settle_one(&mut self, expect: Expect<'_>, deadline: Instant) -> Result<(), String> {
        let path = format!("/v1/events/{}/runs", expect.event_id);
        let run_id = loop {
            let runs = self.get(&path).await?.unwrap_or(Value::Null);
            if let Some(id) = runs.get(0).and_then(|r| r["run_id"].as_str()) {
                break id.to_owned();
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no run of {} was started by event {}",
                    expect.function, expect.event_id
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        loop {
            let run = self
                .get(&format!("/v1/runs/{run_id}"))
                .await?
                .ok_or_else(|| format!("run {run_id} of {} vanished", expect.function))?;
            let view = self.view(&run_id, &run, expect).await?;
            if view.status.is_terminal() {
                let bad = view.status != RunStatus::Completed;
                let line = format!(
                    "run {run_id} of {} {}: {}",
                    expect.function,
                    view.status.as_str(),
                    run["output"]
                );
                self.seen.retain(|r| r.id != view.id);
                self.seen.push(view);
                return if bad { Err(line) } else { Ok(()) };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "run {run_id} of {} is still running",
                    expect.function
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A REST run as a [`RunView`], with its steps where the server lists them.
    async fn view(&self, run_id: &str, run: &Value, expect: Expect<'_>) -> Result<RunView, String> {
        let status = match run["status"].as_str() {
            Some("Completed") => "Completed",
            Some("Failed") => "Failed",
            Some("Cancelled") => "Cancelled",
            _ => "Running",
        };
        let steps: Vec<StepView> = match self.get(&format!("/v1/runs/{run_id}/steps")).await {
            Ok(Some(v)) => serde_json::from_value(v).unwrap_or_default(),
            _ => Vec::new(),
        };
        let failed = status == "Failed";
        let view = json!({
            "id": run_id,
            "function_id": format!("{APP_ID}-{}", expect.function),
            "app_id": APP_ID,
            "status": status,
            "output": if failed { Value::Null } else { run["output"].clone() },
            "error": Value::Null,
            "event_id": expect.event_id,
            "events": [{ "id": expect.event_id, "name": expect.event_name }],
            "steps": steps,
            "history": [],
            "started_at": run["run_started_at"],
            "ended_at": run["ended_at"],
            "requests": 0,
        });
        serde_json::from_value(view).map_err(|e| format!("run {run_id}: unexpected shape: {e}"))
    }
}

impl Follow<'_> {
    /// Waits until every expected run has ended; fails at once when one fails or is cancelled,
    /// and after `timeout` with what is missing or still running.
    pub(super) async fn settle(
        &mut self,
        expected: &[Expect<'_>],
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        match self {
            Follow::Embedded(executor) => {
                let functions: Vec<&str> = expected.iter().map(|e| e.function).collect();
                settle_embedded(executor, &functions, deadline, timeout).await
            }
            Follow::Server(server) => {
                for e in expected {
                    server.settle_one(*e, deadline).await?;
                }
                Ok(())
            }
        }
    }

    /// Every run followed, oldest first.
    pub(super) fn runs(&self) -> Vec<RunView> {
        match self {
            Follow::Embedded(executor) => executor.runs(),
            Follow::Server(server) => server.seen.clone(),
        }
    }

    /// What the summary calls the Inngest side.
    pub(super) fn label(&self) -> &'static str {
        match self {
            Follow::Embedded(_) => "embedded executor",
            Follow::Server(_) => "through the Inngest server",
        }
    }
}

/// Waits until every run of the embedded executor has ended and each of `functions` has at
/// least one run.
async fn settle_embedded(
    executor: &Executor,
    functions: &[&str],
    deadline: Instant,
    timeout: Duration,
) -> Result<(), String> {
    loop {
        let runs = executor.runs();
        if let Some(bad) = runs
            .iter()
            .find(|r| matches!(r.status, RunStatus::Failed | RunStatus::Cancelled))
        {
            let error = bad
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.name, e.message))
                .unwrap_or_default();
            return Err(format!(
                "run {} of {} {}: {error}\n{}",
                bad.id,
                short_fn(&bad.function_id),
                bad.status.as_str(),
                bad.describe()
            ));
        }
        let missing: Vec<&str> = functions
            .iter()
            .copied()
            .filter(|f| {
                let id = format!("{APP_ID}-{f}");
                !runs.iter().any(|r| r.function_id == id)
            })
            .collect();
        let running: Vec<&RunView> = runs.iter().filter(|r| !r.status.is_terminal()).collect();
        if missing.is_empty() && running.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let mut msg = format!("timed out after {timeout:?}");
            if !missing.is_empty() {
                msg.push_str(&format!("; no run of {} was started", missing.join(", ")));
            }
            for r in running {
                msg.push_str(&format!(
                    "; run {} of {} is still running\n{}",
                    r.id,
                    short_fn(&r.function_id),
                    r.describe()
                ));
            }
            return Err(msg);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `process-order` from `otakumori-app-process-order`.
pub(super) fn short_fn(composite: &str) -> &str {
    composite
        .strip_prefix(APP_ID)
        .and_then(|s| s.strip_prefix('-'))
        .unwrap_or(composite)
}
