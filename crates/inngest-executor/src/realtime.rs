//! Realtime: messages published to a channel and topic (`POST /v1/realtime/publish`), the
//! subscription tokens that scope a subscriber (`POST /v1/realtime/token`), and the WebSocket a
//! subscriber reads them from (`GET /v1/realtime/connect?token=…`), as the server does it.
//!
//! Facts mirrored (not code) from inngest/inngest `pkg/execution/realtime` (`api.go`
//! `PostPublish`, `PostCreateJWT`, `sub_websocket.go`) and `streamingtypes.Message`:
//! * a publish names `channel`, `topic` (the first `topic` parameter only) and optionally
//!   `run_id` in the query; its body (read up to 512 KiB) is the message's `data` when it is
//!   JSON, else the text as a JSON string; the answer is `200` with an empty body;
//! * a message is `{"kind": "data", "channel", "topic", "data", "run_id"?, "fn_slug"?,
//!   "created_at"}` (RFC 3339), one text frame per message on the WebSocket, with WebSocket
//!   pings as keep-alive;
//! * a token is asked for with `[{"channel", "name", "kind": "run"}, …]` and answered `201
//!   {"jwt": …}`; it must be used to connect within a minute.
//!
//! Differences: the token is an opaque random string, not a JWT (nothing outside this executor
//! reads it); the `text/stream` publish mode and the SSE route of durable endpoints are not
//! served; and, for tests, the last messages are also kept ([`Hub::messages`],
//! `Executor::realtime_messages`), which the server does not do (it only forwards them).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Largest message body (`MaxStreamingMessageSizeBytes`); the rest is cut, as the server's
/// `LimitReader` cuts it.
pub(crate) const MAX_MESSAGE_BYTES: usize = 512 * 1024;
/// How long a token may be used to connect (the server's JWT expiry).
const TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(1);
/// Messages kept for [`Hub::messages`].
const KEPT: usize = 10_000;

/// One published message, as subscribers receive it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) channel: String,
    pub(crate) topic: String,
    /// The frame's JSON.
    pub(crate) json: Arc<str>,
}

/// The topics a token lets its holder read.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    topics: Vec<(String, String)>,
    expires: DateTime<Utc>,
}

impl Grant {
    /// Whether a message is for this subscriber.
    pub(crate) fn allows(&self, m: &Message) -> bool {
        self.topics
            .iter()
            .any(|(c, t)| *c == m.channel && *t == m.topic)
    }
}

/// Published messages, their subscribers and the tokens handed out.
pub(crate) struct Hub {
    live: broadcast::Sender<Message>,
    kept: Mutex<VecDeque<Message>>,
    tokens: Mutex<HashMap<String, Grant>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            live: broadcast::channel(1024).0,
            kept: Mutex::default(),
            tokens: Mutex::default(),
        }
    }
}

/// What a publish names.
pub(crate) struct Publish<'a> {
    pub(crate) channel: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) run_id: Option<&'a str>,
    pub(crate) fn_slug: Option<&'a str>,
}

impl Hub {
    /// Publishes `body` (cut at [`MAX_MESSAGE_BYTES`]) to the subscribers of its topic.
    pub(crate) fn publish(&self, p: &Publish<'_>, body: &[u8], now: DateTime<Utc>) {
        let body = &body[..body.len().min(MAX_MESSAGE_BYTES)];
        let data = serde_json::from_slice::<Value>(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let mut frame = json!({
            "kind": "data",
            "channel": p.channel,
            "topic": p.topic,
            "data": data,
            "created_at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        if let Some(run_id) = p.run_id {
            frame["run_id"] = run_id.into();
        }
        if let Some(slug) = p.fn_slug {
            frame["fn_slug"] = slug.into();
        }
        let message = Message {
            channel: p.channel.to_owned(),
            topic: p.topic.to_owned(),
            json: frame.to_string().into(),
        };
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(message.clone());
        }
        // No subscriber is not an error: the message is simply not delivered.
        let _ = self.live.send(message);
    }

    /// Hands out a token for these `(channel, topic)` pairs.
    pub(crate) fn grant(&self, topics: Vec<(String, String)>, now: DateTime<Utc>) -> String {
        let token = format!("rt-{}", random_token());
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, g| g.expires > now);
        tokens.insert(
            token.clone(),
            Grant {
                topics,
                expires: now + TOKEN_TTL,
            },
        );
        token
    }

    /// The grant of a token that has not expired.
    pub(crate) fn redeem(&self, token: &str, now: DateTime<Utc>) -> Option<Grant> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(token).filter(|g| g.expires > now).cloned()
    }

    /// A feed of every message published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.live.subscribe()
    }

    /// The kept messages of `channel` (all channels when `None`), oldest first, as JSON.
    pub(crate) fn messages(&self, channel: Option<&str>) -> Vec<Value> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .filter(|m| channel.is_none_or(|c| c == m.channel))
            .filter_map(|m| serde_json::from_str(&m.json).ok())
            .collect()
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn publish(hub: &Hub, channel: &str, topic: &str, body: &[u8]) {
        let p = Publish {
            channel,
            topic,
            run_id: Some("01RUN"),
            fn_slug: None,
        };
        hub.publish(&p, body, now());
    }

    #[test]
    fn a_message_carries_json_data_or_the_text_as_a_string() {
        let hub = Hub::default();
        publish(&hub, "user:1", "status", br#"{"step":"charged"}"#);
        publish(&hub, "user:1", "log", b"plain text");
        publish(&hub, "user:2", "status", b"1");
        assert_eq!(
            hub.messages(Some("user:1")),
            vec![
                json!({"kind": "data", "channel": "user:1", "topic": "status",
                       "data": {"step": "charged"}, "run_id": "01RUN",
                       "created_at": "2026-12-03T10:00:00.000Z"}),
                json!({"kind": "data", "channel": "user:1", "topic": "log",
                       "data": "plain text", "run_id": "01RUN",
                       "created_at": "2026-12-03T10:00:00.000Z"}),
            ]
        );
        assert_eq!(hub.messages(None).len(), 3);
    }

    #[test]
    fn a_body_over_the_limit_is_cut() {
        let hub = Hub::default();
        publish(&hub, "c", "t", &vec![b'a'; MAX_MESSAGE_BYTES + 10]);
        let m = &hub.messages(None)[0];
        assert_eq!(m["data"].as_str().unwrap().len(), MAX_MESSAGE_BYTES);
    }

    #[test]
    fn tokens_grant_their_topics_for_a_minute() {
        let hub = Hub::default();
        let token = hub.grant(vec![("c".into(), "t".into())], now());
        let grant = hub.redeem(&token, now()).unwrap();
        let m = |c: &str, t: &str| Message {
            channel: c.into(),
            topic: t.into(),
            json: "{}".into(),
        };
        assert!(grant.allows(&m("c", "t")));
        assert!(!grant.allows(&m("c", "other")));
        assert!(!grant.allows(&m("d", "t")));
        assert!(hub
            .redeem(&token, now() + chrono::Duration::seconds(61))
            .is_none());
        assert!(hub.redeem("rt-unknown", now()).is_none());
    }
}
