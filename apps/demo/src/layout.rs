//! The page shell shared by every demo page.

use axum::http::header;
use maud::{DOCTYPE, Markup, html};

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
nav a { margin-right: 1rem; }
input, textarea, button { font: inherit; box-sizing: border-box; }
input, textarea { width: 100%; max-width: 30rem; }
ul.log { list-style: none; padding: 0; }
.status { font-size: .85rem; color: #666; }
[lh-state="open"] .status::after { content: "connected"; color: #080; }
[lh-state="reconnecting"] .status::after, [lh-state="connecting"] .status::after {
  content: "reconnecting…"; color: #a60;
}
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
.notice { border: 1px solid #a60; background: #fff6e5; padding: .5rem 1rem; border-radius: .4rem; }
img.thumb { display: block; max-width: 100%; max-height: 8rem; margin: .3rem 0; }
"#;

/// htmx 2 and its SSE extension, for the pages that run on plain htmx: where unpkg serves them
/// (pinned, with their integrity hashes), and where each is under a directory `npm` filled
/// ([`INSTALL_ASSETS`]; the browser tests serve the same files from npm).
pub(crate) const HTMX2: Script = Script {
    cdn: "https://unpkg.com/htmx.org@2.0.11/dist/htmx.min.js",
    local: "htmx2/dist/htmx.min.js",
    integrity: "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg",
};
pub(crate) const HTMX2_SSE: Script = Script {
    cdn: "https://unpkg.com/htmx-ext-sse@2.2.4/dist/sse.min.js",
    local: "htmx-ext-sse/dist/sse.min.js",
    integrity: "sha384-A986SAtodyH8eg8x8irJnYUk7i9inVQqYigD6qZ9evobksGNIXfeFvDwLSHcp31N",
};

/// The one command that fills a directory with what `--assets` serves.
pub(crate) const INSTALL_ASSETS: &str = "npm install --prefix assets htmx2@npm:htmx.org@2.0.11 htmx-ext-sse@2.2.4";

/// Where `--assets` files are served from.
const ASSETS_PATH: &str = "/assets/";

/// The demo's own script, under a name that changes with its content ([`demo_script_path`]).
const DEMO_SCRIPT: &str = include_str!("../assets/demo.js");

/// `/demo.<hash>.js`: cached for good, like livehtml.js, so a second visit fetches no script.
/// The std hasher is enough here: the name only has to change when the script does within one
/// build, and nothing outside this process computes it.
fn demo_script_path() -> &'static str {
    static PATH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        DEMO_SCRIPT.hash(&mut hasher);
        format!("/demo.{:016x}.js", hasher.finish())
    });
    &PATH
}

/// The pages' Content-Security-Policy: scripts from this origin only (and unpkg.com where htmx
/// comes from there), so nothing injected into a page could run.
pub(crate) fn content_security_policy(assets: &Assets) -> &'static str {
    match assets.dir {
        Some(_) => "script-src 'self'; object-src 'none'; base-uri 'self'",
        None => "script-src 'self' https://unpkg.com; object-src 'none'; base-uri 'self'",
    }
}

/// A third-party script a page loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script {
    cdn: &'static str,
    /// Its path under an `--assets` directory.
    local: &'static str,
    integrity: &'static str,
}

/// Where the plain-htmx pages load htmx from: unpkg, or the directory `--assets` names.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    dir: Option<std::path::PathBuf>,
}

impl Assets {
    /// htmx from unpkg (the default).
    pub fn cdn() -> Self {
        Self { dir: None }
    }

    /// htmx from `dir`, checked now: a directory without the files fails at start, saying how to
    /// fill it, rather than leaving pages that never go live.
    pub fn local(dir: &std::path::Path) -> Result<Self, String> {
        for script in [HTMX2, HTMX2_SSE] {
            let file = dir.join(script.local);
            if !file.is_file() {
                return Err(format!(
                    "--assets {}: no {} (fill it with `{INSTALL_ASSETS}` and pass --assets assets/node_modules)",
                    dir.display(),
                    script.local
                ));
            }
        }
        Ok(Self { dir: Some(dir.to_owned()) })
    }

    fn src(&self, script: Script) -> String {
        match self.dir {
            Some(_) => format!("{ASSETS_PATH}{}", script.local),
            None => script.cdn.to_owned(),
        }
    }

    /// The routes serving the demo's own script and, with `--assets`, htmx's files.
    pub(crate) fn routes(&self) -> axum::Router {
        let script = || async {
            let cache = "public, max-age=31536000, immutable";
            ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, cache)], DEMO_SCRIPT)
        };
        let mut router = axum::Router::new().route(demo_script_path(), axum::routing::get(script));
        if let Some(dir) = &self.dir {
            for script in [HTMX2, HTMX2_SSE] {
                let path = format!("{ASSETS_PATH}{}", script.local);
                router = router.route_service(&path, tower_http::services::ServeFile::new(dir.join(script.local)));
            }
        }
        router
    }
}

/// A complete page around `body` on plain htmx 2 with its SSE extension (no livehtml.js), with
/// a notice the demo's script shows when they did not load.
pub(crate) fn htmx_page(assets: &Assets, title: &str, body: Markup) -> Markup {
    let notice = html! {
        div #cdn-notice.notice role="alert" hidden {
            strong { "This page runs on htmx, which did not load" } " (" span.failed {} "), "
            "so nothing on it will update. "
            @if assets.dir.is_some() {
                "The demo serves it from its --assets directory: check that the files are there."
            } @else {
                "It comes from unpkg.com: without internet, install it once with "
                code { (INSTALL_ASSETS) } " and run the demo with " code { "--assets assets/node_modules" } "."
            }
        }
    };
    shell(
        title,
        html! {
            @for script in [HTMX2, HTMX2_SSE] {
                script src=(assets.src(script)) integrity=(script.integrity) crossorigin="anonymous" {}
            }
        },
        html! { (notice) (body) },
    )
}

/// A complete page around `body`, loading livehtml.js.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    shell(title, html! { script src=(livehtml::SCRIPT_URL) defer {} }, body)
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
                script src=(demo_script_path()) {}
                (scripts)
            }
            body {
                nav {
                    a href="/" { "livehtml" }
                    a href="/chat" { "Chat" }
                    a href="/echo" { "Echo" }
                    a href="/lobby" { "Lobby" }
                    a href="/blog" lh-nav { "Blog" }
                    a href="/counter" lh-nav { "Counter" }
                    a href="/board" lh-nav { "Board" }
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
                li {
                    a href="/board" { "Board" }
                    ": a shared task board: cards moved in one window move in every other, "
                    "who changed what, live statistics."
                }
                li {
                    a href="/dashboard" { "Dashboard" }
                    ": live metrics over Server-Sent Events, on plain htmx (" code { "sse-swap" } ")."
                }
                li {
                    a href="/notifications" { "Notifications" }
                    ": a badge and a toast feed over Server-Sent Events, on plain htmx; mention "
                    code { "@name" } " in the chat."
                }
                li {
                    a href="/chat?transport=sse" { "Chat over SSE" } " and "
                    a href="/counter?transport=sse" { "the counter over SSE" }
                    ": the same sessions without a WebSocket."
                }
            }
        },
    )
}
