//! The Otakumori example app.
//!
//! ```text
//! cargo run --example otakumori             # demo: signup → catalogue sync → paid order, then a summary
//! cargo run --example otakumori -- serve    # serve webhooks + /api/inngest on $PORT (default 3000)
//! ```
//!
//! Everything lives in [`otakumori::app`]; see `otakumori/README.md` for the environment.

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = otakumori::app::main_with(args, otakumori::app::Env::process()).await;
    std::process::exit(code);
}
