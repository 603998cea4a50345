//! Repository tests on SQLite: each test gets its own fresh database file under the temp dir.

mod db_common;

use otakumori::db::{Backend, Db};

async fn fresh(name: &str) -> Db {
    let path =
        std::env::temp_dir().join(format!("otakumori-test-{name}-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = Db::connect(&url).await.expect("connect sqlite");
    assert_eq!(db.backend(), Backend::Sqlite);
    db
}

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let db = fresh(stringify!($name)).await;
            db_common::$name(&db).await;
            db.close().await;
        }
    )*};
}

sqlite_tests!(
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
async fn default_style_url_creates_the_file_and_memory_db_works() {
    let path = std::env::temp_dir().join(format!("otakumori-created-{}.db", uuid::Uuid::new_v4()));
    assert!(!path.exists());
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    assert!(
        path.exists(),
        "mode=rwc creates the database file on first run"
    );
    assert_eq!(db.count_rows("users").await.unwrap(), 0);
    db.close().await;
    // Reopening runs migrations again without error and keeps data.
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    db.close().await;
    let _ = std::fs::remove_file(&path);

    let mem = Db::connect("sqlite::memory:").await.unwrap();
    db_common::webhook_dedupe(&mem).await;
    assert!(db_common::t0() > chrono::DateTime::<chrono::Utc>::MIN_UTC);
    assert!(mem.count_rows("nope").await.is_err());
}
