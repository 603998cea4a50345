//! The page frame shared by every dashboard page: navigation, the inline stylesheet and script
//! (so the dashboard works offline, with no CDN), and the footer saying what this server is.

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The stylesheet, inlined into every page.
const CSS: &str = include_str!("dashboard.css");
/// The live-update script, inlined into every page.
const JS: &str = include_str!("dashboard.js");

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// `/`: apps and functions.
    Functions,
    /// `/runs` and `/runs/{id}`.
    Runs,
    /// `/events`.
    Events,
}

/// A whole page: `<head>`, the navigation bar, `body` and the footer.
pub(crate) fn page(title: &str, nav: Nav, body: Markup) -> Markup {
    let link = |href: &str, label: &str, which: Nav| {
        html! { a href=(href) class=[(nav == which).then_some("here")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Inngest local dev server" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top {
                    span.brand { "Inngest local dev server" }
                    (link("/", "Functions", Nav::Functions))
                    (link("/runs", "Runs", Nav::Runs))
                    (link("/events", "Events", Nav::Events))
                }
                main { (body) }
                footer #footer {
                    "This is a local development server (the inngest-executor crate), not a \
                     production Inngest server. The pages show event data and run outputs as \
                     received; keys are never shown. State lives in this process."
                }
                script { (PreEscaped(JS)) }
            }
        }
    }
}
