//! The page shell shared by every demo page.

use maud::{DOCTYPE, Markup, html};

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
nav a { margin-right: 1rem; }
input, textarea, button { font: inherit; box-sizing: border-box; }
input, textarea { width: 100%; max-width: 30rem; }
ul.log { list-style: none; padding: 0; }
.status { font-size: .85rem; color: #666; }
[lh-state="open"] .status::after { content: "connected"; color: #080; }
[lh-state="reconnecting"] .status::after, [lh-state="connecting"] .status::after { content: "reconnecting…"; color: #a60; }
[lh-state="closed"] .status::after { content: "disconnected"; color: #a00; }
.player.ready { color: #080; }
"#;

/// A complete page around `body`, loading livehtml.js.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · livehtml" }
                style { (maud::PreEscaped(STYLE)) }
                script src=(livehtml::SCRIPT_PATH) defer {}
            }
            body {
                nav {
                    a href="/" { "livehtml" } a href="/chat" { "Chat" } a href="/echo" { "Echo" } a href="/lobby" { "Lobby" }
                    a href="/blog" lh-nav { "Blog" } a href="/counter" lh-nav { "Counter" }
                }
                (body)
            }
        }
    }
}

pub(crate) async fn home() -> Markup {
    page(
        "Demo",
        html! {
            h1 { "livehtml demo" }
            p { "HTML over WebSockets: the server renders, the browser swaps fragments in." }
            ul {
                li { a href="/chat" { "Chat" } ": a room every open tab shares, kept in SQLite." }
                li { a href="/echo" { "Echo" } ": what you type comes back from the server." }
                li { a href="/lobby" { "Lobby" } ": one message updates three regions of the page." }
                li { a href="/blog" { "Blog" } ": live views on SQLite, navigated over one socket like a SPA." }
                li { a href="/counter" { "Counter" } ": state on the server, a shared counter and a server clock." }
            }
        },
    )
}
