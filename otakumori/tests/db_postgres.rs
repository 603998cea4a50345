//! Repository tests on PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`, user
//! `postgres` or `root`). Each test runs in its own fresh schema (dropped afterwards).
//! A test is skipped (with a printed reason) only when nothing answers on that port.

mod db_common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use otakumori::db::{Backend, Db, DbOptions};

const HOST: &str = "127.0.0.1:5432";

fn server_answers() -> bool {
    let addr: SocketAddr = HOST.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Fresh schema on the local server, or `None` (skip) when no server listens on 5432.
async fn fresh(name: &str) -> Option<(Db, String, String)> {
    if !server_answers() {
        eprintln!("SKIP {name}: no PostgreSQL server answers on {HOST}");
        return None;
    }
    let schema = format!(
        "om_{}_{}",
        name,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut last_err = None;
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@{HOST}/test");
        let opts = DbOptions {
            pg_schema: Some(schema.clone()),
            max_connections: 3,
            ..DbOptions::new(url.clone())
        };
        match Db::connect_with(opts).await {
            Ok(db) => {
                assert_eq!(db.backend(), Backend::Postgres);
                return Some((db, url, schema));
            }
            Err(e) => last_err = Some(e),
        }
    }
    panic!("PostgreSQL answers on {HOST} but neither user postgres nor root could connect to database test: {last_err:?}");
}

async fn drop_schema(db: Db, schema: &str) {
    let pool = db.pg_pool().unwrap().clone();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .unwrap();
    db.close().await;
}

macro_rules! pg_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some((db, _url, schema)) = fresh(stringify!($name)).await else { return };
            db_common::$name(&db).await;
            drop_schema(db, &schema).await;
        }
    )*};
}

pg_tests!(
    users_upsert,
    catalog_sync,
    inventory_alerts,
    orders_flow,
    webhook_dedupe,
    failed_operations,
    email_outbox,
    retention,
    constraints,
);

#[tokio::test]
async fn schemas_are_isolated() {
    let Some((a, url, schema_a)) = fresh("iso_a").await else {
        return;
    };
    let Some((b, _, schema_b)) = fresh("iso_b").await else {
        return;
    };
    db_common::webhook_dedupe(&a).await;
    assert_eq!(a.count_rows("webhook_events").await.unwrap(), 2);
    assert_eq!(b.count_rows("webhook_events").await.unwrap(), 0);
    // Typed columns really are uuid/timestamptz/text[] on PostgreSQL.
    let row: (String,) = sqlx::query_as(
        "SELECT data_type::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'paid_at'",
    )
    .bind(&schema_a)
    .fetch_one(a.pg_pool().unwrap())
    .await
    .unwrap();
    assert_eq!(row.0, "timestamp with time zone");
    assert!(url.starts_with("postgres://"));
    drop_schema(a, &schema_a).await;
    drop_schema(b, &schema_b).await;
}
