//! The `Origin` check at upgrade time.

use axum::http::{HeaderMap, header};

/// Which page origins may open a live socket.
///
/// Browsers always send `Origin` on a WebSocket upgrade, and a page on another site can open a
/// socket to yours with your user's cookies; this check is what stops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origins {
    /// Only pages served from the same host and port as the endpoint (the `Host` header).
    #[default]
    SameOrigin,
    /// The same origin plus these exact origins, such as `https://app.example.com`.
    Allow(Vec<String>),
    /// Any origin. Only for endpoints that carry no user credentials.
    Any,
}

/// Why an upgrade was refused; answered with 403 Forbidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForeignOrigin(pub(crate) String);

impl Origins {
    /// Checks an upgrade request. A request with no `Origin` header (a non-browser client) passes:
    /// the header protects browser users from other sites, and only browsers send it reliably.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ForeignOrigin> {
        let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
        let origin = origin.to_str().map_err(|_| ForeignOrigin("<not ASCII>".into()))?;
        let same = || {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
            matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
        };
        let allowed = match self {
            Self::Any => true,
            Self::SameOrigin => same(),
            Self::Allow(list) => same() || list.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin)),
        };
        if allowed { Ok(()) } else { Err(ForeignOrigin(origin.to_owned())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_by_default() {
        let o = Origins::default();
        assert!(o.check(&headers("127.0.0.1:3000", Some("http://127.0.0.1:3000"))).is_ok());
        assert!(o.check(&headers("127.0.0.1:3000", None)).is_ok());
        assert!(o.check(&headers("127.0.0.1:3000", Some("http://127.0.0.1:3001"))).is_err());
        assert!(o.check(&headers("127.0.0.1:3000", Some("http://evil.example"))).is_err());
        assert!(o.check(&headers("127.0.0.1:3000", Some("null"))).is_err());
    }

    #[test]
    fn allowlist_and_any() {
        let o = Origins::Allow(vec!["https://app.example.com".into()]);
        assert!(o.check(&headers("api.example.com", Some("https://app.example.com"))).is_ok());
        assert!(o.check(&headers("api.example.com", Some("https://api.example.com"))).is_ok());
        assert!(o.check(&headers("api.example.com", Some("https://evil.example.com"))).is_err());
        assert!(Origins::Any.check(&headers("a", Some("http://b"))).is_ok());
    }
}
