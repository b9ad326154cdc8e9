//! The WebSocket upgrade, done on hyper and tokio-tungstenite directly.
//!
//! axum's `WebSocketUpgrade` spawns a task whose future keeps the callback, the config and a
//! second copy of the socket alive across its await points: about 2 KB per idle connection,
//! more than our whole connection state. This module validates the handshake the same way
//! (RFC 6455 section 4.2.1), answers 101 with the accept key computed by tungstenite, and
//! returns the upgraded stream; the caller builds a task that, once upgraded, is nothing but
//! the connection's own future.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tungstenite::handshake::derive_accept_key;

use super::listener::Connection;
use crate::protocol::deflate;
use crate::transport::outbox::Wire;

/// A request that asked for a WebSocket: answer it with [`Handshake::accept`].
pub(crate) struct Handshake {
    accept: String,
    on_upgrade: OnUpgrade,
    /// permessage-deflate, when the client offered it in a form livehtml takes.
    pub(crate) deflate: Option<deflate::Agreed>,
}

/// The answer to a version other than 13, with the header that names 13.
const VERSION_13: &str = "this server speaks WebSocket version 13";

/// Why a request is not a WebSocket upgrade: a status and a plain-text reason, as axum gives.
pub(crate) struct Rejection(StatusCode, &'static str);

impl Rejection {
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.1));
        *response.status_mut() = self.0;
        if self.1 == VERSION_13 {
            response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        response
    }
}

fn contains_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether `key` is what RFC 6455 asks of a `Sec-WebSocket-Key`: 16 bytes, base64-encoded.
fn is_key(key: &[u8]) -> bool {
    use base64::Engine as _;
    key.len() == 24 && base64::engine::general_purpose::STANDARD.decode(key).is_ok_and(|bytes| bytes.len() == 16)
}

impl Handshake {
    /// Checks the upgrade request and takes hyper's upgrade handle out of it.
    pub(crate) fn from_request(req: &mut Request<Body>) -> Result<Self, Rejection> {
        if req.version() > Version::HTTP_11 {
            return Err(Rejection(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "WebSocket upgrades need HTTP/1.1"));
        }
        if req.method() != Method::GET {
            return Err(Rejection(StatusCode::METHOD_NOT_ALLOWED, "WebSocket upgrades use GET"));
        }
        let headers = req.headers();
        if !contains_token(headers, header::CONNECTION, "upgrade") {
            return Err(Rejection(StatusCode::BAD_REQUEST, "Connection header did not include 'upgrade'"));
        }
        if !contains_token(headers, header::UPGRADE, "websocket") {
            return Err(Rejection(StatusCode::BAD_REQUEST, "`Upgrade` header did not include 'websocket'"));
        }
        // One version header saying 13 (RFC 6455 section 4.2.1, item 6); another version is
        // answered 426 with the one this server speaks (section 4.4), a missing one 400.
        let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
        match (versions.next().map(HeaderValue::as_bytes), versions.next()) {
            (Some(b"13"), None) => {}
            (None, _) => return Err(Rejection(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Version` header missing")),
            _ => return Err(Rejection(StatusCode::UPGRADE_REQUIRED, VERSION_13)),
        }
        // One key, the base64 of 16 bytes (item 5).
        let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
        let key = keys.next().ok_or(Rejection(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Key` header missing"))?;
        if keys.next().is_some() || !is_key(key.as_bytes()) {
            return Err(Rejection(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Key` is not the base64 of 16 bytes"));
        }
        let accept = derive_accept_key(key.as_bytes());
        let offers = headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok());
        let deflate = deflate::negotiate(offers);
        let on_upgrade = req
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(Rejection(StatusCode::UPGRADE_REQUIRED, "WebSocket request couldn't be upgraded"))?;
        Ok(Self { accept, on_upgrade, deflate })
    }

    /// The 101 response, and the future of the upgraded socket with the bytes read past the
    /// request (it resolves after the response has been sent; `None` if the client went away
    /// first).
    pub(crate) fn accept(self) -> (Response<Body>, impl Future<Output = Option<(Wire, Bytes)>> + Send + 'static) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&self.accept).expect("base64 is a valid header"));
        if let Some(agreed) = self.deflate {
            let value = HeaderValue::from_str(&agreed.header()).expect("the answer is ASCII");
            h.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
        }
        let socket = async move {
            let upgraded = self.on_upgrade.await.ok()?;
            wire(upgraded)
        };
        (response, socket)
    }
}

/// The upgraded socket and the bytes hyper read past the request. A [`crate::Listener`]'s
/// connection served by [`crate::serve`] comes out of hyper's box as the bare `TcpStream` (the
/// box, the listener's hand-off state and hyper's replay of those bytes are freed: about 150
/// bytes an idle connection); any other is used through hyper's `Upgraded`, which replays
/// them itself. `None`: no socket (a connection's stream is taken only by an event stream).
fn wire(upgraded: Upgraded) -> Option<(Wire, Bytes)> {
    match upgraded.downcast::<TokioIo<Connection>>() {
        Ok(parts) => Some((Wire::Tcp(parts.io.into_inner().into_stream()?), parts.read_buf)),
        Err(upgraded) => Some((Wire::Upgraded(Box::new(TokioIo::new(upgraded))), Bytes::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an outside probe had upgraded with 101: keys that are not 16 bytes of base64.
    #[test]
    fn a_key_is_the_base64_of_16_bytes() {
        assert!(is_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "RFC 6455's own example");
        for bad in [
            &b""[..],
            b"x",
            b"dGhlIHNhbXBsZSBub25jZQ",
            b"dGhlIHNhbXBsZSBub25jZQ==,x",
            &[b'A'; 2000],
            b"dGhlIHNhbXBsZSBub25jZQ!=",
            b"dGhlIHNhbXBsZSBub25jZSBvZg==",
        ] {
            assert!(!is_key(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn request(key: &[&str], version: &[&str]) -> Request<Body> {
        let mut req = Request::builder().method(Method::GET).uri("/ws");
        req = req.header(header::CONNECTION, "Upgrade").header(header::UPGRADE, "websocket");
        for k in key {
            req = req.header(header::SEC_WEBSOCKET_KEY, *k);
        }
        for v in version {
            req = req.header(header::SEC_WEBSOCKET_VERSION, *v);
        }
        req.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_list_of_keys_is_refused_with_400_another_version_with_426() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        for (mut req, expected) in [
            (request(&[key, key], &["13"]), StatusCode::BAD_REQUEST),
            (request(&["short"], &["13"]), StatusCode::BAD_REQUEST),
            (request(&[], &["13"]), StatusCode::BAD_REQUEST),
            (request(&[key], &[]), StatusCode::BAD_REQUEST),
            (request(&[key], &["13", "13"]), StatusCode::UPGRADE_REQUIRED),
            (request(&[key], &["8"]), StatusCode::UPGRADE_REQUIRED),
        ] {
            let Err(rejection) = Handshake::from_request(&mut req) else { panic!("accepted") };
            assert_eq!(rejection.0, expected);
            let response = rejection.into_response();
            let named = response.headers().get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes());
            assert_eq!(named, (expected == StatusCode::UPGRADE_REQUIRED).then_some(&b"13"[..]));
        }
        // A good request gets past the checks (and fails only for want of hyper's upgrade handle).
        let Err(Rejection(status, _)) = Handshake::from_request(&mut request(&[key], &["13"])) else { panic!() };
        assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    }
}
