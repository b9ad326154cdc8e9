//! Who a browser is: a random id in a cookie, set by the pages that count people (the chat's
//! "N online", the lobby's players), so that several tabs of one browser are one person.

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookie's name.
const COOKIE: &str = "lh-user";

/// This browser's id from its cookie, if it has a well-formed one.
pub(crate) fn of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get_all(header::COOKIE).into_iter().filter_map(|v| v.to_str().ok());
    cookies
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
}

/// The id of the browser that connected, or one of the connection's own (a client without the
/// cookie counts alone).
pub(crate) fn of_connection(connect: &livehtml::Connect) -> String {
    of(connect.headers()).unwrap_or_else(|| format!("connection-{}", connect.id()))
}

/// The `Set-Cookie` a page answers with when the browser has no id yet.
pub(crate) fn cookie(headers: &HeaderMap) -> HeaderMap {
    let mut set = HeaderMap::new();
    if of(headers).is_none() {
        let cookie = format!("{COOKIE}={}; Path=/; SameSite=Lax; HttpOnly", new_id());
        set.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("hex is a valid header value"));
    }
    set
}

/// A random id (hex).
pub(crate) fn new_id() -> String {
    let mut id = [0u8; 16];
    // Without an OS random source (never on supported systems) the time still varies.
    if getrandom::fill(&mut id).is_err() {
        id = time::OffsetDateTime::now_utc().unix_timestamp_nanos().to_le_bytes();
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}
