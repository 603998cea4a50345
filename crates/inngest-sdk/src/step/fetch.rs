//! Durable HTTP: [`Step::fetch`] has Inngest make the request (the `Gateway` op), so it
//! survives the app's restarts and holds none of its connections while the remote end thinks.
//!
//! The wire mirrors the JS SDK 4.x `step.fetch` (inngest-js `components/Fetch.ts` and the
//! gateway tool of `InngestStepTools.ts`): `opts: {url, method, headers, body}`; the memo is
//! `{"data": {"url", "headers", "body", "status_code"}}` (inngest `pkg/util/gateway`), any
//! HTTP status included. A request that could not be made at all (connection refused,
//! timeout, a body over 8 MiB) is retried with the function's retries and then surfaces as a
//! [`StepError`] named `GatewayError`.
//!
//! What the server does with the request, and so what to expect: the method defaults to `GET`
//! here (as in JS); headers are sent as given plus `User-Agent: Inngest`; a body that is JSON
//! goes out as is, **any other text goes out JSON-encoded** (a quoted JSON string), so send
//! JSON or nothing. Response header names come back in Go's canonical form (`Content-Type`),
//! repeated values joined with `,`.

use std::collections::BTreeMap;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use inngest_protocol::wire::OpCode;

use super::{decode_result, Step};
use crate::StepError;

/// The request of [`Step::fetch`]: method, URL, headers and an optional body.
///
/// ```
/// use inngest_sdk::FetchRequest;
///
/// let req = FetchRequest::post("https://api.example.com/orders")
///     .header("authorization", "Bearer token")
///     .json(&serde_json::json!({"sku": "plush-01"}));
/// ```
#[derive(Debug, Clone)]
pub struct FetchRequest {
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
    body: Result<Option<String>, String>,
}

impl FetchRequest {
    /// A request with any method (`"GET"`, `"PUT"`, …).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        FetchRequest {
            method: method.into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: Ok(None),
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        FetchRequest::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        FetchRequest::new("POST", url)
    }

    /// Sets a header (names are sent lower-cased, as the JS SDK sends them).
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// Sets the body as given. Text that is not JSON is sent JSON-encoded by Inngest.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Ok(Some(body.into()));
        self
    }

    /// Sets a JSON body and `content-type: application/json`. A value that cannot be
    /// serialized makes [`Step::fetch`] return a `SerializationError`.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        self.body = serde_json::to_string(body)
            .map(Some)
            .map_err(|e| format!("the fetch body could not be serialized: {e}"));
        self.header("content-type", "application/json")
    }

    fn opts(&self, body: Option<&str>) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        o.insert("url".into(), self.url.clone().into());
        o.insert("method".into(), self.method.clone().into());
        o.insert(
            "headers".into(),
            serde_json::to_value(&self.headers).unwrap_or_default(),
        );
        if let Some(body) = body {
            o.insert("body".into(), body.into());
        }
        serde_json::Value::Object(o)
    }
}

/// The response of [`Step::fetch`], as Inngest recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// The HTTP status.
    #[serde(rename = "status_code")]
    pub status: u16,
    /// The response headers, names in Go's canonical form (`Content-Type`), repeated values
    /// joined with `,`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, as text.
    #[serde(default)]
    pub body: String,
    /// The URL that was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl FetchResponse {
    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

impl Step {
    /// Makes an HTTP request durably: Inngest performs it and records the response, which is
    /// returned on every later call. Any status is a response (check
    /// [`FetchResponse::is_success`]); a request that cannot be made is retried with the
    /// function's retries, then is a [`StepError`] named `GatewayError`.
    ///
    /// ```no_run
    /// # use inngest_sdk::FetchRequest;
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::StepError> {
    /// let res = step
    ///     .fetch("get-rate", FetchRequest::get("https://api.example.com/rates/eur"))
    ///     .await?;
    /// if res.is_success() {
    ///     let rate: f64 = res.json().unwrap_or(1.0);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fetch<'s, 'i>(
        &'s self,
        id: &'i str,
        request: FetchRequest,
    ) -> impl Future<Output = Result<FetchResponse, StepError>> + use<'s, 'i> {
        let reserved = self.reserve(id);
        let body = match &request.body {
            Ok(body) => body.clone(),
            Err(message) => {
                let err = StepError {
                    name: "SerializationError".to_owned(),
                    message: message.clone(),
                    stack: None,
                };
                drop(reserved);
                return futures_util::future::Either::Left(std::future::ready(Err(err)));
            }
        };
        let opts = request.opts(body.as_deref());
        let op = self.async_op(reserved, OpCode::Gateway, opts);
        futures_util::future::Either::Right(async move { decode_result(&op.await) })
    }
}
