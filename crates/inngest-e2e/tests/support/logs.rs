//! Log capture: a buffer a `tracing` subscriber can write into, and one process-wide TRACE
//! subscriber writing into such a buffer, for tests that check what must never be logged
//! (signing keys, event keys, payloads).

use std::sync::{Arc, Mutex, OnceLock};

/// A shared in-memory buffer, usable as a `tracing_subscriber::fmt` writer (`move || buf.clone()`).
#[derive(Clone, Default)]
pub struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs the capture as the global subscriber on first use (call it before the code under
/// test logs anything) and returns its buffer.
pub fn logs() -> &'static LogBuf {
    static LOGS: OnceLock<LogBuf> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = LogBuf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buf
    })
}

/// Captures WARN and above on this thread until the guard is dropped (a `#[tokio::test]` runtime
/// is single-threaded, so the server's tasks log through it too).
pub fn capture_warnings() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    let buf = LogBuf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

/// Panics with the first captured line that contains any of `secrets`.
pub fn assert_no_line_contains(secrets: &[&str]) {
    let text = logs().text();
    for secret in secrets {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("a log line contains `{secret}`: {line}");
        }
    }
}
