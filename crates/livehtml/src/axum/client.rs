//! Serves livehtml.js.

use axum::http::header;
use axum::response::IntoResponse;

/// Where [`crate::Live::client_script`] serves livehtml.js.
pub const SCRIPT_PATH: &str = "/_livehtml/livehtml.js";

/// The source of livehtml.js, the browser client (no build step): its six parts, dom.js
/// (applying the server's HTML), input.js (what a page sends, and when), commands.js (client
/// commands and loading states), upload.js (files over the socket), http.js (SSE + POST and
/// long-polling) and livehtml.js (connections, the WebSocket, fallback, sending, navigation),
/// as one script.
pub const SCRIPT: &str = concat!(
    include_str!("../../client/dom.js"),
    include_str!("../../client/input.js"),
    include_str!("../../client/commands.js"),
    include_str!("../../client/upload.js"),
    include_str!("../../client/http.js"),
    include_str!("../../client/livehtml.js")
);

pub(crate) async fn serve_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
}
