//! Serves livehtml.js.

use axum::http::header;
use axum::response::IntoResponse;

/// Where [`crate::Live::client_script`] serves livehtml.js.
pub const SCRIPT_PATH: &str = "/_livehtml/livehtml.js";

/// The source of livehtml.js, the browser client (one file, no build step).
pub const SCRIPT: &str = include_str!("../../client/livehtml.js");

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
