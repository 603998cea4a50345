//! Build-time validation of crons and expressions is the protocol crate's parser, whatever the
//! SDK's features: the same function definitions give the same errors with `test-util` (the
//! workspace test run, where the executor is in the build) and without it (`.ci/run` also runs
//! `cargo test -p inngest-sdk --no-default-features --test build_validation`).

use inngest_sdk::function::FunctionBuilder;
use inngest_sdk::serve::{ServeError, ServeHandler};
use inngest_sdk::{Cancel, Concurrency, Ctx, Function, Inngest, Step, Trigger};
use serde_json::Value;

fn client() -> Inngest {
    Inngest::builder("validation").dev(true).build().unwrap()
}

fn function(id: &str, configure: impl FnOnce(FunctionBuilder) -> FunctionBuilder) -> Function {
    configure(Function::new(id))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(Value::Null) })
}

/// The error building a handler for one function gives, as text.
fn error_of(f: Function) -> String {
    match ServeHandler::new(&client(), [f]) {
        Ok(_) => panic!("the function was accepted"),
        Err(e @ ServeError::InvalidFunction(_)) => e.to_string(),
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

#[test]
fn invalid_crons_give_the_same_errors_with_and_without_test_util() {
    let cases = [
        (
            "0 9 * *",
            "function `c`: invalid `triggers`: invalid cron \"0 9 * *\": expected 5 fields (minute hour day-of-month month day-of-week), found 4",
        ),
        (
            "61 9 * * 1",
            "function `c`: invalid `triggers`: invalid cron \"61 9 * * 1\": minute field \"61\": number out of bounds",
        ),
        (
            "0 9 * * 1 2026",
            "function `c`: invalid `triggers`: invalid cron \"0 9 * * 1 2026\": expected 5 fields (minute hour day-of-month month day-of-week), found 6",
        ),
        (
            "@fortnightly",
            "function `c`: invalid `triggers`: invalid cron \"@fortnightly\": unknown descriptor \"@fortnightly\" (use one of @yearly, @annually, @monthly, @weekly, @daily, @hourly)",
        ),
        (
            "TZ=Europe//Paris 0 9 * * 1",
            "function `c`: invalid `triggers`: invalid cron \"TZ=Europe//Paris 0 9 * * 1\": unknown time zone \"Europe//Paris\"",
        ),
    ];
    for (cron, expected) in cases {
        let f = function("c", |f| f.trigger(Trigger::cron(cron)));
        assert_eq!(error_of(f), expected, "cron {cron:?}");
    }
    // Valid ones pass, including a zone the protocol crate only checks the shape of.
    for cron in [
        "0 9 * * 1",
        "TZ=Europe/Paris */15 9-17 * * MON-FRI",
        "@daily",
    ] {
        let f = function("ok", |f| f.trigger(Trigger::cron(cron)));
        assert!(ServeHandler::new(&client(), [f]).is_ok(), "{cron}");
    }
}

#[test]
fn invalid_expressions_give_the_same_errors_with_and_without_test_util() {
    let trigger = |expr: &'static str| {
        move |f: FunctionBuilder| f.trigger(Trigger::event("shop/order.created").when(expr))
    };
    assert_eq!(
        error_of(function("e", trigger("event.data.amount >"))),
        "function `e`: invalid `triggers`: invalid expression \"event.data.amount >\": unexpected end of expression at position 20"
    );
    assert_eq!(
        error_of(function("e", trigger("order.amount > 1"))),
        "function `e`: invalid `triggers`: invalid expression \"order.amount > 1\": undeclared reference to 'order' (in container '') at position 1"
    );
    let cancel = function("e", |f| {
        f.trigger(Trigger::event("shop/order.created"))
            .cancel_on(Cancel::new("shop/order.voided").if_expr("async.data.id == "))
    });
    assert_eq!(
        error_of(cancel),
        "function `e`: invalid `cancel`: invalid expression \"async.data.id == \": unexpected end of expression at position 18"
    );
    let key = function("e", |f| {
        f.trigger(Trigger::event("shop/order.created"))
            .concurrency(Concurrency::new(1).key("event.data.user_id +"))
    });
    assert_eq!(
        error_of(key),
        "function `e`: invalid `concurrency`: invalid expression \"event.data.user_id +\": unexpected end of expression at position 21"
    );
}
