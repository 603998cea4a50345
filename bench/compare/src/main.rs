//! Side by side: this repository's SDK (`inngest-sdk`) and the official `inngest` crate 0.1.1,
//! serving the same `chain` function on loopback, driven by the same load generator
//! (`examples/loadgen.rs`) in one run.
//!
//! Workload: the function `chain` of `examples/bench_app.rs` — sequential `step.run("s{i}")`, each
//! returning `{"i", "label", "payload": 120 × "x"}`. Each call carries N−1 memoized steps and runs
//! the Nth, answered with one `206` `StepRun` op. The memo is built the way each SDK looks it up:
//! ours by the protocol's step ids (`hex(SHA-1("s{i}"))`), the official crate by its own
//! (`HEX(SHA-1("s{i}:1"))`, upper case; it also ignores `ctx.stack`). Before loading, each server's
//! answer is checked: status 206, one `StepRun` op with the right id and the step's exact output.
//!
//! Servers: both in this process on one tokio runtime (`--server-threads`, default 2); the load
//! generator on its own runtime (`--threads`, default 1), fixed concurrency 32. For each N the
//! servers are driven in alternating rounds (ours first on even rounds, official first on odd
//! ones) so the drifts of a shared machine hit both; calls/s are totals over the rounds and the
//! ratio is ours / official. Besides calls/s, the server runtime's CPU time per call is read from
//! `/proc/self/task/*/schedstat` (only the server being driven is busy): a per-call cost that the
//! machine's other load does not skew, and its ratio official / ours.
//!
//! ```text
//! cd bench/compare && cargo run --release -- [--rounds 6] [--duration 1.5] [--warmup 0.3]
//!     [--concurrency 32] [--ns 1,10,100,1000] [--signed | --both]
//! ```
//! `--signed`: both servers verify an `X-Inngest-Signature` on every call (ours in cloud mode with
//! a signing key; the official crate verifies whenever the header is present). `--both`: dev,
//! then signed.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[allow(dead_code)]
#[path = "../../../crates/inngest-sdk/examples/bench_app.rs"]
mod bench_app;
#[path = "../../../crates/inngest-sdk/examples/loadgen.rs"]
mod loadgen;

use bench_app::StepOutput;
use loadgen::{Ids, Load, Stats, Target};

const KEY: &str = "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff";
/// Steps in the served function; ≥ every N driven (steps after the Nth are never reached).
const STEPS: u32 = 1000;

// ---- the official crate's version of `chain` ------------------------------------------------

/// A step error type, as the official crate's `step.run` requires one (never produced here).
#[derive(Debug, Serialize, Deserialize)]
struct BenchError(String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<BenchError> for inngest::result::Error {
    fn from(e: BenchError) -> Self {
        inngest::result::Error::Dev(inngest::result::DevError::Basic(e.0))
    }
}

fn official_chain(
    client: &inngest::client::Inngest,
    steps: u32,
) -> inngest::function::ServableFn<Value, inngest::result::Error> {
    client.create_function(
        inngest::function::FunctionOpts::new("chain"),
        inngest::function::Trigger::event("bench/chain"),
        move |_input: inngest::function::Input<Value>, step: inngest::step_tool::Step| async move {
            let mut last = 0;
            for i in 0..steps {
                let out: StepOutput = step
                    .run(&format!("s{i}"), || async move {
                        Ok::<_, BenchError>(StepOutput::new(i))
                    })
                    .await?;
                last = out.i;
            }
            Ok(json!({ "steps": steps, "last": last }))
        },
    )
}

async fn serve_official(signed: bool) -> std::net::SocketAddr {
    let client = inngest::client::Inngest::new("bench-app");
    let mut handler = inngest::handler::Handler::new(&client);
    if signed {
        handler = handler.signing_key(KEY);
    }
    handler.register_fn(official_chain(&client, STEPS));
    let app = axum06::Router::new()
        .route(
            "/api/inngest",
            axum06::routing::get(inngest::serve::axum::introspect)
                .put(inngest::serve::axum::register)
                .post(inngest::serve::axum::invoke),
        )
        .with_state(Arc::new(handler));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = axum06::Server::from_tcp(listener)
        .expect("listener")
        .serve(app.into_make_service());
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("official server: {e}");
        }
    });
    addr
}

// ---- ours -------------------------------------------------------------------------------------

async fn serve_ours(signed: bool) -> std::net::SocketAddr {
    let builder = inngest_sdk::Inngest::builder("bench-app");
    let builder = if signed {
        builder.dev(false).signing_key(KEY)
    } else {
        builder.dev(true)
    };
    let client = builder.build().expect("client");
    let app = inngest_sdk::serve::axum::router(&client, [bench_app::chain(STEPS)]).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("inngest-sdk server: {e}");
        }
    });
    addr
}

// ---- driver -----------------------------------------------------------------------------------

struct Opts {
    rounds: usize,
    duration: f64,
    warmup: f64,
    concurrency: usize,
    ns: Vec<usize>,
    modes: Vec<bool>,
    threads: usize,
    server_threads: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 6,
        duration: 1.5,
        warmup: 0.3,
        concurrency: 32,
        ns: vec![1, 10, 100, 1000],
        modes: vec![false],
        threads: 1,
        server_threads: 2,
    };
    let mut args = std::env::args().skip(1);
    let fail = |msg: String| -> ! {
        eprintln!("{msg}");
        std::process::exit(2)
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| fail(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--rounds" => o.rounds = val().parse().unwrap_or_else(|_| fail("--rounds".into())),
            "--duration" => {
                o.duration = val().parse().unwrap_or_else(|_| fail("--duration".into()))
            }
            "--warmup" => o.warmup = val().parse().unwrap_or_else(|_| fail("--warmup".into())),
            "--concurrency" => {
                o.concurrency = val()
                    .parse()
                    .unwrap_or_else(|_| fail("--concurrency".into()))
            }
            "--threads" => o.threads = val().parse().unwrap_or_else(|_| fail("--threads".into())),
            "--server-threads" => {
                o.server_threads = val()
                    .parse()
                    .unwrap_or_else(|_| fail("--server-threads".into()))
            }
            "--ns" => {
                o.ns = val()
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .unwrap_or_else(|_| fail(format!("--ns: {s}")))
                    })
                    .collect()
            }
            "--signed" => o.modes = vec![true],
            "--both" => o.modes = vec![false, true],
            other => fail(format!(
                "unknown option {other}; see the module docs (--rounds --duration --warmup \
                 --concurrency --threads --server-threads --ns --signed --both)"
            )),
        }
    }
    if o.ns.iter().any(|&n| n == 0 || n > STEPS as usize) {
        fail(format!("N must be within 1..={STEPS}"));
    }
    o
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "rustc ?".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{nproc} CPUs ({cpu}), {rustc}, load average at start {load}")
}

struct Side {
    name: &'static str,
    target: Arc<Target>,
    ids: Ids,
}

/// CPU time (ns) used so far by this process's threads named `name` (the server runtime's
/// workers), from `/proc/self/task/*/schedstat`. Only the server being driven is busy, so the
/// difference across a run is that server's CPU: a figure the machine's other load does not skew.
fn threads_cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn main() {
    let opts = parse_opts();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.server_threads)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let loader = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .expect("loadgen runtime");

    println!("machine: {}", machine());
    println!(
        "load: concurrency {}, {} round(s) × {:.1} s per server per N (after {:.1} s warm-up), \
         alternating; server runtime {} threads, load generator {} thread(s)",
        opts.concurrency,
        opts.rounds,
        opts.duration,
        opts.warmup,
        opts.server_threads,
        opts.threads
    );

    for &signed in &opts.modes {
        let ours_addr = servers.block_on(async { serve_ours(signed).await });
        let official_addr = servers.block_on(async { serve_official(signed).await });
        let target = |addr: std::net::SocketAddr| {
            Arc::new(
                Target::new(&format!("http://{addr}/api/inngest"), "bench-app-chain")
                    .expect("target"),
            )
        };
        let sides = [
            Side {
                name: "inngest-sdk",
                target: target(ours_addr),
                ids: Ids::Spec,
            },
            Side {
                name: "inngest 0.1.1",
                target: target(official_addr),
                ids: Ids::Official,
            },
        ];
        let load = Load {
            concurrency: opts.concurrency,
            duration: Duration::from_secs_f64(opts.duration),
            warmup: Duration::from_secs_f64(opts.warmup),
            signing_key: signed.then(|| KEY.to_owned()),
        };
        println!();
        println!(
            "### {} (N−1 steps memoized, the Nth executed → one 206 StepRun)",
            if signed {
                "Signed: every request's X-Inngest-Signature verified"
            } else {
                "Dev mode: no signature"
            }
        );
        println!();
        println!(
            "| N | body | inngest-sdk calls/s | inngest 0.1.1 calls/s | ratio | per-round ratios | \
             server CPU µs/call (ours / official) | CPU ratio | inngest-sdk p50 / p99 ms | \
             inngest 0.1.1 p50 / p99 ms | errors / non-206 |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for &n in &opts.ns {
            let bodies: Vec<Arc<Vec<u8>>> = sides
                .iter()
                .map(|s| Arc::new(loadgen::build_body(n, s.ids)))
                .collect();
            // Both must do the work: one 206 StepRun with the Nth step's output.
            for (side, body) in sides.iter().zip(&bodies) {
                let reply = loader
                    .block_on(loadgen::probe(
                        side.target.clone(),
                        body,
                        load.signing_key.as_deref(),
                    ))
                    .unwrap_or_else(|e| panic!("{}: {e}", side.name));
                if let Err(e) = loadgen::check_step_run(&reply, n, side.ids) {
                    eprintln!(
                        "{} at N={n} does not answer the expected StepRun: {e}",
                        side.name
                    );
                    eprintln!("the comparison would be void; stopping");
                    std::process::exit(1);
                }
            }
            let mut totals = [Stats::default(), Stats::default()];
            let mut cpu_ns = [0u64; 2];
            let mut ratios = Vec::new();
            for round in 0..opts.rounds {
                let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                let mut per_round = [0.0f64; 2];
                for i in order {
                    let cpu_before = threads_cpu_ns("server");
                    let s = loader.block_on(loadgen::run(
                        sides[i].target.clone(),
                        bodies[i].clone(),
                        &load,
                    ));
                    // Includes the warm-up's calls, which are not counted: subtract pro rata.
                    let measured = s.elapsed.as_secs_f64()
                        / (s.elapsed.as_secs_f64() + load.warmup.as_secs_f64());
                    cpu_ns[i] += ((threads_cpu_ns("server") - cpu_before) as f64 * measured) as u64;
                    per_round[i] = s.calls_per_sec();
                    totals[i].merge(s);
                }
                ratios.push(per_round[0] / per_round[1].max(1e-9));
            }
            let [ours, official] = &totals;
            let fmt_ratios = ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ");
            let cpu_per_call = |i: usize| cpu_ns[i] as f64 / 1000.0 / totals[i].calls.max(1) as f64;
            println!(
                "| {n} | {:.0} KB | {:.0} | {:.0} | **{:.2}×** | {fmt_ratios} | {:.0} / {:.0} | {:.2}× | \
                 {:.2} / {:.2} | {:.2} / {:.2} | {} / {}, {} / {} |",
                bodies[0].len() as f64 / 1024.0,
                ours.calls_per_sec(),
                official.calls_per_sec(),
                ours.calls_per_sec() / official.calls_per_sec().max(1e-9),
                cpu_per_call(0),
                cpu_per_call(1),
                cpu_per_call(1) / cpu_per_call(0).max(1e-9),
                ours.percentile_ms(0.5),
                ours.percentile_ms(0.99),
                official.percentile_ms(0.5),
                official.percentile_ms(0.99),
                ours.errors,
                ours.non_206,
                official.errors,
                official.non_206,
            );
        }
    }
}
