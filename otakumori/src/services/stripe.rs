//! Stripe client: only what processOrder's `process-payment` step needs :
//! `GET /v1/checkout/sessions/{id}` with `Authorization: Bearer STRIPE_SECRET_KEY`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{
    http_client, is_safe_path_segment, send_classified, ApiError, RateLimitPolicy, DEFAULT_TIMEOUT,
};
use crate::config::StripeSettings;
use crate::db::{PaymentUpdate, ShippingAddress};

const SERVICE: &str = "stripe";

/// API version sent as `Stripe-Version` (shipping lives in `collected_information`).
pub const STRIPE_API_VERSION: &str = "2025-10-29.clover";

/// A postal address as Stripe returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct StripeAddress {
    /// Street address line 1.
    pub line1: Option<String>,
    /// Street address line 2 (apartment, suite, …).
    pub line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State, county, province or region.
    pub state: Option<String>,
    /// Postal or ZIP code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
}

/// `customer_details`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CustomerDetails {
    /// Email address the customer entered.
    pub email: Option<String>,
    /// Customer's name.
    pub name: Option<String>,
    /// Customer's phone number.
    pub phone: Option<String>,
    /// Billing address.
    pub address: Option<StripeAddress>,
}

/// `shipping_details` (under `collected_information`, or top-level on old API versions).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ShippingDetails {
    /// Recipient's name.
    pub name: Option<String>,
    /// Shipping address.
    pub address: Option<StripeAddress>,
}

/// `collected_information`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CollectedInformation {
    /// Shipping name and address collected at checkout.
    pub shipping_details: Option<ShippingDetails>,
}

/// The fields of a Checkout Session the app uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CheckoutSession {
    /// Checkout Session id (`cs_…`).
    pub id: String,
    /// `open`, `complete`, `expired`.
    #[serde(default)]
    pub status: Option<String>,
    /// `paid`, `unpaid`, `no_payment_required`.
    #[serde(default)]
    pub payment_status: String,
    /// PaymentIntent id (an expanded object is reduced to its id).
    #[serde(default, deserialize_with = "expandable_id")]
    pub payment_intent: Option<String>,
    /// Total charged, in the smallest currency unit (cents).
    #[serde(default)]
    pub amount_total: Option<i64>,
    /// Total before discounts and taxes, in the smallest currency unit (cents).
    #[serde(default)]
    pub amount_subtotal: Option<i64>,
    /// ISO 4217 currency code, lower case as Stripe sends it (e.g. `usd`).
    #[serde(default)]
    pub currency: Option<String>,
    /// Customer contact details entered at checkout.
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
    /// Information collected at checkout (shipping details on current API versions).
    #[serde(default)]
    pub collected_information: Option<CollectedInformation>,
    /// Legacy location of shipping details (API versions before 2025-03-31).
    #[serde(default)]
    pub shipping_details: Option<ShippingDetails>,
    /// Reference set when the session was created (the shop sets the Clerk user id).
    #[serde(default)]
    pub client_reference_id: Option<String>,
    /// Key/value metadata set when creating the session (e.g. `order_id`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `true` for a live-mode session, `false` in test mode.
    #[serde(default)]
    pub livemode: bool,
}

fn expandable_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(o)) => {
            o.get("id").and_then(|i| i.as_str()).map(str::to_string)
        }
        _ => None,
    })
}

impl CheckoutSession {
    /// `payment_status == "paid"`.
    pub fn is_paid(&self) -> bool {
        self.payment_status == "paid"
    }

    /// Shipping address for the order columns: `collected_information.shipping_details`, else
    /// the legacy `shipping_details`; email/phone from `customer_details`.
    pub fn shipping_address(&self) -> Option<ShippingAddress> {
        let details = self
            .collected_information
            .as_ref()
            .and_then(|c| c.shipping_details.as_ref())
            .or(self.shipping_details.as_ref())?;
        let addr = details.address.clone().unwrap_or_default();
        let cust = self.customer_details.clone().unwrap_or_default();
        Some(ShippingAddress {
            name: details.name.clone().or(cust.name),
            email: cust.email,
            phone: cust.phone,
            line1: addr.line1,
            line2: addr.line2,
            city: addr.city,
            region: addr.state,
            postal_code: addr.postal_code,
            country: addr.country,
        })
    }

    /// The payment facts to store with [`crate::db::Db::mark_order_paid`] (currency upper-cased
    /// by the repository; shipping included when present).
    pub fn payment_update(&self) -> PaymentUpdate {
        PaymentUpdate {
            payment_intent_id: self.payment_intent.clone(),
            total_cents: self.amount_total,
            currency: self.currency.clone(),
            paid_at: None,
            shipping: self.shipping_address(),
        }
    }
}

/// Stripe API client (cheap to clone).
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    api_base: String,
    secret_key: crate::config::Secret,
    policy: RateLimitPolicy,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Client for the given settings (15 s timeout, default 429 policy).
    pub fn new(settings: &StripeSettings) -> Result<Self, ApiError> {
        Ok(Self {
            http: http_client(DEFAULT_TIMEOUT)?,
            api_base: settings.api_base.trim_end_matches('/').to_string(),
            secret_key: settings.secret_key.clone(),
            policy: RateLimitPolicy::default(),
        })
    }

    /// Override the 429 retry policy.
    pub fn with_rate_limit_policy(mut self, policy: RateLimitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// `GET /v1/checkout/sessions/{id}`. An unknown id is [`ApiError::Permanent`] with status 404.
    pub async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<CheckoutSession, ApiError> {
        if !is_safe_path_segment(session_id) {
            return Err(ApiError::invalid(
                SERVICE,
                "invalid checkout session id",
                false,
            ));
        }
        let url = format!("{}/v1/checkout/sessions/{}", self.api_base, session_id);
        let resp = send_classified(SERVICE, self.policy, || {
            self.http
                .get(&url)
                .bearer_auth(self.secret_key.expose())
                .header("Stripe-Version", STRIPE_API_VERSION)
        })
        .await?;
        resp.json::<CheckoutSession>()
            .await
            .map_err(|e| ApiError::invalid(SERVICE, format!("unexpected response body: {e}"), true))
    }
}
