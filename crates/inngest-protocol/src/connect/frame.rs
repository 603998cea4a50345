//! Building and reading connect frames: a [`ConnectMessage`] carrying one protobuf payload.
//!
//! Reading never panics: bytes that are not a `ConnectMessage`, a `kind` this crate does not
//! know, or a payload that is not the message its kind promises come back as a [`FrameError`]
//! naming what was wrong, for a log line and a reconnect.

use prost::Message;

use super::{ConnectMessage, GatewayMessageType};

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The bytes are not a protobuf `ConnectMessage`.
    #[error("frame is not a ConnectMessage: {0}")]
    NotAMessage(prost::DecodeError),
    /// The `kind` is not a `GatewayMessageType` this side knows.
    #[error("frame has unknown kind {0}")]
    UnknownKind(i32),
    /// The payload is not the message its kind carries.
    #[error("payload of {kind} is not a valid {message}: {source}")]
    BadPayload {
        /// The frame's kind, by its proto name.
        kind: &'static str,
        /// The protobuf message the kind carries.
        message: &'static str,
        /// What the decoder said.
        source: prost::DecodeError,
    },
}

/// A frame of `kind` carrying `payload`.
pub fn encode<M: Message>(kind: GatewayMessageType, payload: &M) -> Vec<u8> {
    ConnectMessage {
        kind: kind as i32,
        payload: payload.encode_to_vec(),
    }
    .encode_to_vec()
}

/// A frame of `kind` with an empty payload (hello, heartbeats, pause, ready, closing).
pub fn empty(kind: GatewayMessageType) -> Vec<u8> {
    ConnectMessage {
        kind: kind as i32,
        payload: Vec::new(),
    }
    .encode_to_vec()
}

/// Reads a frame, refusing kinds outside [`GatewayMessageType`].
pub fn decode(bytes: &[u8]) -> Result<ConnectMessage, FrameError> {
    let msg = ConnectMessage::decode(bytes).map_err(FrameError::NotAMessage)?;
    GatewayMessageType::try_from(msg.kind).map_err(|_| FrameError::UnknownKind(msg.kind))?;
    Ok(msg)
}

/// Decodes a frame's payload as `M`; `message` names `M` in the error.
pub fn payload<M: Message + Default>(
    msg: &ConnectMessage,
    message: &'static str,
) -> Result<M, FrameError> {
    M::decode(msg.payload.as_slice()).map_err(|source| FrameError::BadPayload {
        kind: msg.kind().as_str_name(),
        message,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::{GatewayExecutorRequestData, WorkerReplyAckData};

    #[test]
    fn a_frame_round_trips_with_its_payload() {
        let req = GatewayExecutorRequestData {
            request_id: "r1".into(),
            function_slug: "app-fn".into(),
            step_id: Some("step".into()),
            request_payload: br#"{"event":{}}"#.to_vec(),
            ..Default::default()
        };
        let bytes = encode(GatewayMessageType::GatewayExecutorRequest, &req);
        let msg = decode(&bytes).unwrap();
        assert_eq!(msg.kind(), GatewayMessageType::GatewayExecutorRequest);
        let back: GatewayExecutorRequestData = payload(&msg, "GatewayExecutorRequestData").unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn garbage_unknown_kinds_and_bad_payloads_are_errors() {
        // A lone tag byte for field 1 with a truncated varint.
        assert!(matches!(decode(&[0x08]), Err(FrameError::NotAMessage(_))));
        let unknown = ConnectMessage {
            kind: 99,
            payload: vec![],
        }
        .encode_to_vec();
        assert_eq!(decode(&unknown), Err(FrameError::UnknownKind(99)));
        let bad = ConnectMessage {
            kind: GatewayMessageType::WorkerReplyAck as i32,
            // Field 1 (string) claiming 10 bytes but holding 1.
            payload: vec![0x0a, 10, b'x'],
        };
        let err = payload::<WorkerReplyAckData>(&bad, "WorkerReplyAckData").unwrap_err();
        assert_eq!(
            err.to_string().split(':').next().unwrap(),
            "payload of WORKER_REPLY_ACK is not a valid WorkerReplyAckData"
        );
    }
}
