//! The Otakumori example app as a plain binary, `otakumori-app`: the same program as
//! `cargo run --example otakumori` (demo with no arguments, `serve` to keep running), built as a
//! `[[bin]]` target so integration tests can start it as a real child process
//! (`env!("CARGO_BIN_EXE_otakumori-app")`) and kill it (`tests/app_kill_restart.rs`).
//!
//! ```text
//! cargo run -p otakumori --bin otakumori-app -- serve
//! ```

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = otakumori::app::main_with(args, otakumori::app::Env::process()).await;
    std::process::exit(code);
}
