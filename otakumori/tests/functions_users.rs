//! Clerk → `users` through the webhook route, the local executor and the real functions
//!.

mod functions_support;

use functions_support::{clerk_user, TestApp};
use inngest_executor::RunStatus;
use inngest_sdk::Event;
use otakumori::functions::{
    EVENT_CLERK_USER_CREATED, FN_SYNC_USER_TO_SUPABASE, FN_USER_PROFILE_UPDATE,
};
use serde_json::json;

#[tokio::test]
async fn clerk_created_then_updated_gives_one_row_with_updated_fields() {
    let app = TestApp::sqlite().await;
    let hooks = app.webhooks().await;

    let created = clerk_user("user_2abcDEF9xyz", "rei@nerv.example", "Rei", "Ayanami");
    let (status, body) = hooks.clerk("msg_create_1", "user.created", created).await;
    assert_eq!(status, 200, "{body}");
    let run = app.h.wait_for_run_of("msg_create_1").await;
    assert_eq!(run.function_id, app.fid(FN_SYNC_USER_TO_SUPABASE));
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(out["userId"], "user_2abcDEF9xyz");
    assert_eq!(out["created"], true);
    assert_eq!(run.step("upsert-user").unwrap().attempts, 1);

    let user = app
        .db
        .get_user_by_clerk_id("user_2abcDEF9xyz")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out["dbUserId"], user.id.to_string());
    // primary address, not the first one
    assert_eq!(user.email, "rei@nerv.example");
    assert_eq!(user.display_name.as_deref(), Some("Rei Ayanami"));
    // no Clerk username: slug of the email + part of the Clerk id after `user_`
    assert_eq!(user.username.as_deref(), Some("rei_2abcde"));
    assert_eq!(
        user.avatar_url.as_deref(),
        Some("https://img.clerk.example/user_2abcDEF9xyz.png")
    );

    let mut updated = clerk_user(
        "user_2abcDEF9xyz",
        "rei.ayanami@nerv.example",
        "Rei",
        "Ikari",
    );
    updated["username"] = json!("first_child");
    updated["image_url"] = json!("https://img.clerk.example/rei-v2.png");
    let (status, _) = hooks.clerk("msg_update_1", "user.updated", updated).await;
    assert_eq!(status, 200);
    let run = app.h.wait_for_run_of("msg_update_1").await;
    assert_eq!(run.function_id, app.fid(FN_USER_PROFILE_UPDATE));
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["created"], false);
    assert_eq!(
        out["changedFields"],
        json!(["email", "username", "display_name", "avatar_url"])
    );
    assert!(run.step("load-user").is_some() && run.step("update-profile").is_some());

    assert_eq!(app.db.count_rows("users").await.unwrap(), 1);
    let user = app
        .db
        .get_user_by_clerk_id("user_2abcDEF9xyz")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, "rei.ayanami@nerv.example");
    assert_eq!(user.username.as_deref(), Some("first_child"));
    assert_eq!(user.display_name.as_deref(), Some("Rei Ikari"));
    assert_eq!(
        user.avatar_url.as_deref(),
        Some("https://img.clerk.example/rei-v2.png")
    );
}

#[tokio::test]
async fn clerk_updated_before_created_upserts_and_delete_soft_deletes() {
    let app = TestApp::sqlite().await;
    let hooks = app.webhooks().await;

    let (status, _) = hooks
        .clerk(
            "msg_early_update",
            "user.updated",
            clerk_user("user_77early", "asuka@nerv.example", "Asuka", "Langley"),
        )
        .await;
    assert_eq!(status, 200);
    let run = app.h.wait_for_run_of("msg_early_update").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["created"], true);
    let user = app
        .db
        .get_user_by_clerk_id("user_77early")
        .await
        .unwrap()
        .expect("upserted by the update");
    assert_eq!(user.email, "asuka@nerv.example");
    assert_eq!(user.username.as_deref(), Some("asuka_77earl"));

    // The late create finds the row: still one row, not "created".
    hooks
        .clerk(
            "msg_late_create",
            "user.created",
            clerk_user("user_77early", "asuka@nerv.example", "Asuka", "Langley"),
        )
        .await;
    let run = app.h.wait_for_run_of("msg_late_create").await;
    assert_eq!(run.output.as_ref().unwrap()["created"], false);
    assert_eq!(app.db.count_rows("users").await.unwrap(), 1);

    let (status, _) = hooks
        .clerk(
            "msg_delete",
            "user.deleted",
            json!({"id": "user_77early", "deleted": true}),
        )
        .await;
    assert_eq!(status, 200);
    let run = app.h.wait_for_run_of("msg_delete").await;
    assert_eq!(run.function_id, app.fid(FN_USER_PROFILE_UPDATE));
    assert_eq!(
        run.output.as_ref().unwrap()["deleted"],
        true,
        "{:?}",
        run.output
    );
    assert_eq!(run.output.as_ref().unwrap()["found"], true);
    let user = app
        .db
        .get_user_by_clerk_id("user_77early")
        .await
        .unwrap()
        .unwrap();
    assert!(user.deleted_at.is_some());
    assert_eq!(user.visibility, "private");
}

#[tokio::test]
async fn duplicate_svix_delivery_is_one_event_one_run_one_row() {
    let app = TestApp::sqlite().await;
    let hooks = app.webhooks().await;
    let data = clerk_user("user_dup01", "shinji@nerv.example", "Shinji", "Ikari");
    for _ in 0..3 {
        // svix redelivers the same message id (fresh timestamp and signature each time)
        let (status, body) = hooks.clerk("msg_dup", "user.created", data.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let run = app.h.wait_for_run_of("msg_dup").await;
    assert_eq!(run.status, RunStatus::Completed);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.h.executor().runs_for_event("msg_dup").len(), 1);
    assert_eq!(app.runs_of(FN_SYNC_USER_TO_SUPABASE).len(), 1);
    assert_eq!(app.events_named(EVENT_CLERK_USER_CREATED).len(), 1);
    assert_eq!(app.db.count_rows("users").await.unwrap(), 1);
}

#[tokio::test]
async fn a_clerk_event_without_an_id_fails_without_retry_naming_the_field() {
    let app = TestApp::sqlite().await;
    let id = app
        .h
        .send(
            Event::new(
                EVENT_CLERK_USER_CREATED,
                json!({"email_addresses": [{"id": "e1", "email_address": "x@example.com"}]}),
            )
            .with_id("msg_noid"),
        )
        .await;
    let run = app.h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 1, "non-retriable: a single attempt");
    let err = run.error.unwrap();
    assert_eq!(err.name, "EventDecodeError");
    assert!(err.message.contains("missing field `id`"), "{err:?}");
    assert_eq!(app.db.count_rows("users").await.unwrap(), 0);
}
