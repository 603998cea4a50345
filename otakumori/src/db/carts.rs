//! `carts`, `cart_items` (`process-order`'s `clear-cart`, abandoned carts).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{with_db, CartItem, Db, DbResult, RowExt};

fn map_item<R: RowExt>(r: &R) -> Result<CartItem, sqlx::Error> {
    Ok(CartItem {
        id: r.id("id")?,
        cart_id: r.id("cart_id")?,
        variant_id: r.id("variant_id")?,
        quantity: r.i32("quantity")?,
    })
}

impl Db {
    /// The user's cart id, creating the cart if needed (one cart per user).
    pub async fn get_or_create_cart(&self, user_id: Uuid, now: DateTime<Utc>) -> DbResult<Uuid> {
        with_db!(self, |p, d| {
            sqlx::query("INSERT INTO carts (id, user_id, updated_at) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING")
                .bind(d::id(Uuid::new_v4()))
                .bind(d::id(user_id))
                .bind(d::ts(now))
                .execute(p)
                .await?;
            let row = sqlx::query("SELECT id FROM carts WHERE user_id = $1")
                .bind(d::id(user_id))
                .fetch_one(p)
                .await?;
            Ok(row.id("id")?)
        })
    }

    /// Set the quantity of a variant in the user's cart (insert or replace; `quantity <= 0`
    /// removes the line). Touches `carts.updated_at`. Returns the line, if any remains.
    pub async fn set_cart_item(
        &self,
        user_id: Uuid,
        variant_id: Uuid,
        quantity: i32,
        now: DateTime<Utc>,
    ) -> DbResult<Option<CartItem>> {
        let cart_id = self.get_or_create_cart(user_id, now).await?;
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            sqlx::query("UPDATE carts SET updated_at = $2 WHERE id = $1")
                .bind(d::id(cart_id))
                .bind(d::ts(now))
                .execute(&mut *tx)
                .await?;
            let item = if quantity <= 0 {
                sqlx::query("DELETE FROM cart_items WHERE cart_id = $1 AND variant_id = $2")
                    .bind(d::id(cart_id))
                    .bind(d::id(variant_id))
                    .execute(&mut *tx)
                    .await?;
                None
            } else {
                let row = sqlx::query(
                    "INSERT INTO cart_items (id, cart_id, variant_id, quantity) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (cart_id, variant_id) DO UPDATE SET quantity = excluded.quantity
                     RETURNING *",
                )
                .bind(d::id(Uuid::new_v4()))
                .bind(d::id(cart_id))
                .bind(d::id(variant_id))
                .bind(quantity)
                .fetch_one(&mut *tx)
                .await?;
                Some(map_item(&row)?)
            };
            tx.commit().await?;
            Ok(item)
        })
    }

    /// Lines of the user's cart (empty if the user has no cart).
    pub async fn cart_items(&self, user_id: Uuid) -> DbResult<Vec<CartItem>> {
        with_db!(self, |p, d| {
            let rows = sqlx::query(
                "SELECT ci.* FROM cart_items ci JOIN carts c ON c.id = ci.cart_id WHERE c.user_id = $1 ORDER BY ci.id",
            )
            .bind(d::id(user_id))
            .fetch_all(p)
            .await?;
            Ok(rows.iter().map(map_item).collect::<Result<_, _>>()?)
        })
    }

    /// Step `clear-cart`: delete every line of the user's cart. Returns rows deleted (0 on replay).
    pub async fn clear_cart(&self, user_id: Uuid, now: DateTime<Utc>) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            let n = sqlx::query(
                "DELETE FROM cart_items WHERE cart_id IN (SELECT id FROM carts WHERE user_id = $1)",
            )
            .bind(d::id(user_id))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE carts SET updated_at = $2 WHERE user_id = $1")
                .bind(d::id(user_id))
                .bind(d::ts(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }
}
