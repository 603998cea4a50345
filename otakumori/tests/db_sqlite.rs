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

/// A write transaction takes SQLite's write lock when it begins: an upsert (read, then write)
/// that starts while another connection holds the lock waits for it and succeeds. A deferred
/// transaction would have read first and then failed at once with "database is locked" when
/// the other connection's commit made its read stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_transaction_waits_for_another_writer_instead_of_failing() {
    use otakumori::db::UserProfile;
    use sqlx::Connection;

    let path =
        std::env::temp_dir().join(format!("otakumori-test-lock-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = Db::connect(&url).await.expect("connect sqlite");
    let profile = |clerk_id: &str| UserProfile {
        clerk_id: clerk_id.into(),
        email: format!("{clerk_id}@nerv.example"),
        username: None,
        display_name: None,
        avatar_url: None,
    };
    db.upsert_user(&profile("user_first"), otakumori::db::now_utc())
        .await
        .unwrap();

    // Another connection takes the write lock and holds it for a while.
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET display_name = 'Rei' WHERE clerk_id = 'user_first'")
        .execute(&mut other)
        .await
        .unwrap();
    let db2 = db.clone();
    let upsert = tokio::spawn(async move {
        db2.upsert_user(&profile("user_second"), otakumori::db::now_utc())
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    let up = upsert
        .await
        .unwrap()
        .expect("the upsert waited for the lock");
    assert!(up.created);
    assert_eq!(up.row.clerk_id, "user_second");
    let first = db
        .get_user_by_clerk_id("user_first")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.display_name.as_deref(), Some("Rei"));
    db.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
