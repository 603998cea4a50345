//! GET: the introspection body, unauthenticated or (signed, cloud mode) authenticated.

use http::{HeaderMap, StatusCode};

use super::{json_response, sync, Response, ServeHandler};
use crate::config::Mode;
use inngest_protocol::register::{AuthenticatedIntrospection, Introspection};
use inngest_protocol::signature::{SignatureError, SigningKey};
use inngest_protocol::wire::headers as h;

impl ServeHandler {
    pub(super) fn introspect(&self, headers: &HeaderMap) -> Response {
        let config = self.inner.client.config();
        let signed = headers.contains_key(h::SIGNATURE);
        let auth = if signed {
            self.authenticate(headers, b"")
        } else {
            Err(SignatureError::Missing)
        };
        let key = match &auth {
            Ok(Some(key)) => Some(*key),
            _ => None,
        };
        let mut body = Introspection::default();
        body.authentication_succeeded =
            signed.then(|| auth.is_ok() && config.mode() == Mode::Cloud);
        body.capabilities = sync::capabilities();
        body.function_count = self.function_count();
        body.has_event_key = config.event_key().is_some();
        body.has_signing_key = config.signing_key().is_some();
        body.has_signing_key_fallback = config.signing_key_fallback().is_some();
        body.mode = config.mode().as_str().to_owned();
        if key.is_some() {
            body.authenticated = Some(self.authenticated_introspection());
        }
        // Through a JSON value: sorted keys, the authenticated fields among the others.
        let body = serde_json::to_value(&body).unwrap_or_default();
        json_response(StatusCode::OK, body, key)
    }

    fn authenticated_introspection(&self) -> AuthenticatedIntrospection {
        let config = self.inner.client.config();
        let hash = |k: Option<&SigningKey>| k.map(|k| k.hash_for_introspection().to_owned());
        let mut a = AuthenticatedIntrospection::default();
        a.api_origin = config
            .api_origin()
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        a.app_id = config.app_id().to_owned();
        a.env = config.env().map(str::to_owned);
        a.event_api_origin = config
            .event_api_origin()
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        a.event_key_hash = config.event_key_hash();
        a.framework = config.framework().to_owned();
        a.sdk_language = "rust".to_owned();
        a.sdk_version = env!("CARGO_PKG_VERSION").to_owned();
        a.serve_origin = config.serve_origin().map(str::to_owned);
        a.serve_path = config.serve_path().map(str::to_owned);
        a.signing_key_fallback_hash = hash(config.signing_key_fallback());
        a.signing_key_hash = hash(config.signing_key());
        a
    }
}
