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
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tungstenite::handshake::derive_accept_key;

use crate::transport::outbox::Wire;

/// A request that asked for a WebSocket: answer it with [`Handshake::accept`].
pub(crate) struct Handshake {
    accept: String,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade: a status and a plain-text reason, as axum gives.
pub(crate) struct Rejection(StatusCode, &'static str);

impl Rejection {
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.1));
        *response.status_mut() = self.0;
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
        if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(Rejection(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Version` header did not include '13'"));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(Rejection(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Key` header missing"))?;
        let accept = derive_accept_key(key.as_bytes());
        let on_upgrade = req
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(Rejection(StatusCode::UPGRADE_REQUIRED, "WebSocket request couldn't be upgraded"))?;
        Ok(Self { accept, on_upgrade })
    }

    /// The 101 response, and the future of the upgraded socket (it resolves after the response
    /// has been sent; `None` if the client went away first).
    pub(crate) fn accept(self) -> (Response<Body>, impl Future<Output = Option<Wire>> + Send + 'static) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&self.accept).expect("base64 is a valid header"));
        let socket = async move {
            let upgraded = self.on_upgrade.await.ok()?;
            Some(Wire::Upgraded(TokioIo::new(upgraded)))
        };
        (response, socket)
    }
}
