//! App registration: `/fn/register` (validate the payload through [`crate::registry`], replace
//! the app's functions and crons when its configuration changed, bring back restored runs of
//! its functions), and syncing an app over HTTP like the dev server — a `PUT` to the app, which
//! either `POST`s `/fn/register` back (out-of-band) or answers with its configuration (in-band,
//! signature-checked when keyed).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::registry::{self, AppDef};
use crate::response::{error_text, RawResponse};
use crate::shared::{Actions, AppEntry, Inner, State, SyncRecord};
use crate::SyncError;
use inngest_protocol::signature;
use inngest_protocol::wire::headers as h;

impl Inner {
    /// Validates and stores an app's functions (the `/fn/register` logic). Returns the app and
    /// whether its configuration changed.
    pub(crate) fn register(
        self: &Arc<Self>,
        payload: &Value,
    ) -> Result<(AppDef, bool), Vec<String>> {
        let now = self.now();
        let url = payload
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let parsed = registry::parse_app(payload, now);
        let mut actions = Actions::default();
        let result = {
            let mut st = self.lock();
            match parsed {
                Err(errors) => {
                    st.syncs.push(SyncRecord {
                        app: payload
                            .get("appName")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        url,
                        error: Some(errors.join("; ")),
                    });
                    Err(errors)
                }
                Ok(def) => {
                    let modified = self.install(&mut st, &def, now);
                    st.syncs.push(SyncRecord {
                        app: Some(def.name.clone()),
                        url,
                        error: None,
                    });
                    self.restore_runs(&mut st, now, &mut actions);
                    crate::flow_control::restore_held(&mut st, &mut actions);
                    Ok((def, modified))
                }
            }
        };
        self.perform(actions);
        result
    }

    /// Makes `def` the app's registration: when its checksum changed, the old functions and
    /// crons are replaced; otherwise only its sync time moves. Returns whether it changed.
    fn install(self: &Arc<Self>, st: &mut State, def: &AppDef, now: DateTime<Utc>) -> bool {
        let modified = st
            .apps
            .get(&def.name)
            .is_none_or(|a| a.def.checksum != def.checksum);
        if !modified {
            if let Some(a) = st.apps.get_mut(&def.name) {
                a.def.synced_at = now;
            }
            return false;
        }
        if let Some(old) = st.apps.remove(&def.name) {
            for c in old.crons {
                c.abort();
            }
            for f in &old.def.functions {
                st.functions.remove(&f.slug);
            }
        }
        let mut crons = Vec::new();
        for f in &def.functions {
            st.functions.insert(f.slug.clone(), f.clone());
            for sched in &f.crons {
                let last = st
                    .cron_ticks
                    .get(&crate::crons::tick_key(f, sched))
                    .copied();
                crons.push(self.spawn_cron(f.clone(), sched.clone(), last, now));
            }
        }
        st.apps.insert(
            def.name.clone(),
            AppEntry {
                def: def.clone(),
                crons,
            },
        );
        tracing::info!(app = %def.name, functions = def.functions.len(), "app synced");
        true
    }

    /// Syncs an app over HTTP: out-of-band (the app POSTs `/fn/register` back) or in-band.
    pub(crate) async fn sync_app(
        self: &Arc<Self>,
        url: &str,
        in_band: bool,
    ) -> Result<AppDef, SyncError> {
        let body = serde_json::to_vec(&json!({ "url": url })).unwrap_or_default();
        let target = url::Url::parse(url).map_err(|e| SyncError::Unreachable {
            url: url.to_owned(),
            message: format!("invalid URL: {e}"),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(h::SERVER_KIND, HeaderValue::from_static("dev"));
        if in_band {
            headers.insert(h::SYNC_KIND, HeaderValue::from_static("in_band"));
        }
        if let Some(key) = &self.settings.signing_key {
            if let Ok(v) = HeaderValue::from_str(&signature::sign_now(key, &body)) {
                headers.insert(h::SIGNATURE, v);
            }
        }
        let before = self.lock().syncs.len();
        let res = self
            .call(http::Method::PUT, target, headers, body)
            .await
            .map_err(|message| SyncError::Unreachable {
                url: url.to_owned(),
                message,
            })?;
        let status = http::StatusCode::from_u16(res.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if !status.is_success() {
            return Err(SyncError::Rejected {
                status: status.as_u16(),
                message: error_text(&res.body),
            });
        }
        if in_band {
            return self.register_in_band(url, &res);
        }
        self.registered_since(url, before)
    }

    /// Registers the configuration an in-band sync answered with.
    fn register_in_band(
        self: &Arc<Self>,
        url: &str,
        res: &RawResponse,
    ) -> Result<AppDef, SyncError> {
        if let Some(key) = &self.settings.signing_key {
            let sig = res.headers.get(h::SIGNATURE).and_then(|v| v.to_str().ok());
            signature::verify(sig, &res.body, Some(key), None, Utc::now().timestamp())
                .map_err(|e| SyncError::InvalidResponse(format!("response signature: {e}")))?;
        }
        let v: Value = serde_json::from_slice(&res.body)
            .map_err(|e| SyncError::InvalidResponse(format!("body is not JSON: {e}")))?;
        let payload = json!({
            "appName": v.get("app_id").cloned().unwrap_or(Value::Null),
            "url": v.get("url").cloned().unwrap_or_else(|| Value::String(url.to_owned())),
            "functions": v.get("functions").cloned().unwrap_or_else(|| json!([])),
            "sdk": v.get("sdk").cloned().unwrap_or(Value::Null),
            "framework": v.get("framework").cloned().unwrap_or(Value::Null),
        });
        self.register(&payload)
            .map(|(def, _)| def)
            .map_err(|errors| SyncError::Invalid(errors.join("; ")))
    }

    /// The app an out-of-band sync registered: the `/fn/register` call (since sync number
    /// `before`) from the app's URL, else the latest one.
    fn registered_since(&self, url: &str, before: usize) -> Result<AppDef, SyncError> {
        let st = self.lock();
        let recent = st.syncs.get(before..).unwrap_or_default();
        let record = recent
            .iter()
            .rev()
            .find(|r| same_app_url(&r.url, url))
            .or_else(|| recent.last())
            .cloned()
            .ok_or(SyncError::NotRegistered)?;
        if let Some(err) = record.error {
            return Err(SyncError::Invalid(err));
        }
        record
            .app
            .and_then(|a| st.apps.get(&a).map(|e| e.def.clone()))
            .ok_or(SyncError::NotRegistered)
    }
}

/// Whether two app URLs name the same endpoint (loopback host spellings are equal).
fn same_app_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        url::Url::parse(s).ok().map(|u| {
            let host = match u.host_str().unwrap_or("") {
                "localhost" | "127.0.0.1" | "[::1]" | "::1" => "loopback".to_owned(),
                other => other.to_owned(),
            };
            (host, u.port_or_known_default(), u.path().to_owned())
        })
    };
    match (norm(a), norm(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
