//! Sandbox fixture data: a small anime-shop catalog in Printify's product shape, and Stripe
//! Checkout Sessions. All URLs use the reserved `.example` domain.

use serde_json::{json, Value};

use crate::services::printify::{
    PrintifyImage, PrintifyOption, PrintifyOptionValue, PrintifyProduct, PrintifyVariant,
};

use super::SANDBOX_SHOP_ID;

/// Printify ids of the default products, in fixture order.
pub const PRODUCT_IDS: [&str; 6] = [
    "66a1f0c2e4b0a1d2c3e4f501",
    "66a1f0c2e4b0a1d2c3e4f502",
    "66a1f0c2e4b0a1d2c3e4f503",
    "66a1f0c2e4b0a1d2c3e4f504",
    "66a1f0c2e4b0a1d2c3e4f505",
    "66a1f0c2e4b0a1d2c3e4f506",
];

/// Paid sandbox Checkout Session id.
pub const PAID_SESSION_ID: &str = "cs_test_otakumori_paid_0001";
/// Unpaid sandbox Checkout Session id.
pub const UNPAID_SESSION_ID: &str = "cs_test_otakumori_unpaid_0002";

struct Spec {
    title: &'static str,
    description: &'static str,
    tags: &'static [&'static str],
    blueprint: i64,
    provider: i64,
    /// (option name, type, values)
    options: &'static [(&'static str, &'static str, &'static [&'static str])],
    price: i64,
    cost: i64,
    grams: i64,
}

const SPECS: [Spec; 6] = [
    Spec {
        title: "Sakura Petal Hoodie",
        description:
            "Heavyweight fleece hoodie with drifting cherry-blossom petals across the back.",
        tags: &["Hoodies", "Anime", "Sakura", "Apparel"],
        blueprint: 77,
        provider: 29,
        options: &[
            ("Colors", "color", &["Black", "Sakura Pink"]),
            ("Sizes", "size", &["S", "M", "L", "XL"]),
        ],
        price: 5400,
        cost: 2850,
        grams: 680,
    },
    Spec {
        title: "Kitsune Mask Enamel Pin",
        description: "Hard-enamel fox-spirit pin with gold plating and a rubber clutch.",
        tags: &["Pins", "Accessories", "Kitsune"],
        blueprint: 1037,
        provider: 215,
        options: &[("Sizes", "size", &["1.25\""])],
        price: 1200,
        cost: 450,
        grams: 15,
    },
    Spec {
        title: "Chibi Neko Ramen Mug",
        description: "Ceramic mug with a chibi cat slurping ramen. Dishwasher safe.",
        tags: &["Mugs", "Kawaii", "Home & Living"],
        blueprint: 68,
        provider: 1,
        options: &[("Sizes", "size", &["11oz", "15oz"])],
        price: 1600,
        cost: 720,
        grams: 340,
    },
    Spec {
        title: "Neo-Tokyo Skyline Poster",
        description: "Matte poster of a rain-soaked neon skyline at midnight.",
        tags: &["Posters", "Cyberpunk", "Wall Art"],
        blueprint: 282,
        provider: 99,
        options: &[("Sizes", "size", &["12\" x 18\"", "18\" x 24\""])],
        price: 2200,
        cost: 980,
        grams: 120,
    },
    Spec {
        title: "Shrine Maiden Tote Bag",
        description: "Cotton canvas tote with a shrine maiden and torii gate print.",
        tags: &["Bags", "Accessories", "Miko"],
        blueprint: 553,
        provider: 39,
        options: &[("Sizes", "size", &["15\" x 16\""])],
        price: 2400,
        cost: 1150,
        grams: 200,
    },
    Spec {
        title: "Oni Graffiti Tee",
        description: "Soft cotton T-shirt with a spray-painted oni mask.",
        tags: &["T-shirts", "Streetwear", "Oni", "Apparel"],
        blueprint: 6,
        provider: 99,
        options: &[
            ("Colors", "color", &["White", "Black"]),
            ("Sizes", "size", &["M", "L"]),
        ],
        price: 2900,
        cost: 1325,
        grams: 180,
    },
];

fn build(index: usize, id: &str, spec: &Spec) -> PrintifyProduct {
    let base_variant = 40_000 + (index as i64) * 100;
    let mut option_id = 500 + (index as i64) * 20;
    let options: Vec<PrintifyOption> = spec
        .options
        .iter()
        .map(|(name, kind, values)| PrintifyOption {
            name: name.to_string(),
            option_type: kind.to_string(),
            values: values
                .iter()
                .map(|v| {
                    option_id += 1;
                    PrintifyOptionValue {
                        id: option_id,
                        title: v.to_string(),
                    }
                })
                .collect(),
        })
        .collect();
    // Cartesian product of option values → variants.
    let mut combos: Vec<Vec<&PrintifyOptionValue>> = vec![vec![]];
    for o in &options {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                o.values.iter().map(move |v| {
                    let mut n = c.clone();
                    n.push(v);
                    n
                })
            })
            .collect();
    }
    let variants: Vec<PrintifyVariant> = combos
        .iter()
        .enumerate()
        .map(|(i, combo)| {
            let title = combo
                .iter()
                .map(|v| v.title.as_str())
                .collect::<Vec<_>>()
                .join(" / ");
            let slug: String = title
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase();
            // A couple of realistic irregularities: the largest hoodie is disabled, the big
            // poster is out of stock.
            let is_enabled = !(index == 0 && title.ends_with("XL") && title.starts_with("Sakura"));
            let is_available = !(index == 3 && i == 1);
            let size_bump = if title.contains("XL")
                || title.contains("15oz")
                || title.contains("18\" x 24\"")
            {
                400
            } else {
                0
            };
            PrintifyVariant {
                id: base_variant + i as i64 + 1,
                sku: Some(format!("OM-{}-{}", index + 1, slug)),
                price: spec.price + size_bump,
                cost: Some(spec.cost + size_bump / 2),
                title,
                grams: Some(spec.grams),
                is_enabled,
                is_default: i == 0,
                is_available,
                options: combo.iter().map(|v| v.id).collect(),
            }
        })
        .collect();
    let all_ids: Vec<i64> = variants.iter().map(|v| v.id).collect();
    let images = vec![
        PrintifyImage {
            src: format!("https://images.otakumori.example/mockup/{id}/front.jpg"),
            variant_ids: all_ids.clone(),
            position: "front".into(),
            is_default: true,
        },
        PrintifyImage {
            src: format!("https://images.otakumori.example/mockup/{id}/back.jpg"),
            variant_ids: all_ids,
            position: "back".into(),
            is_default: false,
        },
    ];
    PrintifyProduct {
        id: id.to_string(),
        title: spec.title.to_string(),
        description: spec.description.to_string(),
        tags: spec.tags.iter().map(|t| t.to_string()).collect(),
        options,
        variants,
        images,
        visible: true,
        blueprint_id: Some(spec.blueprint),
        print_provider_id: Some(spec.provider),
        shop_id: SANDBOX_SHOP_ID.parse().ok(),
        created_at: Some("2025-08-12 09:30:00+00:00".into()),
        updated_at: Some("2025-09-01 12:00:00+00:00".into()),
        is_locked: false,
    }
}

/// The default catalog: 6 products, 18 variants (one disabled, one unavailable), 2 images each.
pub fn default_products() -> Vec<PrintifyProduct> {
    SPECS
        .iter()
        .enumerate()
        .map(|(i, s)| build(i, PRODUCT_IDS[i], s))
        .collect()
}

/// `n` products cycling through the default designs with unique ids/titles (for large-page tests).
pub fn generated_products(n: usize) -> Vec<PrintifyProduct> {
    (0..n)
        .map(|i| {
            let spec = &SPECS[i % SPECS.len()];
            let id = format!("77b2{:020x}", i + 1);
            let mut p = build(i % SPECS.len(), &id, spec);
            p.title = format!("{} #{}", spec.title, i + 1);
            for v in &mut p.variants {
                v.id += 1_000_000 * (i as i64 + 1);
            }
            for img in &mut p.images {
                img.variant_ids = p.variants.iter().map(|v| v.id).collect();
            }
            p
        })
        .collect()
}

fn session(id: &str, paid: bool) -> Value {
    json!({
        "id": id,
        "object": "checkout.session",
        "status": if paid { "complete" } else { "open" },
        "payment_status": if paid { "paid" } else { "unpaid" },
        "payment_intent": if paid { json!("pi_test_otakumori_0001") } else { Value::Null },
        "amount_subtotal": 6600,
        "amount_total": 6600,
        "currency": "usd",
        "client_reference_id": "user_2sandboxMikuHatsune",
        "customer_details": {
            "email": "miku.hatsune@otakumori.example",
            "name": "Miku Hatsune",
            "phone": "+15555550139",
            "address": {"line1": "39 Vocaloid Ave", "line2": "Apt 1", "city": "Sapporo", "state": "HK", "postal_code": "060-0001", "country": "JP"}
        },
        "collected_information": {
            "shipping_details": {
                "name": "Miku Hatsune",
                "address": {"line1": "39 Vocaloid Ave", "line2": "Apt 1", "city": "Sapporo", "state": "HK", "postal_code": "060-0001", "country": "JP"}
            }
        },
        "metadata": {"coupon_codes": "", "discount_total_cents": "0", "request_id": "req_sandbox_1"},
        "livemode": false
    })
}

/// Default Checkout Sessions: one paid ([`PAID_SESSION_ID`]), one unpaid ([`UNPAID_SESSION_ID`]).
pub fn default_sessions() -> Vec<Value> {
    vec![
        session(PAID_SESSION_ID, true),
        session(UNPAID_SESSION_ID, false),
    ]
}

/// A paid session fixture with a custom id, total and intent (tests).
pub fn paid_session(id: &str, amount_total: i64, payment_intent: &str) -> Value {
    let mut s = session(id, true);
    s["amount_total"] = amount_total.into();
    s["amount_subtotal"] = amount_total.into();
    s["payment_intent"] = payment_intent.into();
    s
}
