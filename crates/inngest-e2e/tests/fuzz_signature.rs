//! Fuzz: the `X-Inngest-Signature` parser and verifier, through the serve handler (cloud mode,
//! `POST ?probe=trust`, the cheapest signed endpoint).
//!
//! * Random and structured-but-wrong headers with random bodies: never a panic, always `401` with
//!   the SDK headers and `X-Inngest-No-Retry: false`.
//! * Sign → verify round trip (primary or fallback key, any timestamp inside ±5 min, either
//!   parameter order): `200`, and the response is signed with the key that verified the request.
//! * Any single bit flip in the body, in the MAC, or in the header text is rejected — except the
//!   flips that leave the request equivalent, which an independent oracle predicts: a body whose
//!   JCS form is exactly the signed bytes, or a hex digit that only changed case.
//! * Timestamps outside the window are rejected even with a correct MAC.

mod fuzz_common;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{Function, Inngest};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use sha2::Sha256;

const PRIMARY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const FALLBACK: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";

fn handler() -> ServeHandler {
    let client = Inngest::builder("sig")
        .signing_key(format!("signkey-prod-{PRIMARY}"))
        .signing_key_fallback(format!("signkey-prod-{FALLBACK}"))
        .api_base_url("http://127.0.0.1:9")
        .event_api_base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    ServeHandler::new(&client, Vec::<Function>::new()).unwrap()
}

fn mac(key: &str, body: &[u8], t: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(body);
    m.update(t.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The JCS form of a body, computed the way the verifier's fallback does.
fn jcs(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    if text.trim().is_empty() {
        return None;
    }
    serde_json_canonicalizer::pipe(text)
        .ok()
        .map(String::into_bytes)
}

struct Answer {
    status: u16,
    no_retry: Option<String>,
    signature: Option<String>,
    body: Bytes,
}

fn probe(
    rt: &tokio::runtime::Runtime,
    h: &ServeHandler,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<Answer, TestCaseError> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/api/inngest?probe=trust");
    if let Some(hv) = header {
        let Ok(v) = http::HeaderValue::from_bytes(hv) else {
            // Not representable in HTTP: nothing to send.
            return Err(TestCaseError::reject("invalid header value"));
        };
        req = req.header("x-inngest-signature", v);
    }
    let req = req.body(Bytes::copy_from_slice(body)).unwrap();
    let res = rt.block_on(h.handle(req));
    let header = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    ensure!(
        header("x-inngest-sdk").as_deref() == Some(inngest_sdk::client::SDK_HEADER),
        "no X-Inngest-SDK"
    );
    ensure!(
        serde_json::from_slice::<Value>(res.body()).is_ok(),
        "body is not JSON"
    );
    Ok(Answer {
        status: res.status().as_u16(),
        no_retry: header("x-inngest-no-retry"),
        signature: header("x-inngest-signature"),
        body: res.body().clone(),
    })
}

fn expect_rejected(a: &Answer, what: &str) -> Result<(), TestCaseError> {
    ensure!(a.status == 401, "{what}: status {} (wanted 401)", a.status);
    ensure!(
        a.no_retry.as_deref() == Some("false"),
        "{what}: no-retry {:?}",
        a.no_retry
    );
    ensure!(
        a.signature.is_none(),
        "{what}: a rejected request got a signed answer"
    );
    let body: Value = serde_json::from_slice(&a.body).unwrap();
    ensure!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Unauthorized: ")),
        "{what}: message {body}"
    );
    for key in [PRIMARY, FALLBACK] {
        ensure!(
            !String::from_utf8_lossy(&a.body).contains(key),
            "{what}: key leaked"
        );
    }
    Ok(())
}

fn expect_accepted(a: &Answer, key: &str, what: &str) -> Result<(), TestCaseError> {
    ensure!(a.status == 200, "{what}: status {} (wanted 200)", a.status);
    let sig = a
        .signature
        .as_deref()
        .ok_or_else(|| TestCaseError::fail(format!("{what}: unsigned answer")))?;
    let t = sig
        .strip_prefix("t=")
        .and_then(|s| s.split('&').next())
        .unwrap_or("");
    let want = format!("t={t}&s={}", hex::encode(mac(key, &a.body, t)));
    ensure!(
        sig == want,
        "{what}: answer not signed with the verifying key"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn arb_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        "[\\x00-\\x1f]{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,5}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..256),
        // Canonical JSON (what the executor sends).
        3 => arb_json().prop_map(|v| serde_json_canonicalizer::to_vec(&v).unwrap()),
        // Pretty (non-canonical) JSON.
        1 => arb_json().prop_map(|v| serde_json::to_vec_pretty(&v).unwrap()),
        1 => Just(Vec::new()),
    ]
}

fn arb_garbage_header() -> impl Strategy<Value = Vec<u8>> {
    let t = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-400i64..400).prop_map(|d| (now() + d).to_string()),
        "[0-9]{0,30}",
        "[+ -]?[0-9]{1,12}",
        ".{0,8}",
    ];
    let s = prop_oneof![
        "[0-9a-f]{64}",
        "[0-9A-F]{64}",
        "[0-9a-f]{0,70}",
        "[0-9a-zA-Z%+/=]{0,80}",
        ".{0,10}",
    ];
    let structured = (
        t,
        s,
        proptest::sample::select(vec!["&", ";", ",", "&&", " & ", "%26"]),
        any::<bool>(),
        proptest::option::of("[a-z]{1,3}=[^&]{0,5}"),
        0usize..3,
    )
        .prop_map(|(t, s, sep, swap, extra, dup)| {
            let mut parts = vec![format!("t={t}"), format!("s={s}")];
            if swap {
                parts.reverse();
            }
            if let Some(e) = extra {
                parts.insert(1, e);
            }
            for _ in 0..dup {
                parts.push(parts[0].clone());
            }
            parts.join(sep).into_bytes()
        });
    prop_oneof![
        3 => structured,
        1 => vec(any::<u8>(), 0..100),
        1 => "\\PC{0,40}".prop_map(String::into_bytes),
    ]
}

#[derive(Debug, Clone)]
struct Signed {
    body: Vec<u8>,
    fallback: bool,
    offset: i64,
    swap: bool,
    flip: usize,
}

fn arb_signed() -> impl Strategy<Value = Signed> {
    (
        arb_body(),
        any::<bool>(),
        -290i64..=290,
        any::<bool>(),
        any::<usize>(),
    )
        .prop_map(|(body, fallback, offset, swap, flip)| Signed {
            body,
            fallback,
            offset,
            swap,
            flip,
        })
}

fn header_for(key: &str, body: &[u8], t: i64, swap: bool) -> String {
    let t = t.to_string();
    let s = hex::encode(mac(key, body, &t));
    if swap {
        format!("s={s}&t={t}")
    } else {
        format!("t={t}&s={s}")
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn fuzz_garbage_signatures_are_rejected() {
    let rt = fuzz_common::runtime();
    let h = handler();
    fuzz_common::campaign(
        "signature_garbage",
        1024,
        (proptest::option::of(arb_garbage_header()), arb_body()),
        |(header, body)| {
            let a = match probe(&rt, &h, header.as_deref(), &body) {
                Err(TestCaseError::Reject(_)) => return Ok(()),
                other => other?,
            };
            expect_rejected(&a, "garbage header")
        },
    );
}

#[test]
fn fuzz_sign_verify_round_trip_and_bit_flips() {
    let rt = fuzz_common::runtime();
    let h = handler();
    fuzz_common::campaign("signature_round_trip", 512, arb_signed(), |c| {
        let key = if c.fallback { FALLBACK } else { PRIMARY };
        let t = now() + c.offset;
        let header = header_for(key, &c.body, t, c.swap);
        let a = probe(&rt, &h, Some(header.as_bytes()), &c.body)?;
        expect_accepted(&a, key, "round trip")?;

        // One bit of the body.
        if !c.body.is_empty() {
            let mut body = c.body.clone();
            let bit = c.flip % (body.len() * 8);
            body[bit / 8] ^= 1 << (bit % 8);
            let a = probe(&rt, &h, Some(header.as_bytes()), &body)?;
            if jcs(&body).as_deref() == Some(&c.body[..]) {
                expect_accepted(&a, key, "body flip to an equivalent JCS form")?;
            } else {
                expect_rejected(&a, "body bit flip")?;
            }
        }

        // One bit of the MAC itself.
        let tt = t.to_string();
        let mut m = mac(key, &c.body, &tt);
        let bit = c.flip % (m.len() * 8);
        m[bit / 8] ^= 1 << (bit % 8);
        let forged = format!("t={tt}&s={}", hex::encode(&m));
        let a = probe(&rt, &h, Some(forged.as_bytes()), &c.body)?;
        expect_rejected(&a, "MAC bit flip")?;

        // One bit of the header text.
        let mut text = header.clone().into_bytes();
        let bit = c.flip.rotate_left(17) % (text.len() * 8);
        text[bit / 8] ^= 1 << (bit % 8);
        let s_start = header.find("s=").unwrap() + 2;
        let s_end = s_start + 64;
        let pos = bit / 8;
        let equivalent = (s_start..s_end).contains(&pos)
            && std::str::from_utf8(&text[s_start..s_end])
                .ok()
                .and_then(|s| hex::decode(s).ok())
                == Some(mac(key, &c.body, &tt));
        match probe(&rt, &h, Some(&text), &c.body) {
            Err(TestCaseError::Reject(_)) => {}
            Err(e) => return Err(e),
            Ok(a) if equivalent => expect_accepted(&a, key, "hex case flip")?,
            Ok(a) => expect_rejected(&a, "header bit flip")?,
        }

        // The same signature outside the window.
        let late = if c.offset >= 0 {
            306 + c.offset
        } else {
            -306 + c.offset
        };
        let stale = header_for(key, &c.body, now() - late, c.swap);
        let a = probe(&rt, &h, Some(stale.as_bytes()), &c.body)?;
        expect_rejected(&a, "outside the window")?;
        Ok(())
    });
}

/// The two "equivalent flip" cases the oracle allows, pinned down deterministically.
#[test]
fn equivalent_flips_are_accepted_by_design() {
    let rt = fuzz_common::runtime();
    let h = handler();
    // JCS writes control characters as lower-case `\u001f`; an upper-case `F` (one bit away) is
    // the same JSON, so the JCS fallback accepts it.
    let signed = serde_json_canonicalizer::to_vec(&Value::from("\u{1f}")).unwrap();
    assert_eq!(signed, b"\"\\u001f\"");
    let header = header_for(PRIMARY, &signed, now(), false);
    let mut flipped = signed.clone();
    flipped[6] ^= 0x20;
    assert_eq!(flipped, b"\"\\u001F\"");
    let a = probe(&rt, &h, Some(header.as_bytes()), &flipped).unwrap();
    expect_accepted(&a, PRIMARY, "upper-case escape").unwrap();
    // A hex digit of the MAC in upper case decodes to the same bytes.
    let upper = {
        let (t, s) = header.split_once("&s=").unwrap();
        format!("{t}&s={}", s.to_ascii_uppercase())
    };
    let a = probe(&rt, &h, Some(upper.as_bytes()), &signed).unwrap();
    expect_accepted(&a, PRIMARY, "upper-case MAC").unwrap();
}
