//! Realtime from the client: [`Realtime::publish`] a message to a channel and topic, and
//! [`Realtime::token`] a subscription token for a browser or another service to read them.
//!
//! The wire mirrors the JS SDK 4.x (inngest-js `api/api.ts` `publish` and
//! `getSubscriptionToken`): `POST /v1/realtime/publish?channel=…&topic=…[&run_id=…]` with the
//! data as the JSON body, and `POST /v1/realtime/token` with `[{"channel", "name", "kind":
//! "run"}]`, answered `{"jwt": …}`; both with the signing key's bearer (and the fallback key on
//! a 401). A subscriber connects to `ws(s)://<api>/v1/realtime/connect?token=<key>` and reads one
//! JSON message per text frame (`{"kind": "data", "channel", "topic", "data", …}`).
//!
//! For a durable publish inside a function (sent once, however often the function replays),
//! use [`Step::realtime`](crate::Step::realtime).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ApiError, Inngest};

/// The realtime API of a client: [`Inngest::realtime`].
#[derive(Debug, Clone, Copy)]
pub struct Realtime<'c> {
    client: &'c Inngest,
}

/// A subscription token: what a subscriber needs to read `topics` of `channel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionToken {
    /// The channel.
    pub channel: String,
    /// The topics it may read.
    pub topics: Vec<String>,
    /// The token (short-lived: connect with it within a minute).
    pub key: String,
    /// The API origin to connect to (`/v1/realtime/connect?token=<key>`).
    #[serde(rename = "apiBaseUrl")]
    pub api_base_url: String,
}

impl Inngest {
    /// The realtime API: publish messages, hand out subscription tokens.
    pub fn realtime(&self) -> Realtime<'_> {
        Realtime { client: self }
    }
}

impl Realtime<'_> {
    /// Publishes `data` to `topic` of `channel` (not durable: a replayed function publishes
    /// again; see [`Step::realtime`](crate::Step::realtime) for the durable form).
    ///
    /// ```no_run
    /// # async fn demo(client: inngest_sdk::Inngest) -> Result<(), inngest_sdk::client::ApiError> {
    /// client
    ///     .realtime()
    ///     .publish("order:42", "status", &serde_json::json!({"step": "charged"}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish(
        &self,
        channel: &str,
        topic: &str,
        data: &impl Serialize,
    ) -> Result<(), ApiError> {
        self.publish_for(channel, topic, None, data).await
    }

    /// [`Realtime::publish`], naming the run it is published for.
    pub(crate) async fn publish_for(
        &self,
        channel: &str,
        topic: &str,
        run_id: Option<&str>,
        data: &impl Serialize,
    ) -> Result<(), ApiError> {
        let body = serde_json::to_vec(data).map_err(ApiError::Serialize)?;
        let path = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("channel", channel);
            if let Some(run_id) = run_id {
                query.append_pair("run_id", run_id);
            }
            query.append_pair("topic", topic);
            format!("/v1/realtime/publish?{}", query.finish())
        };
        self.client
            .api_request(http::Method::POST, &path, Some(Bytes::from(body)), &[])
            .await?;
        tracing::debug!("inngest: realtime message published");
        Ok(())
    }

    /// A token that lets its holder subscribe to `topics` of `channel`.
    ///
    /// ```no_run
    /// # async fn demo(client: inngest_sdk::Inngest) -> Result<(), inngest_sdk::client::ApiError> {
    /// let token = client.realtime().token("order:42", &["status"]).await?;
    /// // Hand `token` to the browser (it is JSON: channel, topics, key, apiBaseUrl).
    /// # Ok(()) }
    /// ```
    pub async fn token(
        &self,
        channel: &str,
        topics: &[&str],
    ) -> Result<SubscriptionToken, ApiError> {
        let wanted: Vec<_> = topics
            .iter()
            .map(|t| serde_json::json!({"channel": channel, "name": t, "kind": "run"}))
            .collect();
        let body = serde_json::to_vec(&wanted).map_err(ApiError::Serialize)?;
        let (_, bytes) = self
            .client
            .api_request(
                http::Method::POST,
                "/v1/realtime/token",
                Some(Bytes::from(body)),
                &[],
            )
            .await?;
        #[derive(Deserialize)]
        struct Answer {
            jwt: String,
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| ApiError::Status {
            status: http::StatusCode::BAD_GATEWAY,
            message: format!("the token answer is not `{{\"jwt\": …}}`: {e}"),
        })?;
        Ok(SubscriptionToken {
            channel: channel.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            key: answer.jwt,
            api_base_url: self.client.config().api_origin().to_string(),
        })
    }
}
