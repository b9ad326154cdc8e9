//! Serving an app on a [`Listener`] with every request head timed and sized: `livehtml::serve`.
//!
//! `axum::serve` runs hyper without a timer, and hyper's header timeout is silently off without
//! one: a keep-alive connection could trickle its second request head forever, and a head over
//! the limit could only be cut off, never answered. This accept loop is `axum::serve`'s (one
//! task per connection, graceful shutdown) with hyper configured: a timer, a deadline for every
//! request head (also the idle time allowed between two requests of a keep-alive connection),
//! and a head size limit answered with `431 Request Header Fields Too Large`.
//!
//! Hand-written because axum 0.8 offers no way to configure the hyper builder behind `serve`.

use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{Pin, pin};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

use super::listener::{Listener, Peer};

/// Serves `app` on `listener` until the future is dropped (or, with
/// [`Serve::with_graceful_shutdown`], until its signal and every open connection are done).
///
/// What `axum::serve` does, plus: every request head has a deadline ([`Listener::head_timeout`],
/// 10 s by default, also how long a keep-alive connection may sit between two requests), a
/// head over [`Listener::max_head_bytes`] is answered `431`, and each request carries its
/// [`Peer`] as `ConnectInfo<Peer>` (no `into_make_service_with_connect_info` needed), and what a
/// connection's requests publish in one poll (pipelined `POST`s) reaches each subscriber in one
/// write. HTTP/1.1; put a proxy in front for HTTP/2 and TLS.
///
/// ```no_run
/// # async fn run(app: axum::Router, live: livehtml::Live) -> std::io::Result<()> {
/// let listener = livehtml::Listener::bind("127.0.0.1:3000").await?;
/// livehtml::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal())).await
/// # }
/// ```
pub fn serve(listener: Listener, app: Router) -> Serve {
    Serve { listener, app, signal: Box::pin(std::future::pending()) }
}

/// The server [`serve`] returns; await it.
#[must_use = "a server does nothing until awaited"]
pub struct Serve {
    listener: Listener,
    app: Router,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve").field("listener", &self.listener).finish_non_exhaustive()
    }
}

impl Serve {
    /// Stops accepting once `signal` resolves, lets every connection finish its requests
    /// (hyper's graceful shutdown), and resolves when the last one has closed.
    pub fn with_graceful_shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.signal = Box::pin(signal);
        self
    }

    async fn run(self) -> io::Result<()> {
        let Self { mut listener, app, signal } = self;
        let head_timeout = listener.head_timeout;
        let max_head = listener.max_head;
        // hyper answers a head over the limit with 431; the listener's own cut-off stays above it.
        listener.answer_oversize();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(());
        let mut signal = signal;
        loop {
            let (io, addr) = tokio::select! {
                accepted = axum::serve::Listener::accept(&mut listener) => accepted,
                () = &mut signal => break,
            };
            let peer = Peer::new(addr, &io);
            let service = app.clone().map_request(move |req: Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer.clone()));
                req
            });
            let mut stop = stop_rx.clone();
            let done = done_rx.clone();
            // Corked, as a live connection's task is: what the requests of one poll publish
            // (pipelined POSTs, say) goes to each subscriber in one write.
            tokio::spawn(crate::transport::outbox::Corked::new(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(TokioTimer::new()).header_read_timeout(head_timeout).max_header_size(max_head);
                let service = TowerToHyperService::new(service);
                let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service).with_upgrades());
                let mut stopping = false;
                loop {
                    tokio::select! {
                        result = conn.as_mut() => {
                            if let Err(e) = result {
                                tracing::trace!(%addr, "connection ended: {e}");
                            }
                            break;
                        }
                        changed = stop.changed(), if !stopping => {
                            stopping = true;
                            if changed.is_ok() {
                                conn.as_mut().graceful_shutdown();
                            }
                        }
                    }
                }
                drop(done);
            }));
        }
        drop(listener);
        let _ = stop_tx.send(true);
        drop(done_rx);
        done_tx.closed().await;
        Ok(())
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A request's handler runs inside its connection's cork, so what pipelined requests
    /// publish in one poll goes to each subscriber in one write.
    #[tokio::test]
    async fn requests_are_handled_in_a_corked_pass() {
        let app = Router::new()
            .route("/", axum::routing::get(|| async { crate::transport::outbox::corked_now().to_string() }));
        let listener = Listener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { serve(listener, app).await.unwrap() });
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("\r\n\r\ntrue"), "{answer}");
    }
}
