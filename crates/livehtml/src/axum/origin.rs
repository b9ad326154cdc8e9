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

/// An origin as RFC 6454 serialises it: a scheme, a host and a port (the scheme's default
/// where none is written). Anything else (a path, a trailing slash, credentials, an upper-case
/// scheme, `null`) is not an origin and matches nothing.
#[derive(Debug, PartialEq, Eq)]
struct Parsed<'a> {
    scheme: &'a str,
    host: String,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` (a bracketed IPv6 literal, or a name), lower-cased, with the port if written.
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            (host, if rest.is_empty() { None } else { Some(rest.strip_prefix(':')?) })
        }
        None => match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

fn parse(origin: &str) -> Option<Parsed<'_>> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return None;
    }
    let (host, port) = authority(rest)?;
    Some(Parsed { scheme, host, port: port.or_else(|| default_port(scheme)) })
}

impl Origins {
    /// Checks a request that opens a live connection. A request with no `Origin` header (a
    /// non-browser client) passes: the header protects browser users from other sites, and only
    /// browsers send it reliably.
    ///
    /// The same origin means the same scheme, host and port as the request: the scheme is
    /// `http` (livehtml serves plain TCP), or, behind a proxy trusted with `forwarded_proto`,
    /// the `X-Forwarded-Proto` it sets.
    pub(crate) fn check(&self, headers: &HeaderMap, forwarded_proto: bool) -> Result<(), ForeignOrigin> {
        let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
        let origin = origin.to_str().map_err(|_| ForeignOrigin("<not ASCII>".into()))?;
        let foreign = || ForeignOrigin(origin.to_owned());
        let same = || {
            let Some(theirs) = parse(origin) else { return false };
            let scheme = forwarded_proto
                .then(|| headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()))
                .flatten()
                .map_or("http", |proto| proto.split(',').next().unwrap_or_default().trim());
            let Some((host, port)) = headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(authority) else {
                return false;
            };
            theirs == Parsed { scheme, host, port: port.or_else(|| default_port(scheme)) }
        };
        let listed = |list: &[String]| {
            let theirs = parse(origin);
            theirs.is_some() && list.iter().any(|allowed| parse(allowed.trim_end_matches('/')) == theirs)
        };
        let allowed = match self {
            Self::Any => true,
            Self::SameOrigin => same(),
            Self::Allow(list) => same() || listed(list),
        };
        if allowed { Ok(()) } else { Err(foreign()) }
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

    fn check(o: &Origins, host: &str, origin: Option<&str>) -> bool {
        o.check(&headers(host, origin), false).is_ok()
    }

    #[test]
    fn same_origin_by_default() {
        let o = Origins::default();
        assert!(check(&o, "127.0.0.1:3000", Some("http://127.0.0.1:3000")));
        assert!(check(&o, "127.0.0.1:3000", None));
        assert!(check(&o, "Example.COM", Some("http://example.com:80")), "default port, any case of host");
        assert!(check(&o, "[::1]:3000", Some("http://[::1]:3000")));
        assert!(!check(&o, "127.0.0.1:3000", Some("http://127.0.0.1:3001")));
        assert!(!check(&o, "127.0.0.1:3000", Some("http://evil.example")));
        assert!(!check(&o, "127.0.0.1:3000", Some("null")));
    }

    /// What an outside probe found passing: the scheme was not compared, and neither was the
    /// shape of the origin.
    #[test]
    fn the_scheme_and_the_shape_of_the_origin_count() {
        let o = Origins::default();
        for origin in [
            "https://127.0.0.1:3000",
            "HTTP://127.0.0.1:3000/",
            "evil://127.0.0.1:3000",
            "http://127.0.0.1:3000/",
            "http://127.0.0.1:3000/path",
            "http://user@127.0.0.1:3000",
            "ws://127.0.0.1:3000",
            "127.0.0.1:3000",
        ] {
            assert!(!check(&o, "127.0.0.1:3000", Some(origin)), "{origin} passed");
        }
    }

    #[test]
    fn a_trusted_proxy_says_the_scheme() {
        let o = Origins::default();
        let mut h = headers("app.example.com", Some("https://app.example.com"));
        assert!(o.check(&h, false).is_err(), "https is not what livehtml serves");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(o.check(&h, true).is_ok());
        assert!(o.check(&h, false).is_err(), "an untrusted header says nothing");
        let mut plain = headers("app.example.com", Some("http://app.example.com"));
        plain.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(o.check(&plain, true).is_err(), "http page, https site");
    }

    #[test]
    fn allowlist_and_any() {
        let o = Origins::Allow(vec!["https://app.example.com".into(), "http://localhost:5173/".into()]);
        assert!(check(&o, "api.example.com", Some("https://app.example.com")));
        assert!(check(&o, "api.example.com", Some("https://app.example.com:443")));
        assert!(check(&o, "api.example.com", Some("http://localhost:5173")));
        assert!(check(&o, "api.example.com", Some("http://api.example.com")), "the same origin");
        assert!(!check(&o, "api.example.com", Some("http://app.example.com")), "another scheme");
        assert!(!check(&o, "api.example.com", Some("https://evil.example.com")));
        assert!(Origins::Any.check(&headers("a", Some("http://b")), false).is_ok());
    }
}
