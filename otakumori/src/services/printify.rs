//! Printify REST client.
//!
//! * Base URL from `PRINTIFY_API_URL` (includes `/v1`), `Authorization: Bearer PRINTIFY_API_KEY`.
//! * Product listing is paginated with `page` and `limit` (clamped to 50); [`PrintifyClient::list_all_products`]
//!   walks every page with a short pause between pages.
//! * 429 responses are retried in-process per [`RateLimitPolicy`] (default: up to 3 times,
//!   honouring `Retry-After` up to 10 s), then surface as [`ApiError::RateLimited`]. Set
//!   `max_retries: 0` to hand every 429 to Inngest instead.
//! * An optional token bucket (default 600 requests/minute, Printify's published global limit)
//!   keeps a burst of steps under the limit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use super::{
    http_client, is_safe_path_segment, send_classified, ApiError, RateLimitPolicy, DEFAULT_TIMEOUT,
};
use crate::config::PrintifySettings;
use crate::db::{
    CatalogImage, CatalogProduct, CatalogVariant, ItemEligibility, Order, ShippingAddress,
    VariantAvailability,
};

const SERVICE: &str = "printify";

/// Largest page size Printify accepts for `products.json`.
pub const MAX_PAGE_LIMIT: u32 = 50;

/// One option of a product (e.g. Colors, Sizes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PrintifyOption {
    /// Option name shown to buyers (e.g. `Colors`, `Sizes`).
    #[serde(default)]
    pub name: String,
    /// Option kind (`type`: e.g. `color`, `size`).
    #[serde(default, rename = "type")]
    pub option_type: String,
    /// The option's possible values.
    #[serde(default)]
    pub values: Vec<PrintifyOptionValue>,
}

/// One value of an option.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PrintifyOptionValue {
    /// Option value id (what variants' `options` refer to).
    pub id: i64,
    /// Value shown to buyers (e.g. `Black`, `M`).
    #[serde(default)]
    pub title: String,
}

/// A product variant. `price`/`cost` are in cents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PrintifyVariant {
    /// Printify variant id.
    pub id: i64,
    /// Stock keeping unit.
    #[serde(default)]
    pub sku: Option<String>,
    /// Retail price in the smallest currency unit (cents).
    #[serde(default)]
    pub price: i64,
    /// Production cost in the smallest currency unit (cents).
    #[serde(default)]
    pub cost: Option<i64>,
    /// Variant title (e.g. `Black / M`).
    #[serde(default)]
    pub title: String,
    /// Shipping weight in grams.
    #[serde(default)]
    pub grams: Option<i64>,
    /// The variant is offered for sale.
    #[serde(default)]
    pub is_enabled: bool,
    /// The product's default variant.
    #[serde(default)]
    pub is_default: bool,
    /// The print provider can currently produce it.
    #[serde(default)]
    pub is_available: bool,
    /// Option value ids, in the order of the product's `options`.
    #[serde(default)]
    pub options: Vec<i64>,
}

/// A product mockup image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PrintifyImage {
    /// Image URL.
    pub src: String,
    /// Variant ids the mockup shows.
    #[serde(default)]
    pub variant_ids: Vec<i64>,
    /// Mockup position (e.g. `front`, `back`).
    #[serde(default)]
    pub position: String,
    /// The product's default image.
    #[serde(default)]
    pub is_default: bool,
}

/// A shop product as returned by `products.json` / `products/{id}.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PrintifyProduct {
    /// Printify product id (24 hex digits).
    pub id: String,
    /// Product title.
    #[serde(default)]
    pub title: String,
    /// Product description (HTML).
    #[serde(default)]
    pub description: String,
    /// Product tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Product options (colors, sizes, …) whose values variants combine.
    #[serde(default)]
    pub options: Vec<PrintifyOption>,
    /// Every variant, enabled or not.
    #[serde(default)]
    pub variants: Vec<PrintifyVariant>,
    /// Mockup images.
    #[serde(default)]
    pub images: Vec<PrintifyImage>,
    /// Whether the product is published (visible in the shop).
    #[serde(default)]
    pub visible: bool,
    /// Blueprint (product type) id.
    #[serde(default)]
    pub blueprint_id: Option<i64>,
    /// Print provider id.
    #[serde(default)]
    pub print_provider_id: Option<i64>,
    /// Shop the product belongs to.
    #[serde(default)]
    pub shop_id: Option<i64>,
    /// Creation time as Printify formats it (`YYYY-MM-DD hh:mm:ss+00:00`).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update time as Printify formats it (`YYYY-MM-DD hh:mm:ss+00:00`).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Locked while Printify publishes the product.
    #[serde(default)]
    pub is_locked: bool,
}

/// Printify's paginated envelope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProductPage {
    /// This page's number (1-based).
    pub current_page: u32,
    /// Number of the last page.
    pub last_page: u32,
    /// Page size.
    #[serde(default)]
    pub per_page: u32,
    /// Products across all pages.
    #[serde(default)]
    pub total: u32,
    /// 1-based position of this page's first product; `None` on an empty page.
    #[serde(default)]
    pub from: Option<u32>,
    /// 1-based position of this page's last product; `None` on an empty page.
    #[serde(default)]
    pub to: Option<u32>,
    /// The products on this page.
    #[serde(default)]
    pub data: Vec<PrintifyProduct>,
    /// URL of the first page.
    #[serde(default)]
    pub first_page_url: Option<String>,
    /// URL of the last page.
    #[serde(default)]
    pub last_page_url: Option<String>,
    /// URL of the next page; `None` on the last page.
    #[serde(default)]
    pub next_page_url: Option<String>,
    /// URL of the previous page; `None` on the first page.
    #[serde(default)]
    pub prev_page_url: Option<String>,
}

/// `line_items[]` entry of an order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LineItem {
    /// Printify product id.
    pub product_id: String,
    /// Printify variant id.
    pub variant_id: i64,
    /// Number of units.
    pub quantity: i32,
}

/// `address_to` of an order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AddressTo {
    /// Recipient's first name(s): the shipping name before its last space.
    pub first_name: String,
    /// Recipient's last name: the shipping name after its last space (may be empty).
    pub last_name: String,
    /// Recipient's email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Recipient's phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
    /// State, province or region (may be empty).
    #[serde(default)]
    pub region: String,
    /// First address line.
    pub address1: String,
    /// Second address line (may be empty).
    #[serde(default)]
    pub address2: String,
    /// City.
    pub city: String,
    /// Postal or ZIP code.
    pub zip: String,
}

impl AddressTo {
    /// Build from the order's shipping columns, with **no placeholders**: returns the missing
    /// field names when the address is incomplete. The name is split at the last space.
    pub fn from_shipping(s: &ShippingAddress) -> Result<AddressTo, Vec<&'static str>> {
        let missing = s.missing_required();
        if !missing.is_empty() {
            return Err(missing);
        }
        let name = s.name.as_deref().unwrap_or("").trim();
        let (first, last) = match name.rsplit_once(' ') {
            Some((f, l)) => (f.trim().to_string(), l.trim().to_string()),
            None => (name.to_string(), String::new()),
        };
        let t = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_string();
        Ok(AddressTo {
            first_name: first,
            last_name: last,
            email: s.email.clone().filter(|e| !e.trim().is_empty()),
            phone: s.phone.clone().filter(|p| !p.trim().is_empty()),
            country: t(&s.country).to_ascii_uppercase(),
            region: t(&s.region),
            address1: t(&s.line1),
            address2: t(&s.line2),
            city: t(&s.city),
            zip: t(&s.postal_code),
        })
    }
}

/// Body of `POST /shops/{shop}/orders.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreateOrderRequest {
    /// Our order id: Printify orders are keyed (and de-duplicated by our fake) on it.
    pub external_id: String,
    /// Label shown in Printify (`Order #<display number>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// One line per order item.
    pub line_items: Vec<LineItem>,
    /// Printify shipping method (1 = standard).
    pub shipping_method: i32,
    /// Whether Printify emails the customer when the order ships.
    pub send_shipping_notification: bool,
    /// Shipping address.
    pub address_to: AddressTo,
}

impl CreateOrderRequest {
    /// The order body: `external_id` = order id, `label` = `Order #<display_number>`,
    /// one line per eligible item, `shipping_method` 1, shipping notification on.
    /// Errors (permanent) name what is missing: ineligible items or address fields.
    pub fn for_order(order: &Order, items: &[ItemEligibility]) -> Result<Self, String> {
        let bad: Vec<String> = items
            .iter()
            .filter(|i| !i.eligible)
            .map(ItemEligibility::problem)
            .collect();
        if !bad.is_empty() {
            return Err(format!("items not fulfillable: {}", bad.join(", ")));
        }
        if items.is_empty() {
            return Err("order has no items".into());
        }
        let address_to = AddressTo::from_shipping(&order.shipping)
            .map_err(|m| format!("shipping address incomplete: missing {}", m.join(", ")))?;
        let line_items = items
            .iter()
            .map(|i| LineItem {
                product_id: i.printify_product_id.clone().unwrap_or_default(),
                variant_id: i.printify_variant_id.unwrap_or_default(),
                quantity: i.quantity,
            })
            .collect();
        Ok(CreateOrderRequest {
            external_id: order.id.to_string(),
            label: Some(format!("Order #{}", order.display_number)),
            line_items,
            shipping_method: 1,
            send_shipping_notification: true,
            address_to,
        })
    }
}

/// Response of a created order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatedOrder {
    /// Printify order id.
    pub id: String,
}

impl PrintifyProduct {
    /// Map to the catalog upsert input: category from tags/title, primary image =
    /// default image (else first), variant preview = first image listing that variant.
    pub fn to_catalog_input(&self, shop_id: &str) -> CatalogProduct {
        let primary = self
            .images
            .iter()
            .find(|i| i.is_default)
            .or_else(|| self.images.first())
            .map(|i| i.src.clone());
        let variants = self
            .variants
            .iter()
            .map(|v| CatalogVariant {
                printify_variant_id: v.id,
                sku: v.sku.clone().filter(|s| !s.is_empty()),
                title: Some(v.title.clone()).filter(|t| !t.is_empty()),
                price_cents: Some(v.price),
                cost_cents: v.cost,
                grams: v.grams.and_then(|g| i32::try_from(g).ok()),
                is_enabled: v.is_enabled,
                is_available: v.is_available,
                is_default: v.is_default,
                option_values: Some(serde_json::json!(v.options)),
                preview_image_url: self
                    .images
                    .iter()
                    .find(|i| i.variant_ids.contains(&v.id))
                    .map(|i| i.src.clone()),
            })
            .collect();
        let images = self
            .images
            .iter()
            .map(|i| CatalogImage {
                url: i.src.clone(),
                position: Some(i.position.clone()).filter(|p| !p.is_empty()),
                variant_ids: i.variant_ids.clone(),
                is_default: i.is_default,
            })
            .collect();
        CatalogProduct {
            printify_product_id: self.id.clone(),
            shop_id: Some(shop_id.to_string()),
            title: self.title.clone(),
            description: Some(self.description.clone()).filter(|d| !d.is_empty()),
            category_slug: Some(category_slug(&self.title, &self.tags).to_string()),
            tags: self.tags.clone(),
            primary_image_url: primary,
            blueprint_id: self.blueprint_id.and_then(|b| i32::try_from(b).ok()),
            print_provider_id: self.print_provider_id.and_then(|b| i32::try_from(b).ok()),
            visible: self.visible,
            variants,
            images,
        }
    }

    /// Per-variant availability for the inventory sync.
    pub fn availability(&self) -> Vec<VariantAvailability> {
        self.variants
            .iter()
            .map(|v| VariantAvailability {
                printify_variant_id: v.id,
                is_enabled: v.is_enabled,
                is_available: v.is_available,
            })
            .collect()
    }
}

/// Keyword category: `apparel`, `accessories`, `home-decor`, `drinkware`, `stickers` or `other`.
pub fn category_slug(title: &str, tags: &[String]) -> &'static str {
    let hay = format!("{} {}", title, tags.join(" ")).to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| hay.contains(w));
    if has(&["mug", "tumbler", "bottle", "cup"]) {
        "drinkware"
    } else if has(&["sticker", "decal"]) {
        "stickers"
    } else if has(&[
        "hoodie",
        "sweatshirt",
        "t-shirt",
        "tee",
        "shirt",
        "jacket",
        "apparel",
        "socks",
        "hat",
        "cap",
        "beanie",
    ]) {
        "apparel"
    } else if has(&[
        "poster", "canvas", "print", "blanket", "pillow", "wall", "home",
    ]) {
        "home-decor"
    } else if has(&["pin", "tote", "bag", "keychain", "case", "mask", "accessor"]) {
        "accessories"
    } else {
        "other"
    }
}

/// Printify API client (cheap to clone).
#[derive(Clone)]
pub struct PrintifyClient {
    http: reqwest::Client,
    base_url: String,
    api_key: crate::config::Secret,
    shop_id: String,
    policy: RateLimitPolicy,
    page_delay: Duration,
    page_size: u32,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for PrintifyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrintifyClient")
            .field("base_url", &self.base_url)
            .field("shop_id", &self.shop_id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl PrintifyClient {
    /// Client for the given settings: 15 s timeout, default [`RateLimitPolicy`], 100 ms between
    /// pages, 600 requests/minute token bucket.
    pub fn new(settings: &PrintifySettings) -> Result<Self, ApiError> {
        Ok(Self {
            http: http_client(DEFAULT_TIMEOUT)?,
            base_url: settings.api_url.trim_end_matches('/').to_string(),
            api_key: settings.api_key.clone(),
            shop_id: settings.shop_id.clone(),
            policy: RateLimitPolicy::default(),
            page_delay: Duration::from_millis(100),
            page_size: MAX_PAGE_LIMIT,
            limiter: NonZeroU32::new(600)
                .map(|n| Arc::new(RateLimiter::direct(Quota::per_minute(n)))),
        })
    }

    /// Override the 429 retry policy.
    pub fn with_rate_limit_policy(mut self, policy: RateLimitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Pause between pages in [`PrintifyClient::list_all_products`].
    pub fn with_page_delay(mut self, delay: Duration) -> Self {
        self.page_delay = delay;
        self
    }

    /// Page size used by [`PrintifyClient::list_all_products`] (clamped to 1..=50; default 50).
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_LIMIT);
        self
    }

    /// Client-side request budget per minute (`None` disables the token bucket).
    pub fn with_requests_per_minute(mut self, per_minute: Option<u32>) -> Self {
        self.limiter = per_minute
            .and_then(NonZeroU32::new)
            .map(|n| Arc::new(RateLimiter::direct(Quota::per_minute(n))));
        self
    }

    /// The configured shop id.
    pub fn shop_id(&self) -> &str {
        &self.shop_id
    }

    /// The configured base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        send_classified(SERVICE, self.policy, || {
            build().bearer_auth(self.api_key.expose())
        })
        .await
    }

    async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, ApiError> {
        resp.json::<T>()
            .await
            .map_err(|e| ApiError::invalid(SERVICE, format!("unexpected response body: {e}"), true))
    }

    /// `GET /shops/{shop}/products.json?page={page}&limit={limit}` (limit clamped to 1..=50).
    pub async fn list_products_page(&self, page: u32, limit: u32) -> Result<ProductPage, ApiError> {
        let url = format!("{}/shops/{}/products.json", self.base_url, self.shop_id);
        let limit = limit.clamp(1, MAX_PAGE_LIMIT);
        let page = page.max(1);
        let resp = self
            .send(|| {
                self.http
                    .get(&url)
                    .query(&[("page", page), ("limit", limit)])
            })
            .await?;
        Self::json(resp).await
    }

    /// Every product, page by page (limit 50 unless [`PrintifyClient::with_page_size`]). Fails on the first page that fails (after the
    /// 429 policy), rather than silently returning a partial catalog.
    pub async fn list_all_products(&self) -> Result<Vec<PrintifyProduct>, ApiError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let p = self.list_products_page(page, self.page_size).await?;
            let last = p.last_page.max(1);
            out.extend(p.data);
            if page >= last {
                return Ok(out);
            }
            page += 1;
            if !self.page_delay.is_zero() {
                tokio::time::sleep(self.page_delay).await;
            }
        }
    }

    /// `GET /shops/{shop}/products/{id}.json`; `Ok(None)` on 404.
    pub async fn get_product(&self, product_id: &str) -> Result<Option<PrintifyProduct>, ApiError> {
        if !is_safe_path_segment(product_id) {
            return Err(ApiError::invalid(SERVICE, "invalid product id", false));
        }
        let url = format!(
            "{}/shops/{}/products/{}.json",
            self.base_url, self.shop_id, product_id
        );
        match self.send(|| self.http.get(&url)).await {
            Ok(resp) => Ok(Some(Self::json(resp).await?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /shops/{shop}/orders.json`. Callers make this idempotent by checking
    /// `printify_order_sync` first; `external_id` is the order id.
    pub async fn create_order(&self, order: &CreateOrderRequest) -> Result<CreatedOrder, ApiError> {
        let url = format!("{}/shops/{}/orders.json", self.base_url, self.shop_id);
        let resp = self.send(|| self.http.post(&url).json(order)).await?;
        let created: CreatedOrder = Self::json(resp).await?;
        tracing::info!(printify_order_id = %created.id, "printify order created");
        Ok(created)
    }
}
