//! Serves livehtml.js: the form a request accepts, cached for good under its hashed name,
//! revalidated by `ETag` under its plain one.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::asset::{self, Encoding};

/// Caching for the hashed name: its content never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The script at [`asset::SCRIPT_PATH`]: asked for again on every page load, and `304` while
/// it is the same.
pub(super) async fn serve_plain(headers: HeaderMap) -> Response {
    respond(&headers, "no-cache")
}

/// The script under a hashed name. A hash other than this build's (a page rendered by another
/// version of the app during a rolling deploy) still gets this build's script, but not cached,
/// so nothing keeps it under a name that promises other content.
pub(super) async fn serve_named(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(hash) = file.strip_prefix("livehtml.").and_then(|f| f.strip_suffix(".js")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    respond(&headers, if hash == asset::HASH { IMMUTABLE } else { "no-cache" })
}

fn respond(headers: &HeaderMap, cache: &'static str) -> Response {
    let values = |name| headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok());
    let encoding = Encoding::choose(values(header::ACCEPT_ENCODING));
    let mut out = HeaderMap::new();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(header::ETAG, HeaderValue::try_from(encoding.etag()).expect("a hash is a header value"));
    if asset::matches(values(header::IF_NONE_MATCH)) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(coding) = encoding.header() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    (out, encoding.body()).into_response()
}
