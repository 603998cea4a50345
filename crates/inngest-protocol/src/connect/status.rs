//! The reply status of a connect execution and the HTTP status it stands for.
//!
//! A connect reply carries the same body as the HTTP answer of a serve endpoint; only the status
//! code is squeezed into [`SdkResponseStatus`]. The server reads `DONE` as 200, `NOT_COMPLETED` as
//! 206 and `ERROR` as 500 and then handles the body exactly as an HTTP response.

use super::SdkResponseStatus;

/// The reply status for an SDK's HTTP status: 206 is `NOT_COMPLETED` (ops to run), any other 2xx
/// is `DONE`, everything else `ERROR`.
pub fn from_http(status: u16) -> SdkResponseStatus {
    match status {
        206 => SdkResponseStatus::NotCompleted,
        200..=299 => SdkResponseStatus::Done,
        _ => SdkResponseStatus::Error,
    }
}

/// The HTTP status the server reads a reply status as.
pub fn to_http(status: SdkResponseStatus) -> u16 {
    match status {
        SdkResponseStatus::Done => 200,
        SdkResponseStatus::NotCompleted => 206,
        SdkResponseStatus::Error => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_both_ways() {
        assert_eq!(from_http(200), SdkResponseStatus::Done);
        assert_eq!(from_http(206), SdkResponseStatus::NotCompleted);
        assert_eq!(from_http(500), SdkResponseStatus::Error);
        assert_eq!(from_http(400), SdkResponseStatus::Error);
        assert_eq!(to_http(SdkResponseStatus::Done), 200);
        assert_eq!(to_http(SdkResponseStatus::NotCompleted), 206);
        assert_eq!(to_http(SdkResponseStatus::Error), 500);
    }
}
