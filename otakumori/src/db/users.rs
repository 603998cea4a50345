//! `users`: Clerk user upserts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{with_db, Db, DbResult, ProfileUpdate, RowExt, Upserted, User, UserProfile};

pub(crate) fn map_user<R: RowExt>(r: &R) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.id("id")?,
        clerk_id: r.text("clerk_id")?,
        email: r.text("email")?,
        username: r.opt_text("username")?,
        display_name: r.opt_text("display_name")?,
        avatar_url: r.opt_text("avatar_url")?,
        visibility: r.text("visibility")?,
        deleted_at: r.opt_ts("deleted_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

const UPSERT_SQL: &str = "INSERT INTO users (id, clerk_id, email, username, display_name, avatar_url, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
     ON CONFLICT (clerk_id) DO UPDATE SET
       email = excluded.email,
       username = COALESCE(excluded.username, users.username),
       display_name = excluded.display_name,
       avatar_url = excluded.avatar_url,
       updated_at = excluded.updated_at
     RETURNING *";

/// Derive a username when Clerk sends none: a slug of the email local part (or the name),
/// plus `_` and the first 6 characters of the Clerk id *after* its `user_` prefix.
///
/// ```
/// use otakumori::db::users::derive_username;
/// assert_eq!(derive_username("user_2abcDEF9xyz", Some("Miku.Hatsune+shop@example.com"), None), "miku_hatsune_2abcde");
/// assert_eq!(derive_username("user_q", None, Some("Rei Ayanami")), "rei_ayanami_q");
/// ```
pub fn derive_username(clerk_id: &str, email: Option<&str>, name: Option<&str>) -> String {
    let base_src = email
        .and_then(|e| e.split('@').next())
        .map(|l| l.split('+').next().unwrap_or(l))
        .filter(|s| !s.is_empty())
        .or(name)
        .unwrap_or("otaku");
    let mut slug = String::new();
    for c in base_src.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    let slug: String = if slug.is_empty() {
        "otaku".into()
    } else {
        slug.chars().take(24).collect()
    };
    let suffix: String = clerk_id
        .strip_prefix("user_")
        .unwrap_or(clerk_id)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(6)
        .collect::<String>()
        .to_ascii_lowercase();
    if suffix.is_empty() {
        slug
    } else {
        format!("{slug}_{suffix}")
    }
}

impl Db {
    /// Look a user up by Clerk id.
    pub async fn get_user_by_clerk_id(&self, clerk_id: &str) -> DbResult<Option<User>> {
        with_db!(self, |p, _d| {
            let row = sqlx::query("SELECT * FROM users WHERE clerk_id = $1")
                .bind(clerk_id)
                .fetch_optional(p)
                .await?;
            Ok(row.as_ref().map(map_user).transpose()?)
        })
    }

    /// Look a user up by primary key.
    pub async fn get_user(&self, id: Uuid) -> DbResult<Option<User>> {
        with_db!(self, |p, d| {
            let row = sqlx::query("SELECT * FROM users WHERE id = $1")
                .bind(d::id(id))
                .fetch_optional(p)
                .await?;
            Ok(row.as_ref().map(map_user).transpose()?)
        })
    }

    /// Insert or update a user keyed by `clerk_id` (idempotent). A `None` username keeps the
    /// stored one. Returns the row and whether it was created.
    pub async fn upsert_user(
        &self,
        profile: &UserProfile,
        now: DateTime<Utc>,
    ) -> DbResult<Upserted<User>> {
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            let existed = sqlx::query("SELECT id FROM users WHERE clerk_id = $1")
                .bind(&profile.clerk_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            let row = sqlx::query(UPSERT_SQL)
                .bind(d::id(Uuid::new_v4()))
                .bind(&profile.clerk_id)
                .bind(&profile.email)
                .bind(&profile.username)
                .bind(&profile.display_name)
                .bind(&profile.avatar_url)
                .bind(d::ts(now))
                .fetch_one(&mut *tx)
                .await?;
            let user = map_user(&row)?;
            tx.commit().await?;
            Ok(Upserted {
                row: user,
                created: !existed,
            })
        })
    }

    /// Apply a Clerk `user.updated`: update email, display name, avatar and (if given) username,
    /// inserting the row when the update arrives before the create. Reports changed columns.
    pub async fn update_user_profile(
        &self,
        profile: &UserProfile,
        now: DateTime<Utc>,
    ) -> DbResult<ProfileUpdate> {
        let before = self.get_user_by_clerk_id(&profile.clerk_id).await?;
        let up = self.upsert_user(profile, now).await?;
        let after = &up.row;
        let changed_fields = match &before {
            None => ["email", "username", "display_name", "avatar_url"]
                .into_iter()
                .filter(|f| match *f {
                    "username" => after.username.is_some(),
                    "display_name" => after.display_name.is_some(),
                    "avatar_url" => after.avatar_url.is_some(),
                    _ => true,
                })
                .map(String::from)
                .collect(),
            Some(b) => {
                let mut v = Vec::new();
                if b.email != after.email {
                    v.push("email".to_string());
                }
                if b.username != after.username {
                    v.push("username".to_string());
                }
                if b.display_name != after.display_name {
                    v.push("display_name".to_string());
                }
                if b.avatar_url != after.avatar_url {
                    v.push("avatar_url".to_string());
                }
                v
            }
        };
        Ok(ProfileUpdate {
            user: up.row,
            created: up.created,
            changed_fields,
        })
    }

    /// Clerk `user.deleted`: set `deleted_at` and `visibility='private'`. `None` if unknown.
    pub async fn soft_delete_user(
        &self,
        clerk_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<User>> {
        with_db!(self, |p, d| {
            let row = sqlx::query(
                "UPDATE users SET deleted_at = COALESCE(deleted_at, $2), visibility = 'private', updated_at = $2
                 WHERE clerk_id = $1 RETURNING *",
            )
            .bind(clerk_id)
            .bind(d::ts(now))
            .fetch_optional(p)
            .await?;
            Ok(row.as_ref().map(map_user).transpose()?)
        })
    }
}
