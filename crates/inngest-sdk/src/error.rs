//! Errors a function or a step returns, and how each one is reported to Inngest.
//!
//! Inside a function every fallible thing converts into [`Error`] with `?`, exactly like
//! `anyhow`: any `std::error::Error + Send + Sync + 'static` does. Three error types steer the
//! retry behaviour and are recognised after conversion:
//!
//! * [`NonRetriable`]: fail now, never retry (`X-Inngest-No-Retry: true`).
//! * [`RetryAfter`]: retry, but not before a given delay or instant (`Retry-After`).
//! * [`StepError`]: a step that failed for good, surfaced to the function by
//!   [`Step::run`](crate::Step::run). Handle it, or let it escape with `?`: an escaped step error
//!   fails the run without further retries, as the protocol requires.
//!
//! Anything else is an ordinary, retriable error.
//!
//! Control flow never travels through these types: a step that must suspend the function simply
//! never completes (see [`crate::step`]), so matching on, logging or dropping an error cannot break
//! a run.

use std::fmt;
use std::time::{Duration, SystemTime};

pub use inngest_protocol::wire::ErrorObject;

/// `Result` with [`Error`] as the default error type: what handlers and step closures return.
///
/// With it a plain `Ok(value)` needs no annotation, and `?` converts any error:
///
/// ```
/// fn quantity(input: &str) -> inngest_sdk::Result<u32> {
///     Ok(input.parse()?)
/// }
/// assert_eq!(quantity("3").unwrap(), 3);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error type of functions and step closures: any error converts into it with `?`.
///
/// Like `anyhow::Error`, it deliberately does not implement `std::error::Error` itself (so that the
/// blanket `From` conversion can exist); use [`Error::kind`] to see how it will be reported, and
/// [`Error::source_ref`] to reach the original error.
///
/// ```
/// use inngest_sdk::{Error, ErrorKind, NonRetriable};
///
/// fn parse(input: &str) -> Result<u32, Error> {
///     let n: u32 = input.parse()?; // ParseIntError -> retriable Error
///     if n == 0 {
///         return Err(NonRetriable::new("zero is not a valid quantity").into());
///     }
///     Ok(n)
/// }
///
/// assert!(matches!(parse("x").unwrap_err().kind(), ErrorKind::Retriable));
/// assert!(matches!(parse("0").unwrap_err().kind(), ErrorKind::NonRetriable));
/// ```
pub struct Error {
    kind: ErrorKind,
    name: String,
    message: String,
    stack: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// How an [`Error`] is reported to the Inngest executor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Retried by Inngest while attempts remain.
    Retriable,
    /// Never retried.
    NonRetriable,
    /// Retried no earlier than the given delay or instant.
    RetryAfter(RetryAt),
    /// A step failed for good and the function let the error escape: the run fails, no retry.
    StepFailed,
}

/// When a [`RetryAfter`] error may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAt {
    /// After this delay (sent as whole seconds, rounded up).
    Delay(Duration),
    /// At this instant (sent as an RFC 3339 date).
    Instant(SystemTime),
}

impl RetryAt {
    /// The `Retry-After` header value: whole seconds for a delay, RFC 3339 for an instant.
    pub fn header_value(&self) -> String {
        match self {
            RetryAt::Delay(d) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                secs.max(1).to_string()
            }
            RetryAt::Instant(t) => {
                let dt: chrono::DateTime<chrono::Utc> = (*t).into();
                dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }
        }
    }
}

impl Error {
    /// A retriable error with a message (shown in the Inngest UI).
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            kind: ErrorKind::Retriable,
            name: "Error".to_owned(),
            message: message.to_string(),
            stack: None,
            source: None,
        }
    }

    /// How this error is reported.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The error name reported to Inngest (`"Error"` for ordinary errors).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message reported to Inngest.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original error this one was converted from, if any.
    pub fn source_ref(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// Returns the original error if it is of type `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref().and_then(|e| e.downcast_ref::<E>())
    }

    /// Marks this error as non-retriable, keeping its message.
    pub fn non_retriable(mut self) -> Self {
        self.kind = ErrorKind::NonRetriable;
        self
    }

    /// Whether Inngest may retry this error.
    pub fn is_retriable(&self) -> bool {
        matches!(self.kind, ErrorKind::Retriable | ErrorKind::RetryAfter(_))
    }

    pub(crate) fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub(crate) fn to_wire(&self) -> ErrorObject {
        ErrorObject {
            name: self.name.clone(),
            message: self.message.clone(),
            stack: self.stack.clone(),
        }
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(err);
        let boxed = match boxed.downcast::<NonRetriable>() {
            Ok(nr) => {
                return Error {
                    kind: ErrorKind::NonRetriable,
                    name: "NonRetriableError".to_owned(),
                    message: nr.message.clone(),
                    stack: None,
                    source: Some(nr),
                }
            }
            Err(other) => other,
        };
        let boxed = match boxed.downcast::<RetryAfter>() {
            Ok(ra) => {
                return Error {
                    kind: ErrorKind::RetryAfter(ra.at),
                    name: "RetryAfterError".to_owned(),
                    message: ra.message.clone(),
                    stack: None,
                    source: Some(ra),
                }
            }
            Err(other) => other,
        };
        let boxed = match boxed.downcast::<StepError>() {
            Ok(se) => {
                return Error {
                    kind: ErrorKind::StepFailed,
                    name: se.name.clone(),
                    message: se.message.clone(),
                    stack: se.stack.clone(),
                    source: Some(se),
                }
            }
            Err(other) => other,
        };
        Error {
            kind: ErrorKind::Retriable,
            name: "Error".to_owned(),
            message: boxed.to_string(),
            stack: None,
            source: Some(boxed),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// An error that must not be retried: bad input, a permanent refusal from a provider...
///
/// ```
/// use inngest_sdk::NonRetriable;
/// let err = NonRetriable::new("order has no line items");
/// assert_eq!(err.to_string(), "order has no line items");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NonRetriable {
    message: String,
}

impl NonRetriable {
    /// A non-retriable error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        NonRetriable {
            message: message.into(),
        }
    }
}

/// A retriable error that asks Inngest to wait before the next attempt (e.g. a provider's 429).
///
/// ```
/// use std::time::Duration;
/// use inngest_sdk::RetryAfter;
/// let err = RetryAfter::delay("rate limited by Printify", Duration::from_secs(30));
/// assert_eq!(err.retry_at().header_value(), "30");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RetryAfter {
    message: String,
    at: RetryAt,
}

impl RetryAfter {
    /// Retry after `delay`.
    pub fn delay(message: impl Into<String>, delay: Duration) -> Self {
        RetryAfter {
            message: message.into(),
            at: RetryAt::Delay(delay),
        }
    }

    /// Retry at `instant`.
    pub fn at(message: impl Into<String>, instant: SystemTime) -> Self {
        RetryAfter {
            message: message.into(),
            at: RetryAt::Instant(instant),
        }
    }

    /// When the retry may happen.
    pub fn retry_at(&self) -> RetryAt {
        self.at
    }
}

/// A step that failed for good (its retries are exhausted, or it raised [`NonRetriable`]).
///
/// Returned by [`Step::run`](crate::Step::run) and [`Step::invoke`](crate::Step::invoke). Letting
/// it escape from the function with `?` fails the run without retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step failed: {name}: {message}")]
pub struct StepError {
    /// Error name, e.g. `"Error"` or `"NonRetriableError"`.
    pub name: String,
    /// Error message.
    pub message: String,
    /// Stack or backtrace text, when the failing SDK sent one.
    pub stack: Option<String>,
}

impl StepError {
    pub(crate) fn from_wire(obj: ErrorObject) -> Self {
        StepError {
            name: obj.name,
            message: obj.message,
            stack: obj.stack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("db down")]
    struct DbDown;

    #[test]
    fn ordinary_errors_are_retriable_and_keep_their_source() {
        let e: Error = DbDown.into();
        assert_eq!(e.kind(), &ErrorKind::Retriable);
        assert_eq!(e.name(), "Error");
        assert_eq!(e.message(), "db down");
        assert!(e.downcast_ref::<DbDown>().is_some());
    }

    #[test]
    fn typed_errors_are_recognised_after_conversion() {
        let e: Error = NonRetriable::new("bad").into();
        assert_eq!(e.kind(), &ErrorKind::NonRetriable);
        assert_eq!(e.name(), "NonRetriableError");
        let e: Error = RetryAfter::delay("slow", Duration::from_millis(1500)).into();
        assert_eq!(
            e.kind(),
            &ErrorKind::RetryAfter(RetryAt::Delay(Duration::from_millis(1500)))
        );
        let e: Error = StepError {
            name: "Error".into(),
            message: "card declined".into(),
            stack: None,
        }
        .into();
        assert_eq!(e.kind(), &ErrorKind::StepFailed);
        assert_eq!(e.message(), "card declined");
        assert!(!e.is_retriable());
    }

    #[test]
    fn retry_after_header_values() {
        assert_eq!(RetryAt::Delay(Duration::from_millis(1)).header_value(), "1");
        assert_eq!(
            RetryAt::Delay(Duration::from_millis(2001)).header_value(),
            "3"
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_718_000_000);
        assert_eq!(RetryAt::Instant(t).header_value(), "2024-06-10T06:13:20Z");
    }
}
