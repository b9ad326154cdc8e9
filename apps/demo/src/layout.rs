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
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #ccc; border-radius: .5rem; padding: .5rem 1rem; min-width: 9rem; }
.metric { font-size: 1.6rem; font-weight: bold; }
.badge { background: #c00; color: #fff; border-radius: 1rem; padding: 0 .5rem; }
.toast { border-left: 4px solid #06c; padding: .25rem .5rem; margin: .25rem 0; background: #f4f8ff; }
.board { display: flex; gap: .75rem; }
.column { flex: 1; background: #f6f6f6; border-radius: .5rem; padding: 0 .5rem .5rem; }
.column ul { list-style: none; padding: 0; min-height: 2rem; }
.column li { background: #fff; border: 1px solid #ddd; border-radius: .4rem; padding: .4rem; margin-bottom: .4rem; }
.moves button { padding: 0 .3rem; }
form.inline { display: inline; }
label { display: block; margin-top: .4rem; }
.error { color: #a00; font-size: .85rem; }
[lh-loading] { opacity: .6; }
img.thumb { display: block; max-width: 100%; max-height: 8rem; margin: .3rem 0; }
"#;

/// htmx 2 and its SSE extension, for the pages that run on plain htmx (pinned, with their
/// integrity hashes; the browser tests serve the same files from npm).
pub(crate) const HTMX2: (&str, &str) = (
    "https://unpkg.com/htmx.org@2.0.11/dist/htmx.min.js",
    "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg",
);
pub(crate) const HTMX2_SSE: (&str, &str) = (
    "https://unpkg.com/htmx-ext-sse@2.2.4/dist/sse.min.js",
    "sha384-A986SAtodyH8eg8x8irJnYUk7i9inVQqYigD6qZ9evobksGNIXfeFvDwLSHcp31N",
);

/// A complete page around `body` on plain htmx 2 with its SSE extension (no livehtml.js).
pub(crate) fn htmx_page(title: &str, body: Markup) -> Markup {
    shell(
        title,
        html! {
            @for (src, integrity) in [HTMX2, HTMX2_SSE] {
                script src=(src) integrity=(integrity) crossorigin="anonymous" {}
            }
        },
        body,
    )
}

/// A complete page around `body`, loading livehtml.js.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    shell(title, html! { script src=(livehtml::SCRIPT_PATH) defer {} }, body)
}

fn shell(title: &str, scripts: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · livehtml" }
                style { (maud::PreEscaped(STYLE)) }
                (scripts)
            }
            body {
                nav {
                    a href="/" { "livehtml" } a href="/chat" { "Chat" } a href="/echo" { "Echo" } a href="/lobby" { "Lobby" }
                    a href="/blog" lh-nav { "Blog" } a href="/counter" lh-nav { "Counter" } a href="/board" lh-nav { "Board" }
                    a href="/dashboard" { "Dashboard" } a href="/notifications" { "Notifications" }
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
                li { a href="/board" { "Board" } ": a shared task board: cards moved in one window move in every other, who changed what, live statistics." }
                li { a href="/dashboard" { "Dashboard" } ": live metrics over Server-Sent Events, on plain htmx (" code { "sse-swap" } ")." }
                li { a href="/notifications" { "Notifications" } ": a badge and a toast feed over Server-Sent Events, on plain htmx; mention " code { "@name" } " in the chat." }
                li { a href="/chat?transport=sse" { "Chat over SSE" } " and " a href="/counter?transport=sse" { "the counter over SSE" } ": the same sessions without a WebSocket." }
            }
        },
    )
}
