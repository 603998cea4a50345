//! Email: the [`EmailProvider`] trait, three providers and the send-once [`Mailer`].
//!
//! * [`ResendProvider`]: `POST {RESEND_BASE_URL}/emails`, Bearer auth, `Idempotency-Key` header.
//! * [`SmtpProvider`]: SMTP through lettre (`SMTP_URL`).
//! * [`OutboxProvider`]: the default local provider (`EMAIL_PROVIDER=log`): writes the message to
//!   `email_outbox` and a tracing line; no network.
//!
//! [`Mailer::send_once`] is what Inngest steps call. It is keyed by an idempotency key (for
//! example `order-confirmation:<order id>`): if `email_log` already has a `sent` row for the key
//! (or for the same `(order_id, template)`), nothing is sent again. Resend also receives the key
//! as `Idempotency-Key` and the outbox dedupes on it, so even a crash between "sent" and "logged"
//! does not produce a second email there (SMTP has no such guard).
//!
//! The [`templates`] module renders the plain HTML/text bodies.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{http_client, send_classified, ApiError, RateLimitPolicy, DEFAULT_TIMEOUT};
use crate::config::{ResendSettings, Secret};
use crate::db::{now_utc, Db, DbError, EmailStatus, NewEmailLog, NewOutboxMessage};

/// A message ready to send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Sender, e.g. `Otaku-mori <orders@otaku-mori.com>` (`EMAIL_FROM`).
    pub from: String,
    /// Recipient addresses (at least one).
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// HTML body (this or `text` is required).
    pub html: Option<String>,
    /// Plain-text body (this or `html` is required).
    pub text: Option<String>,
}

impl OutgoingEmail {
    /// Check the fields every provider requires: `from`, at least one `to`, `subject`, and
    /// `html` or `text`. Returns a permanent [`ApiError::Invalid`] otherwise.
    pub fn validate(&self, service: &'static str) -> Result<(), ApiError> {
        let fail = |m: &str| Err(ApiError::invalid(service, m.to_string(), false));
        if self.from.trim().is_empty() {
            return fail("missing from");
        }
        if self.to.is_empty() || self.to.iter().any(|t| !t.contains('@')) {
            return fail("missing or invalid to");
        }
        if self.subject.trim().is_empty() {
            return fail("missing subject");
        }
        if self.html.as_deref().unwrap_or("").is_empty()
            && self.text.as_deref().unwrap_or("").is_empty()
        {
            return fail("missing html or text body");
        }
        Ok(())
    }
}

/// What a provider returns for an accepted message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProviderReceipt {
    /// Provider message id (Resend id, SMTP Message-ID, `outbox_<uuid>`).
    pub message_id: String,
}

/// An email transport.
#[async_trait]
pub trait EmailProvider: Send + Sync {
    /// Stored in `email_log.provider` (`resend`, `smtp`, `log`).
    fn name(&self) -> &'static str;
    /// Send one message. `idempotency_key` lets providers that support it dedupe retries.
    async fn send(
        &self,
        msg: &OutgoingEmail,
        idempotency_key: &str,
    ) -> Result<ProviderReceipt, ApiError>;
}

// ------------------------------------------------------------------ Resend

/// Resend HTTP API provider.
#[derive(Clone)]
pub struct ResendProvider {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
    policy: RateLimitPolicy,
}

impl std::fmt::Debug for ResendProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResendProvider")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ResendProvider {
    /// Provider for the given settings.
    pub fn new(settings: &ResendSettings) -> Result<Self, ApiError> {
        Ok(Self {
            http: http_client(DEFAULT_TIMEOUT)?,
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            api_key: settings.api_key.clone(),
            policy: RateLimitPolicy::default(),
        })
    }

    /// Override the 429 retry policy.
    pub fn with_rate_limit_policy(mut self, policy: RateLimitPolicy) -> Self {
        self.policy = policy;
        self
    }
}

#[derive(Deserialize)]
struct ResendResponse {
    id: String,
}

#[async_trait]
impl EmailProvider for ResendProvider {
    fn name(&self) -> &'static str {
        "resend"
    }

    async fn send(
        &self,
        msg: &OutgoingEmail,
        idempotency_key: &str,
    ) -> Result<ProviderReceipt, ApiError> {
        msg.validate("resend")?;
        let url = format!("{}/emails", self.base_url);
        let mut body = serde_json::json!({"from": msg.from, "to": msg.to, "subject": msg.subject});
        if let Some(h) = &msg.html {
            body["html"] = h.clone().into();
        }
        if let Some(t) = &msg.text {
            body["text"] = t.clone().into();
        }
        let resp = send_classified("resend", self.policy, || {
            self.http
                .post(&url)
                .bearer_auth(self.api_key.expose())
                .header("Idempotency-Key", idempotency_key)
                .json(&body)
        })
        .await?;
        let r: ResendResponse = resp.json().await.map_err(|e| {
            ApiError::invalid("resend", format!("unexpected response body: {e}"), true)
        })?;
        Ok(ProviderReceipt { message_id: r.id })
    }
}

// ------------------------------------------------------------------ SMTP

/// SMTP provider (lettre, tokio + rustls).
#[derive(Clone)]
pub struct SmtpProvider {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
}

impl std::fmt::Debug for SmtpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpProvider").finish_non_exhaustive()
    }
}

impl SmtpProvider {
    /// Provider from a lettre URL (`smtp://host:25`, `smtps://user:pass@host:465`,
    /// `smtp://user:pass@host:587?tls=required`).
    pub fn from_url(url: &Secret) -> Result<Self, ApiError> {
        let transport =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url.expose())
                .map_err(|_| ApiError::invalid("smtp", "SMTP_URL could not be parsed", false))?
                .timeout(Some(DEFAULT_TIMEOUT))
                .build();
        Ok(Self { transport })
    }
}

#[async_trait]
impl EmailProvider for SmtpProvider {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(
        &self,
        msg: &OutgoingEmail,
        idempotency_key: &str,
    ) -> Result<ProviderReceipt, ApiError> {
        use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
        use lettre::AsyncTransport;

        msg.validate("smtp")?;
        let bad = |what: &str| ApiError::invalid("smtp", format!("invalid {what} address"), false);
        let digest = <sha2::Sha256 as sha2::Digest>::digest(idempotency_key.as_bytes());
        let message_id = format!("<{}@otakumori>", hex::encode(&digest[..16]));
        let mut b = lettre::Message::builder()
            .from(msg.from.parse::<Mailbox>().map_err(|_| bad("from"))?)
            .subject(msg.subject.clone())
            .message_id(Some(message_id.clone()));
        for t in &msg.to {
            b = b.to(t.parse::<Mailbox>().map_err(|_| bad("to"))?);
        }
        let email = match (&msg.html, &msg.text) {
            (Some(h), Some(t)) => {
                b.multipart(MultiPart::alternative_plain_html(t.clone(), h.clone()))
            }
            (Some(h), None) => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(h.clone()),
            ),
            (None, Some(t)) => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(t.clone()),
            ),
            (None, None) => return Err(ApiError::invalid("smtp", "missing body", false)),
        }
        .map_err(|e| ApiError::invalid("smtp", format!("could not build message: {e}"), false))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(ProviderReceipt { message_id }),
            Err(e) if e.is_permanent() => Err(ApiError::Permanent {
                service: "smtp",
                status: e
                    .status()
                    .map(|c| u16::from(c.severity as u8) * 100)
                    .unwrap_or(550),
                message: e.to_string(),
            }),
            Err(e) => Err(ApiError::Transport {
                service: "smtp",
                message: e.to_string(),
            }),
        }
    }
}

// ------------------------------------------------------------------ Outbox

/// Local provider: stores the message in `email_outbox` (deduped by idempotency key) and logs a
/// line. No network.
#[derive(Clone, Debug)]
pub struct OutboxProvider {
    db: Db,
}

impl OutboxProvider {
    /// Provider writing to `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl EmailProvider for OutboxProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(
        &self,
        msg: &OutgoingEmail,
        idempotency_key: &str,
    ) -> Result<ProviderReceipt, ApiError> {
        msg.validate("log")?;
        let (row, inserted) = self
            .db
            .insert_outbox(
                &NewOutboxMessage {
                    idempotency_key,
                    from: &msg.from,
                    to: &msg.to,
                    subject: &msg.subject,
                    html: msg.html.as_deref(),
                    text: msg.text.as_deref(),
                },
                now_utc(),
            )
            .await
            .map_err(|e| {
                ApiError::invalid("log", format!("outbox write failed: {e}"), e.is_retriable())
            })?;
        tracing::info!(
            outbox_id = %row.id,
            idempotency_key,
            recipients = msg.to.len(),
            replay = !inserted,
            "email written to local outbox (not sent)"
        );
        Ok(ProviderReceipt {
            message_id: format!("outbox_{}", row.id),
        })
    }
}

// ------------------------------------------------------------------ Mailer

/// One email to send through [`Mailer::send_once`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmailRequest {
    /// Send-once key, e.g. `order-confirmation:<order id>` or `inventory-alert:<alert ids>`.
    pub idempotency_key: String,
    /// `order-confirmation`, `inventory-alert`, `monthly-audit`, …
    pub template: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub html: Option<String>,
    /// Plain-text body.
    pub text: Option<String>,
    /// Order the email is about (also dedupes per order and template).
    pub order_id: Option<Uuid>,
    /// Recipient user, if known.
    pub user_id: Option<Uuid>,
}

impl EmailRequest {
    /// An email of `template` to `to`, with its rendered subject and bodies (no order or user).
    pub fn rendered(
        idempotency_key: String,
        template: &str,
        to: String,
        r: templates::Rendered,
    ) -> EmailRequest {
        EmailRequest {
            idempotency_key,
            template: template.to_string(),
            to: vec![to],
            subject: r.subject,
            html: Some(r.html),
            text: Some(r.text),
            order_id: None,
            user_id: None,
        }
    }
}

/// Result of [`Mailer::send_once`] (small enough to be a step output).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmailOutcome {
    /// `email_log` row.
    pub log_id: Uuid,
    /// Provider that sent it (`resend`, `smtp`, `log`).
    pub provider: String,
    /// Message id returned by the provider.
    pub provider_message_id: Option<String>,
    /// `true` if it had been sent before and nothing was sent now.
    pub already_sent: bool,
}

/// Error of [`Mailer::send_once`].
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The provider failed (see [`ApiError::is_retriable`]).
    #[error(transparent)]
    Provider(#[from] ApiError),
    /// Reading/writing `email_log` failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl EmailError {
    /// `true` if a retry may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            EmailError::Provider(e) => e.is_retriable(),
            EmailError::Db(e) => e.is_retriable(),
        }
    }
}

/// Sends email at most once per idempotency key and records every attempt in `email_log`.
#[derive(Clone)]
pub struct Mailer {
    provider: Arc<dyn EmailProvider>,
    db: Db,
    from: String,
    admin_alert_email: Option<String>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("provider", &self.provider.name())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer using `provider`, logging to `db`, sending from `from`.
    pub fn new(
        provider: Arc<dyn EmailProvider>,
        db: Db,
        from: impl Into<String>,
        admin_alert_email: Option<String>,
    ) -> Self {
        Self {
            provider,
            db,
            from: from.into(),
            admin_alert_email,
        }
    }

    /// Provider name (`resend`, `smtp`, `log`).
    pub fn provider_name(&self) -> &'static str {
        self.provider.name()
    }

    /// `EMAIL_FROM`.
    pub fn from_address(&self) -> &str {
        &self.from
    }

    /// `ADMIN_ALERT_EMAIL`, if configured.
    pub fn admin_alert_email(&self) -> Option<&str> {
        self.admin_alert_email.as_deref()
    }

    /// Send unless already sent for this key (or for the same `(order_id, template)`).
    ///
    /// On success inserts an `email_log` row `status='sent'`; on provider failure inserts a
    /// `status='failed'` row and returns the error (retriable or permanent).
    pub async fn send_once(&self, req: &EmailRequest) -> Result<EmailOutcome, EmailError> {
        let existing = match self.db.find_sent_email(&req.idempotency_key).await? {
            Some(e) => Some(e),
            None => match req.order_id {
                Some(o) => self.db.find_sent_order_email(o, &req.template).await?,
                None => None,
            },
        };
        if let Some(e) = existing {
            tracing::info!(key = %req.idempotency_key, template = %req.template, "email already sent; skipping");
            return Ok(EmailOutcome {
                log_id: e.id,
                provider: e.provider,
                provider_message_id: e.provider_message_id,
                already_sent: true,
            });
        }
        let msg = OutgoingEmail {
            from: self.from.clone(),
            to: req.to.clone(),
            subject: req.subject.clone(),
            html: req.html.clone(),
            text: req.text.clone(),
        };
        let log = |status, message_id: Option<String>, error: Option<String>| NewEmailLog {
            idempotency_key: Some(req.idempotency_key.clone()),
            user_id: req.user_id,
            order_id: req.order_id,
            to_address: req.to.join(", "),
            provider: self.provider.name().to_string(),
            template: req.template.clone(),
            subject: Some(req.subject.clone()),
            status,
            provider_message_id: message_id,
            error,
        };
        match self.provider.send(&msg, &req.idempotency_key).await {
            Ok(receipt) => {
                let row = self
                    .db
                    .insert_email_log(
                        &log(EmailStatus::Sent, Some(receipt.message_id.clone()), None),
                        now_utc(),
                    )
                    .await?;
                tracing::info!(template = %req.template, provider = self.provider.name(), log_id = %row.id, "email sent");
                Ok(EmailOutcome {
                    log_id: row.id,
                    provider: row.provider,
                    provider_message_id: row.provider_message_id,
                    already_sent: false,
                })
            }
            Err(e) => {
                tracing::warn!(template = %req.template, provider = self.provider.name(), retriable = e.is_retriable(), error = %e, "email send failed");
                if let Err(db_err) = self
                    .db
                    .insert_email_log(
                        &log(EmailStatus::Failed, None, Some(e.to_string())),
                        now_utc(),
                    )
                    .await
                {
                    tracing::warn!(error = %db_err, "could not record failed email");
                }
                Err(EmailError::Provider(e))
            }
        }
    }
}

// ------------------------------------------------------------------ templates

/// Plain HTML/text renderers for the app's emails (no template engine).
pub mod templates {
    use serde::{Deserialize, Serialize};

    use crate::db::{AuditReport, InventoryAlert, OrderDetail, ShippingAddress};

    /// Template names stored in `email_log.template`.
    pub const ORDER_CONFIRMATION: &str = "order-confirmation";
    /// Inventory alert summary.
    pub const INVENTORY_ALERT: &str = "inventory-alert";
    /// Monthly audit report.
    pub const MONTHLY_AUDIT: &str = "monthly-audit";

    /// A rendered email.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Rendered {
        /// Subject line.
        pub subject: String,
        /// HTML body.
        pub html: String,
        /// Plain-text body.
        pub text: String,
    }

    /// One order line for the confirmation email.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct EmailLine {
        /// Line name.
        pub name: String,
        /// Number of units.
        pub quantity: i32,
        /// Price of one unit in the smallest currency unit (cents).
        pub unit_amount_cents: i64,
    }

    /// Compact view-model of an order (a good `load-order` step output; amounts in cents).
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct OrderEmailView {
        /// The order.
        pub order_id: uuid::Uuid,
        /// The customer.
        pub user_id: uuid::Uuid,
        /// The order's display number (`Order #<n>`).
        pub order_number: i64,
        /// Name to greet: the shipping name, else the user's display name.
        pub customer_name: Option<String>,
        /// Recipient: `orders.ship_email`, else `users.email` (callers may override with the
        /// event's `email`). Never a placeholder.
        pub recipient: String,
        /// The order lines.
        pub items: Vec<EmailLine>,
        /// Subtotal in the smallest currency unit (cents).
        pub subtotal_cents: i64,
        /// Shipping (total − subtotal, never negative) in the smallest currency unit (cents).
        pub shipping_cents: i64,
        /// Total in the smallest currency unit (cents).
        pub total_cents: i64,
        /// ISO 4217 currency code (e.g. `USD`).
        pub currency: String,
        /// Shipping address.
        pub shipping: ShippingAddress,
    }

    impl OrderEmailView {
        /// Build from an order detail. Subtotal = stored subtotal, else the sum of the lines;
        /// shipping = total − subtotal when positive.
        pub fn from_detail(d: &OrderDetail) -> Self {
            let items: Vec<EmailLine> = d
                .items
                .iter()
                .map(|i| EmailLine {
                    name: i.name.clone(),
                    quantity: i.quantity,
                    unit_amount_cents: i.unit_amount_cents,
                })
                .collect();
            let sum: i64 = items
                .iter()
                .map(|i| i.unit_amount_cents * i64::from(i.quantity))
                .sum();
            let subtotal = if d.order.subtotal_cents > 0 {
                d.order.subtotal_cents
            } else {
                sum
            };
            let total = if d.order.total_cents > 0 {
                d.order.total_cents
            } else {
                subtotal
            };
            let recipient = d
                .order
                .shipping
                .email
                .clone()
                .filter(|e| e.contains('@'))
                .unwrap_or_else(|| d.user.email.clone());
            OrderEmailView {
                order_id: d.order.id,
                user_id: d.user.id,
                order_number: d.order.display_number,
                customer_name: d
                    .order
                    .shipping
                    .name
                    .clone()
                    .or(d.user.display_name.clone()),
                recipient,
                items,
                subtotal_cents: subtotal,
                shipping_cents: (total - subtotal).max(0),
                total_cents: total,
                currency: d.order.currency.clone(),
                shipping: d.order.shipping.clone(),
            }
        }
    }

    /// Escape text for HTML.
    pub fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    /// `1234, "usd"` → `$12.34`; other currencies → `12.34 EUR`.
    pub fn money(cents: i64, currency: &str) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        let amount = format!("{}.{:02}", abs / 100, abs % 100);
        match currency.to_ascii_uppercase().as_str() {
            "USD" => format!("{sign}${amount}"),
            other => format!("{sign}{amount} {other}"),
        }
    }

    fn address_lines(s: &ShippingAddress) -> Vec<String> {
        let mut v = Vec::new();
        for part in [&s.name, &s.line1, &s.line2] {
            if let Some(p) = part.as_deref().filter(|p| !p.trim().is_empty()) {
                v.push(p.to_string());
            }
        }
        let city_line = [
            s.city.as_deref(),
            s.region.as_deref(),
            s.postal_code.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        if !city_line.is_empty() {
            v.push(city_line);
        }
        if let Some(c) = s.country.as_deref().filter(|c| !c.is_empty()) {
            v.push(c.to_string());
        }
        v
    }

    /// `Order Confirmation #<n>` with the lines, totals and the real shipping address.
    pub fn order_confirmation(v: &OrderEmailView) -> Rendered {
        let subject = format!("Order Confirmation #{}", v.order_number);
        let greeting = v
            .customer_name
            .as_deref()
            .map(|n| format!("Thank you for your order, {n}!"))
            .unwrap_or_else(|| "Thank you for your order!".into());
        let mut text = format!("{greeting}\n\nOrder #{}\n\n", v.order_number);
        let mut rows = String::new();
        for i in &v.items {
            let line_total = i.unit_amount_cents * i64::from(i.quantity);
            text.push_str(&format!(
                "- {} x{}  {}\n",
                i.name,
                i.quantity,
                money(line_total, &v.currency)
            ));
            rows.push_str(&format!(
                "<tr><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td></tr>",
                escape(&i.name),
                i.quantity,
                money(line_total, &v.currency)
            ));
        }
        text.push_str(&format!(
            "\nSubtotal: {}\nShipping: {}\nTotal: {}\n",
            money(v.subtotal_cents, &v.currency),
            money(v.shipping_cents, &v.currency),
            money(v.total_cents, &v.currency)
        ));
        let addr = address_lines(&v.shipping);
        if !addr.is_empty() {
            text.push_str(&format!("\nShipping to:\n{}\n", addr.join("\n")));
        }
        text.push_str("\nWe'll email you again when your order ships.\n— Otaku-mori\n");
        let html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">\
             <h1>{}</h1><p>Order <strong>#{}</strong></p>\
             <table cellpadding=\"4\"><thead><tr><th align=\"left\">Item</th><th>Qty</th><th>Price</th></tr></thead>\
             <tbody>{}</tbody></table>\
             <p>Subtotal: {}<br>Shipping: {}<br><strong>Total: {}</strong></p>{}\
             <p>We'll email you again when your order ships.<br>— Otaku-mori</p></body></html>",
            escape(&greeting),
            v.order_number,
            rows,
            money(v.subtotal_cents, &v.currency),
            money(v.shipping_cents, &v.currency),
            money(v.total_cents, &v.currency),
            if addr.is_empty() {
                String::new()
            } else {
                format!(
                    "<p>Shipping to:<br>{}</p>",
                    addr.iter().map(|l| escape(l)).collect::<Vec<_>>().join("<br>")
                )
            }
        );
        Rendered {
            subject,
            html,
            text,
        }
    }

    /// Admin summary of variants that went out of stock.
    pub fn inventory_alert(alerts: &[InventoryAlert]) -> Rendered {
        let subject = format!("[Otaku-mori] {} variant(s) out of stock", alerts.len());
        let describe = |a: &InventoryAlert| {
            format!(
                "{} — {}{}",
                a.product_title.as_deref().unwrap_or("(unknown product)"),
                a.variant_title.as_deref().unwrap_or("(variant)"),
                a.sku
                    .as_deref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default()
            )
        };
        let text = format!(
            "These variants became unavailable at Printify:\n\n{}\n",
            alerts
                .iter()
                .map(|a| format!("- {}", describe(a)))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let html = format!(
            "<!doctype html><html><body><p>These variants became unavailable at Printify:</p><ul>{}</ul></body></html>",
            alerts.iter().map(|a| format!("<li>{}</li>", escape(&describe(a)))).collect::<String>()
        );
        Rendered {
            subject,
            html,
            text,
        }
    }

    /// Monthly audit report.
    pub fn monthly_audit(report: &AuditReport, archived_orders: u64) -> Rendered {
        let subject = "[Otaku-mori] Monthly maintenance report".to_string();
        let rows = [
            ("Orders archived this run", archived_orders as i64),
            ("Users", report.users_total),
            ("Users without email", report.users_without_email),
            ("Orders", report.orders_total),
            (
                "Paid but not in production > 24h",
                report.orders_paid_not_in_production,
            ),
            ("Orders pending mapping", report.orders_pending_mapping),
            ("Open inventory alerts", report.open_inventory_alerts),
            ("Dead-lettered operations", report.dead_operations),
            ("Operations awaiting retry", report.pending_operations),
            ("Failed emails (30 days)", report.failed_emails_30d),
            ("Archived orders (total)", report.archived_orders_total),
        ];
        let text = rows
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        let html = format!(
            "<!doctype html><html><body><h1>Monthly maintenance report</h1><table>{}</table></body></html>",
            rows.iter()
                .map(|(k, v)| format!("<tr><td>{}</td><td align=\"right\">{v}</td></tr>", escape(k)))
                .collect::<String>()
        );
        Rendered {
            subject,
            html,
            text,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn money_and_escape() {
            assert_eq!(money(1234, "usd"), "$12.34");
            assert_eq!(money(5, "EUR"), "0.05 EUR");
            assert_eq!(
                escape("<b>Tom & \"Jerry\"</b>"),
                "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;"
            );
        }
    }
}
