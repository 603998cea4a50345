//! Order fulfilment (processOrder) and the confirmation email (sendOrderConfirmation).

use inngest_sdk::{
    Concurrency, Ctx, Error, Event, Function, FunctionFailed, NonRetriable, Step, WaitFor,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::dead_letter::record_failure;
use super::{
    api_err, db_err, email_err, now_utc, Deps, FN_PROCESS_ORDER, FN_SEND_ORDER_CONFIRMATION,
    OP_EMAIL_ORDER_CONFIRMATION, OP_ORDER_PROCESS,
};
use crate::db::{ItemEligibility, OrderStatus, PrintifySyncStatus};
use crate::events::{self, OrderConfirmationSent, OrderCreated, StripeWebhook};
use crate::services::email::templates::{self, OrderEmailView};
use crate::services::email::{EmailOutcome, EmailRequest};
use crate::services::printify::CreateOrderRequest;

/// Inngest event id of the `order/created` event for an order: one per order, so the checkout
/// and the payment webhook emitting it for the same order start one run.
pub fn order_created_event_id(order_id: Uuid) -> String {
    format!("order-created-{order_id}")
}

/// Inngest event id of the `order/confirmation.sent` event for an order (one email per order).
pub fn confirmation_event_id(order_id: Uuid) -> String {
    format!("order-confirmation-{order_id}")
}

/// `email_log` / provider idempotency key of an order's confirmation email.
pub fn confirmation_email_key(order_id: Uuid) -> String {
    format!("order-confirmation:{order_id}")
}

/// One order line as `validate-order` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedItem {
    /// Local variant of the line, if any.
    pub variant_id: Option<Uuid>,
    /// Printify product id stored on the line, if any.
    pub printify_product_id: Option<String>,
    /// Printify variant id stored on the line, if any.
    pub printify_variant_id: Option<i64>,
    /// Number of units.
    pub quantity: i32,
}

/// Output of `validate-order`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// The order.
    pub order_id: Uuid,
    /// The customer.
    pub user_id: Uuid,
    /// The order's status when it was validated.
    pub status: OrderStatus,
    /// The order's Stripe Checkout session id.
    pub stripe_session_id: Option<String>,
    /// Printify order id, if the order was already sent there.
    pub printify_order_id: Option<String>,
    /// The order is already `in_production` or later; the run stops here.
    pub already_processed: bool,
    /// The order lines.
    pub items: Vec<ValidatedItem>,
}

/// Output of `process-payment`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The payment is confirmed.
    pub paid: bool,
    /// `webhook` (already confirmed by `process-payment-webhook`) or `stripe` (verified here).
    pub verified_by: Option<String>,
    /// Stripe PaymentIntent id, if known.
    pub payment_intent_id: Option<String>,
    /// Stripe's `payment_status` (`paid`, `unpaid`, `no_payment_required`).
    pub payment_status: Option<String>,
    /// The order was cancelled because payment never arrived.
    pub cancelled: bool,
}

/// Output of `check-inventory`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Every line can be fulfilled (else the order is now `pending_mapping`).
    pub eligible: bool,
    /// Number of order lines checked.
    pub items: usize,
    /// Lines that cannot be fulfilled, as `<name> (<reason>)`.
    pub problems: Vec<String>,
}

/// Output of `create-printify-order` (and of a recovered `order.process` retry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    /// The order.
    pub order_id: Uuid,
    /// The customer.
    pub user_id: Uuid,
    /// Id of the Printify order.
    pub printify_order_id: String,
    /// `true` when `printify_order_sync` already had a synced order (no POST was made).
    pub reused: bool,
}

/// The non-retriable error of an order id with no row (retrying would not create it).
fn order_not_found(order_id: Uuid) -> Error {
    NonRetriable::new(format!("order {order_id} not found")).into()
}

/// Create the Printify order for a paid, eligible order — idempotently:
///
/// 1. a `synced` `printify_order_sync` row means it exists: re-assert `in_production`, no POST;
/// 2. otherwise build the body (`external_id` = order id, `label` = `Order #<n>`, Printify's
///    `line_items[{product_id, variant_id, quantity}]`, the stored shipping address with no
///    placeholders) and `POST /shops/{shop}/orders.json`;
/// 3. success: `orders.printify_order_id`, status `in_production`, sync row `synced`;
///    a permanent refusal (4xx, or an incomplete address) records sync row `failed` with the
///    error and is non-retriable; 429 is retry-after; 5xx/transport errors are retried.
pub async fn submit_printify_order(d: &Deps, order_id: Uuid) -> Result<Submitted, Error> {
    let db = &d.app.db;
    let order = db
        .get_order(order_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| order_not_found(order_id))?;
    if let Some(sync) = db.get_printify_order_sync(order_id).await.map_err(db_err)? {
        if let (PrintifySyncStatus::Synced, Some(pid)) = (sync.status, sync.printify_order_id) {
            db.record_printify_order_created(order_id, &pid, now_utc())
                .await
                .map_err(db_err)?;
            return Ok(Submitted {
                order_id,
                user_id: order.user_id,
                printify_order_id: pid,
                reused: true,
            });
        }
    }
    let items = db.order_fulfillment_check(order_id).await.map_err(db_err)?;
    let body = match CreateOrderRequest::for_order(&order, &items) {
        Ok(b) => b,
        Err(msg) => {
            db.record_printify_order_failed(order_id, &msg, now_utc())
                .await
                .map_err(db_err)?;
            return Err(NonRetriable::new(format!("order {order_id}: {msg}")).into());
        }
    };
    match d.printify.create_order(&body).await {
        Ok(created) => {
            db.record_printify_order_created(order_id, &created.id, now_utc())
                .await
                .map_err(db_err)?;
            tracing::info!(%order_id, printify_order_id = %created.id, "order sent to Printify");
            Ok(Submitted {
                order_id,
                user_id: order.user_id,
                printify_order_id: created.id,
                reused: false,
            })
        }
        Err(e) => {
            if e.is_permanent() {
                tracing::warn!(%order_id, status = ?e.status(), "Printify refused the order");
                db.record_printify_order_failed(order_id, &e.to_string(), now_utc())
                    .await
                    .map_err(db_err)?;
            }
            Err(api_err(e))
        }
    }
}

/// The `order.process` retry : fulfil an order that is paid (or waiting for a
/// mapping fix) by re-checking eligibility and creating the Printify order.
pub async fn fulfil_paid_order(d: &Deps, order_id: Uuid) -> Result<Submitted, Error> {
    let db = &d.app.db;
    let order = db
        .get_order(order_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| order_not_found(order_id))?;
    if !order.status.is_fulfilled()
        && !matches!(
            order.status,
            OrderStatus::Paid | OrderStatus::PendingMapping
        )
    {
        return Err(
            NonRetriable::new(format!("order {order_id} is {}, not paid", order.status)).into(),
        );
    }
    if !order.status.is_fulfilled() {
        let bad: Vec<String> = db
            .order_fulfillment_check(order_id)
            .await
            .map_err(db_err)?
            .into_iter()
            .filter(|i| !i.eligible)
            .map(|i| format!("{} ({})", i.name, i.reason.unwrap_or_default()))
            .collect();
        if !bad.is_empty() {
            return Err(NonRetriable::new(format!(
                "order {order_id}: items not fulfillable: {}",
                bad.join(", ")
            ))
            .into());
        }
    }
    submit_printify_order(d, order_id).await
}

/// Load the confirmation view of an order: recipient = `email` (the event's), else the order's
/// shipping email, else the user's email — never a placeholder.
pub async fn confirmation_view(
    d: &Deps,
    order_id: Uuid,
    email: Option<String>,
) -> Result<OrderEmailView, Error> {
    let detail = d
        .app
        .db
        .get_order_detail(order_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| order_not_found(order_id))?;
    let mut view = OrderEmailView::from_detail(&detail);
    if let Some(e) = email.filter(|e| e.contains('@')) {
        view.recipient = e;
    }
    if !view.recipient.contains('@') {
        return Err(NonRetriable::new(format!("order {order_id} has no recipient email")).into());
    }
    Ok(view)
}

/// Send the confirmation for a loaded view, at most once per order
/// ([`Mailer::send_once`](crate::services::email::Mailer::send_once) writes the `email_log` row).
pub async fn send_confirmation(d: &Deps, view: &OrderEmailView) -> Result<EmailOutcome, Error> {
    let r = templates::order_confirmation(view);
    let out = d
        .app
        .mailer
        .send_once(&EmailRequest {
            order_id: Some(view.order_id),
            user_id: Some(view.user_id),
            ..EmailRequest::rendered(
                confirmation_email_key(view.order_id),
                templates::ORDER_CONFIRMATION,
                view.recipient.clone(),
                r,
            )
        })
        .await
        .map_err(email_err)?;
    tracing::info!(order_id = %view.order_id, already_sent = out.already_sent, "order confirmation handled");
    Ok(out)
}

/// [`confirmation_view`] + [`send_confirmation`] (the `email.order_confirmation` retry).
pub async fn deliver_confirmation(
    d: &Deps,
    order_id: Uuid,
    email: Option<String>,
) -> Result<EmailOutcome, Error> {
    let view = confirmation_view(d, order_id, email).await?;
    send_confirmation(d, &view).await
}

/// The `orderId` of a failed run's event, read without decoding it: the failure handlers are
/// untyped so that they also record a run whose event did not decode as [`OrderCreated`].
fn order_id_of(failed: &FunctionFailed<Value>) -> Option<String> {
    failed
        .event
        .data
        .get("orderId")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// **processOrder** (`process-order`): fulfil a paid order end to end.
///
/// * Trigger `order/created {orderId, userId?, stripeSessionId?}` — emitted by
///   `process-payment-webhook` once Stripe confirmed the payment, or by a checkout before payment
///   (then the run waits for it). Idempotency `event.data.orderId` (one run per order per 24 h),
///   concurrency 1 per `event.data.orderId`, retries 3, `on_failure` → `failed_operations`
///   (`order.process`) + `operation/failed`.
/// * Steps:
///   1. `validate-order`: order + items + user; missing order or a user mismatch is
///      non-retriable; an order already `in_production` (or later) ends the run
///      (`alreadyProcessed`), a cancelled/failed one ends it with `success:false`.
///   2. `wait-for-payment` (only for a `pending` order): `step.wait_for_event` on
///      `stripe/webhook` with `async.data.type == 'checkout.session.completed' &&
///      async.data.object.id == <session id>`, timeout 1 h.
///   3. `process-payment`: an order the webhook already marked paid needs no call; otherwise
///      verify with Stripe (`GET /v1/checkout/sessions/{id}`, `payment_status == 'paid'`) and
///      mark it `paid` (intent, total, currency, shipping). Not paid: `cancelled` after a wait
///      timeout, else `payment_failed`; the run ends with `success:false`.
///   4. `check-inventory`: every line needs an enabled, in-stock, mapped variant; otherwise the
///      order becomes `pending_mapping` (sync row `mapping_failed`) and the run ends normally —
///      no Printify call.
///   5. `create-printify-order`: [`submit_printify_order`] (idempotent; 4xx → non-retriable).
///   6. `send-confirmation`: `step.send_event` of `order/confirmation.sent {orderId}` (event id
///      `order-confirmation-<id>`), handled by `send-order-confirmation`.
///   7. `clear-cart`: deletes the user's `cart_items`.
///
///   Payment is verified before the eligibility check (the original lists them the other way round)
///   so that an order parked in `pending_mapping` is always a paid one.
/// * Returns `{success, orderId, printifyOrderId, status, steps:{validation, inventory, payment}}`.
pub fn process_order() -> Function {
    Function::new(FN_PROCESS_ORDER)
        .name("Process order")
        // Untyped on purpose, and so registered before `.on`: the failure handler must record
        // a run whose event did not decode as `OrderCreated` too.
        .on_failure(|ctx: Ctx<FunctionFailed<Value>>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let key = order_id_of(&ctx.event.data);
            record_failure(d, &step, &ctx.event.data, OP_ORDER_PROCESS, key).await
        })
        .on::<OrderCreated>()
        .idempotency("event.data.orderId")
        .concurrency(Concurrency::new(1).key("event.data.orderId"))
        .retries(3)
        .handler(|ctx: Ctx<OrderCreated>, step: Step| async move {
            fulfil_order(ctx.get()?, &step, &ctx.event.data).await
        })
        .into()
}

/// The steps of `process-order`, in order. A step that ends the run early returns its output.
async fn fulfil_order(d: &Deps, step: &Step, event: &OrderCreated) -> Result<Value, Error> {
    let order_id = event.order_id;
    let v: Validation = step
        .run("validate-order", || validate_order(d, event))
        .await?;
    if let Some(done) = stopped_at_validation(&v) {
        return Ok(done);
    }
    let waited = wait_for_payment(d, step, &v).await?;
    let payment: Payment = step
        .run("process-payment", || verify_payment(d, order_id, waited))
        .await?;
    if !payment.paid {
        return Ok(unpaid(&v, &payment));
    }
    let inventory: Inventory = step
        .run("check-inventory", || check_inventory(d, order_id))
        .await?;
    let steps = json!({"validation": v, "inventory": inventory, "payment": payment});
    if !inventory.eligible {
        return Ok(json!({
            "success": false,
            "orderId": order_id,
            "printifyOrderId": null,
            "status": OrderStatus::PendingMapping,
            "steps": steps,
        }));
    }
    let submitted: Submitted = step
        .run("create-printify-order", || {
            submit_printify_order(d, order_id)
        })
        .await?;
    // Fan-out to send-order-confirmation.
    let confirmation = OrderConfirmationSent {
        order_id,
        email: None,
    };
    let email_events = step
        .send_event(
            "send-confirmation",
            events::with_id(confirmation, confirmation_event_id(order_id)),
        )
        .await?;
    let cleared: u64 = step
        .run("clear-cart", || async {
            d.app
                .db
                .clear_cart(v.user_id, now_utc())
                .await
                .map_err(db_err)
        })
        .await?;
    Ok(json!({
        "success": true,
        "orderId": order_id,
        "printifyOrderId": submitted.printify_order_id,
        "status": OrderStatus::InProduction,
        "cartItemsCleared": cleared,
        "confirmationEventIds": email_events,
        "steps": steps,
    }))
}

/// Step `validate-order`: the order, its lines and its user; a missing order or a user that
/// is not the event's is non-retriable.
async fn validate_order(d: &Deps, event: &OrderCreated) -> Result<Validation, Error> {
    let order_id = event.order_id;
    let detail = d
        .app
        .db
        .get_order_detail(order_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| order_not_found(order_id))?;
    if let Some(u) = &event.user_id {
        if *u != detail.user.id.to_string() && *u != detail.user.clerk_id {
            return Err(NonRetriable::new(format!(
                "order {order_id} does not belong to the user in `data.userId`"
            ))
            .into());
        }
    }
    if let (Some(s), Some(o)) = (&event.stripe_session_id, &detail.order.stripe_session_id) {
        if s != o {
            tracing::warn!(%order_id, "event stripeSessionId differs from the order's");
        }
    }
    let items = detail
        .items
        .iter()
        .map(|i| ValidatedItem {
            variant_id: i.variant_id,
            printify_product_id: i.printify_product_id.clone(),
            printify_variant_id: i.printify_variant_id,
            quantity: i.quantity,
        })
        .collect();
    Ok(Validation {
        order_id,
        user_id: detail.order.user_id,
        status: detail.order.status,
        stripe_session_id: detail.order.stripe_session_id.clone(),
        printify_order_id: detail.order.printify_order_id.clone(),
        already_processed: detail.order.status.is_fulfilled(),
        items,
    })
}

/// The run's output when validation ends it: an order already in production (or later), or
/// one that was cancelled or failed payment.
fn stopped_at_validation(v: &Validation) -> Option<Value> {
    if v.already_processed {
        return Some(json!({
            "success": true,
            "orderId": v.order_id,
            "alreadyProcessed": true,
            "printifyOrderId": v.printify_order_id,
            "status": v.status,
        }));
    }
    matches!(
        v.status,
        OrderStatus::Cancelled | OrderStatus::PaymentFailed
    )
    .then(|| {
        json!({
            "success": false,
            "orderId": v.order_id,
            "status": v.status,
            "reason": format!("order is {}", v.status),
            "steps": {"validation": v},
        })
    })
}

/// Step `wait-for-payment`, only for an order created at checkout (`pending`): waits for the
/// `checkout.session.completed` Stripe event of its session. `None` when there was nothing to
/// wait for, else whether the event came before the timeout.
async fn wait_for_payment(d: &Deps, step: &Step, v: &Validation) -> Result<Option<bool>, Error> {
    if v.status != OrderStatus::Pending {
        return Ok(None);
    }
    let session = v.stripe_session_id.clone().ok_or_else(|| {
        Error::from(NonRetriable::new(format!(
            "order {} has no stripe_session_id to wait for",
            v.order_id
        )))
    })?;
    let expr = format!(
        "async.data.type == 'checkout.session.completed' && {}",
        inngest_sdk::expr::async_equals("data.object.id", &json!(session))
    );
    let got: Option<Event<StripeWebhook>> = step
        .wait_for_event(
            "wait-for-payment",
            WaitFor::new(d.options.payment_wait_timeout).if_expr(expr),
        )
        .await?;
    Ok(Some(got.is_some()))
}

/// Step `process-payment`: an order the webhook already marked paid needs no call; otherwise
/// Stripe's checkout session decides. Not paid: `cancelled` after a wait timeout
/// (`waited == Some(false)`), else `payment_failed`.
async fn verify_payment(d: &Deps, order_id: Uuid, waited: Option<bool>) -> Result<Payment, Error> {
    let db = &d.app.db;
    let order = db
        .get_order(order_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| order_not_found(order_id))?;
    let paid_by_webhook = matches!(
        order.status,
        OrderStatus::Paid | OrderStatus::PendingMapping
    ) && order.paid_at.is_some();
    if order.status.is_fulfilled() || paid_by_webhook {
        return Ok(Payment {
            paid: true,
            verified_by: Some("webhook".into()),
            payment_intent_id: order.payment_intent_id,
            payment_status: Some("paid".into()),
            cancelled: false,
        });
    }
    let session_id = order.stripe_session_id.clone().ok_or_else(|| {
        Error::from(NonRetriable::new(format!(
            "order {order_id} has no stripe_session_id"
        )))
    })?;
    let session = d
        .app
        .stripe
        .retrieve_checkout_session(&session_id)
        .await
        .map_err(api_err)?;
    let paid = session.is_paid();
    let cancelled = !paid && waited == Some(false);
    if paid {
        db.mark_order_paid(order_id, &session.payment_update(), now_utc())
            .await
            .map_err(db_err)?;
        tracing::info!(%order_id, "payment verified with Stripe");
    } else if cancelled {
        db.transition_order(order_id, OrderStatus::Cancelled, now_utc())
            .await
            .map_err(db_err)?;
    } else {
        db.mark_order_payment_failed(order_id, now_utc())
            .await
            .map_err(db_err)?;
    }
    if !paid {
        tracing::warn!(%order_id, cancelled, "checkout session is not paid");
    }
    Ok(Payment {
        paid,
        verified_by: Some("stripe".into()),
        payment_intent_id: session.payment_intent,
        payment_status: Some(session.payment_status),
        cancelled,
    })
}

/// The run's output for an order whose payment did not arrive.
fn unpaid(v: &Validation, payment: &Payment) -> Value {
    let (status, reason) = if payment.cancelled {
        (OrderStatus::Cancelled, "payment not received in time")
    } else {
        (OrderStatus::PaymentFailed, "checkout session is not paid")
    };
    json!({
        "success": false,
        "orderId": v.order_id,
        "status": status,
        "reason": reason,
        "steps": {"validation": v, "payment": payment},
    })
}

/// Step `check-inventory`: every line needs an enabled, in-stock, mapped variant; otherwise the
/// order becomes `pending_mapping` (no Printify call).
async fn check_inventory(d: &Deps, order_id: Uuid) -> Result<Inventory, Error> {
    let db = &d.app.db;
    let items = db.order_fulfillment_check(order_id).await.map_err(db_err)?;
    let mut problems: Vec<String> = items
        .iter()
        .filter(|i| !i.eligible)
        .map(ItemEligibility::problem)
        .collect();
    if items.is_empty() {
        problems.push("order has no items".into());
    }
    if !problems.is_empty() {
        let msg = format!("items not fulfillable: {}", problems.join(", "));
        db.mark_order_pending_mapping(order_id, &msg, now_utc())
            .await
            .map_err(db_err)?;
        tracing::warn!(%order_id, problems = problems.len(), "order needs mapping");
    }
    Ok(Inventory {
        eligible: problems.is_empty(),
        items: items.len(),
        problems,
    })
}

/// **sendOrderConfirmation** (`send-order-confirmation`): the order confirmation
/// email, at most once per order.
///
/// * Trigger `order/confirmation.sent {orderId, email?}`; idempotency `event.data.orderId`;
///   retries default (errors throw, so Inngest retries — unlike the original, which swallowed
///   them); `on_failure` → `failed_operations` (`email.order_confirmation`) + `operation/failed`.
/// * Step `load-order`: a compact view (lines, amounts in cents, the real shipping address);
///   recipient = `data.email`, else the order's shipping email, else the user's email.
/// * Step `send-email`: `Mailer::send_once` keyed `order-confirmation:<orderId>` — skipped when
///   `email_log` already has the `sent` row; otherwise sends (`Order Confirmation #<n>`) and
///   writes the `email_log` row (the original's `record-email-log` step, done atomically by the mailer).
/// * Returns `{success, orderId, emailSent, emailId, alreadySent}`.
pub fn send_order_confirmation() -> Function {
    Function::new(FN_SEND_ORDER_CONFIRMATION)
        .name("Send order confirmation")
        // Untyped on purpose (see `process_order`): it records undecodable events too.
        .on_failure(|ctx: Ctx<FunctionFailed<Value>>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let key = order_id_of(&ctx.event.data);
            record_failure(d, &step, &ctx.event.data, OP_EMAIL_ORDER_CONFIRMATION, key).await
        })
        .on::<OrderConfirmationSent>()
        .idempotency("event.data.orderId")
        .handler(|ctx: Ctx<OrderConfirmationSent>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let OrderConfirmationSent { order_id, email } = ctx.event.data.clone();
            let view: OrderEmailView = step
                .run("load-order", || confirmation_view(d, order_id, email))
                .await?;
            let sent: EmailOutcome = step
                .run("send-email", || send_confirmation(d, &view))
                .await?;
            Ok(json!({
                "success": true,
                "orderId": order_id,
                "orderNumber": view.order_number,
                "emailSent": true,
                "emailId": sent.provider_message_id,
                "emailLogId": sent.log_id,
                "alreadySent": sent.already_sent,
            }))
        })
        .into()
}
