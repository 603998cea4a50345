//! `Gateway` (`step.fetch`) and `AIGateway` (`step.ai.infer`) ops: the executor makes the HTTP
//! request for the app, so the call survives the app's restarts and holds none of its
//! connections.
//!
//! Hand-written because these are the server's own semantics (facts from inngest/inngest, not
//! code: `pkg/util/gateway/gateway.go`, `pkg/util/aigateway/request.go`,
//! `pkg/execution/exechttp/exechttp.go`, `pkg/execution/executor/executor.go`
//! `handleGeneratorGateway` / `handleGeneratorAIGateway`); the HTTP itself is reqwest's.
//!
//! * **Fetch** (`opts: {url, method, headers, body}`): the method defaults to `POST` when empty
//!   and must be a standard verb; a `body` that is valid JSON is sent as is, any other text is
//!   sent JSON-encoded (as a JSON string, quotes included), an empty body sends none. The
//!   headers are added as given, then `User-Agent: Inngest`. Any HTTP status is a result: the
//!   memo is `{"data": {"url", "headers", "body", "status_code"}}` with the response headers in
//!   Go's canonical form (`Content-Type`) and repeated values joined with `,`. A request that
//!   fails (connection, timeout, body over the limit) is a `GatewayError`.
//! * **AI** (`opts: {url, headers, auth_key, format, body}`): always `POST` with
//!   `Content-Type: application/json` and the body as is; the key goes where the format wants
//!   it (`anthropic`: `x-api-key`; `gemini`: the `key` query parameter; `bedrock`: the raw
//!   `Authorization`; any other format: `Authorization: Bearer`), then the given headers. A 2xx
//!   answer's JSON is the memo's `data`; a failed request or a status above 299 is an
//!   `AIGatewayError` whose `stack` is the provider's body (and `data` its JSON).
//! * **Failures** are retried like a step error: while attempts remain (and the app did not
//!   say `X-Inngest-No-Retry`) the request to the app is retried later with the next attempt,
//!   which asks for the call again; on the final attempt the memo is `{"error": …}` and the app
//!   sees a step error.
//! * **Limits**: 8 MiB of response body (`MaxSDKResponseBodySize`), 2 h per call
//!   (`MaxFunctionTimeout`), up to 60 redirects.
//!
//! The `auth_key` is only ever in memory for the call: it is not stored, logged or shown.
//!
//! Differences from the server: a 2xx AI answer that is not JSON is an `AIGatewayError` here
//! (the server cannot store it and retries until the run fails); the `publish` option (teeing
//! the response into a realtime channel) is not supported and is ignored.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::Method;
use serde_json::{json, Map, Value};

use crate::shared::{describe_error, Inner};

/// The largest response body read from a gateway call (the server's 4 MiB + 4 MiB).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// The longest a gateway call may take (the server's `MaxFunctionTimeout`).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// Redirects followed (the server's `MaxRedirects`).
pub(crate) const MAX_REDIRECTS: usize = 60;

/// Which op asked for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Gateway`: any status is a result.
    Fetch,
    /// `AIGateway`: a status above 299 is an error.
    Ai,
}

/// A call to make for a `Gateway` or `AIGateway` op, and its result once made.
pub(crate) struct GatewayCall {
    pub(crate) kind: Kind,
    method: Method,
    url: url::Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
    /// `Ok(memo)` (`{"data": …}`) or `Err(error object)`, once the call was made.
    pub(crate) result: Option<Result<Value, Value>>,
}

impl std::fmt::Debug for GatewayCall {
    /// The method and URL only: the headers may hold a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayCall")
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

fn opt_str<'a>(opts: &'a Value, key: &str) -> Option<&'a str> {
    opts.get(key).and_then(Value::as_str)
}

fn parse_url(i: usize, op: &str, opts: &Value) -> Result<url::Url, String> {
    let raw = opt_str(opts, "url")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| format!("op #{i} `{op}` has no `opts.url`"))?;
    let url = url::Url::parse(raw).map_err(|e| format!("op #{i} `{op}` url `{raw}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "op #{i} `{op}` url `{raw}`: only http and https can be called"
        ));
    }
    Ok(url)
}

/// `opts.headers`: an object of strings (absent or null: none).
fn parse_headers(
    i: usize,
    op: &str,
    opts: &Value,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let map = match opts.get("headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(format!("op #{i} `{op}` `opts.headers` must be an object")),
    };
    map.iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .ok_or_else(|| format!("op #{i} `{op}` header `{k}` must be a string"))?;
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("op #{i} `{op}` header name `{k}` is not valid"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("op #{i} `{op}` header `{k}` has an invalid value"))?;
            Ok((name, value))
        })
        .collect()
}

/// The call a `Gateway` op asks for.
pub(crate) fn fetch_call(i: usize, opts: &Value) -> Result<GatewayCall, String> {
    let url = parse_url(i, "Gateway", opts)?;
    let method = match opt_str(opts, "method").map(str::trim) {
        None | Some("") => Method::POST,
        Some(m) => {
            const VERBS: [&str; 9] = [
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
            ];
            let upper = m.to_ascii_uppercase();
            if !VERBS.contains(&upper.as_str()) {
                return Err(format!(
                    "op #{i} `Gateway` method `{m}` is not an HTTP method"
                ));
            }
            Method::from_bytes(upper.as_bytes()).map_err(|e| e.to_string())?
        }
    };
    let body = match opts.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() => {
            Some(s.clone().into_bytes())
        }
        // Text that is not JSON goes out JSON-encoded, as the server sends it.
        Some(Value::String(s)) => Some(Value::String(s.clone()).to_string().into_bytes()),
        Some(_) => return Err(format!("op #{i} `Gateway` `opts.body` must be a string")),
    };
    let mut headers = parse_headers(i, "Gateway", opts)?;
    headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_static("Inngest"),
    ));
    Ok(GatewayCall {
        kind: Kind::Fetch,
        method,
        url,
        headers,
        body,
        result: None,
    })
}

/// The call an `AIGateway` op asks for.
pub(crate) fn ai_call(i: usize, opts: &Value) -> Result<GatewayCall, String> {
    let mut url = parse_url(i, "AIGateway", opts)?;
    let body = match opts.get("body") {
        None | Some(Value::Null) => return Err(format!("op #{i} `AIGateway` has no `opts.body`")),
        Some(b) => b.to_string().into_bytes(),
    };
    let key = opt_str(opts, "auth_key").unwrap_or("");
    let format = opt_str(opts, "format").unwrap_or("");
    let mut headers = vec![(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    let secret = |v: String| {
        let mut v = HeaderValue::from_str(&v)
            .map_err(|_| format!("op #{i} `AIGateway` `opts.auth_key` has invalid characters"))?;
        v.set_sensitive(true);
        Ok::<_, String>(v)
    };
    match format {
        "gemini" => {
            url.query_pairs_mut().append_pair("key", key);
        }
        "bedrock" => headers.push((http::header::AUTHORIZATION, secret(key.to_owned())?)),
        "anthropic" => headers.push((
            HeaderName::from_static("x-api-key"),
            secret(key.to_owned())?,
        )),
        _ => headers.push((
            http::header::AUTHORIZATION,
            secret(format!("Bearer {key}"))?,
        )),
    }
    headers.extend(parse_headers(i, "AIGateway", opts)?);
    headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_static("Inngest"),
    ));
    Ok(GatewayCall {
        kind: Kind::Ai,
        method: Method::POST,
        url,
        headers,
        body: Some(body),
        result: None,
    })
}

/// The client gateway calls go through: redirects followed like the server's, no proxy.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .connect_timeout(Duration::from_secs(15))
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// A response as the server records it.
struct Answer {
    status: u16,
    headers: Map<String, Value>,
    body: bytes::Bytes,
}

impl Inner {
    /// Makes the call and records its result in `call.result`.
    pub(crate) async fn perform_gateway(&self, call: &mut GatewayCall) {
        let url = call.url.to_string();
        let answer = self.gateway_exchange(call).await;
        call.result = Some(match (call.kind, answer) {
            (Kind::Fetch, Ok(a)) => Ok(json!({"data": {
                "url": url,
                "headers": a.headers,
                "body": String::from_utf8_lossy(&a.body),
                "status_code": a.status,
            }})),
            (Kind::Fetch, Err(e)) => Err(json!({
                "name": "GatewayError",
                "message": format!("Error making gateway request: {e}"),
            })),
            (Kind::Ai, Ok(a)) if a.status <= 299 => {
                match serde_json::from_slice::<Value>(&a.body) {
                    Ok(data) => Ok(json!({ "data": data })),
                    Err(e) => Err(ai_error(
                        &format!("the provider's answer is not JSON: {e}"),
                        &a.body,
                    )),
                }
            }
            (Kind::Ai, Ok(a)) => Err(ai_error(
                &format!("unsuccessful status code: {}", a.status),
                &a.body,
            )),
            (Kind::Ai, Err(e)) => Err(ai_error(&e, b"")),
        });
        tracing::debug!(
            kind = ?call.kind,
            method = %call.method,
            url = %call.url.as_str().split('?').next().unwrap_or(""),
            ok = matches!(call.result, Some(Ok(_))),
            "gateway call made"
        );
    }

    /// The call over HTTP. Errors leave out the URL: its query may hold a key (Gemini).
    async fn gateway_exchange(&self, call: &GatewayCall) -> Result<Answer, String> {
        let mut req = self.gateway.request(call.method.clone(), call.url.clone());
        for (name, value) in &call.headers {
            req = req.header(name, value);
        }
        if let Some(body) = &call.body {
            req = req.body(body.clone());
        }
        let mut res = req
            .send()
            .await
            .map_err(|e| describe_error(&e.without_url()))?;
        let status = res.status().as_u16();
        let mut headers = Map::new();
        for name in res.headers().keys() {
            let joined = res
                .headers()
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            headers.insert(canonical_header(name.as_str()), Value::String(joined));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| describe_error(&e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err("http response size is greater than the limit".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: body.into(),
        })
    }
}

/// The `AIGatewayError` for a failed AI call; an empty body reads as the server's placeholder.
fn ai_error(why: &str, body: &[u8]) -> Value {
    let body: &[u8] = if body.is_empty() {
        br#"{"error":"Error making AI request"}"#
    } else {
        body
    };
    let mut err = json!({
        "name": "AIGatewayError",
        "message": format!("Error making AI request: {why}"),
        "stack": String::from_utf8_lossy(body),
    });
    if let Ok(data) = serde_json::from_slice::<Value>(body) {
        err["data"] = data;
    }
    err
}

/// A header name in Go's canonical MIME form: `content-type` → `Content-Type`.
fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(call: &'a GatewayCall, name: &str) -> Vec<&'a str> {
        call.headers
            .iter()
            .filter(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn fetch_defaults_to_post_and_encodes_text_bodies_as_json_strings() {
        let call = fetch_call(0, &json!({"url": "http://x.test/a", "body": "hello"})).unwrap();
        assert_eq!(call.method, Method::POST);
        assert_eq!(call.body.as_deref(), Some(&b"\"hello\""[..]));
        assert_eq!(header(&call, "user-agent"), ["Inngest"]);
        let call = fetch_call(
            0,
            &json!({"url": "http://x.test/a", "method": "get", "body": "{\"a\":1}",
                    "headers": {"X-Api": "1"}}),
        )
        .unwrap();
        assert_eq!(call.method, Method::GET);
        assert_eq!(call.body.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(header(&call, "x-api"), ["1"]);
        let call = fetch_call(0, &json!({"url": "http://x.test/a", "body": ""})).unwrap();
        assert_eq!(call.body, None);
    }

    #[test]
    fn bad_fetch_opts_are_refused_with_the_reason() {
        let err = |opts: Value| fetch_call(3, &opts).unwrap_err();
        assert_eq!(err(json!({})), "op #3 `Gateway` has no `opts.url`");
        assert!(err(json!({"url": "ftp://x/"})).contains("only http and https"));
        assert_eq!(
            err(json!({"url": "http://x/", "method": "FETCH"})),
            "op #3 `Gateway` method `FETCH` is not an HTTP method"
        );
        assert_eq!(
            err(json!({"url": "http://x/", "body": {"a": 1}})),
            "op #3 `Gateway` `opts.body` must be a string"
        );
        assert_eq!(
            err(json!({"url": "http://x/", "headers": {"a": 1}})),
            "op #3 `Gateway` header `a` must be a string"
        );
    }

    #[test]
    fn ai_keys_go_where_each_format_wants_them() {
        let call = |format: &str| {
            ai_call(
                0,
                &json!({"url": "http://x.test/v1?x=1", "auth_key": "sk-1", "format": format,
                        "body": {"model": "m"}, "headers": {"anthropic-version": "2023-06-01"}}),
            )
            .unwrap()
        };
        let openai = call("openai-chat");
        assert_eq!(header(&openai, "authorization"), ["Bearer sk-1"]);
        assert_eq!(header(&openai, "content-type"), ["application/json"]);
        assert_eq!(openai.body.as_deref(), Some(&br#"{"model":"m"}"#[..]));
        assert_eq!(openai.method, Method::POST);
        let anthropic = call("anthropic");
        assert_eq!(header(&anthropic, "x-api-key"), ["sk-1"]);
        assert!(header(&anthropic, "authorization").is_empty());
        assert_eq!(header(&anthropic, "anthropic-version"), ["2023-06-01"]);
        let gemini = call("gemini");
        assert_eq!(gemini.url.as_str(), "http://x.test/v1?x=1&key=sk-1");
        assert!(header(&gemini, "authorization").is_empty());
        assert_eq!(header(&call("bedrock"), "authorization"), ["sk-1"]);
        // The key never shows in a debug print.
        assert!(!format!("{openai:?}").contains("sk-1"));
    }

    #[test]
    fn header_names_take_gos_canonical_form() {
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("x-request-id"), "X-Request-Id");
        assert_eq!(canonical_header("etag"), "Etag");
    }

    #[test]
    fn ai_errors_carry_the_providers_body() {
        let err = ai_error("unsuccessful status code: 429", br#"{"error":"slow down"}"#);
        assert_eq!(
            err,
            json!({"name": "AIGatewayError",
                   "message": "Error making AI request: unsuccessful status code: 429",
                   "stack": "{\"error\":\"slow down\"}", "data": {"error": "slow down"}})
        );
        let err = ai_error("boom", b"");
        assert_eq!(err["data"], json!({"error": "Error making AI request"}));
    }
}
