//! Stripe webhooks (spec §4.9 handlePaymentWebhook, id `process-payment-webhook`).

use inngest_sdk::{Ctx, Event, Function, Step, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::orders::order_created_event_id;
use super::{
    api_err, bad_payload, db_err, field, now_utc, opt_str, req_str, Deps, EVENT_ORDER_CREATED,
    EVENT_STRIPE_WEBHOOK, FN_PROCESS_PAYMENT_WEBHOOK,
};
use crate::db::{OrderStatus, WebhookSource};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    inserted: bool,
    duplicate: bool,
}

/// Output of `mark-order-paid`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkedPaid {
    found: bool,
    order_id: Option<Uuid>,
    user_id: Option<Uuid>,
    paid: bool,
    payment_status: Option<String>,
    changed: bool,
}

/// Output of `mark-order-failed` / `mark-intent-succeeded`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntentUpdate {
    order_id: Option<Uuid>,
    changed: bool,
}

/// **handlePaymentWebhook** (`process-payment-webhook`, spec §4.9): verified Stripe events.
///
/// * Trigger `stripe/webhook {id, type, created, livemode, object}` (event id = the Stripe
///   `evt_…` id, so a redelivery is deduplicated by Inngest); idempotency `event.data.id`.
/// * Step `record-event`: `webhook_events` insert (`ON CONFLICT DO NOTHING`); an event already
///   processed ends the run with `{duplicate: true}` — a replay is a no-op. The row is only
///   marked processed at the end (`mark-processed`), so a run that failed half-way is redone,
///   unlike the original route which recorded the event first and then lost it.
/// * `checkout.session.completed`: step `mark-order-paid` finds the order by
///   `stripe_session_id = object.id` (falling back to `object.metadata.order_id`), **verifies the
///   session with the Stripe API** and, when `payment_status == 'paid'`, marks the order `paid`
///   (intent, `paid_at`, total, currency, shipping from `collected_information.shipping_details`
///   and the customer email). Then `step.send_event` `order/created {orderId, userId,
///   stripeSessionId}` with event id `order-created-<orderId>` (fan-out to `process-order`).
/// * `payment_intent.succeeded`: step `mark-intent-succeeded` sets `paid_at` on the order with
///   that intent (no-op if unknown).
/// * `payment_intent.payment_failed`: step `mark-order-failed` marks that order
///   `payment_failed` (by intent id, else `object.metadata.order_id`).
/// * Other types are ignored. Returns `{success, webhookType, orderId?, duplicate}`.
pub fn handle_payment_webhook(d: &Deps) -> Function {
    let d = d.clone();
    Function::new(FN_PROCESS_PAYMENT_WEBHOOK)
        .name("Process Stripe webhook")
        .trigger(Trigger::event(EVENT_STRIPE_WEBHOOK))
        .idempotency("event.data.id")
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let d = d.clone();
            async move {
                let ev = EVENT_STRIPE_WEBHOOK;
                let data = &ctx.event.data;
                let stripe_id = req_str(ev, data, "id")?;
                let kind = req_str(ev, data, "type")?;
                if !field(data, "object").is_some_and(Value::is_object) {
                    return Err(bad_payload(ev, "object", "must be an object"));
                }
                let db = &d.app.db;

                let rec: Recorded = step
                    .run("record-event", || async {
                        let r = db
                            .record_webhook_event(
                                WebhookSource::Stripe,
                                &stripe_id,
                                &kind,
                                data,
                                now_utc(),
                            )
                            .await
                            .map_err(db_err)?;
                        Ok(Recorded {
                            inserted: r.inserted,
                            duplicate: r.is_duplicate(),
                        })
                    })
                    .await?;
                if rec.duplicate {
                    tracing::info!(stripe_event = %stripe_id, "stripe event already processed");
                    return Ok(json!({
                        "success": true,
                        "webhookType": kind,
                        "duplicate": true,
                    }));
                }

                let metadata_order = opt_str(ev, data, "object.metadata.order_id")?
                    .and_then(|s| Uuid::parse_str(&s).ok());
                let mut order_id: Option<Uuid> = None;
                let mut result = json!({});
                match kind.as_str() {
                    "checkout.session.completed" => {
                        let session_id = req_str(ev, data, "object.id")?;
                        let paid: MarkedPaid = step
                            .run("mark-order-paid", || async {
                                let order = match db
                                    .find_order_by_stripe_session(&session_id)
                                    .await
                                    .map_err(db_err)?
                                {
                                    Some(o) => Some(o),
                                    None => match metadata_order {
                                        Some(id) => db.get_order(id).await.map_err(db_err)?,
                                        None => None,
                                    },
                                };
                                let Some(order) = order else {
                                    tracing::warn!(stripe_event = %stripe_id, "no order for the checkout session");
                                    return Ok(MarkedPaid {
                                        found: false,
                                        order_id: None,
                                        user_id: None,
                                        paid: false,
                                        payment_status: None,
                                        changed: false,
                                    });
                                };
                                let session = d
                                    .app
                                    .stripe
                                    .retrieve_checkout_session(&session_id)
                                    .await
                                    .map_err(api_err)?;
                                if !session.is_paid() {
                                    return Ok(MarkedPaid {
                                        found: true,
                                        order_id: Some(order.id),
                                        user_id: Some(order.user_id),
                                        paid: false,
                                        payment_status: Some(session.payment_status),
                                        changed: false,
                                    });
                                }
                                let t = db
                                    .mark_order_paid(order.id, &session.payment_update(), now_utc())
                                    .await
                                    .map_err(db_err)?;
                                tracing::info!(order_id = %order.id, changed = t.changed, "order marked paid");
                                Ok(MarkedPaid {
                                    found: true,
                                    order_id: Some(order.id),
                                    user_id: Some(order.user_id),
                                    paid: true,
                                    payment_status: Some(session.payment_status),
                                    changed: t.changed,
                                })
                            })
                            .await?;
                        order_id = paid.order_id;
                        let mut emitted = Vec::new();
                        if let (true, Some(oid)) = (paid.paid, paid.order_id) {
                            emitted = step
                                .send_event(
                                    "emit-order-created",
                                    vec![Event::new(
                                        EVENT_ORDER_CREATED,
                                        json!({
                                            "orderId": oid,
                                            "userId": paid.user_id,
                                            "stripeSessionId": session_id,
                                        }),
                                    )
                                    .with_id(order_created_event_id(oid))],
                                )
                                .await?;
                        }
                        result = json!({
                            "found": paid.found,
                            "paid": paid.paid,
                            "paymentStatus": paid.payment_status,
                            "orderCreatedEventIds": emitted,
                        });
                    }
                    "payment_intent.succeeded" => {
                        let intent = req_str(ev, data, "object.id")?;
                        let n: u64 = step
                            .run("mark-intent-succeeded", || async {
                                db.mark_intent_succeeded(&intent, now_utc())
                                    .await
                                    .map_err(db_err)
                            })
                            .await?;
                        result = json!({ "ordersUpdated": n });
                    }
                    "payment_intent.payment_failed" => {
                        let intent = req_str(ev, data, "object.id")?;
                        let up: IntentUpdate = step
                            .run("mark-order-failed", || async {
                                if let Some(t) = db
                                    .mark_payment_failed_by_intent(&intent, now_utc())
                                    .await
                                    .map_err(db_err)?
                                {
                                    return Ok(IntentUpdate {
                                        order_id: Some(t.order_id),
                                        changed: t.changed,
                                    });
                                }
                                let Some(id) = metadata_order else {
                                    return Ok(IntentUpdate {
                                        order_id: None,
                                        changed: false,
                                    });
                                };
                                let Some(order) = db.get_order(id).await.map_err(db_err)? else {
                                    return Ok(IntentUpdate {
                                        order_id: None,
                                        changed: false,
                                    });
                                };
                                if !matches!(order.status, OrderStatus::Pending | OrderStatus::Paid) {
                                    return Ok(IntentUpdate {
                                        order_id: Some(id),
                                        changed: false,
                                    });
                                }
                                let t = db
                                    .mark_order_payment_failed(id, now_utc())
                                    .await
                                    .map_err(db_err)?;
                                Ok(IntentUpdate {
                                    order_id: Some(id),
                                    changed: t.changed,
                                })
                            })
                            .await?;
                        if up.changed {
                            tracing::warn!(order_id = ?up.order_id, "payment failed");
                        }
                        order_id = up.order_id;
                        result = json!({ "changed": up.changed });
                    }
                    other => {
                        tracing::debug!(stripe_type = other, "stripe event type ignored");
                        result = json!({ "ignored": true });
                    }
                }

                let _first: bool = step
                    .run("mark-processed", || async {
                        db.mark_webhook_processed(WebhookSource::Stripe, &stripe_id, now_utc())
                            .await
                            .map_err(db_err)
                    })
                    .await?;
                if rec.inserted {
                    tracing::info!(stripe_event = %stripe_id, stripe_type = %kind, "stripe event processed");
                }
                Ok(json!({
                    "success": true,
                    "webhookType": kind,
                    "orderId": order_id,
                    "duplicate": false,
                    "result": result,
                }))
            }
        })
}
