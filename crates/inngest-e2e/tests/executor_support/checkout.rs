//! The checkout workflow the kill/restart tests share: `reserve` → `charge` (against a provider
//! that charges once per idempotency key) → `notify`, with a switch that makes `charge` hang
//! after charging, so a test can kill the process in the middle of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use inngest_sdk::{Ctx, Function, Step, Trigger};
use serde_json::{json, Value};

/// A payment provider that dedupes by idempotency key and counts real effects.
#[derive(Default)]
pub struct Provider {
    /// Charge requests received (effects or not).
    pub calls: AtomicUsize,
    /// Idempotency key → charge id: the real effects.
    pub charges: Mutex<HashMap<String, String>>,
}

impl Provider {
    /// Charges once per idempotency key, like a payment API.
    pub fn charge(&self, key: &str) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut charges = self.charges.lock().unwrap();
        let next = charges.len() + 1;
        charges
            .entry(key.to_owned())
            .or_insert_with(|| format!("ch_{next}"))
            .clone()
    }
}

/// What the workflow's steps did.
#[derive(Default)]
pub struct Probe {
    /// Runs of the `reserve` body.
    pub reserves: AtomicUsize,
    /// Runs of the `notify` body.
    pub notifies: AtomicUsize,
    /// Notified when a hanging `charge` body has charged.
    pub entered: tokio::sync::Notify,
}

/// The checkout function. With `hang`, the `charge` body charges and then never returns (the
/// test kills the process while it runs); without, it runs normally.
pub fn checkout(provider: Arc<Provider>, probe: Arc<Probe>, hang: bool) -> Function {
    Function::new("checkout")
        .trigger(Trigger::event("shop/checkout"))
        .retries(3)
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let provider = provider.clone();
            let probe = probe.clone();
            async move {
                let p = probe.clone();
                let reservation: String = step
                    .run("reserve", move || async move {
                        p.reserves.fetch_add(1, Ordering::SeqCst);
                        Ok("rsv_1".to_owned())
                    })
                    .await?;
                let key = format!("{}:charge", ctx.run_id);
                let p = probe.clone();
                let receipt: String = step
                    .run("charge", move || async move {
                        let receipt = provider.charge(&key);
                        if hang {
                            p.entered.notify_one();
                            std::future::pending::<()>().await;
                        }
                        Ok(receipt)
                    })
                    .await?;
                let p = probe.clone();
                step.run("notify", move || async move {
                    p.notifies.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await?;
                Ok(json!({ "reservation": reservation, "receipt": receipt }))
            }
        })
}

/// The outcome of a run that was killed while `charge` ran and was then re-driven: `reserve`
/// (memoized before the kill) ran once, `charge` ran twice but charged once thanks to its
/// idempotency key, `notify` ran once, and the run returned the one receipt.
pub fn assert_charged_once(run_output: Option<&Value>, provider: &Provider, probe: &Probe) {
    assert_eq!(
        run_output,
        Some(&json!({"reservation": "rsv_1", "receipt": "ch_1"}))
    );
    assert_eq!(probe.reserves.load(Ordering::SeqCst), 1);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert_eq!(provider.charges.lock().unwrap().len(), 1);
    assert_eq!(probe.notifies.load(Ordering::SeqCst), 1);
}
