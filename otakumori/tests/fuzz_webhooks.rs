//! Fuzz: the webhook verifiers (Clerk/svix, Stripe, Printify) and their routes.
//!
//! A self-contained seeded generator (no extra dependency) drives, per provider:
//! * random and structured-but-wrong signature headers and bodies: the verifier never panics and
//!   rejects them;
//! * sign → verify round trips at any timestamp inside the tolerance;
//! * any single bit flip in the body, and any bit flip in the signature bytes, is rejected;
//! * timestamps at the tolerance edges and at `i64::MIN`/`i64::MAX` never overflow;
//! * `map_event` on arbitrary JSON never panics;
//! * the HTTP route, in-process: every answer is JSON, a bad signature never reaches the sink, and
//!   a good one always does (or is answered "ignored").
//!
//! `FUZZ_CASES` (per campaign, default 1500) and `FUZZ_SECONDS` (keep going until this much time
//! has passed) as in the SDK's `tests/fuzz_*.rs`; `FUZZ_SEED` replays a run.
//!
//! ```text
//! FUZZ_CASES=100000 FUZZ_SECONDS=600 cargo test --release -p otakumori --test fuzz_webhooks -- --nocapture
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine as _;
use otakumori::webhooks::{
    self, clerk, printify, stripe, RecordingSink, WebhookConfig, WebhookState,
};
use serde_json::{json, Value};
use tower::ServiceExt as _;

const NOW: i64 = 1_735_689_600;
const TOL: i64 = 300;

// ---------------------------------------------------------------------------------------------
// A small deterministic generator (xorshift64*).

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn text(&mut self, max: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'b', 'z', '0', '1', '9', '=', ',', ' ', '.', '_', '-', '+', '/', 'v', 't', 's',
            'h', 'A', 'F', 'é', '\u{0}', '\t', '😀', '%', '&',
        ];
        let n = self.below(max + 1);
        (0..n).map(|_| *self.pick(ALPHABET)).collect()
    }
    fn timestamp(&mut self) -> i64 {
        match self.below(6) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => NOW + TOL + 1 + self.below(1000) as i64,
            3 => NOW - TOL - 1 - self.below(1000) as i64,
            4 => self.next() as i64,
            _ => NOW + self.below(2 * TOL as usize + 1) as i64 - TOL,
        }
    }
    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::from(self.chance(2)),
            2 => Value::from(self.next() as i64),
            3 => Value::from(self.text(8)),
            4 => Value::from(*self.pick(&[
                "user.created",
                "checkout.session.completed",
                "order:created",
                "product:publish:started",
                "x",
            ])),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let keys = [
                    "type",
                    "id",
                    "data",
                    "object",
                    "resource",
                    "email_addresses",
                    "metadata",
                    "event_type",
                    "k",
                ];
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(6) {
                    m.insert((*self.pick(&keys)).to_owned(), self.json(depth - 1));
                }
                Value::Object(m)
            }
        }
    }
    /// A JSON body: usually one of the shapes the mappers know, filled with random values.
    fn body(&mut self) -> Vec<u8> {
        match self.below(4) {
            0 => self.bytes(256),
            1 => serde_json::to_vec(&self.json(4)).unwrap(),
            _ => {
                let ty = *self.pick(&[
                    "user.created",
                    "user.updated",
                    "user.deleted",
                    "checkout.session.completed",
                    "payment_intent.succeeded",
                    "order:created",
                    "order:updated",
                    "product:publish:started",
                    "unknown.type",
                ]);
                let data = self.json(3);
                serde_json::to_vec(&json!({
                    "type": ty, "id": format!("evt_{}", self.below(1000)),
                    "data": { "id": "user_1", "object": data, "email_addresses": [] },
                    "resource": { "id": "r1", "type": "order", "data": self.json(2) },
                }))
                .unwrap()
            }
        }
    }
}

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1500)
}

fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("FUZZ_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// Runs `case(gen, i)` for `FUZZ_CASES` cases, then more batches until `FUZZ_SECONDS` passed.
/// A failing case panics with the seed that reproduces it.
fn campaign(name: &str, mut case: impl FnMut(&mut Gen, usize)) {
    let base_seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x005E_ED0F_F00D);
    let started = Instant::now();
    let mut total = 0usize;
    let mut batch = 0u64;
    loop {
        for i in 0..cases() {
            let seed =
                base_seed ^ (batch << 32) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut g = Gen(seed);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut g, i)));
            if let Err(panic) = res {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("fuzz {name}: case seed {seed} (batch {batch}, case {i}) failed: {msg}");
            }
            total += 1;
        }
        batch += 1;
        if started.elapsed() >= budget() {
            break;
        }
    }
    println!(
        "fuzz {name}: {total} cases in {batch} batch(es), {:.1?}, no failure",
        started.elapsed()
    );
}

fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

// ---------------------------------------------------------------------------------------------
// Clerk (svix).

fn svix_secret(g: &mut Gen) -> clerk::SvixSecret {
    let key = g.bytes(40);
    if key.is_empty() {
        clerk::SvixSecret::from_key(b"k".to_vec())
    } else {
        clerk::SvixSecret::from_key(key)
    }
}

#[test]
fn fuzz_svix_verifier() {
    campaign("svix", |g, _| {
        let secret = svix_secret(g);
        // Parsing arbitrary secrets never panics.
        let _ = clerk::SvixSecret::parse(&g.text(30));
        let _ = clerk::SvixSecret::parse(&format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(g.bytes(20))
        ));
        let body = g.body();
        let id = format!("msg_{}", g.text(6));
        let ts = g.timestamp();

        // Garbage headers.
        let garbage = g.text(60);
        let ts_text = if g.chance(2) {
            g.text(12)
        } else {
            ts.to_string()
        };
        assert!(clerk::verify(&secret, &id, &ts_text, &garbage, &body, NOW).is_err());

        // Round trip and its window.
        let header = clerk::sign(&secret, &id, ts, &body);
        let ok = clerk::verify(&secret, &id, &ts.to_string(), &header, &body, NOW);
        let inside = (ts.saturating_sub(NOW)).saturating_abs() <= TOL;
        assert_eq!(ok.is_ok(), inside, "ts {ts}: {ok:?}");
        if !inside {
            assert!(
                matches!(ok, Err(clerk::SvixError::TimestampOutOfTolerance { .. })),
                "{ok:?}"
            );
            return;
        }
        // Several signatures, one right: accepted (key rotation).
        let multi = format!("v1,{} {header} v2,zzz", g.text(10));
        assert!(clerk::verify(&secret, &id, &ts.to_string(), &multi, &body, NOW).is_ok());
        // One flipped body bit.
        if !body.is_empty() {
            let mut b = body.clone();
            flip(&mut b, g.below(usize::MAX));
            assert_eq!(
                clerk::verify(&secret, &id, &ts.to_string(), &header, &b, NOW),
                Err(clerk::SvixError::SignatureMismatch)
            );
        }
        // One flipped signature bit.
        let mut sig = base64::engine::general_purpose::STANDARD
            .decode(header.trim_start_matches("v1,"))
            .unwrap();
        flip(&mut sig, g.below(usize::MAX));
        let forged = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(&sig)
        );
        assert_eq!(
            clerk::verify(&secret, &id, &ts.to_string(), &forged, &body, NOW),
            Err(clerk::SvixError::SignatureMismatch)
        );
        // A different message id.
        assert!(clerk::verify(
            &secret,
            &format!("{id}x"),
            &ts.to_string(),
            &header,
            &body,
            NOW
        )
        .is_err());
        // Mapping whatever verified never panics.
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let _ = clerk::map_event(&id, &v);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Stripe.

#[test]
fn fuzz_stripe_verifier() {
    campaign("stripe", |g, _| {
        let secret = stripe::StripeSecret::new(format!("whsec_{}", g.text(20)));
        let body = g.body();
        let ts = g.timestamp();

        // Garbage and structured-but-wrong headers.
        let garbage = match g.below(3) {
            0 => g.text(80),
            1 => format!("t={},v1={}", g.text(12), g.text(64)),
            _ => format!("v1={},t={ts},v0=aa", hex::encode(g.bytes(40))),
        };
        assert!(stripe::verify(&secret, &garbage, &body, NOW).is_err());

        let header = stripe::sign(&secret, ts, &body);
        let ok = stripe::verify(&secret, &header, &body, NOW);
        let inside = (ts.saturating_sub(NOW)).saturating_abs() <= TOL;
        assert_eq!(ok.is_ok(), inside, "ts {ts}: {ok:?}");
        if !inside {
            return;
        }
        assert_eq!(ok, Ok(ts));
        // Extra entries (another v1 during rotation, a v0) do not matter.
        let rotated = format!(
            "{header},v1={},v0={}",
            hex::encode(g.bytes(32)),
            hex::encode(g.bytes(5))
        );
        assert_eq!(stripe::verify(&secret, &rotated, &body, NOW), Ok(ts));
        if !body.is_empty() {
            let mut b = body.clone();
            flip(&mut b, g.below(usize::MAX));
            assert_eq!(
                stripe::verify(&secret, &header, &b, NOW),
                Err(stripe::StripeError::SignatureMismatch)
            );
        }
        let mut sig = hex::decode(stripe::signature(&secret, ts, &body)).unwrap();
        flip(&mut sig, g.below(usize::MAX));
        let forged = format!("t={ts},v1={}", hex::encode(&sig));
        assert_eq!(
            stripe::verify(&secret, &forged, &body, NOW),
            Err(stripe::StripeError::SignatureMismatch)
        );
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let _ = stripe::map_event(&v);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Printify.

#[test]
fn fuzz_printify_verifier() {
    campaign("printify", |g, _| {
        let secret = printify::PrintifySecret::new(g.bytes(32));
        let body = g.body();
        let garbage = match g.below(3) {
            0 => g.text(80),
            1 => format!("sha256={}", g.text(64)),
            _ => format!("{}={}", g.text(6), hex::encode(g.bytes(33))),
        };
        assert!(printify::verify(&secret, &garbage, &body).is_err());

        let header = printify::sign(&secret, &body);
        assert_eq!(printify::verify(&secret, &header, &body), Ok(()));
        let bare = printify::signature(&secret, &body);
        assert_eq!(printify::verify(&secret, &bare, &body), Ok(()));
        if !body.is_empty() {
            let mut b = body.clone();
            flip(&mut b, g.below(usize::MAX));
            assert_eq!(
                printify::verify(&secret, &header, &b),
                Err(printify::PrintifyError::SignatureMismatch)
            );
        }
        let mut sig = hex::decode(&bare).unwrap();
        flip(&mut sig, g.below(usize::MAX));
        assert_eq!(
            printify::verify(&secret, &format!("sha256={}", hex::encode(&sig)), &body),
            Err(printify::PrintifyError::SignatureMismatch)
        );
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let _ = printify::map_event(&v);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The routes, in-process.

const SVIX_SECRET: &str = "whsec_ZnV6ei1zdml4LWtleS0wMTIzNDU2Nzg5";
const STRIPE_SECRET: &str = "whsec_fuzz_stripe";
const PRINTIFY_SECRET: &str = "fuzz-printify";

#[test]
fn fuzz_webhook_routes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sink = RecordingSink::new();
    let config = WebhookConfig::default()
        .with_clerk_secret(clerk::SvixSecret::parse(SVIX_SECRET).unwrap())
        .with_stripe_secret(stripe::StripeSecret::new(STRIPE_SECRET))
        .with_printify_secret(printify::PrintifySecret::new(PRINTIFY_SECRET))
        .with_rate_limit(None)
        .with_body_limit(64 * 1024);
    let state = WebhookState::new(Arc::new(sink.clone()), config).with_clock(|| NOW);
    let router = webhooks::router(state);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let (mut delivered, mut refused) = (0usize, 0usize);

    campaign("routes", |g, i| {
        let body = g.body();
        let signed = g.chance(2);
        let ts = if g.chance(4) { g.timestamp() } else { NOW };
        let provider = g.below(3);
        let (path, headers): (&str, Vec<(&str, String)>) = match provider {
            0 => {
                let secret = clerk::SvixSecret::parse(SVIX_SECRET).unwrap();
                let id = format!("msg_{i}");
                let mut h: Vec<(&str, String)> =
                    clerk::signed_headers(&secret, &id, ts, &body).into();
                if !signed {
                    h[2].1 = g.text(40);
                }
                (webhooks::CLERK_PATH, h)
            }
            1 => {
                let secret = stripe::StripeSecret::new(STRIPE_SECRET);
                let v = if signed {
                    stripe::sign(&secret, ts, &body)
                } else {
                    g.text(60)
                };
                (webhooks::STRIPE_PATH, vec![("stripe-signature", v)])
            }
            _ => {
                let secret = printify::PrintifySecret::new(PRINTIFY_SECRET);
                let v = if signed {
                    printify::sign(&secret, &body)
                } else {
                    g.text(70)
                };
                (webhooks::PRINTIFY_PATH, vec![("x-pfy-signature", v)])
            }
        };
        let mut req = axum::http::Request::builder().method("POST").uri(path);
        for (k, v) in &headers {
            if let Ok(v) = axum::http::HeaderValue::from_str(v) {
                req = req.header(*k, v);
            }
        }
        let mut req = req.body(Body::from(body.clone())).unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let before = sink.recorded().len();
        let res = rt.block_on(router.clone().oneshot(req)).unwrap();
        let status = res.status().as_u16();
        let bytes = rt
            .block_on(axum::body::to_bytes(res.into_body(), usize::MAX))
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON answer {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let sent = sink.recorded().len() - before;
        // Printify signatures carry no timestamp.
        let valid = signed && (provider == 2 || ts.saturating_sub(NOW).saturating_abs() <= TOL);
        if !valid {
            assert!(
                matches!(status, 400 | 401),
                "{path}: unsigned got {status}: {v}"
            );
            assert_eq!(sent, 0, "{path}: an unverified delivery reached the sink");
            refused += 1;
            let text = v["error"].as_str().unwrap_or("");
            assert!(!text.is_empty(), "{v}");
            for secret in [SVIX_SECRET, STRIPE_SECRET, PRINTIFY_SECRET] {
                assert!(!text.contains(secret), "secret in {text}");
            }
        } else {
            assert!(
                matches!(status, 200 | 400),
                "{path}: signed got {status}: {v}"
            );
            if status == 200 {
                let ignored = v.get("ignored").is_some();
                assert!(ignored || sent > 0, "{path}: 200 without events: {v}");
                delivered += usize::from(sent > 0);
            } else {
                assert_eq!(sent, 0, "{path}: a refused payload reached the sink");
            }
        }
    });
    // Not vacuous: both outcomes happened.
    assert!(
        delivered > 0 && refused > 0,
        "delivered {delivered}, refused {refused}"
    );
}
