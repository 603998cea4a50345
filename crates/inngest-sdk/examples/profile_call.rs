//! A fixed number of execution calls through the serve `Router` in-process, for profiling with
//! an instruction counter (the machine's other load does not change the counts):
//!
//! ```text
//! cargo build --release --example profile_call
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/profile_call 100 200
//! callgrind_annotate --inclusive=yes cg.out | head -60
//! ```
//!
//! Arguments: N (steps in the call: N−1 memoized, the Nth executed; default 100) and the number
//! of calls (default 200). Set `PROFILE_SIGNED=1` to sign every request. Each answer is checked
//! (one `206 StepRun` for the Nth step) before any call is counted.

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use inngest_sdk::{serve, Inngest};
use tower::ServiceExt;

#[allow(dead_code)]
#[path = "bench_app.rs"]
mod bench_app;
#[path = "loadgen.rs"]
mod loadgen;

const KEY: &str = "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff";
const PATH: &str = "/api/inngest?fnId=bench-app-chain&stepId=step";

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let signed = std::env::var("PROFILE_SIGNED").is_ok_and(|v| v == "1");
    let builder = Inngest::builder("bench-app");
    let builder = if signed {
        builder.dev(false).signing_key(KEY)
    } else {
        builder.dev(true)
    };
    let client = builder.build().expect("client");
    let router = serve::axum::router(&client, [bench_app::chain(1000)]).expect("router");
    let body = Bytes::from(loadgen::build_body(n, loadgen::Ids::Spec));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for i in 0..=calls {
            let mut req = http::Request::builder()
                .method("POST")
                .uri(PATH)
                .header("content-type", "application/json");
            if signed {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                req = req.header("x-inngest-signature", loadgen::sign(KEY, &body, t));
            }
            let req = req.body(Body::from(body.clone())).expect("request");
            let res = router.clone().oneshot(req).await.expect("infallible");
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            if i == 0 {
                let reply = loadgen::Reply {
                    status,
                    body: bytes.to_vec(),
                };
                loadgen::check_step_run(&reply, n, loadgen::Ids::Spec).expect("a 206 StepRun");
            }
        }
    });
    println!("{calls} calls at N={n} (signed: {signed})");
}
