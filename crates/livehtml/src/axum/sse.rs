//! Server-Sent Events on a live endpoint: a `GET` that accepts `text/event-stream` opens a
//! stream that runs a session, a `POST` to the same path (carrying the stream's signed id)
//! delivers the page's events to it.

use std::collections::HashMap;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::Either;

use super::forward::{Answer, Forwarded};
use super::{Live, Peer, origin};
use crate::observe::{self, Rejected, Transport};
use crate::protocol::{Inbound, close, datastar, names, parse_event};
use crate::session::{Connect, Context, Session};
use crate::transport::Limits;
use crate::transport::outbox::{self, Framing, Inbox, PostError, Poster, Wire};
use crate::transport::sse::{EventStream, SseLink, preamble};

/// The header a post names its stream with (or the `lh-stream` query parameter).
pub const STREAM_HEADER: &str = names::header::STREAM;
/// What a signed stream id says before its MAC.
pub(super) const STREAM_PREFIX: &str = "s1.";

/// The streams open in this process, for posts to find theirs.
pub(super) type Streams = std::sync::Mutex<HashMap<u64, Poster>>;

impl Live {
    pub(super) fn open_stream<S, F>(&self, shared_limits: Arc<Limits>, req: Request, factory: F) -> Response
    where
        S: Session,
        F: Fn(&Connect) -> S + Send + 'static,
    {
        let limits = *shared_limits;
        if let Some(refused) = self.refusal(req.headers(), &limits, "an event stream") {
            return refused;
        }
        let id = self.next_id();
        let (parts, _body) = req.into_parts();
        let span = super::connection_span(id, "sse", parts.uri.path());
        // Served through `Listener` over HTTP/1.1: the socket leaves hyper after the head.
        let takeover = match parts.extensions.get::<ConnectInfo<Peer>>() {
            Some(ConnectInfo(peer)) if parts.version == Version::HTTP_11 => peer.take_over(),
            _ => None,
        };
        let datastar = parts.headers.contains_key(datastar::REQUEST_HEADER);
        if datastar {
            self.replace_stream(parts.uri.query());
        }
        let connect = Connect { id, uri: parts.uri, headers: parts.headers };
        let session = factory(&connect);
        let (since, lh) = super::rejoin(&connect);
        // The header values are slices of hyper's request buffer: not kept for the stream's life.
        drop(connect);
        let retry = u64::try_from(limits.sse_retry.as_millis()).unwrap_or(u64::MAX);
        let signed = self.inner.signer.seal(&format!("{STREAM_PREFIX}{id}"));
        let preamble = preamble(&signed, retry, datastar);
        let token = self.inner.connections.token();
        let live = self.clone();
        let headers = [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies such as nginx must not hold events back.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ];

        let Some((released, socket)) = takeover else {
            let (subscriber, inbox, reader, poster) = outbox::attach_pull(limits.outbound_queue);
            let ctx = Context::new(id, subscriber, self.inner.pubsub.clone(), limits.parse()).rejoining(since, lh);
            self.start(id, &inbox, poster, limits);
            let link = SseLink::pulled(inbox, token, &limits, Transport::Sse);
            super::spawn_connection(span, async move {
                crate::session::run(session, ctx, link).await;
                live.streams().remove(&id);
            });
            let body = Body::from_stream(EventStream::new(reader, preamble, datastar));
            return (headers, body).into_response();
        };

        // Once the socket is ours, the task's state is the stream's future and nothing else.
        let task = socket.then(move |socket| {
            let Ok(socket) = socket else { return Either::Left(std::future::ready(())) };
            let framing = Framing::sse(datastar);
            let first = outbox::chunk(&preamble);
            drop(preamble);
            let (subscriber, inbox, poster) =
                outbox::attach_push(limits.outbound_queue, Wire::Tcp(socket), framing, first);
            let ctx = Context::new(id, subscriber, live.inner.pubsub.clone(), limits.parse()).rejoining(since, lh);
            live.start(id, &inbox, poster, limits);
            let link = SseLink::pushed(inbox, token, shared_limits);
            Either::Right(crate::session::run(session, ctx, link).map(move |()| {
                live.streams().remove(&id);
            }))
        });
        super::spawn_connection(span, task);
        (headers, Body::new(released)).into_response()
    }

    /// A Datastar page that calls `@get` again for its stream (1.0.4 aborts the request in
    /// flight with the same method and URL) sends the old stream's id among its signals: that
    /// stream is closed now, rather than when its heartbeat finds the socket gone. (A stream held
    /// by another process of a cluster is left to its heartbeat.)
    fn replace_stream(&self, query: Option<&str>) {
        let Some(signals) = datastar::query_signals(query) else { return };
        let Some((_, Some(signed))) = datastar_signals(signals.as_bytes()) else { return };
        let Some(old) = self.open_stream_id(&signed) else { return };
        if let Some(poster) = self.streams().get(&old) {
            poster.close(close::GOING_AWAY);
        }
    }

    /// Registers a new stream: its heartbeat, the shutdown check, and where its posts go.
    pub(super) fn start(&self, id: u64, inbox: &Inbox, poster: Poster, limits: Limits) {
        self.heartbeat(limits.sse_heartbeat).add(inbox);
        // Registered before this check, so `shutdown` either finds it or is seen here.
        if self.inner.shutdown.is_cancelled() {
            inbox.close(self.inner.config.shutdown_code);
        }
        self.streams().insert(id, poster);
    }

    pub(super) async fn post_event(&self, limits: Limits, req: Request) -> Response {
        if let Err(origin::ForeignOrigin(origin)) =
            self.inner.config.origins.check(req.headers(), self.inner.config.forwarded_proto)
        {
            tracing::info!(%origin, "refused a post from a foreign origin");
            observe::rejected(Rejected::Origin);
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
        let (parts, body) = req.into_parts();
        let (headers, query) = (parts.headers, parts.uri.query());
        // An event sent with another method than POST is named after it unless it says its name
        // (a Datastar `@delete('/live')` is the event "delete").
        let by_method = (parts.method != Method::POST).then(|| parts.method.as_str().to_ascii_lowercase());
        let bytes = match axum::body::to_bytes(body, limits.max_message_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => {
                let reason = format!("event exceeds {} bytes", limits.max_message_bytes);
                return (StatusCode::PAYLOAD_TOO_LARGE, reason).into_response();
            }
        };
        let (text, from_body) = if headers.contains_key(datastar::REQUEST_HEADER) {
            // Datastar 1.0.4 sends a DELETE's signals (and a GET's) in `?datastar=`.
            let query_signals = datastar::query_signals(query).filter(|_| bytes.is_empty());
            let signals = query_signals.as_ref().map_or(&bytes[..], |s| s.as_bytes());
            match datastar_event(signals, &headers, by_method.as_deref()) {
                Some((text, stream)) => (Some(text), stream),
                None => return (StatusCode::BAD_REQUEST, "Datastar signals are not a JSON object").into_response(),
            }
        } else if is_form(&headers) {
            (form_to_json(&bytes, htmx_headers(&headers)), None)
        } else {
            (String::from_utf8(bytes.to_vec()).ok(), None)
        };
        let Some(signed) = stream_id(&headers, query).or(from_body) else {
            observe::rejected(Rejected::ForgedStream);
            return (StatusCode::FORBIDDEN, "no stream id (LH-Stream header, lh-stream parameter or lhStream signal)")
                .into_response();
        };
        let Some(id) = self.open_stream_id(&signed) else {
            observe::rejected(Rejected::ForgedStream);
            return (StatusCode::FORBIDDEN, "stream id does not verify").into_response();
        };
        // A piece of a file a live view's page uploads (it cannot send binary messages here).
        let binary = headers
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().eq_ignore_ascii_case(b"application/octet-stream"));
        let inbound = if binary {
            Inbound::Binary(bytes)
        } else {
            let Some(text) = text else {
                return (StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response();
            };
            // Checked here so a bad post gets its reason and the stream stays open.
            if let Err(e) = parse_event(&text, &limits.parse()) {
                return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
            }
            Inbound::Text(text)
        };
        let answer = if self.holds(id) {
            self.deliver(id, inbound)
        } else {
            self.forward(Forwarded::Post { id, inbound }).await
        };
        answer.into_response(false)
    }

    /// Hands a page's event to its stream (or long-poll session) in this process.
    pub(super) fn deliver(&self, id: u64, inbound: Inbound) -> Answer {
        let poster = self.streams().get(&id).cloned();
        let Some(poster) = poster.filter(|p| !p.is_gone()) else {
            return Answer::new(StatusCode::GONE, "the stream has ended: reconnect");
        };
        match poster.post(inbound) {
            Ok(()) => Answer::new(StatusCode::NO_CONTENT, ""),
            Err(PostError::Gone) => Answer::new(StatusCode::GONE, "the stream has ended: reconnect"),
            Err(PostError::Busy) => Answer::new(StatusCode::TOO_MANY_REQUESTS, "the stream is behind"),
        }
    }

    /// The connection a signed stream (or long-poll) id names, if it verifies.
    pub(super) fn open_stream_id(&self, signed: &str) -> Option<u64> {
        self.inner.signer.open(signed).ok().and_then(|body| body.strip_prefix(STREAM_PREFIX)?.parse().ok())
    }

    pub(super) fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Poster>> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A Datastar request's signals (nested ones as dotted names), the stream id among them, and
/// the event's name from an `LH-Event` header (else `default_name`), as the event JSON a socket
/// would have sent.
pub(super) fn datastar_event(
    body: &[u8],
    headers: &HeaderMap,
    default_name: Option<&str>,
) -> Option<(String, Option<String>)> {
    let (mut flat, stream) = datastar_signals(body)?;
    let mut marks = serde_json::Map::new();
    marks.insert(datastar::REQUEST_HEADER.to_owned(), "true".into());
    if let Some(event) = headers.get(names::header::EVENT).and_then(|v| v.to_str().ok()).or(default_name) {
        marks.insert(names::header::EVENT.to_owned(), event.into());
    }
    flat.insert("HEADERS".to_owned(), serde_json::Value::Object(marks));
    Some((serde_json::Value::Object(flat).to_string(), stream))
}

/// A Datastar request's signals, nested ones as dotted names, and the stream id taken out of
/// them (`None` when they are not a JSON object).
fn datastar_signals(body: &[u8]) -> Option<(serde_json::Map<String, serde_json::Value>, Option<String>)> {
    let serde_json::Value::Object(signals) = serde_json::from_slice(body).ok()? else { return None };
    let mut flat = serde_json::Map::new();
    flatten("", signals, &mut flat);
    let stream = match flat.remove(names::signal::STREAM) {
        Some(serde_json::Value::String(id)) => Some(id),
        _ => None,
    };
    Some((flat, stream))
}

fn flatten(
    prefix: &str,
    object: serde_json::Map<String, serde_json::Value>,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    for (key, value) in object {
        let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
        match value {
            serde_json::Value::Object(inner) => flatten(&name, inner, out),
            value => {
                out.insert(name, value);
            }
        }
    }
}

/// A `GET` for an event stream rather than a WebSocket upgrade.
pub(super) fn wants_event_stream(headers: &HeaderMap) -> bool {
    let accepts = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
    !headers.contains_key(header::UPGRADE) && accepts.into_iter().any(|v| v.contains("text/event-stream"))
}

pub(super) fn stream_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(STREAM_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(value.to_owned());
    }
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == names::query::STREAM).map(|(_, v)| v.into_owned())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The htmx request headers of a form post, as the object a socket message carries them in:
/// `headers` for htmx 4 (it sends `HX-Source`), `HEADERS` for htmx 2.
fn htmx_headers(headers: &HeaderMap) -> Option<(&'static str, serde_json::Value)> {
    headers.get("hx-request")?;
    let mut object = serde_json::Map::new();
    for name in ["HX-Request", "HX-Trigger", "HX-Trigger-Name", "HX-Target", "HX-Current-URL", "HX-Source"] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            object.insert(name.to_owned(), value.into());
        }
    }
    let key = if headers.contains_key("hx-source") { "headers" } else { "HEADERS" };
    Some((key, serde_json::Value::Object(object)))
}

/// A form post (plain `hx-post`) as the JSON object a socket would have sent: one key per field,
/// an array where a field repeats, and htmx's request headers where htmx sent it.
pub(super) fn form_to_json(body: &[u8], headers: Option<(&'static str, serde_json::Value)>) -> Option<String> {
    let mut object = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(body) {
        match object.get_mut(key.as_ref()) {
            Some(serde_json::Value::Array(values)) => values.push(value.into_owned().into()),
            Some(first) => *first = serde_json::Value::Array(vec![first.take(), value.into_owned().into()]),
            None => {
                object.insert(key.into_owned(), value.into_owned().into());
            }
        }
    }
    if let Some((key, headers)) = headers {
        object.insert(key.to_owned(), headers);
    }
    Some(serde_json::Value::Object(object).to_string())
}
