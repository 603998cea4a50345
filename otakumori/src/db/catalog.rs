//! `products`, `product_variants`, `product_images`: the Printify catalog sync.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    with_db, CatalogProduct, CatalogUpsert, Db, DbResult, Product, ProductImage, ProductVariant,
    RowExt,
};

pub(crate) fn map_product<R: RowExt>(r: &R) -> Result<Product, sqlx::Error> {
    Ok(Product {
        id: r.id("id")?,
        printify_product_id: r.opt_text("printify_product_id")?,
        shop_id: r.opt_text("shop_id")?,
        title: r.text("title")?,
        description: r.opt_text("description")?,
        category_slug: r.opt_text("category_slug")?,
        tags: r.text_array("tags")?,
        primary_image_url: r.opt_text("primary_image_url")?,
        blueprint_id: r.opt_i32("blueprint_id")?,
        print_provider_id: r.opt_i32("print_provider_id")?,
        active: r.boolean("active")?,
        visible: r.boolean("visible")?,
        deactivated_by: r.opt_text("deactivated_by")?,
        last_synced_at: r.opt_ts("last_synced_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) fn map_variant<R: RowExt>(r: &R) -> Result<ProductVariant, sqlx::Error> {
    Ok(ProductVariant {
        id: r.id("id")?,
        product_id: r.id("product_id")?,
        printify_variant_id: r.i64("printify_variant_id")?,
        sku: r.opt_text("sku")?,
        title: r.opt_text("title")?,
        price_cents: r.opt_i64("price_cents")?,
        cost_cents: r.opt_i64("cost_cents")?,
        grams: r.opt_i32("grams")?,
        is_enabled: r.boolean("is_enabled")?,
        in_stock: r.boolean("in_stock")?,
        is_default: r.boolean("is_default")?,
        option_values: r.opt_json("option_values")?,
        preview_image_url: r.opt_text("preview_image_url")?,
        last_synced_at: r.opt_ts("last_synced_at")?,
    })
}

fn map_image<R: RowExt>(r: &R) -> Result<ProductImage, sqlx::Error> {
    let ids = r.json("variant_ids")?;
    Ok(ProductImage {
        id: r.id("id")?,
        product_id: r.id("product_id")?,
        url: r.text("url")?,
        position: r.opt_text("position")?,
        variant_ids: serde_json::from_value(ids).unwrap_or_default(),
        is_default: r.boolean("is_default")?,
    })
}

const UPSERT_PRODUCT: &str = "INSERT INTO products (id, printify_product_id, shop_id, title, description, category_slug, tags,
       primary_image_url, blueprint_id, print_provider_id, active, visible, last_synced_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, TRUE, $11, $12, $12, $12)
     ON CONFLICT (printify_product_id) DO UPDATE SET
       shop_id = excluded.shop_id,
       title = excluded.title,
       description = excluded.description,
       category_slug = excluded.category_slug,
       tags = excluded.tags,
       primary_image_url = excluded.primary_image_url,
       blueprint_id = excluded.blueprint_id,
       print_provider_id = excluded.print_provider_id,
       active = CASE WHEN products.deactivated_by = 'admin' THEN products.active ELSE TRUE END,
       visible = CASE WHEN products.deactivated_by = 'admin' THEN products.visible ELSE excluded.visible END,
       deactivated_by = CASE WHEN products.deactivated_by = 'admin' THEN 'admin' ELSE NULL END,
       last_synced_at = excluded.last_synced_at,
       updated_at = excluded.updated_at
     RETURNING id, active";

const UPSERT_VARIANT: &str = "INSERT INTO product_variants (id, product_id, printify_variant_id, sku, title, price_cents, cost_cents,
       grams, is_enabled, in_stock, is_default, option_values, preview_image_url, last_synced_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $10, $11, $12, $13)
     ON CONFLICT (product_id, printify_variant_id) DO UPDATE SET
       sku = excluded.sku,
       title = excluded.title,
       price_cents = excluded.price_cents,
       cost_cents = excluded.cost_cents,
       grams = excluded.grams,
       is_enabled = TRUE,
       in_stock = excluded.in_stock,
       is_default = excluded.is_default,
       option_values = excluded.option_values,
       preview_image_url = excluded.preview_image_url,
       last_synced_at = excluded.last_synced_at";

const UPSERT_IMAGE: &str = "INSERT INTO product_images (id, product_id, url, position, variant_ids, is_default)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (product_id, url) DO UPDATE SET
       position = excluded.position, variant_ids = excluded.variant_ids, is_default = excluded.is_default";

impl Db {
    /// Upsert one Printify product with its enabled variants and images, in one transaction
    /// (idempotent; keyed by `printify_product_id`, `(product_id, printify_variant_id)`,
    /// `(product_id, url)`):
    ///
    /// * a product an admin deactivated stays inactive; one hidden by a previous sync is re-activated;
    /// * variants with `is_enabled` are upserted with `in_stock = is_available`;
    /// * local variants missing upstream or disabled upstream get `is_enabled=false, in_stock=false`;
    /// * images no longer present are deleted.
    pub async fn upsert_catalog_product(
        &self,
        input: &CatalogProduct,
        now: DateTime<Utc>,
    ) -> DbResult<CatalogUpsert> {
        let enabled: Vec<_> = input.variants.iter().filter(|v| v.is_enabled).collect();
        let enabled_ids: Vec<i64> = enabled.iter().map(|v| v.printify_variant_id).collect();
        let urls: Vec<String> = input.images.iter().map(|i| i.url.clone()).collect();
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            let existed = sqlx::query("SELECT id FROM products WHERE printify_product_id = $1")
                .bind(&input.printify_product_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            let row = sqlx::query(UPSERT_PRODUCT)
                .bind(d::id(Uuid::new_v4()))
                .bind(&input.printify_product_id)
                .bind(&input.shop_id)
                .bind(&input.title)
                .bind(&input.description)
                .bind(&input.category_slug)
                .bind(d::text_array(&input.tags))
                .bind(&input.primary_image_url)
                .bind(input.blueprint_id)
                .bind(input.print_provider_id)
                .bind(input.visible)
                .bind(d::ts(now))
                .fetch_one(&mut *tx)
                .await?;
            let product_id = row.id("id")?;
            let active = row.boolean("active")?;

            let mut variants_upserted = 0;
            for v in &enabled {
                sqlx::query(UPSERT_VARIANT)
                    .bind(d::id(Uuid::new_v4()))
                    .bind(d::id(product_id))
                    .bind(v.printify_variant_id)
                    .bind(&v.sku)
                    .bind(&v.title)
                    .bind(v.price_cents)
                    .bind(v.cost_cents)
                    .bind(v.grams)
                    .bind(v.is_available)
                    .bind(v.is_default)
                    .bind(d::opt_json(v.option_values.as_ref()))
                    .bind(&v.preview_image_url)
                    .bind(d::ts(now))
                    .execute(&mut *tx)
                    .await?;
                variants_upserted += 1;
            }
            let variants_disabled = sqlx::query(d::pick(
                "UPDATE product_variants SET is_enabled = FALSE, in_stock = FALSE, last_synced_at = $3
                 WHERE product_id = $1 AND (is_enabled OR in_stock) AND NOT (printify_variant_id = ANY($2))",
                "UPDATE product_variants SET is_enabled = FALSE, in_stock = FALSE, last_synced_at = $3
                 WHERE product_id = $1 AND (is_enabled OR in_stock)
                   AND printify_variant_id NOT IN (SELECT value FROM json_each($2))",
            ))
            .bind(d::id(product_id))
            .bind(d::int_array(&enabled_ids))
            .bind(d::ts(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();

            let mut images_upserted = 0;
            for img in &input.images {
                sqlx::query(UPSERT_IMAGE)
                    .bind(d::id(Uuid::new_v4()))
                    .bind(d::id(product_id))
                    .bind(&img.url)
                    .bind(&img.position)
                    .bind(d::json(&serde_json::json!(img.variant_ids)))
                    .bind(img.is_default)
                    .execute(&mut *tx)
                    .await?;
                images_upserted += 1;
            }
            let images_deleted = sqlx::query(d::pick(
                "DELETE FROM product_images WHERE product_id = $1 AND NOT (url = ANY($2))",
                "DELETE FROM product_images WHERE product_id = $1 AND url NOT IN (SELECT value FROM json_each($2))",
            ))
            .bind(d::id(product_id))
            .bind(d::text_array(&urls))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(CatalogUpsert {
                product_id,
                printify_product_id: input.printify_product_id.clone(),
                created: !existed,
                active,
                variants_upserted,
                variants_disabled,
                images_upserted,
                images_deleted,
            })
        })
    }

    /// Full-sync step `hide-missing`: set `active=false, visible=false` on Printify products whose
    /// id is not in `seen_printify_ids`. Returns how many were hidden (0 on replay).
    pub async fn hide_missing_products(
        &self,
        seen_printify_ids: &[String],
        now: DateTime<Utc>,
    ) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let n = sqlx::query(d::pick(
                "UPDATE products SET active = FALSE, visible = FALSE,
                   deactivated_by = COALESCE(deactivated_by, 'sync'), updated_at = $2
                 WHERE printify_product_id IS NOT NULL AND (active OR visible)
                   AND NOT (printify_product_id = ANY($1))",
                "UPDATE products SET active = FALSE, visible = FALSE,
                   deactivated_by = COALESCE(deactivated_by, 'sync'), updated_at = $2
                 WHERE printify_product_id IS NOT NULL AND (active OR visible)
                   AND printify_product_id NOT IN (SELECT value FROM json_each($1))",
            ))
            .bind(d::text_array(seen_printify_ids))
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected();
            Ok(n)
        })
    }

    /// Targeted sync got a 404: hide that product. Returns `true` if a row changed.
    pub async fn hide_product(
        &self,
        printify_product_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        with_db!(self, |p, d| {
            let n = sqlx::query(
                "UPDATE products SET active = FALSE, visible = FALSE,
                   deactivated_by = COALESCE(deactivated_by, 'sync'), updated_at = $2
                 WHERE printify_product_id = $1 AND (active OR visible)",
            )
            .bind(printify_product_id)
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
    }

    /// Admin switch: deactivating marks the product `deactivated_by='admin'`, which later syncs
    /// respect; activating clears it. Returns `true` if the product exists.
    pub async fn admin_set_product_active(
        &self,
        product_id: Uuid,
        active: bool,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        with_db!(self, |p, d| {
            let n = sqlx::query(
                "UPDATE products SET active = $2, visible = $2,
                   deactivated_by = CASE WHEN $2 THEN NULL ELSE 'admin' END, updated_at = $3
                 WHERE id = $1",
            )
            .bind(d::id(product_id))
            .bind(active)
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
    }

    /// `SELECT printify_product_id FROM products WHERE active AND printify_product_id IS NOT NULL`
    /// (inventory sync `load-targets`), sorted.
    pub async fn active_printify_product_ids(&self) -> DbResult<Vec<String>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query(
                "SELECT printify_product_id FROM products WHERE active AND printify_product_id IS NOT NULL
                 ORDER BY printify_product_id",
            )
            .fetch_all(p)
            .await?;
            Ok(rows
                .iter()
                .map(|r| r.text("printify_product_id"))
                .collect::<Result<_, _>>()?)
        })
    }

    /// One product by Printify id.
    pub async fn get_product_by_printify_id(
        &self,
        printify_product_id: &str,
    ) -> DbResult<Option<Product>> {
        with_db!(self, |p, _d| {
            let row = sqlx::query("SELECT * FROM products WHERE printify_product_id = $1")
                .bind(printify_product_id)
                .fetch_optional(p)
                .await?;
            Ok(row.as_ref().map(map_product).transpose()?)
        })
    }

    /// All products (optionally only active ones), ordered by title.
    pub async fn list_products(&self, active_only: bool) -> DbResult<Vec<Product>> {
        with_db!(self, |p, _d| {
            let rows =
                sqlx::query("SELECT * FROM products WHERE active OR NOT $1 ORDER BY title, id")
                    .bind(active_only)
                    .fetch_all(p)
                    .await?;
            Ok(rows.iter().map(map_product).collect::<Result<_, _>>()?)
        })
    }

    /// Variants of a product, ordered by Printify variant id.
    pub async fn list_variants(&self, product_id: Uuid) -> DbResult<Vec<ProductVariant>> {
        with_db!(self, |p, d| {
            let rows = sqlx::query(
                "SELECT * FROM product_variants WHERE product_id = $1 ORDER BY printify_variant_id",
            )
            .bind(d::id(product_id))
            .fetch_all(p)
            .await?;
            Ok(rows.iter().map(map_variant).collect::<Result<_, _>>()?)
        })
    }

    /// One variant by `(Printify product id, Printify variant id)`.
    pub async fn get_variant_by_printify_ids(
        &self,
        printify_product_id: &str,
        printify_variant_id: i64,
    ) -> DbResult<Option<ProductVariant>> {
        with_db!(self, |p, _d| {
            let row = sqlx::query(
                "SELECT v.* FROM product_variants v JOIN products pr ON pr.id = v.product_id
                 WHERE pr.printify_product_id = $1 AND v.printify_variant_id = $2",
            )
            .bind(printify_product_id)
            .bind(printify_variant_id)
            .fetch_optional(p)
            .await?;
            Ok(row.as_ref().map(map_variant).transpose()?)
        })
    }

    /// Images of a product, ordered by URL.
    pub async fn list_images(&self, product_id: Uuid) -> DbResult<Vec<ProductImage>> {
        with_db!(self, |p, d| {
            let rows =
                sqlx::query("SELECT * FROM product_images WHERE product_id = $1 ORDER BY url")
                    .bind(d::id(product_id))
                    .fetch_all(p)
                    .await?;
            Ok(rows.iter().map(map_image).collect::<Result<_, _>>()?)
        })
    }
}
