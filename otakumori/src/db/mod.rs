//! Database access: one [`Db`] handle over SQLite **or** PostgreSQL, chosen from the URL.
//!
//! # Design
//!
//! [`Db`] wraps an enum over two native sqlx pools ([`sqlx::SqlitePool`] / [`sqlx::PgPool`])
//! rather than `sqlx::Any`, because `Any` cannot decode `uuid`, `timestamptz` or `jsonb`. Each
//! backend keeps its own dialect in its migrations (`migrations/postgres/`, `migrations/sqlite/`):
//!
//! | concept | PostgreSQL | SQLite |
//! |---|---|---|
//! | ids | `uuid` | `TEXT` (hyphenated) |
//! | timestamps | `timestamptz` | `TEXT` RFC 3339 UTC, fixed width (`…T12:00:00.000000Z`) so text order = time order |
//! | `products.tags` | `text[]` | `TEXT` JSON array |
//! | JSON | `jsonb` | `TEXT` |
//! | `orders.display_number` | `bigserial` | trigger + `AUTOINCREMENT` sequence table |
//!
//! Repository methods are written once: an internal macro expands each body twice, once per
//! backend, with a small per-dialect codec (`d::id`, `d::ts`, `d::json`, `d::text_array`, and
//! `d::pick(pg_sql, sqlite_sql)` for the few statements that differ). SQL uses `$1…` placeholders,
//! which both backends accept. Timestamps are always bound from Rust (`now` parameters), so
//! retention logic is testable with a fixed clock.
//!
//! All repository methods are `async`, take `&self` and are grouped by table in the submodules:
//! [`users`], [`catalog`], [`inventory`], [`carts`], [`orders`], [`email`], [`webhooks`],
//! [`operations`], [`maintenance`]. Methods that must be idempotent (upserts keyed by
//! provider ids, dedupe inserts, status transitions) are safe to call again when an Inngest step
//! is retried.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

pub mod carts;
pub mod catalog;
pub mod email;
pub mod inventory;
pub mod maintenance;
pub mod models;
pub mod operations;
pub mod orders;
pub mod users;
pub mod webhooks;

pub use models::*;

/// Run a body once per backend: `with_db!(self, |p, d| body)` binds `p` to the concrete pool and
/// `d` to the dialect codec module (`dialect::pg` or `dialect::sqlite`).
macro_rules! with_db {
    ($db:expr, |$p:ident, $d:ident| $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Postgres($p) => {
                #[allow(unused_imports)]
                use $crate::db::dialect::pg as $d;
                $body
            }
            $crate::db::Pool::Sqlite($p) => {
                #[allow(unused_imports)]
                use $crate::db::dialect::sqlite as $d;
                $body
            }
        }
    };
}
pub(crate) use with_db;

/// Errors from the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Driver / SQL error.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Migrations failed to apply.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row the caller referenced does not exist.
    #[error("{entity} not found: {id}")]
    NotFound {
        /// Table / entity name.
        entity: &'static str,
        /// The key that was looked up.
        id: String,
    },
    /// An order status change that the state machine does not allow.
    #[error("order {order_id}: cannot move from {from} to {to}")]
    InvalidTransition {
        /// The order.
        order_id: Uuid,
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// Invalid input or unexpected stored data.
    #[error("invalid data: {0}")]
    Invalid(String),
}

impl DbError {
    /// `true` for unique-constraint violations.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// `true` when retrying the same call later may succeed (connection/pool problems, lock
    /// contention, serialization failures). Constraint violations, missing rows and invalid
    /// transitions are permanent.
    pub fn is_retriable(&self) -> bool {
        match self {
            DbError::Sqlx(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(db) => {
                    let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                    // PG: serialization_failure, deadlock_detected, admin shutdown, too many connections.
                    // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
                    matches!(code.as_str(), "40001" | "40P01" | "57P01" | "53300")
                        || code == "5"
                        || code == "6"
                        || code
                            .parse::<i64>()
                            .map(|c| c & 0xff == 5 || c & 0xff == 6)
                            .unwrap_or(false)
                }
                _ => false,
            },
            DbError::Migrate(_) => false,
            DbError::NotFound { .. } | DbError::InvalidTransition { .. } | DbError::Invalid(_) => {
                false
            }
        }
    }
}

/// Result alias for repository calls.
pub type DbResult<T> = Result<T, DbError>;

/// Which backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connection options for [`Db::connect_with`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite:…` or `postgres://…`.
    pub url: String,
    /// PostgreSQL only: create this schema if needed and put it first on every connection's
    /// `search_path` (tests use a fresh schema each).
    pub pg_schema: Option<String>,
    /// Pool size (SQLite in-memory databases always use 1).
    pub max_connections: u32,
    /// Apply migrations after connecting (default `true`).
    pub migrate: bool,
}

impl DbOptions {
    /// Defaults for `url`: 5 connections, migrations on, no schema override.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pg_schema: None,
            max_connections: 5,
            migrate: true,
        }
    }
}

/// Handle to the app database (cheap to clone; wraps a pool).
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: Pool,
}

impl Db {
    /// Connect to `url` (`sqlite://file.db?mode=rwc`, `sqlite::memory:`, `postgres://…`) and apply
    /// the backend's migrations.
    pub async fn connect(url: &str) -> DbResult<Db> {
        Self::connect_with(DbOptions::new(url)).await
    }

    /// Connect with explicit options.
    pub async fn connect_with(opts: DbOptions) -> DbResult<Db> {
        let db = if opts.url.starts_with("sqlite:") {
            let memory = opts.url.contains(":memory:") || opts.url.contains("mode=memory");
            let connect = SqliteConnectOptions::from_str(&opts.url)?
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let connect = if memory {
                connect
            } else {
                connect.journal_mode(SqliteJournalMode::Wal)
            };
            let mut pool = SqlitePoolOptions::new().max_connections(if memory {
                1
            } else {
                opts.max_connections.max(1)
            });
            if memory {
                // Every new connection would be a new, empty database: keep the one we have.
                pool = pool
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .min_connections(1);
            }
            Db {
                pool: Pool::Sqlite(pool.connect_with(connect).await?),
            }
        } else if opts.url.starts_with("postgres://") || opts.url.starts_with("postgresql://") {
            let mut connect = PgConnectOptions::from_str(&opts.url)?;
            if let Some(schema) = &opts.pg_schema {
                if !is_identifier(schema) {
                    return Err(DbError::Invalid(format!("bad schema name {schema:?}")));
                }
                // Create the schema on a one-off connection, then pin it on every pooled one.
                let setup = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(connect.clone())
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
                )))
                .execute(&setup)
                .await?;
                setup.close().await;
                connect = connect.options([("search_path", schema.as_str())]);
            }
            Db {
                pool: Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(opts.max_connections.max(1))
                        .connect_with(connect)
                        .await?,
                ),
            }
        } else {
            return Err(DbError::Invalid(
                "DATABASE_URL must start with sqlite: or postgres://".into(),
            ));
        };
        if opts.migrate {
            db.migrate().await?;
        }
        tracing::debug!(backend = ?db.backend(), "database connected");
        Ok(db)
    }

    /// Wrap an existing SQLite pool (migrations not applied; call [`Db::migrate`]).
    pub fn from_sqlite_pool(pool: SqlitePool) -> Db {
        Db {
            pool: Pool::Sqlite(pool),
        }
    }

    /// Wrap an existing PostgreSQL pool (migrations not applied; call [`Db::migrate`]).
    pub fn from_pg_pool(pool: PgPool) -> Db {
        Db {
            pool: Pool::Postgres(pool),
        }
    }

    /// Apply pending migrations for this backend (idempotent).
    pub async fn migrate(&self) -> DbResult<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite pool, for ad-hoc queries in tests.
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for ad-hoc queries in tests.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// Close the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Count rows of a table (tests and health reports). `table` must be one of the app's tables.
    pub async fn count_rows(&self, table: &str) -> DbResult<i64> {
        if !TABLES.contains(&table) {
            return Err(DbError::Invalid(format!("unknown table {table}")));
        }
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        with_db!(self, |p, _d| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(p).await?;
            Ok(row.i64("n")?)
        })
    }
}

/// Every table created by the migrations.
pub const TABLES: &[&str] = &[
    "users",
    "products",
    "product_variants",
    "product_images",
    "inventory_alerts",
    "carts",
    "cart_items",
    "orders",
    "order_items",
    "printify_order_sync",
    "email_log",
    "email_outbox",
    "webhook_events",
    "failed_operations",
    "orders_archive",
    "order_items_archive",
    "maintenance_reports",
];

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Truncate to at most `max` characters (on a char boundary).
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Per-backend value codecs used inside `with_db!` bodies.
pub(crate) mod dialect {
    /// PostgreSQL: native types.
    pub(crate) mod pg {
        use chrono::{DateTime, Utc};
        use uuid::Uuid;

        pub(crate) fn id(v: Uuid) -> Uuid {
            v
        }
        pub(crate) fn opt_id(v: Option<Uuid>) -> Option<Uuid> {
            v
        }
        pub(crate) fn ts(v: DateTime<Utc>) -> DateTime<Utc> {
            v
        }
        pub(crate) fn opt_ts(v: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
            v
        }
        pub(crate) fn json(v: &serde_json::Value) -> sqlx::types::Json<serde_json::Value> {
            sqlx::types::Json(v.clone())
        }
        pub(crate) fn opt_json(
            v: Option<&serde_json::Value>,
        ) -> Option<sqlx::types::Json<serde_json::Value>> {
            v.map(json)
        }
        pub(crate) fn text_array(v: &[String]) -> Vec<String> {
            v.to_vec()
        }
        pub(crate) fn id_array(v: &[Uuid]) -> Vec<Uuid> {
            v.to_vec()
        }
        pub(crate) fn int_array(v: &[i64]) -> Vec<i64> {
            v.to_vec()
        }
        pub(crate) const fn pick(pg: &'static str, _sqlite: &'static str) -> &'static str {
            pg
        }
        /// A transaction (PostgreSQL's row locks and `ON CONFLICT` need nothing more).
        pub(crate) async fn begin(
            p: &sqlx::PgPool,
        ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
            p.begin().await
        }
    }

    /// SQLite: TEXT for ids, timestamps, arrays and JSON.
    pub(crate) mod sqlite {
        /// A write transaction that takes SQLite's write lock when it starts (`BEGIN IMMEDIATE`).
        /// A deferred one that reads first fails at once with "database is locked" when another
        /// connection wrote in between (WAL cannot upgrade a stale read); an immediate one waits
        /// for the lock (the pool's `busy_timeout`) instead.
        pub(crate) async fn begin(
            p: &sqlx::SqlitePool,
        ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
            p.begin_with("BEGIN IMMEDIATE").await
        }
        use chrono::{DateTime, Utc};
        use uuid::Uuid;

        pub(crate) fn id(v: Uuid) -> String {
            v.hyphenated().to_string()
        }
        pub(crate) fn opt_id(v: Option<Uuid>) -> Option<String> {
            v.map(id)
        }
        pub(crate) fn ts(v: DateTime<Utc>) -> String {
            super::super::format_sqlite_ts(v)
        }
        pub(crate) fn opt_ts(v: Option<DateTime<Utc>>) -> Option<String> {
            v.map(ts)
        }
        pub(crate) fn json(v: &serde_json::Value) -> String {
            v.to_string()
        }
        pub(crate) fn opt_json(v: Option<&serde_json::Value>) -> Option<String> {
            v.map(json)
        }
        pub(crate) fn text_array(v: &[String]) -> String {
            serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
        }
        pub(crate) fn id_array(v: &[Uuid]) -> String {
            serde_json::to_string(&v.iter().map(|u| id(*u)).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into())
        }
        pub(crate) fn int_array(v: &[i64]) -> String {
            serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
        }
        pub(crate) const fn pick(_pg: &'static str, sqlite: &'static str) -> &'static str {
            sqlite
        }
    }
}

/// Fixed-width RFC 3339 UTC with microseconds (PostgreSQL's precision): lexical order = time order.
pub(crate) fn format_sqlite_ts(v: DateTime<Utc>) -> String {
    v.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Current time truncated to microseconds, so values round-trip identically on both backends.
pub fn now_utc() -> DateTime<Utc> {
    let now = Utc::now();
    let micros = now.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(now)
}

fn decode_err(col: &str, msg: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: msg.to_string().into(),
    }
}

/// Typed column access implemented for both row types, so mappers are written once.
pub(crate) trait RowExt {
    fn id(&self, c: &str) -> Result<Uuid, sqlx::Error>;
    fn opt_id(&self, c: &str) -> Result<Option<Uuid>, sqlx::Error>;
    fn text(&self, c: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error>;
    fn i64(&self, c: &str) -> Result<i64, sqlx::Error>;
    fn opt_i64(&self, c: &str) -> Result<Option<i64>, sqlx::Error>;
    fn boolean(&self, c: &str) -> Result<bool, sqlx::Error>;
    fn opt_boolean(&self, c: &str) -> Result<Option<bool>, sqlx::Error>;
    fn ts(&self, c: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn opt_json(&self, c: &str) -> Result<Option<serde_json::Value>, sqlx::Error>;
    fn text_array(&self, c: &str) -> Result<Vec<String>, sqlx::Error>;

    fn i32(&self, c: &str) -> Result<i32, sqlx::Error> {
        let v = self.i64(c)?;
        i32::try_from(v).map_err(|e| decode_err(c, e))
    }
    fn opt_i32(&self, c: &str) -> Result<Option<i32>, sqlx::Error> {
        self.opt_i64(c)?
            .map(|v| i32::try_from(v).map_err(|e| decode_err(c, e)))
            .transpose()
    }
    fn json(&self, c: &str) -> Result<serde_json::Value, sqlx::Error> {
        Ok(self.opt_json(c)?.unwrap_or(serde_json::Value::Null))
    }
    /// A text column parsed with `FromStr` (the status enums); a value that does not parse is
    /// a `ColumnDecode` error naming the column.
    fn parsed<T: std::str::FromStr>(&self, c: &str) -> Result<T, sqlx::Error> {
        let text = self.text(c)?;
        text.parse()
            .map_err(|_| decode_err(c, format!("unknown value {text:?}")))
    }
}

impl RowExt for sqlx::postgres::PgRow {
    fn id(&self, c: &str) -> Result<Uuid, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_id(&self, c: &str) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn text(&self, c: &str) -> Result<String, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn i64(&self, c: &str) -> Result<i64, sqlx::Error> {
        Ok(self.opt_i64(c)?.unwrap_or_default())
    }
    fn opt_i64(&self, c: &str) -> Result<Option<i64>, sqlx::Error> {
        match sqlx::Row::try_get::<Option<i64>, _>(self, c) {
            Ok(v) => Ok(v),
            Err(_) => match sqlx::Row::try_get::<Option<i32>, _>(self, c) {
                Ok(v) => Ok(v.map(i64::from)),
                Err(_) => sqlx::Row::try_get::<Option<i16>, _>(self, c).map(|v| v.map(i64::from)),
            },
        }
    }
    fn boolean(&self, c: &str) -> Result<bool, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_boolean(&self, c: &str) -> Result<Option<bool>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn ts(&self, c: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_json(&self, c: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
        sqlx::Row::try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>(self, c)
            .map(|v| v.map(|j| j.0))
    }
    fn text_array(&self, c: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
}

impl RowExt for sqlx::sqlite::SqliteRow {
    fn id(&self, c: &str) -> Result<Uuid, sqlx::Error> {
        self.opt_id(c)?
            .ok_or_else(|| decode_err(c, "unexpected NULL"))
    }
    fn opt_id(&self, c: &str) -> Result<Option<Uuid>, sqlx::Error> {
        self.opt_text(c)?
            .map(|s| Uuid::parse_str(&s).map_err(|e| decode_err(c, e)))
            .transpose()
    }
    fn text(&self, c: &str) -> Result<String, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn i64(&self, c: &str) -> Result<i64, sqlx::Error> {
        Ok(self.opt_i64(c)?.unwrap_or_default())
    }
    fn opt_i64(&self, c: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn boolean(&self, c: &str) -> Result<bool, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn opt_boolean(&self, c: &str) -> Result<Option<bool>, sqlx::Error> {
        sqlx::Row::try_get(self, c)
    }
    fn ts(&self, c: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.opt_ts(c)?
            .ok_or_else(|| decode_err(c, "unexpected NULL"))
    }
    fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.opt_text(c)?
            .map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|d| d.with_timezone(&Utc))
                    .or_else(|_| {
                        chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
                            .map(|n| n.and_utc())
                    })
                    .map_err(|e| decode_err(c, e))
            })
            .transpose()
    }
    fn opt_json(&self, c: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
        self.opt_text(c)?
            .map(|s| serde_json::from_str(&s).map_err(|e| decode_err(c, e)))
            .transpose()
    }
    fn text_array(&self, c: &str) -> Result<Vec<String>, sqlx::Error> {
        match self.opt_text(c)? {
            None => Ok(Vec::new()),
            Some(s) => serde_json::from_str(&s).map_err(|e| decode_err(c, e)),
        }
    }
}
