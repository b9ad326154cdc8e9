//! Long-polling, for where neither a WebSocket nor an event stream gets through: `GET
//! path?lh-poll=1` starts a session and answers its signed id; `GET path?lh-poll=<id>&lh-ack=<n>`
//! waits (up to [`Limits::poll_hold`]) until the session has something for the page and answers
//! everything queued, in order, as one JSON batch; the page's events go by `POST` with the id,
//! as over SSE. A session nobody polls for [`Limits::poll_idle`] ends.
//!
//! The connection is the SSE one whose frames a reader takes (`outbox::attach_pull`): the same
//! bound, slow-consumer close, heartbeat and shutdown registry. The reader is kept here between
//! polls. Each answer is numbered; a poll that acknowledges an older batch than the last one
//! sent (the answer was lost on the way) gets that batch again, so nothing taken is lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Mutex as AsyncMutex;

use super::Live;
use super::forward::{Answer, Forwarded};
use crate::observe::Transport;
use crate::protocol::close;
use crate::protocol::names::{event::CLOSE as CLOSE_EVENT, query};
use crate::session::{Connect, Context, Session};
use crate::transport::Limits;
use crate::transport::outbox::{self, Reader, Taken};
use crate::transport::sse::SseLink;

/// The long-poll sessions open in this process.
pub(super) type Polls = std::sync::Mutex<HashMap<u64, Arc<Polled>>>;

/// One long-poll session's side here: its reader and its last answer.
pub(super) struct Polled {
    state: AsyncMutex<State>,
    /// When a poll last started or ended.
    seen: std::sync::Mutex<Instant>,
    /// A poll is waiting now (the session is not idle, however long it waits).
    polling: AtomicBool,
}

impl std::fmt::Debug for Polled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Polled").field("polling", &self.polling).finish_non_exhaustive()
    }
}

struct State {
    reader: Reader,
    /// The number of the last batch sent.
    batch: u64,
    /// That batch, for a poll that did not get it.
    last: Option<String>,
}

/// What a `GET` asks of long-polling: to start (`lh-poll=1`), or a poll of a session, with the
/// last batch its page got.
pub(super) enum Ask {
    Open,
    Poll { id: String, ack: u64 },
}

pub(super) fn ask(query: Option<&str>) -> Option<Ask> {
    let mut poll = None;
    let mut ack = 0;
    for (key, value) in form_urlencoded::parse(query?.as_bytes()) {
        match &*key {
            query::POLL => poll = Some(value.into_owned()),
            query::ACK => ack = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    match poll?.as_str() {
        "1" => Some(Ask::Open),
        id => Some(Ask::Poll { id: id.to_owned(), ack }),
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

impl Live {
    pub(super) fn open_poll<S, F>(&self, limits: Limits, req: Request, factory: F) -> Response
    where
        S: Session,
        F: Fn(&Connect) -> S + Send + 'static,
    {
        if let Some(refused) = self.refusal(req.headers(), &limits, "a long-poll session") {
            return refused;
        }
        let peer = req.extensions().get::<axum::extract::ConnectInfo<super::Peer>>();
        if peer.is_some_and(|ConnectInfo(peer)| !peer.admit_session()) {
            crate::observe::rejected(crate::observe::Rejected::ConnectionRate);
            let headers = [(header::RETRY_AFTER, "1")];
            return (StatusCode::TOO_MANY_REQUESTS, headers, "too many new sessions from this address").into_response();
        }
        let id = self.next_id();
        let (parts, _body) = req.into_parts();
        let span = super::connection_span(id, "poll", parts.uri.path());
        let connect = Connect { id, uri: parts.uri, headers: parts.headers };
        let session = factory(&connect);
        let (since, _) = super::rejoin(&connect);
        drop(connect);
        let (subscriber, inbox, reader, poster) = outbox::attach_pull(limits.outbound_queue);
        // Only livehtml.js polls: it is told how its topics were recovered.
        let ctx = Context::new(id, subscriber, self.inner.pubsub.clone(), limits.parse()).rejoining(since, true);
        self.start(id, &inbox, poster, limits);
        let polled = Arc::new(Polled {
            state: AsyncMutex::new(State { reader, batch: 0, last: None }),
            seen: std::sync::Mutex::new(Instant::now()),
            polling: AtomicBool::new(false),
        });
        self.polls().insert(id, polled.clone());
        let link = SseLink::pulled(inbox, self.inner.connections.token(), &limits, Transport::Poll);
        let live = self.clone();
        super::spawn_connection(span, async move {
            crate::session::run(session, ctx, link).await;
            live.streams().remove(&id);
        });
        // A page that stops polling is gone: its reader is dropped, which ends the session.
        let live = self.clone();
        let weak = Arc::downgrade(&polled);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(limits.poll_idle).await;
                let Some(polled) = weak.upgrade() else { return };
                let idle = polled.seen.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
                if !polled.polling.load(Ordering::Relaxed) && idle >= limits.poll_idle {
                    live.polls().remove(&id);
                    return;
                }
            }
        });
        let signed = self.inner.signer.seal(&format!("{}{id}", super::sse::STREAM_PREFIX));
        json(StatusCode::OK, serde_json::json!({ "id": signed }).to_string())
    }

    pub(super) async fn poll(&self, limits: Limits, signed: &str, ack: u64) -> Response {
        let Some(id) = self.open_stream_id(signed) else {
            crate::observe::rejected(crate::observe::Rejected::ForgedStream);
            return (StatusCode::FORBIDDEN, "poll id does not verify").into_response();
        };
        let answer = if self.holds(id) {
            self.poll_here(id, ack, limits.poll_hold).await
        } else {
            self.forward(Forwarded::Poll { id, ack, hold: limits.poll_hold }).await
        };
        answer.into_response(true)
    }

    /// A poll of a long-poll session of this process: its next batch, waiting at most `hold`.
    pub(super) async fn poll_here(&self, id: u64, ack: u64, hold: Duration) -> Answer {
        let Some(polled) = self.polls().get(&id).cloned() else {
            return Answer::new(StatusCode::GONE, "the session has ended: reconnect");
        };
        polled.polling.store(true, Ordering::Relaxed);
        let answer = self.answer(&polled, id, hold, ack).await;
        polled.polling.store(false, Ordering::Relaxed);
        *polled.seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Answer::new(StatusCode::OK, answer)
    }

    /// The next batch (or the last one again), an empty one after the hold, or the end.
    async fn answer(&self, polled: &Polled, id: u64, hold: Duration, ack: u64) -> String {
        let deadline = tokio::time::Instant::now() + hold;
        let Ok(mut state) = tokio::time::timeout_at(deadline, polled.state.lock()).await else {
            return batch(ack, &[], None, false);
        };
        if ack < state.batch
            && let Some(last) = &state.last
        {
            return last.clone();
        }
        loop {
            let taken = tokio::time::timeout_at(deadline, std::future::poll_fn(|cx| state.reader.poll_take(cx))).await;
            match taken {
                Err(_) => return batch(state.batch, &[], None, false),
                // Only a heartbeat: the poll itself keeps the page's connection alive.
                Ok(Taken::Frames(frames, _)) if frames.is_empty() => {}
                Ok(Taken::Frames(frames, _)) => {
                    let mut messages = Vec::with_capacity(frames.len());
                    let mut closing = None;
                    for frame in &frames {
                        if frame.event_name() == Some(CLOSE_EVENT) {
                            closing = frame.as_text().and_then(|t| serde_json::from_str(t).ok());
                        } else if let Some(text) = frame.stamped_text() {
                            messages.push(text);
                        }
                    }
                    state.batch += 1;
                    let body = batch(state.batch, &messages, closing, false);
                    state.last = Some(body.clone());
                    return body;
                }
                Ok(Taken::End) => {
                    self.polls().remove(&id);
                    let gone = serde_json::json!({ "code": close::GOING_AWAY, "reason": "session ended" });
                    return batch(state.batch, &[], Some(gone), true);
                }
            }
        }
    }

    fn polls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Polled>>> {
        self.inner.polls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One answer: `{"batch", "messages": [text...], "close": {"code", "reason"}?, "end"?}`.
fn batch(number: u64, messages: &[String], close: Option<serde_json::Value>, end: bool) -> String {
    let mut body = serde_json::json!({ "batch": number, "messages": messages });
    if let Some(close) = close {
        body["close"] = close;
    }
    if end {
        body["end"] = true.into();
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_asks_to_open_or_to_poll() {
        assert!(matches!(ask(Some("lh-poll=1&client=lh")), Some(Ask::Open)));
        assert!(matches!(ask(Some("lh-poll=abc&lh-ack=3")), Some(Ask::Poll { ref id, ack: 3 }) if id == "abc"));
        assert!(matches!(ask(Some("lh-poll=abc&lh-ack=x")), Some(Ask::Poll { ack: 0, .. })));
        assert!(ask(Some("client=lh")).is_none());
        assert!(ask(None).is_none());
    }
}
