//! AI steps: [`Ai::infer`] (the `AIGateway` op: Inngest calls the model) and [`Ai::wrap`] (a
//! `step.run` whose input and output are recorded as an AI call).
//!
//! The wire mirrors the JS SDK 4.x `step.ai.infer` / `step.ai.wrap` (inngest-js
//! `components/InngestStepTools.ts`): infer sends `opts: {type: "step.ai.infer", url, headers,
//! auth_key, format, body}` and its memo is `{"data": <the provider's JSON>}`; a failed call
//! (a status above 299, or no answer) is retried with the function's retries and then is a
//! [`StepError`] named `AIGatewayError` whose `stack` holds the provider's body (inngest
//! `pkg/util/aigateway`, `executor.go` `handleGeneratorAIGateway`). Wrap is a `StepRun` with
//! `opts: {type: "step.ai.wrap", input: [<input>]}`.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use inngest_protocol::wire::OpCode;

use super::{decode_result, Step};
use crate::ai::Model;
use crate::{Error, StepError};

/// The AI step tools of a call: [`Step::ai`].
#[derive(Debug, Clone, Copy)]
pub struct Ai<'s> {
    step: &'s Step,
}

impl Step {
    /// The AI step tools: [`Ai::infer`] and [`Ai::wrap`].
    pub fn ai(&self) -> Ai<'_> {
        Ai { step: self }
    }
}

fn serialization_error(what: &str, e: &serde_json::Error) -> StepError {
    StepError {
        name: "SerializationError".to_owned(),
        message: format!("{what} could not be serialized: {e}"),
        stack: None,
    }
}

impl<'s> Ai<'s> {
    /// Asks `model` for an answer to `body`; Inngest makes the call and records request and
    /// response. `body` and the result are the provider's JSON: the typed
    /// [`openai`](crate::ai::openai) and [`anthropic`](crate::ai::anthropic) bodies, or your
    /// own types. The model's name and default parameters fill what `body` leaves out.
    ///
    /// ```no_run
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::StepError> {
    /// use inngest_sdk::ai::{openai, Model};
    ///
    /// let model = Model::openai("gpt-4o-mini");
    /// let answer: openai::ChatResponse = step
    ///     .ai()
    ///     .infer(
    ///         "name-plush",
    ///         &model,
    ///         openai::ChatRequest::new(vec![openai::ChatMessage::user("A fox in a kimono")]),
    ///     )
    ///     .await?;
    /// let name = answer.text().unwrap_or_default();
    /// # Ok(()) }
    /// ```
    pub fn infer<'i, B, R>(
        &self,
        id: &'i str,
        model: &Model,
        body: B,
    ) -> impl Future<Output = Result<R, StepError>> + use<'s, 'i, B, R>
    where
        B: Serialize,
        R: DeserializeOwned,
    {
        let step: &'s Step = self.step;
        let reserved = step.reserve(id);
        let body = match serde_json::to_value(body) {
            Ok(body) => body,
            Err(e) => {
                drop(reserved);
                let err = serialization_error("the inference request", &e);
                return futures_util::future::Either::Left(std::future::ready(Err(err)));
            }
        };
        let op = step.async_op(reserved, OpCode::AiGateway, model.opts(body));
        futures_util::future::Either::Right(async move { decode_result(&op.await) })
    }

    /// Runs `f(input)` as a step (memoized and retried like [`Step::run`]) and records
    /// `input` with it, marked as an AI call (`opts.type = "step.ai.wrap"`): for calls your
    /// code makes itself, e.g. with a provider's SDK.
    ///
    /// ```no_run
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::StepError> {
    /// let prompt = "A fox in a kimono".to_owned();
    /// let name: String = step
    ///     .ai()
    ///     .wrap("name-plush", prompt, |prompt| async move { Ok(format!("{prompt}: Kitsune")) })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wrap<'i, I, T, F, Fut>(
        &self,
        id: &'i str,
        input: I,
        f: F,
    ) -> impl Future<Output = Result<T, StepError>> + use<'s, 'i, I, T, F, Fut>
    where
        I: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce(I) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send,
    {
        let step: &'s Step = self.step;
        let reserved = step.reserve(id);
        let recorded = match serde_json::to_value(&input) {
            Ok(v) => v,
            Err(e) => {
                drop(reserved);
                let err = serialization_error("the wrapped call's input", &e);
                return futures_util::future::Either::Left(std::future::ready(Err(err)));
            }
        };
        let opts = serde_json::json!({ "type": "step.ai.wrap", "input": [recorded] });
        let run = step.run_op(reserved, None, Some(opts), move || f(input));
        futures_util::future::Either::Right(run)
    }
}
