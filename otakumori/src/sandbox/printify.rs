//! Fake Printify API .

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    bearer_ok, core_handle_methods, error_body, fixtures, json_response, lock, Core, ErrorStyle,
    RecordedRequest, Running,
};
use crate::config::{PrintifySettings, Secret};
use crate::services::printify::{PrintifyProduct, MAX_PAGE_LIMIT};

/// An order the fake accepted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FakeOrder {
    /// Printify-style 24-hex id.
    pub id: String,
    /// Our order id sent as `external_id` (the fake dedupes on it).
    pub external_id: String,
    /// The request body as received (first POST for this `external_id`).
    pub request: Value,
    /// How many POSTs carried this `external_id` (1 = no retries).
    pub posts: u32,
}

#[derive(Debug)]
struct State_ {
    api_key: String,
    shop_id: String,
    products: Vec<PrintifyProduct>,
    orders: Vec<FakeOrder>,
    next_order: u64,
}

#[derive(Debug)]
struct Inner {
    core: Core,
    state: Mutex<State_>,
}

/// Handle to a running fake Printify. Dropping it stops the server.
#[derive(Debug)]
pub struct FakePrintify {
    inner: Arc<Inner>,
    running: Running,
}

impl FakePrintify {
    /// Start with [`super::SANDBOX_PRINTIFY_KEY`], shop [`super::SANDBOX_SHOP_ID`] and the default
    /// anime catalog.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(
            super::SANDBOX_PRINTIFY_KEY,
            super::SANDBOX_SHOP_ID,
            fixtures::default_products(),
        )
        .await
    }

    /// Start with an explicit key, shop id and products.
    pub async fn start_with(
        api_key: &str,
        shop_id: &str,
        products: Vec<PrintifyProduct>,
    ) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            core: Core::default(),
            state: Mutex::new(State_ {
                api_key: api_key.to_string(),
                shop_id: shop_id.to_string(),
                products,
                orders: Vec::new(),
                next_order: 1,
            }),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let running = Running::spawn(router).await?;
        Ok(FakePrintify { inner, running })
    }

    /// `http://127.0.0.1:<port>/v1` (what `PRINTIFY_API_URL` should be).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.running.addr)
    }

    /// `http://127.0.0.1:<port>` (for the `/__fake/*` control API).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// Settings pointing a [`crate::services::printify::PrintifyClient`] at this fake.
    pub fn settings(&self) -> PrintifySettings {
        let st = lock(&self.inner.state);
        PrintifySettings {
            api_url: self.base_url(),
            api_key: Secret::new(st.api_key.clone()),
            shop_id: st.shop_id.clone(),
        }
    }

    /// Replace the catalog.
    pub fn set_products(&self, products: Vec<PrintifyProduct>) {
        lock(&self.inner.state).products = products;
    }

    /// The current catalog.
    pub fn products(&self) -> Vec<PrintifyProduct> {
        lock(&self.inner.state).products.clone()
    }

    /// Remove one product. `true` if it existed.
    pub fn remove_product(&self, product_id: &str) -> bool {
        let mut st = lock(&self.inner.state);
        let before = st.products.len();
        st.products.retain(|p| p.id != product_id);
        st.products.len() != before
    }

    /// Apply `f` to one product (e.g. to disable or remove a variant). `true` if found.
    pub fn update_product(&self, product_id: &str, f: impl FnOnce(&mut PrintifyProduct)) -> bool {
        let mut st = lock(&self.inner.state);
        match st.products.iter_mut().find(|p| p.id == product_id) {
            Some(p) => {
                f(p);
                true
            }
            None => false,
        }
    }

    /// Flip `is_available` of one variant. `true` if found.
    pub fn set_variant_available(
        &self,
        product_id: &str,
        variant_id: i64,
        available: bool,
    ) -> bool {
        set_available(
            &mut lock(&self.inner.state),
            product_id,
            variant_id,
            available,
        )
    }

    /// Orders accepted so far.
    pub fn orders(&self) -> Vec<FakeOrder> {
        lock(&self.inner.state).orders.clone()
    }
}

core_handle_methods!(FakePrintify);

fn set_available(st: &mut State_, product_id: &str, variant_id: i64, available: bool) -> bool {
    st.products
        .iter_mut()
        .find(|p| p.id == product_id)
        .and_then(|p| p.variants.iter_mut().find(|v| v.id == variant_id))
        .map(|v| v.is_available = available)
        .is_some()
}

fn msg(status: u16, message: &str) -> Response {
    json_response(status, error_body(ErrorStyle::Message, status, message))
}

fn validation(reason: impl Into<String>) -> Response {
    json_response(
        400,
        json!({"status": "error", "code": 8150, "message": "Validation failed.", "errors": {"reason": reason.into(), "code": 8150}}),
    )
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/__fake/") {
        return control(&inner, &method, &path, &body);
    }
    let idx = inner.core.record(&method, &uri, &headers, &body);
    let resp = serve(&inner, &method, &uri, &headers, &body);
    inner.core.finish(idx, resp)
}

fn control(inner: &Inner, method: &Method, path: &str, body: &Bytes) -> Response {
    if let Some(r) = inner.core.control(method, path, body) {
        return r;
    }
    let segs: Vec<&str> = path.trim_start_matches("/__fake/").split('/').collect();
    let mut st = lock(&inner.state);
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["products"]) => json_response(200, json!(st.products)),
        ("PUT", ["products"]) => match serde_json::from_slice::<Vec<PrintifyProduct>>(body) {
            Ok(ps) => {
                let n = ps.len();
                st.products = ps;
                json_response(200, json!({"products": n}))
            }
            Err(e) => msg(400, &format!("bad products: {e}")),
        },
        ("DELETE", ["products", id]) => {
            let before = st.products.len();
            st.products.retain(|p| p.id != *id);
            if st.products.len() == before {
                msg(404, "no such product")
            } else {
                json_response(200, json!({"deleted": id}))
            }
        }
        ("POST", ["products", pid, "variants", vid, "availability"]) => {
            let available = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("is_available").and_then(Value::as_bool));
            match (vid.parse::<i64>(), available) {
                (Ok(vid), Some(a)) if set_available(&mut st, pid, vid, a) => json_response(
                    200,
                    json!({"product_id": pid, "variant_id": vid, "is_available": a}),
                ),
                (Ok(_), Some(_)) => msg(404, "no such product/variant"),
                _ => msg(
                    400,
                    "expected {\"is_available\": bool} and a numeric variant id",
                ),
            }
        }
        ("GET", ["orders"]) => json_response(200, json!(st.orders)),
        ("POST", ["reset"]) => {
            st.products = fixtures::default_products();
            st.orders.clear();
            drop(st);
            inner.core.clear_requests();
            inner.core.clear_faults();
            json_response(200, json!({"reset": true}))
        }
        _ => msg(404, "unknown control route"),
    }
}

fn serve(inner: &Inner, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let path = uri.path();
    // Faults match on the path *and* query here, so a test can target one page of the listing
    // (`Fault::…on_path("page=2")`).
    let target = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    if let Some(r) = inner.core.take_fault(method, &target, ErrorStyle::Message) {
        return r;
    }
    let mut st = lock(&inner.state);
    if !bearer_ok(headers, &st.api_key) {
        return msg(401, "Unauthenticated.");
    }
    let Some(rest) = path.strip_prefix("/v1/shops/") else {
        return msg(404, "Not found");
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let shop_ok = segs.first().is_some_and(|s| *s == st.shop_id);
    match (method.as_str(), segs.as_slice()) {
        (_, [_, ..]) if !shop_ok => msg(404, "Shop not found"),
        ("GET", [_, "products.json"]) => list_products(&st, uri),
        ("GET", [_, "products", file]) if file.ends_with(".json") => {
            let id = file.trim_end_matches(".json");
            match st.products.iter().find(|p| p.id == id) {
                Some(p) => json_response(200, json!(p)),
                None => msg(404, "Product not found"),
            }
        }
        ("POST", [_, "orders.json"]) => create_order(&mut st, body),
        _ => msg(404, "Not found"),
    }
}

fn list_products(st: &State_, uri: &Uri) -> Response {
    let q = RecordedRequest {
        method: String::new(),
        path: String::new(),
        query: uri.query().map(str::to_string),
        authorization: None,
        headers: Default::default(),
        body: Value::Null,
        status: 0,
    };
    // Parse errors carry the validation reason; the response is built below.
    let parse = |name: &str, default: u32| -> Result<u32, String> {
        match q.query_param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| format!("{name} must be a positive integer")),
        }
    };
    let page = match parse("page", 1) {
        Ok(p) if p >= 1 => p,
        Ok(_) => return validation("page must be at least 1"),
        Err(reason) => return validation(reason),
    };
    let limit = match parse("limit", 10) {
        Ok(l) if (1..=MAX_PAGE_LIMIT).contains(&l) => l,
        Ok(_) => return validation(format!("limit must be between 1 and {MAX_PAGE_LIMIT}")),
        Err(reason) => return validation(reason),
    };
    let total = st.products.len() as u32;
    let last_page = total.div_ceil(limit).max(1);
    let start = ((page - 1) * limit) as usize;
    let data: Vec<&PrintifyProduct> = st
        .products
        .iter()
        .skip(start)
        .take(limit as usize)
        .collect();
    let base = format!("/v1/shops/{}/products.json", st.shop_id);
    let url = |p: u32| format!("{base}?page={p}&limit={limit}");
    let from_to = if data.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!(start + 1), json!(start + data.len()))
    };
    json_response(
        200,
        json!({
            "current_page": page,
            "data": data,
            "first_page_url": url(1),
            "from": from_to.0,
            "last_page": last_page,
            "last_page_url": url(last_page),
            "next_page_url": if page < last_page { json!(url(page + 1)) } else { Value::Null },
            "path": base,
            "per_page": limit,
            "prev_page_url": if page > 1 { json!(url(page - 1)) } else { Value::Null },
            "to": from_to.1,
            "total": total,
        }),
    )
}

fn create_order(st: &mut State_, body: &Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return validation("body must be JSON");
    };
    let external_id = match v.get("external_id").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return validation("external_id is required"),
    };
    let Some(items) = v
        .get("line_items")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return validation("line_items must be a non-empty array");
    };
    for (i, item) in items.iter().enumerate() {
        let Some(pid) = item.get("product_id").and_then(Value::as_str) else {
            return validation(format!("line_items.{i}.product_id is required"));
        };
        let Some(vid) = item.get("variant_id").and_then(Value::as_i64) else {
            return validation(format!("line_items.{i}.variant_id is required"));
        };
        if item
            .get("quantity")
            .and_then(Value::as_i64)
            .is_none_or(|q| q < 1)
        {
            return validation(format!("line_items.{i}.quantity must be at least 1"));
        }
        let Some(product) = st.products.iter().find(|p| p.id == pid) else {
            return validation(format!("line_items.{i}.product_id {pid} does not exist"));
        };
        match product.variants.iter().find(|x| x.id == vid) {
            Some(x) if x.is_enabled => {}
            _ => {
                return validation(format!(
                    "line_items.{i}.variant_id {vid} is not available for this product"
                ))
            }
        }
    }
    let Some(addr) = v.get("address_to").and_then(Value::as_object) else {
        return validation("address_to is required");
    };
    for field in ["first_name", "country", "address1", "city", "zip"] {
        if addr
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return validation(format!("address_to.{field} is required"));
        }
    }
    if let Some(existing) = st.orders.iter_mut().find(|o| o.external_id == external_id) {
        existing.posts += 1;
        return json_response(200, json!({"id": existing.id}));
    }
    let id = format!("5f0c{:020x}", st.next_order);
    st.next_order += 1;
    st.orders.push(FakeOrder {
        id: id.clone(),
        external_id,
        request: v,
        posts: 1,
    });
    json_response(200, json!({"id": id}))
}
