//! Startup errors of the example binary: half-configured services and Inngest keys, bad
//! arguments, a busy port. Configuration errors exit 2 and name the variable; nothing is started.

use std::path::PathBuf;

use otakumori::app::{
    main_with, parse_args, run_demo, start, AppError, Command, DemoOptions, Env, StartOptions,
};

fn temp_db() -> (PathBuf, String) {
    let path =
        std::env::temp_dir().join(format!("otakumori-app-startup-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    (path, url)
}

async fn serve_error(pairs: &[(&str, &str)]) -> AppError {
    let (path, url) = temp_db();
    let mut all = vec![
        ("PORT", "0"),
        ("EXECUTOR_PORT", "0"),
        ("DATABASE_URL", url.as_str()),
    ];
    all.extend_from_slice(pairs);
    let err = match start(&Env::from_pairs(all), StartOptions::default()).await {
        Ok(app) => {
            app.shutdown().await;
            panic!("expected a startup error for {pairs:?}")
        }
        Err(e) => e,
    };
    let _ = std::fs::remove_file(&path);
    err
}

#[tokio::test]
async fn half_configured_services_are_config_errors_naming_the_variable() {
    for (pairs, missing) in [
        (vec![("PRINTIFY_API_KEY", "pk_live")], "PRINTIFY_SHOP_ID"),
        (vec![("PRINTIFY_SHOP_ID", "123")], "PRINTIFY_API_KEY"),
        (
            vec![("STRIPE_API_BASE", "http://127.0.0.1:1")],
            "STRIPE_SECRET_KEY",
        ),
        (vec![("EMAIL_PROVIDER", "smtp")], "SMTP_URL"),
        (
            vec![("RESEND_BASE_URL", "http://127.0.0.1:1")],
            "RESEND_API_KEY",
        ),
        (
            vec![("INNGEST_SIGNING_KEY", "signkey-test-abcd")],
            "INNGEST_EVENT_KEY",
        ),
        (
            vec![("INNGEST_EVENT_KEY", "evt-key")],
            "INNGEST_SIGNING_KEY",
        ),
        (vec![("INNGEST_DEV", "0")], "INNGEST_SIGNING_KEY"),
        (vec![("INNGEST_DEV", "maybe")], "INNGEST_DEV"),
        (
            vec![("CLERK_WEBHOOK_SECRET", "whsec_%%%")],
            "CLERK_WEBHOOK_SECRET",
        ),
        (vec![("PORT", "http")], "PORT"),
        (vec![("EXECUTOR_PORT", "x")], "EXECUTOR_PORT"),
    ] {
        let err = serve_error(&pairs).await;
        assert!(matches!(err, AppError::Config(_)), "{pairs:?}: {err:?}");
        assert_eq!(err.exit_code(), 2, "{pairs:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(missing),
            "{pairs:?}: {msg:?} should name {missing}"
        );
    }
}

#[tokio::test]
async fn the_binary_exits_2_on_a_half_configured_service() {
    let (path, url) = temp_db();
    let env = Env::from_pairs([
        ("PORT", "0"),
        ("EXECUTOR_PORT", "0"),
        ("DATABASE_URL", url.as_str()),
        ("PRINTIFY_API_KEY", "pk_live"),
    ]);
    assert_eq!(main_with(["serve"], env.clone()).await, 2);
    assert_eq!(main_with(Vec::<String>::new(), env).await, 2);
    assert!(
        !path.exists(),
        "no database is created when the config is invalid"
    );
}

#[tokio::test]
async fn the_demo_refuses_live_services() {
    let env = Env::from_pairs([
        ("PRINTIFY_API_KEY", "pk_live"),
        ("PRINTIFY_SHOP_ID", "123"),
        ("STRIPE_SECRET_KEY", "sk_live_x"),
    ]);
    let mut opts = DemoOptions::new(env);
    opts.print = false;
    let err = run_demo(opts).await.expect_err("live services refused");
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(
        msg.contains("PRINTIFY_API_KEY") && msg.contains("STRIPE_SECRET_KEY"),
        "{msg}"
    );
}

#[tokio::test]
async fn arguments() {
    assert_eq!(parse_args(Vec::<String>::new()).unwrap(), Command::Demo);
    assert_eq!(parse_args(["serve"]).unwrap(), Command::Serve);
    assert_eq!(
        parse_args(["serve", "--connect"]).unwrap(),
        Command::ServeConnect
    );
    assert_eq!(parse_args(["--help"]).unwrap(), Command::Help);
    let err = parse_args(["serve", "--now"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(main_with(["bogus"], Env::from_pairs([])).await, 2);
    assert_eq!(main_with(["help"], Env::from_pairs([])).await, 0);
}

#[tokio::test]
async fn a_busy_port_is_a_startup_error_naming_port() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let err = serve_error(&[("PORT", port.as_str())]).await;
    assert!(matches!(err, AppError::Startup(_)), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("PORT"), "{err}");
    drop(taken);
}

#[tokio::test]
async fn an_unusable_executor_state_dir_is_a_startup_error_naming_it() {
    // A regular file where the state directory should be.
    let file = std::env::temp_dir().join(format!(
        "otakumori-app-startup-state-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&file, b"not a directory").unwrap();
    let dir = file.display().to_string();
    let err = serve_error(&[("EXECUTOR_STATE_DIR", dir.as_str())]).await;
    let _ = std::fs::remove_file(&file);
    assert!(matches!(err, AppError::Startup(_)), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("EXECUTOR_STATE_DIR") && msg.contains(&dir),
        "{msg}"
    );
}
