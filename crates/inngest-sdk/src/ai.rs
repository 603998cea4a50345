//! AI models for [`Step::ai`](crate::Step::ai): where Inngest sends an inference request, in
//! which format, with which key; and typed request and response bodies for the OpenAI chat
//! and Anthropic messages formats.
//!
//! With `step.ai().infer(..)` the call is made by Inngest (the `AIGateway` op), not by your
//! app: the request and response are recorded on the run and the app holds no connection
//! while the model thinks. The model's key travels to Inngest in the op (`auth_key`, as the
//! JS SDK's `@inngest/ai` models send it); Inngest puts it where the format wants it
//! (`Authorization: Bearer` for OpenAI-compatible APIs, `x-api-key` for Anthropic, the `key`
//! query parameter for Gemini). The SDK never logs it and [`Model`]'s `Debug` hides it.
//!
//! ```
//! use inngest_sdk::ai::{self, anthropic, openai};
//!
//! let gpt = ai::Model::openai("gpt-4o-mini").api_key("sk-test");
//! let request = openai::ChatRequest::new(vec![
//!     openai::ChatMessage::system("You name plush toys."),
//!     openai::ChatMessage::user("A fox in a kimono"),
//! ]);
//! let claude = ai::Model::anthropic("claude-3-5-haiku-latest");
//! let request = anthropic::MessagesRequest::new(256, vec![anthropic::Message::user("Hi")]);
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The API format of a model: how Inngest authenticates the call and reads the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// OpenAI chat completions (`openai-chat`), also DeepSeek and other compatible APIs.
    OpenAiChat,
    /// OpenAI responses (`openai-responses`).
    OpenAiResponses,
    /// Anthropic messages (`anthropic`).
    Anthropic,
    /// Google Gemini (`gemini`).
    Gemini,
    /// xAI Grok (`grok`).
    Grok,
    /// Azure OpenAI (`azure-openai`).
    AzureOpenAi,
}

impl Format {
    /// The name on the wire (`opts.format`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::OpenAiChat => "openai-chat",
            Format::OpenAiResponses => "openai-responses",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::Grok => "grok",
            Format::AzureOpenAi => "azure-openai",
        }
    }
}

/// A model to call with [`Ai::infer`](crate::step::Ai::infer): its format, endpoint, key,
/// extra headers and default body parameters.
///
/// The constructors take the key from the provider's usual variable (`OPENAI_API_KEY`,
/// `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`, `DEEPSEEK_API_KEY`, `XAI_API_KEY`,
/// `AZURE_OPENAI_API_KEY`) when it is set; [`Model::api_key`] overrides it.
#[derive(Clone)]
pub struct Model {
    format: Format,
    model: String,
    url: String,
    headers: BTreeMap<String, String>,
    auth_key: String,
    defaults: Map<String, Value>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("format", &self.format)
            .field("model", &self.model)
            .field("url", &self.url)
            .field(
                "auth_key",
                &if self.auth_key.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .finish_non_exhaustive()
    }
}

fn env_key(var: &str) -> String {
    std::env::var(var).unwrap_or_default()
}

impl Model {
    fn new(format: Format, model: impl Into<String>, url: String, key_var: &str) -> Model {
        Model {
            format,
            model: model.into(),
            url,
            headers: BTreeMap::new(),
            auth_key: env_key(key_var),
            defaults: Map::new(),
        }
    }

    /// An OpenAI chat model (`https://api.openai.com/v1/chat/completions`).
    pub fn openai(model: impl Into<String>) -> Model {
        let url = "https://api.openai.com/v1/chat/completions".to_owned();
        Model::new(Format::OpenAiChat, model, url, "OPENAI_API_KEY")
    }

    /// An Anthropic model (`https://api.anthropic.com/v1/messages`, `anthropic-version:
    /// 2023-06-01`). Anthropic requires `max_tokens` in every request.
    pub fn anthropic(model: impl Into<String>) -> Model {
        let url = "https://api.anthropic.com/v1/messages".to_owned();
        Model::new(Format::Anthropic, model, url, "ANTHROPIC_API_KEY")
            .header("anthropic-version", "2023-06-01")
    }

    /// A Gemini model (`…/v1beta/models/<model>:generateContent`). Inngest adds the key as the
    /// `key` query parameter.
    pub fn gemini(model: impl Into<String>) -> Model {
        let model = model.into();
        let url = format!(
            "https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent"
        );
        Model::new(Format::Gemini, model, url, "GEMINI_API_KEY")
    }

    /// A DeepSeek model (OpenAI chat format, `https://api.deepseek.com/v1/chat/completions`).
    pub fn deepseek(model: impl Into<String>) -> Model {
        let url = "https://api.deepseek.com/v1/chat/completions".to_owned();
        Model::new(Format::OpenAiChat, model, url, "DEEPSEEK_API_KEY")
    }

    /// An xAI Grok model (`https://api.x.ai/v1/chat/completions`).
    pub fn grok(model: impl Into<String>) -> Model {
        let url = "https://api.x.ai/v1/chat/completions".to_owned();
        Model::new(Format::Grok, model, url, "XAI_API_KEY")
    }

    /// An Azure OpenAI deployment: `<endpoint>/openai/deployments/<deployment>/chat/completions
    /// ?api-version=<version>`, the key in `api-key`.
    pub fn azure_openai(
        endpoint: &str,
        deployment: &str,
        api_version: &str,
        model: impl Into<String>,
    ) -> Model {
        let url = format!(
            "{}/openai/deployments/{deployment}/chat/completions?api-version={api_version}",
            endpoint.trim_end_matches('/')
        );
        let m = Model::new(Format::AzureOpenAi, model, url, "AZURE_OPENAI_API_KEY");
        let key = m.auth_key.clone();
        if key.is_empty() {
            m
        } else {
            m.header("api-key", key)
        }
    }

    /// Any endpoint speaking `format` (a proxy, a self-hosted OpenAI-compatible server).
    pub fn custom(format: Format, model: impl Into<String>, url: impl Into<String>) -> Model {
        Model {
            format,
            model: model.into(),
            url: url.into(),
            headers: BTreeMap::new(),
            auth_key: String::new(),
            defaults: Map::new(),
        }
    }

    /// Uses this endpoint instead of the provider's.
    pub fn url(mut self, url: impl Into<String>) -> Model {
        self.url = url.into();
        self
    }

    /// Uses this key.
    pub fn api_key(mut self, key: impl Into<String>) -> Model {
        self.auth_key = key.into();
        if self.format == Format::AzureOpenAi {
            self.headers
                .insert("api-key".to_owned(), self.auth_key.clone());
        }
        self
    }

    /// Adds a header to every request (names lower-cased).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Model {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }

    /// A body parameter used when a request does not set it (e.g. `"temperature"`).
    pub fn default_param(mut self, name: &str, value: impl Into<Value>) -> Model {
        self.defaults.insert(name.to_owned(), value.into());
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model
    }

    /// The model's format.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The body as sent: the default parameters fill what the request leaves out, and
    /// `model` is set unless the request names one (Gemini names it in the URL instead).
    pub(crate) fn prepare(&self, body: Value) -> Value {
        let Value::Object(mut map) = body else {
            return body;
        };
        for (k, v) in &self.defaults {
            if map.get(k).is_none_or(Value::is_null) {
                map.insert(k.clone(), v.clone());
            }
        }
        if self.format != Format::Gemini && map.get("model").is_none_or(Value::is_null) {
            map.insert("model".to_owned(), Value::String(self.model.clone()));
        }
        Value::Object(map)
    }

    /// The `AIGateway` op's opts (`type`, `url`, `headers`, `auth_key`, `format`, `body`), as
    /// the JS SDK sends them.
    pub(crate) fn opts(&self, body: Value) -> Value {
        serde_json::json!({
            "type": "step.ai.infer",
            "url": self.url,
            "headers": self.headers,
            "auth_key": self.auth_key,
            "format": self.format.as_str(),
            "body": self.prepare(body),
        })
    }
}

/// The OpenAI chat completions format (also DeepSeek, Grok, Azure OpenAI).
pub mod openai {
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value};

    /// A chat completions request. Fields not listed here go in `extra`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ChatRequest {
        /// The model; the [`Model`](super::Model)'s name when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
        /// The conversation.
        pub messages: Vec<ChatMessage>,
        /// The most tokens to generate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_tokens: Option<u32>,
        /// Sampling temperature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub temperature: Option<f64>,
        /// Any other parameter (`tools`, `response_format`, …).
        #[serde(flatten)]
        pub extra: Map<String, Value>,
    }

    impl ChatRequest {
        /// A request with these messages.
        pub fn new(messages: Vec<ChatMessage>) -> Self {
            ChatRequest {
                messages,
                ..ChatRequest::default()
            }
        }
    }

    /// One message of a conversation.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ChatMessage {
        /// `system`, `user` or `assistant`.
        pub role: String,
        /// The text.
        pub content: String,
    }

    impl ChatMessage {
        /// A system message.
        pub fn system(content: impl Into<String>) -> Self {
            ChatMessage {
                role: "system".into(),
                content: content.into(),
            }
        }
        /// A user message.
        pub fn user(content: impl Into<String>) -> Self {
            ChatMessage {
                role: "user".into(),
                content: content.into(),
            }
        }
        /// An assistant message.
        pub fn assistant(content: impl Into<String>) -> Self {
            ChatMessage {
                role: "assistant".into(),
                content: content.into(),
            }
        }
    }

    /// A chat completions response. Fields not listed here are in `extra`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ChatResponse {
        /// The completion's id.
        #[serde(default)]
        pub id: String,
        /// The model that answered.
        #[serde(default)]
        pub model: String,
        /// The answers.
        #[serde(default)]
        pub choices: Vec<Choice>,
        /// Token counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub usage: Option<Usage>,
        /// Everything else.
        #[serde(flatten)]
        pub extra: Map<String, Value>,
    }

    impl ChatResponse {
        /// The first choice's text.
        pub fn text(&self) -> Option<&str> {
            self.choices.first()?.message.content.as_deref()
        }
    }

    /// One answer.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Choice {
        /// Its position.
        #[serde(default)]
        pub index: u32,
        /// The message.
        pub message: ResponseMessage,
        /// Why generation stopped (`stop`, `length`, `tool_calls`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub finish_reason: Option<String>,
    }

    /// The message of a [`Choice`].
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ResponseMessage {
        /// Usually `assistant`.
        #[serde(default)]
        pub role: String,
        /// The text (absent for a tool call).
        #[serde(default)]
        pub content: Option<String>,
        /// Everything else (`tool_calls`, `refusal`, …).
        #[serde(flatten)]
        pub extra: Map<String, Value>,
    }

    /// Token counts.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Usage {
        /// Tokens in the prompt.
        #[serde(default)]
        pub prompt_tokens: u64,
        /// Tokens generated.
        #[serde(default)]
        pub completion_tokens: u64,
        /// Both.
        #[serde(default)]
        pub total_tokens: u64,
    }
}

/// The Anthropic messages format.
pub mod anthropic {
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value};

    /// A messages request. Fields not listed here go in `extra`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MessagesRequest {
        /// The model; the [`Model`](super::Model)'s name when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
        /// The most tokens to generate (required by Anthropic).
        pub max_tokens: u32,
        /// The conversation.
        pub messages: Vec<Message>,
        /// The system prompt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub system: Option<String>,
        /// Sampling temperature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub temperature: Option<f64>,
        /// Any other parameter (`tools`, `stop_sequences`, …).
        #[serde(flatten)]
        pub extra: Map<String, Value>,
    }

    impl MessagesRequest {
        /// A request for at most `max_tokens` with these messages.
        pub fn new(max_tokens: u32, messages: Vec<Message>) -> Self {
            MessagesRequest {
                max_tokens,
                messages,
                ..MessagesRequest::default()
            }
        }

        /// Sets the system prompt.
        pub fn system(mut self, system: impl Into<String>) -> Self {
            self.system = Some(system.into());
            self
        }
    }

    /// One message of a conversation.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Message {
        /// `user` or `assistant`.
        pub role: String,
        /// The text.
        pub content: String,
    }

    impl Message {
        /// A user message.
        pub fn user(content: impl Into<String>) -> Self {
            Message {
                role: "user".into(),
                content: content.into(),
            }
        }
        /// An assistant message.
        pub fn assistant(content: impl Into<String>) -> Self {
            Message {
                role: "assistant".into(),
                content: content.into(),
            }
        }
    }

    /// A messages response. Fields not listed here are in `extra`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MessagesResponse {
        /// The message's id.
        #[serde(default)]
        pub id: String,
        /// The model that answered.
        #[serde(default)]
        pub model: String,
        /// Usually `assistant`.
        #[serde(default)]
        pub role: String,
        /// The content blocks.
        #[serde(default)]
        pub content: Vec<ContentBlock>,
        /// Why generation stopped (`end_turn`, `max_tokens`, `tool_use`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stop_reason: Option<String>,
        /// Token counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub usage: Option<Usage>,
        /// Everything else.
        #[serde(flatten)]
        pub extra: Map<String, Value>,
    }

    impl MessagesResponse {
        /// The text blocks, joined.
        pub fn text(&self) -> String {
            self.content
                .iter()
                .filter_map(|b| b.text.as_deref())
                .collect()
        }
    }

    /// One content block.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ContentBlock {
        /// `text`, `tool_use`, …
        #[serde(rename = "type")]
        pub kind: String,
        /// The text of a `text` block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        /// Everything else (`id`, `name`, `input` of a tool use).
        #[serde(flatten)]
        pub extra: Map<String, Value>,
    }

    /// Token counts.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Usage {
        /// Tokens in the prompt.
        #[serde(default)]
        pub input_tokens: u64,
        /// Tokens generated.
        #[serde(default)]
        pub output_tokens: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_gets_the_model_and_defaults_it_leaves_out() {
        let m = Model::openai("gpt-4o-mini")
            .api_key("sk-1")
            .default_param("temperature", 0.2);
        let body = serde_json::to_value(openai::ChatRequest::new(vec![openai::ChatMessage::user(
            "hi",
        )]))
        .unwrap();
        assert_eq!(
            m.opts(body),
            json!({"type": "step.ai.infer", "url": "https://api.openai.com/v1/chat/completions",
                   "headers": {}, "auth_key": "sk-1", "format": "openai-chat",
                   "body": {"model": "gpt-4o-mini", "temperature": 0.2,
                            "messages": [{"role": "user", "content": "hi"}]}})
        );
        let given = json!({"model": "other", "temperature": 1});
        assert_eq!(m.prepare(given.clone()), given);
        let gemini = Model::gemini("gemini-1.5-flash");
        assert_eq!(
            gemini.prepare(json!({"contents": []})),
            json!({"contents": []})
        );
    }

    #[test]
    fn anthropic_sends_its_version_header_and_azure_its_key_header() {
        let m = Model::anthropic("claude").api_key("k");
        assert_eq!(
            m.opts(json!({}))["headers"],
            json!({"anthropic-version": "2023-06-01"})
        );
        let az = Model::azure_openai("https://x.openai.azure.com/", "dep", "2024-06-01", "gpt")
            .api_key("az");
        let opts = az.opts(json!({}));
        assert_eq!(
            opts["url"],
            "https://x.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-06-01"
        );
        assert_eq!(opts["headers"]["api-key"], "az");
        assert!(!format!("{az:?}").contains("az\""), "{az:?}");
    }

    #[test]
    fn typed_responses_read_the_providers_json() {
        let r: openai::ChatResponse = serde_json::from_value(json!({
            "id": "c1", "model": "gpt", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Kitsune"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}))
        .unwrap();
        assert_eq!(r.text(), Some("Kitsune"));
        assert_eq!(r.extra["object"], "chat.completion");
        let r: anthropic::MessagesResponse = serde_json::from_value(json!({
            "id": "m1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "Ki"}, {"type": "text", "text": "tsune"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 2}}))
        .unwrap();
        assert_eq!(r.text(), "Kitsune");
        assert_eq!(r.usage.unwrap().output_tokens, 2);
    }
}
