//! The encryption middleware under the local executor (what Inngest stores is encrypted, the
//! handler sees plaintext, a wrong key fails without retries and without leaking), and its
//! interop with the JS SDK's `@inngest/middleware-encryption` (ignored by default: `.ci/run` runs
//! them with `INNGEST_ENCRYPTION_JS_DIR` pointing at an `npm install` of
//! `tests/fixtures/encryption/`).

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use inngest_sdk::middleware::encryption::{Encryption, NONCE_BYTES};
use inngest_sdk::middleware::Middleware;
use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Ctx, Event, Function, Step, Trigger};
use serde_json::{json, Value};

const KEY: &str = "current-key-0123456789";
const OLD_KEY: &str = "old-key-9876543210";

fn enc() -> Encryption {
    Encryption::new(KEY).unwrap().fallback_key(OLD_KEY)
}

/// Decrypts the event's `encrypted` field, runs a step on it, sends an event with a secret,
/// returns the secret.
fn vault(id: &str, encryption: Encryption) -> Function {
    Function::new(id)
        .trigger(Trigger::event(format!("enc/{id}")))
        .retries(3)
        .middleware(encryption)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let secret = ctx.event.data["encrypted"].clone();
            let from_js: Value = step
                .run("js-step", || async { Ok(json!("not mocked")) })
                .await?;
            let card = secret.clone();
            let echoed: Value = step.run("echo", || async move { Ok(card) }).await?;
            step.send_event(
                "forward",
                Event::new(
                    "enc/forwarded",
                    json!({ "encrypted": echoed, "plain": "visible" }),
                ),
            )
            .await?;
            Ok(json!({ "secret": echoed, "from_js": from_js, "plain": ctx.event.data["plain"] }))
        })
}

/// Receives the forwarded event without decrypting it.
fn sink() -> Function {
    Function::new("sink")
        .trigger(Trigger::event("enc/forwarded"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data) })
}

async fn finished(h: &TestHarness, event_id: &str) -> inngest_sdk::testing::RunView {
    let run = h.wait_for_run_of(event_id).await;
    h.wait_for_run(&run.id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inngest_only_sees_ciphertext_and_wrong_keys_fail_for_good() {
    let logs = support::logs::logs();
    let h = TestHarness::start(
        "enc-app",
        [
            vault("vault", enc()),
            vault("wrong-key", Encryption::new("some-other-key").unwrap()),
            sink(),
        ],
    )
    .await
    .unwrap();
    let card = json!({ "number": "4242-SECRET-4242" });
    let sealed = enc().encrypt_value(&card).unwrap();
    let data = json!({ "encrypted": sealed, "plain": 7 });
    let id = h.send(Event::new("enc/vault", data.clone())).await;
    let run = finished(&h, &id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.history);
    let output = run.output.clone().unwrap();
    assert!(Encryption::is_encrypted(&output), "{output}");
    assert_eq!(
        enc().decrypt_value(&output).unwrap(),
        json!({ "secret": card, "from_js": "not mocked", "plain": 7 })
    );
    let stored = run.step("echo").and_then(|s| s.output.clone()).unwrap();
    let stored = stored.get("data").cloned().unwrap_or(stored);
    assert!(Encryption::is_encrypted(&stored), "{stored}");
    assert_eq!(enc().decrypt_value(&stored).unwrap(), card);

    let sent = run.step("forward").and_then(|s| s.output.clone()).unwrap();
    let sent = sent.get("data").cloned().unwrap_or(sent);
    assert!(
        Encryption::is_encrypted(&sent),
        "a send_event step's output is encrypted too"
    );
    let ids = enc().decrypt_value(&sent).unwrap()["ids"].clone();
    let forwarded = finished(&h, ids[0].as_str().unwrap()).await;
    let out = forwarded.output.unwrap();
    assert_eq!(out["plain"], "visible");
    assert_eq!(enc().decrypt_value(&out["encrypted"]).unwrap(), card);

    let id = h.send(Event::new("enc/wrong-key", data)).await;
    let run = finished(&h, &id).await;
    assert_eq!((run.status, run.requests), (RunStatus::Failed, 1));
    let err = run.error.unwrap();
    assert_eq!(err.name, "MiddlewareError");
    assert_eq!(
        err.message,
        "middleware `inngest:encryption` failed in `transform_input`: could not decrypt a value: \
         no key opens it (wrong key, or the value was tampered with)"
    );
    let text = logs.text();
    for secret in ["4242-SECRET-4242", KEY, OLD_KEY, "some-other-key"] {
        assert!(!text.contains(secret), "`{secret}` was logged");
    }
}

/// Runs `tests/fixtures/encryption/interop.js` in the installed directory.
fn node(mode: &str, input: Option<&Value>) -> Value {
    let dir = std::env::var("INNGEST_ENCRYPTION_JS_DIR")
        .expect("INNGEST_ENCRYPTION_JS_DIR: an `npm install` of tests/fixtures/encryption");
    let mut child = Command::new("node")
        .arg("interop.js")
        .arg(mode)
        .current_dir(dir)
        .env("ENC_KEY", KEY)
        .env("ENC_OLD_KEY", OLD_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.to_string().as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node interop.js {mode} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node.js and an npm install of tests/fixtures/encryption (see .ci/run)"]
async fn values_the_js_middleware_encrypted_decrypt_in_rust() {
    let js = node("encrypt", None);
    // Same nonce, same key: the very same bytes.
    for case in js["deterministic"].as_array().unwrap() {
        let nonce = [case["nonce"].as_u64().unwrap() as u8; NONCE_BYTES];
        let ours = enc()
            .encrypt_value_with_nonce(&case["value"], &nonce)
            .unwrap();
        assert_eq!(ours["data"], case["data"], "{}", case["value"]);
    }
    assert_eq!(
        enc().decrypt_value(&js["functionOutput"]).unwrap(),
        json!({ "done": "ünïcode ✓" })
    );
    assert_eq!(
        enc().decrypt_value(&js["oldKeyOutput"]).unwrap(),
        json!("sealed with the old key")
    );
    // Through the middleware: the JS-encrypted event and step output reach the handler in
    // plaintext (the step's output is memoized as the JS app stored it).
    let h = TestHarness::builder("enc-js")
        .function(vault("vault", enc()))
        .function(sink())
        .mock_step("vault", "js-step", &js["stepOutput"])
        .start()
        .await
        .unwrap();
    let event = &js["event"];
    assert_eq!(event["data"]["plain"], "visible");
    let id = h.send(Event::new("enc/vault", event["data"].clone())).await;
    let run = finished(&h, &id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.history);
    assert_eq!(
        enc().decrypt_value(&run.output.unwrap()).unwrap(),
        json!({
            "secret": { "card": "4242 4242", "cvc": 123 },
            "from_js": { "secret": "step output", "n": [1, 2, 3] },
            "plain": "visible",
        })
    );
}

#[tokio::test]
#[ignore = "needs Node.js and an npm install of tests/fixtures/encryption (see .ci/run)"]
async fn values_the_rust_middleware_encrypted_decrypt_in_js() {
    let mw = Encryption::new(OLD_KEY).unwrap();
    let mut events = vec![Event::new(
        "enc/sent",
        json!({ "encrypted": { "card": "5555" }, "plain": 1 }),
    )];
    enc().before_send_events(&mut events).await.unwrap();
    assert!(Encryption::is_encrypted(&events[0].data["encrypted"]));
    let input = json!({
        "step": enc().encrypt_value(&json!({ "rows": [1, 2], "name": "ünï" })).unwrap(),
        "event": serde_json::to_value(&events[0]).unwrap(),
        "output": mw.encrypt_value(&json!("old key still opens")).unwrap(),
    });
    let js = node("decrypt", Some(&input));
    assert_eq!(js["step"], json!({ "rows": [1, 2], "name": "ünï" }));
    assert_eq!(
        js["event"]["data"],
        json!({ "encrypted": { "card": "5555" }, "plain": 1 })
    );
    assert_eq!(js["output"], json!("old key still opens"));
}
