//! Clerk users → `users` (syncUserToSupabase, userProfileUpdate).

use inngest_sdk::{Concurrency, ConcurrencyScope, Ctx, Error, Function, Step};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{db_err, now_utc, Deps, FN_SYNC_USER_TO_SUPABASE, FN_USER_PROFILE_UPDATE};
use crate::db::users::derive_username;
use crate::db::{Db, ProfileUpdate, Upserted, User, UserProfile};
use crate::events::{ClerkUserChange, ClerkUserCreated, ClerkUserObject};

/// The fields of a Clerk user object the app stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkUser {
    /// Clerk id (`user_…`).
    pub id: String,
    /// The `email_addresses` entry whose `id` is `primary_email_address_id`, else the first
    /// entry, else empty (phone-only signups; counted by the monthly audit).
    pub email: String,
    /// Clerk `username`, if set.
    pub username: Option<String>,
    /// `first_name last_name`, if any.
    pub display_name: Option<String>,
    /// `image_url`.
    pub avatar_url: Option<String>,
}

impl ClerkUser {
    /// The stored fields of a decoded Clerk user object: the email is the `email_addresses`
    /// entry whose `id` is `primary_email_address_id`, else the first with an address.
    pub fn from_object(o: &ClerkUserObject) -> ClerkUser {
        let primary = o.primary_email_address_id.as_deref();
        let email = primary
            .and_then(|p| {
                o.email_addresses
                    .iter()
                    .find(|a| a.id.as_deref() == Some(p))
                    .and_then(|a| a.email_address.clone())
            })
            .or_else(|| {
                o.email_addresses
                    .iter()
                    .find_map(|a| a.email_address.clone())
            })
            .unwrap_or_default();
        let display_name = [o.first_name.clone(), o.last_name.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        ClerkUser {
            id: o.id.clone(),
            email,
            username: o.username.clone(),
            display_name: Some(display_name).filter(|s| !s.is_empty()),
            avatar_url: o.image_url.clone(),
        }
    }

    /// The slug username used when Clerk sends none (see [`derive_username`]).
    pub fn derived_username(&self) -> String {
        derive_username(
            &self.id,
            Some(self.email.as_str()).filter(|e| !e.is_empty()),
            self.display_name.as_deref(),
        )
    }

    fn profile(&self, username: Option<String>) -> UserProfile {
        UserProfile {
            clerk_id: self.id.clone(),
            email: self.email.clone(),
            username,
            display_name: self.display_name.clone(),
            avatar_url: self.avatar_url.clone(),
        }
    }
}

/// A Clerk username can collide with another user's (unique index): fall back to the derived
/// slug, which carries part of the Clerk id.
async fn upsert_with_fallback(
    db: &Db,
    user: &ClerkUser,
    username: String,
) -> Result<Upserted<User>, Error> {
    match db
        .upsert_user(&user.profile(Some(username.clone())), now_utc())
        .await
    {
        Err(e) if e.is_unique_violation() && username != user.derived_username() => {
            tracing::warn!(clerk_id = %user.id, "username taken; using the derived one");
            db.upsert_user(&user.profile(Some(user.derived_username())), now_utc())
                .await
                .map_err(db_err)
        }
        other => other.map_err(db_err),
    }
}

/// One step at a time per Clerk user, shared by both user functions (environment scope with
/// the same key), so a create and an update for the same user never interleave.
pub const USER_CONCURRENCY_KEY: &str = "'clerk-user:' + event.data.id";

fn per_user() -> Concurrency {
    Concurrency::new(1)
        .key(USER_CONCURRENCY_KEY)
        .scope(ConcurrencyScope::Env)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsertOut {
    db_user_id: Uuid,
    created: bool,
}

/// **syncUserToSupabase** (`sync-user-to-supabase`): a Clerk signup becomes a
/// `users` row.
///
/// * Trigger `clerk/user.created` (data = the Clerk user object, event id = `svix-id`).
/// * Concurrency 1 per Clerk id (env-scoped key `'clerk-user:' + event.data.id`, shared with
///   `user-profile-update`, so the two never race for the same user); idempotency on the event id (`event.id`, the svix message id), so a Clerk
///   redelivery runs once.
/// * Step `upsert-user`: `INSERT … ON CONFLICT (clerk_id) DO UPDATE` with the primary email,
///   the Clerk username (else a slug + part of the Clerk id), display name and avatar.
/// * Returns `{success, userId, dbUserId, created}`. A missing `data.id` is non-retriable.
pub fn sync_user_to_supabase() -> Function {
    Function::new(FN_SYNC_USER_TO_SUPABASE)
        .name("Sync Clerk user to the database")
        .on::<ClerkUserCreated>()
        .concurrency(per_user())
        .idempotency("event.id")
        .handler(|ctx: Ctx<ClerkUserCreated>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let user = ClerkUser::from_object(&ctx.event.data.0);
            let out: UpsertOut = step
                .run("upsert-user", || async {
                    let username = user
                        .username
                        .clone()
                        .unwrap_or_else(|| user.derived_username());
                    let up = upsert_with_fallback(&d.app.db, &user, username).await?;
                    tracing::info!(clerk_id = %user.id, created = up.created, "user synced");
                    Ok(UpsertOut {
                        db_user_id: up.row.id,
                        created: up.created,
                    })
                })
                .await?;
            Ok(json!({
                "success": true,
                "userId": user.id,
                "dbUserId": out.db_user_id,
                "created": out.created,
            }))
        })
        .into()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadOut {
    db_user_id: Uuid,
    username: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateOut {
    db_user_id: Uuid,
    created: bool,
    changed_fields: Vec<String>,
}

impl From<ProfileUpdate> for UpdateOut {
    fn from(p: ProfileUpdate) -> Self {
        UpdateOut {
            db_user_id: p.user.id,
            created: p.created,
            changed_fields: p.changed_fields,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOut {
    found: bool,
    db_user_id: Option<Uuid>,
}

/// **userProfileUpdate** (`user-profile-update`; guide-only in the original):
/// profile changes and deletions from Clerk.
///
/// * Triggers `clerk/user.updated` and `clerk/user.deleted`; concurrency 1 per Clerk id
///   (the env-scoped key shared with `sync-user-to-supabase`); idempotency on `event.id`.
/// * Updated: step `load-user` reads the row by `clerk_id`; step `update-profile` updates email,
///   display name, avatar and (only when Clerk sent one) username, **upserting** the row when the
///   update arrived before the create. Returns `{success, userId, changedFields, created}`.
/// * Deleted: step `soft-delete-user` sets `deleted_at` and `visibility='private'`. Returns
///   `{success, userId, deleted: true, found}`.
pub fn user_profile_update() -> Function {
    Function::new(FN_USER_PROFILE_UPDATE)
        .name("Update user profile from Clerk")
        .on_any::<ClerkUserChange>()
        .concurrency(per_user())
        .idempotency("event.id")
        .handler(|ctx: Ctx<ClerkUserChange>, step: Step| async move {
                let d: &Deps = ctx.get()?;
                let updated = match &ctx.event.data {
                    ClerkUserChange::Updated(u) => &u.0,
                    ClerkUserChange::Deleted(deleted) => {
                    let clerk_id = deleted.id.clone();
                    let out: DeleteOut = step
                        .run("soft-delete-user", || async {
                            let user = d
                                .app
                                .db
                                .soft_delete_user(&clerk_id, now_utc())
                                .await
                                .map_err(db_err)?;
                            tracing::info!(clerk_id = %clerk_id, found = user.is_some(), "user soft-deleted");
                            Ok(DeleteOut {
                                found: user.is_some(),
                                db_user_id: user.map(|u| u.id),
                            })
                        })
                        .await?;
                    return Ok(json!({
                        "success": true,
                        "userId": clerk_id,
                        "deleted": true,
                        "found": out.found,
                        "dbUserId": out.db_user_id,
                    }));
                    }
                };
                let user = ClerkUser::from_object(updated);
                let existing: Option<LoadOut> = step
                    .run("load-user", || async {
                        let u = d
                            .app
                            .db
                            .get_user_by_clerk_id(&user.id)
                            .await
                            .map_err(db_err)?;
                        Ok(u.map(|u| LoadOut {
                            db_user_id: u.id,
                            username: u.username,
                        }))
                    })
                    .await?;
                let out: UpdateOut = step
                    .run("update-profile", || async {
                        // Only a username Clerk sent replaces the stored one; a brand-new row
                        // gets the derived slug.
                        let username = match (&user.username, &existing) {
                            (Some(u), _) => Some(u.clone()),
                            (None, None) => Some(user.derived_username()),
                            (None, Some(_)) => None,
                        };
                        let profile = user.profile(username);
                        let res = d.app.db.update_user_profile(&profile, now_utc()).await;
                        let res = match res {
                            Err(e) if e.is_unique_violation() && user.username.is_some() => {
                                tracing::warn!(clerk_id = %user.id, "username taken; keeping the stored one");
                                let keep = if existing.is_some() {
                                    None
                                } else {
                                    Some(user.derived_username())
                                };
                                d.app
                                    .db
                                    .update_user_profile(&user.profile(keep), now_utc())
                                    .await
                            }
                            other => other,
                        };
                        let up = res.map_err(db_err)?;
                        tracing::info!(clerk_id = %user.id, created = up.created, changed = up.changed_fields.len(), "user profile updated");
                        Ok(UpdateOut::from(up))
                    })
                    .await?;
                if existing.is_none() && !out.created {
                    // Someone inserted the row between the two steps: still fine (upsert).
                    tracing::debug!(clerk_id = %user.id, "row appeared between load and update");
                }
                Ok(json!({
                    "success": true,
                    "userId": user.id,
                    "dbUserId": out.db_user_id,
                    "changedFields": out.changed_fields,
                    "created": out.created,
                }))
        })
        .into()
}
