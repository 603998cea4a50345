//! Load generator for an Inngest serve endpoint: fixed concurrency, fixed duration, the `chain`
//! workload of `examples/bench_app.rs` with N−1 steps memoized so every call runs the Nth step and
//! answers one `206 StepRun`. Prints calls/s, p50/p99 latency, errors and non-206 answers.
//!
//! ```text
//! cargo run --release --example loadgen -- [URL] [options]
//!   URL                 serve endpoint (default http://127.0.0.1:3000/api/inngest)
//!   --fn-id ID          fnId query parameter (default bench-app-chain)
//!   --n N               steps in the call: N−1 memoized, the Nth executed (env N, default 10)
//!   --concurrency C     connections, one request in flight each (env CONCURRENCY, default 32)
//!   --duration SECS     measured seconds (env DURATION, default 10)
//!   --warmup SECS       unmeasured seconds first (default 1)
//!   --threads T         load generator threads (default 1; the server needs the cores more)
//!   --ids spec|official step-id hashing of the memo keys (default spec: hex(SHA-1("s{i}")));
//!                       `official` builds the memo the `inngest` 0.1.1 crate expects:
//!                       HEX(SHA-1("s{i}:1")), upper case
//!   --signing-key KEY   sign every request (X-Inngest-Signature, t = the current second)
//!                       (env INNGEST_SIGNING_KEY)
//! ```
//!
//! It works against any SDK's server on the same machine: the body is the executor's (JCS-sorted
//! keys, full `ctx`, `defers`, `version`), only the memo keys depend on how that SDK hashes step
//! ids. The HTTP/1.1 client is a minimal keep-alive one over `tokio::net::TcpStream`, so the
//! loader costs little CPU next to the server it measures (like `wrk`).
//!
//! `bench/compare` includes this file as a module to drive two servers with the same code.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the server under test hashes step ids (the memo keys it looks up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// The protocol's ids: lower-case `hex(SHA-1("s{i}"))` (this SDK, JS, Python, Go).
    Spec,
    /// The official Rust crate 0.1.1: upper-case `HEX(SHA-1("s{i}:1"))`.
    Official,
}

impl Ids {
    pub fn parse(s: &str) -> Option<Ids> {
        match s {
            "spec" => Some(Ids::Spec),
            "official" => Some(Ids::Official),
            _ => None,
        }
    }

    /// The memo key of step `s{i}` (its first occurrence).
    pub fn step_key(self, i: usize) -> String {
        match self {
            Ids::Spec => hex::encode(Sha1::digest(format!("s{i}").as_bytes())),
            Ids::Official => hex::encode_upper(Sha1::digest(format!("s{i}:1").as_bytes())),
        }
    }
}

/// The output of step `s{i}`, exactly as `examples/bench_app.rs` produces it.
pub fn step_output(i: usize) -> Value {
    json!({ "i": i, "label": format!("step output {i}"), "payload": "x".repeat(120) })
}

/// The execution request body for call N of the chain: `s0`…`s{n-2}` memoized (in the stack in
/// order), so the server runs `s{n-1}`. Keys are JCS-sorted like the real executor's.
pub fn build_body(n: usize, ids: Ids) -> Vec<u8> {
    build_body_with(n, ids, |i| json!({ "data": step_output(i) }))
}

/// [`build_body`] with a custom memoized value per step (e.g. large values for state-size tests).
pub fn build_body_with(n: usize, ids: Ids, memo: impl Fn(usize) -> Value) -> Vec<u8> {
    assert!(n >= 1, "N must be at least 1");
    let memoized = n - 1;
    let keys: Vec<String> = (0..memoized).map(|i| ids.step_key(i)).collect();
    let mut steps = serde_json::Map::new();
    for (i, k) in keys.iter().enumerate() {
        steps.insert(k.clone(), memo(i));
    }
    let event = json!({
        "data": { "n": n },
        "id": "01HZX9W9R1S2T3U4V5W6X7Y8Z9",
        "name": "bench/chain",
        "ts": 1_718_000_000_000i64,
        "user": {}
    });
    // serde_json's Map is a BTreeMap (no `preserve_order`), so keys serialize sorted.
    let body = json!({
        "ctx": {
            "attempt": 0,
            "disable_immediate_execution": false,
            "env": "",
            "fn_id": "5b7e2c3a-0d7e-5c55-9d6c-0b0f4f0f2f10",
            "generation_id": 1,
            "job_id": "34rm2lx6kdvb7",
            "max_attempts": 4,
            "qi_id": "MzRybTJseDZrZHZiNzo6ZGVmYXVsdA==",
            "request_id": "01HZX9YQ2M3N4P5Q6R7S8T9V0X",
            "run_id": "01HZX9WB6E8KQ3N2A7C5D4F1GH",
            "stack": { "current": memoized, "stack": keys },
            "step_id": "step",
            "use_api": false
        },
        "defers": {},
        "event": event.clone(),
        "events": [event],
        "steps": steps,
        "use_api": false,
        "version": if memoized == 0 { -1 } else { 2 }
    });
    serde_json::to_vec(&body).expect("JSON body")
}

/// `t=<secs>&s=hex(HMAC-SHA256(key without its signkey-<env>- prefix, body || t))`.
pub fn sign(key: &str, body: &[u8], unix_secs: u64) -> String {
    let hmac_key = strip_key_prefix(key.trim());
    let t = unix_secs.to_string();
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(hmac_key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(t.as_bytes());
    format!("t={t}&s={}", hex::encode(mac.finalize().into_bytes()))
}

fn strip_key_prefix(key: &str) -> &str {
    match key.strip_prefix("signkey-") {
        Some(rest) => rest.split_once('-').map(|(_, k)| k).unwrap_or(key),
        None => key,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A parsed `http://host:port/path?query` URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Path and query, e.g. `/api/inngest?fnId=bench-app-chain&stepId=step`.
    pub path: String,
}

impl Target {
    /// `url` must be plain `http://` (loopback benchmarking; no TLS). `fn_id` is added as
    /// `fnId`, plus `stepId=step` (a discovery call).
    pub fn new(url: &str, fn_id: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs are supported, got {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| format!("bad port in {url}"))?,
            ),
            None => (authority.to_owned(), 80),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        Ok(Target {
            host,
            port,
            path: format!("{path}{sep}fnId={fn_id}&stepId=step"),
        })
    }
}

/// One response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A keep-alive HTTP/1.1 connection that POSTs one body over and over.
pub struct Conn {
    target: Arc<Target>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn {
            target,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// POSTs `body` (with `signature` as `X-Inngest-Signature` when given) and reads the reply.
    /// Reconnects once if the kept-alive connection was closed.
    pub async fn post(&mut self, body: &[u8], signature: Option<&str>) -> std::io::Result<Reply> {
        let fresh = self.stream.is_none();
        match self.try_post(body, signature).await {
            Ok(r) => Ok(r),
            Err(_) if !fresh => {
                self.stream = None;
                self.try_post(body, signature).await
            }
            Err(e) => Err(e),
        }
    }

    async fn try_post(&mut self, body: &[u8], signature: Option<&str>) -> std::io::Result<Reply> {
        if self.stream.is_none() {
            let s = TcpStream::connect((self.target.host.as_str(), self.target.port)).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let t = &self.target;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nX-Inngest-Step-Id: step\r\n",
            t.path,
            t.host,
            t.port,
            body.len()
        );
        if let Some(sig) = signature {
            head.push_str("X-Inngest-Signature: ");
            head.push_str(sig);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let stream = self.stream.as_mut().expect("connected");
        let result = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await?;
            read_reply(stream, &mut self.buf).await
        }
        .await;
        match result {
            Ok((reply, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                    self.buf.clear();
                }
                Ok(reply)
            }
            Err(e) => {
                self.stream = None;
                self.buf.clear();
                Err(e)
            }
        }
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Reads one response (Content-Length or chunked). Returns it and whether to keep the connection.
async fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(Reply, bool)> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = !status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    buf.drain(..head_end);
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(stream, buf).await?;
            };
            let size_text = std::str::from_utf8(&buf[..line_end]).map_err(|_| bad("chunk"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                fill(stream, buf).await?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                break body;
            }
        }
    } else if let Some(len) = length {
        while buf.len() < len {
            fill(stream, buf).await?;
        }
        buf.drain(..len).collect()
    } else {
        // No length: the body runs to the end of the connection.
        loop {
            match fill(stream, buf).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        keep_alive = false;
        std::mem::take(buf)
    };
    Ok((Reply { status, body }, keep_alive))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Load settings.
#[derive(Debug, Clone)]
pub struct Load {
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub signing_key: Option<String>,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub calls: u64,
    pub errors: u64,
    pub non_206: u64,
    pub elapsed: Duration,
    /// Latencies of completed calls, microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Stats {
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[idx]) / 1000.0
    }

    /// Adds another run's counts (same settings), for runs split into alternating rounds.
    pub fn merge(&mut self, other: Stats) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.non_206 += other.non_206;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
    }
}

/// Signs with the current second, re-signing only when the second changes.
struct Signer {
    key: String,
    second: u64,
    header: String,
}

impl Signer {
    fn header(&mut self, body: &[u8]) -> &str {
        let now = unix_now();
        if now != self.second || self.header.is_empty() {
            self.second = now;
            self.header = sign(&self.key, body, now);
        }
        &self.header
    }
}

/// Drives `target` with `body` from `load.concurrency` connections: `warmup`, then `duration`
/// measured. A call counts when its reply has been read; any status other than 206 is counted in
/// `non_206`, transport failures in `errors`.
pub async fn run(target: Arc<Target>, body: Arc<Vec<u8>>, load: &Load) -> Stats {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(load.concurrency);
    for _ in 0..load.concurrency {
        let target = target.clone();
        let body = body.clone();
        let measuring = measuring.clone();
        let stop = stop.clone();
        let mut signer = load.signing_key.clone().map(|key| Signer {
            key,
            second: 0,
            header: String::new(),
        });
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut stats = Stats::default();
            while !stop.load(Ordering::Relaxed) {
                let sig = signer.as_mut().map(|s| s.header(&body).to_owned());
                let started = Instant::now();
                let result = conn.post(&body, sig.as_deref()).await;
                if !measuring.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    if result.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
                match result {
                    Ok(reply) => {
                        stats.calls += 1;
                        if reply.status != 206 {
                            stats.non_206 += 1;
                        }
                        let us = started.elapsed().as_micros().min(u128::from(u32::MAX));
                        stats.latencies_us.push(us as u32);
                    }
                    Err(_) => {
                        stats.errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            stats
        }));
    }
    tokio::time::sleep(load.warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(load.duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut total = Stats {
        elapsed,
        ..Stats::default()
    };
    for t in tasks {
        if let Ok(s) = t.await {
            total.calls += s.calls;
            total.errors += s.errors;
            total.non_206 += s.non_206;
            total.latencies_us.extend(s.latencies_us);
        }
    }
    total.latencies_us.sort_unstable();
    total
}

/// One call, for checking what a server answers before loading it.
pub async fn probe(
    target: Arc<Target>,
    body: &[u8],
    signing_key: Option<&str>,
) -> std::io::Result<Reply> {
    let sig = signing_key.map(|k| sign(k, body, unix_now()));
    Conn::new(target).post(body, sig.as_deref()).await
}

/// Checks a reply is one `StepRun` op for step `s{n-1}` carrying that step's output.
pub fn check_step_run(reply: &Reply, n: usize, ids: Ids) -> Result<(), String> {
    let text = String::from_utf8_lossy(&reply.body);
    if reply.status != 206 {
        return Err(format!("status {} (want 206): {text:.300}", reply.status));
    }
    let ops: Value =
        serde_json::from_slice(&reply.body).map_err(|e| format!("{e}: {text:.300}"))?;
    let op = match ops.as_array().map(Vec::as_slice) {
        Some([op]) => op,
        _ => return Err(format!("want exactly one op, got {text:.300}")),
    };
    let want_id = ids.step_key(n - 1);
    if op["op"] != "StepRun" || op["id"] != want_id.as_str() {
        return Err(format!("want StepRun {want_id}, got {text:.300}"));
    }
    if op["data"] != step_output(n - 1) {
        return Err(format!("wrong data for s{}: {text:.300}", n - 1));
    }
    Ok(())
}

fn arg_value(args: &mut std::iter::Peekable<std::vec::IntoIter<String>>, name: &str) -> String {
    args.next().unwrap_or_else(|| {
        eprintln!("{name} needs a value");
        std::process::exit(2)
    })
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The command line (and environment) of a load run.
struct Args {
    url: String,
    fn_id: String,
    n: usize,
    concurrency: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    ids: Ids,
    signing_key: Option<String>,
}

/// Reads the arguments; `None` when only the usage was asked for (and printed).
fn parse_args() -> Option<Args> {
    let mut o = Args {
        url: "http://127.0.0.1:3000/api/inngest".to_owned(),
        fn_id: "bench-app-chain".to_owned(),
        n: env_parse("N").unwrap_or(10),
        concurrency: env_parse("CONCURRENCY").unwrap_or(32),
        duration: env_parse("DURATION").unwrap_or(10.0),
        warmup: 1.0,
        threads: 1,
        ids: Ids::Spec,
        signing_key: std::env::var("INNGEST_SIGNING_KEY").ok(),
    };
    let mut args = std::env::args()
        .skip(1)
        .collect::<Vec<_>>()
        .into_iter()
        .peekable();
    while let Some(a) = args.next() {
        let num = |s: String, name: &str| -> f64 {
            s.parse().unwrap_or_else(|_| {
                eprintln!("{name}: not a number: {s}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--fn-id" => o.fn_id = arg_value(&mut args, &a),
            "--n" | "--steps" => o.n = num(arg_value(&mut args, &a), &a) as usize,
            "--concurrency" | "-c" => o.concurrency = num(arg_value(&mut args, &a), &a) as usize,
            "--duration" | "-d" => o.duration = num(arg_value(&mut args, &a), &a),
            "--warmup" => o.warmup = num(arg_value(&mut args, &a), &a),
            "--threads" | "-t" => o.threads = num(arg_value(&mut args, &a), &a) as usize,
            "--ids" => {
                let v = arg_value(&mut args, &a);
                o.ids = Ids::parse(&v).unwrap_or_else(|| {
                    eprintln!("--ids: spec or official");
                    std::process::exit(2)
                })
            }
            "--signing-key" => o.signing_key = Some(arg_value(&mut args, &a)),
            "--no-sign" => o.signing_key = None,
            "-h" | "--help" => {
                eprintln!(
                    "usage: loadgen [URL] [--fn-id ID] [--n N] [--concurrency C] [--duration S] \
                     [--warmup S] [--threads T] [--ids spec|official] [--signing-key KEY]"
                );
                return None;
            }
            other if !other.starts_with('-') => o.url = other.to_owned(),
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2)
            }
        }
    }
    Some(o)
}

fn main() {
    let Some(Args {
        url,
        fn_id,
        n,
        concurrency,
        duration,
        warmup,
        threads,
        ids,
        signing_key,
    }) = parse_args()
    else {
        return;
    };
    let target = match Target::new(&url, &fn_id) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    };
    let body = Arc::new(build_body(n.max(1), ids));
    let load = Load {
        concurrency: concurrency.max(1),
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        signing_key,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        match probe(target.clone(), &body, load.signing_key.as_deref()).await {
            Ok(reply) => {
                if let Err(e) = check_step_run(&reply, n.max(1), ids) {
                    eprintln!("warning: the first call did not answer the expected StepRun: {e}");
                }
            }
            Err(e) => {
                eprintln!("cannot reach {url}: {e}");
                std::process::exit(1)
            }
        }
        println!(
            "{} N={} body={} B concurrency={} duration={:.1}s signed={}",
            url,
            n,
            body.len(),
            load.concurrency,
            duration,
            load.signing_key.is_some()
        );
        let stats = run(target, body, &load).await;
        println!(
            "calls/s {:.1}  p50 {:.3} ms  p99 {:.3} ms  calls {}  errors {}  non-206 {}",
            stats.calls_per_sec(),
            stats.percentile_ms(0.50),
            stats.percentile_ms(0.99),
            stats.calls,
            stats.errors,
            stats.non_206
        );
    });
}
