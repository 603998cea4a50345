//! Durable realtime publishing: [`RealtimeSteps::publish`] is a step (`opts.type =
//! "step.realtime.publish"`, as in the JS SDK 4.x) whose body publishes the message for the
//! run; it is sent once and its memo is the data, so a replay never publishes twice.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Step;
use crate::{Error, StepError};

/// The realtime step tools of a call: [`Step::realtime`].
#[derive(Debug, Clone, Copy)]
pub struct RealtimeSteps<'s> {
    step: &'s Step,
}

impl Step {
    /// The realtime step tools: [`RealtimeSteps::publish`].
    pub fn realtime(&self) -> RealtimeSteps<'_> {
        RealtimeSteps { step: self }
    }
}

impl<'s> RealtimeSteps<'s> {
    /// Publishes `data` to `topic` of `channel` once, as a step, for this run; returns `data`.
    ///
    /// ```no_run
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::StepError> {
    /// step.realtime()
    ///     .publish("status", "order:42", "progress", serde_json::json!({"step": "charged"}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn publish<'i, T>(
        &self,
        id: &'i str,
        channel: &str,
        topic: &str,
        data: T,
    ) -> impl Future<Output = Result<T, StepError>> + use<'s, 'i, T>
    where
        T: Serialize + DeserializeOwned + Send + Sync,
    {
        let step: &'s Step = self.step;
        let client = step.env.client.clone();
        let run_id = step.call.run_id.clone();
        let (channel, topic) = (channel.to_owned(), topic.to_owned());
        let opts = serde_json::json!({ "type": "step.realtime.publish" });
        step.run_op(step.reserve(id), None, Some(opts), move || async move {
            let client = client.ok_or_else(|| {
                Error::msg("realtime publish needs a client: serve the app with an Inngest client")
                    .non_retriable()
            })?;
            let run_id = (!run_id.is_empty()).then_some(run_id.as_str());
            client
                .realtime()
                .publish_for(&channel, &topic, run_id, &data)
                .await
                .map_err(Error::from)?;
            Ok(data)
        })
    }
}
