//! A TCP proxy on loopback for fault-injection tests: it sits between clients and a server
//! and, on command, cuts every connection, or one, or refuses new ones for a while, the way a
//! dropped network, a proxy restart or a blocked port would.
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> std::io::Result<()> {
//! let proxy = faultproxy::Proxy::start(server).await?;
//! // point clients at proxy.addr() instead of the server …
//! proxy.cut_all(); // every connection through it is reset
//! # Ok(())
//! # }
//! ```
//!
//! From other languages (browser tests), run the binary: it prints `listening on <addr>` and
//! `control on <addr>`, an HTTP endpoint taking `POST /cut`, `POST /cut/<id>`, `POST /refuse`,
//! `POST /accept` and `GET /connections`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running proxy; dropping it stops accepting (connections already through keep going until
/// cut or closed).
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    upstream: SocketAddr,
    /// Open connections by id, each with the switch that cuts it.
    open: Mutex<HashMap<u64, CancellationToken>>,
    next_id: AtomicU64,
    refusing: AtomicBool,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let inner = Arc::new(Inner {
            addr: listener.local_addr()?,
            upstream,
            open: Mutex::default(),
            next_id: AtomicU64::new(1),
            refusing: AtomicBool::new(false),
            stop: CancellationToken::new(),
        });
        tokio::spawn(accept(listener, inner.clone()));
        Ok(Self { inner })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The ids of the connections open through the proxy, oldest first.
    pub fn connections(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.inner.open().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Resets every open connection on both sides (a dropped network: no FIN, no close frame).
    /// Returns how many were cut.
    pub fn cut_all(&self) -> usize {
        let cut: Vec<CancellationToken> = self.inner.open().drain().map(|(_, c)| c).collect();
        cut.iter().for_each(CancellationToken::cancel);
        cut.len()
    }

    /// Resets one connection; whether it was open.
    pub fn cut(&self, id: u64) -> bool {
        let cut = self.inner.open().remove(&id);
        cut.inspect(CancellationToken::cancel).is_some()
    }

    /// While refusing, a new connection is reset as soon as it is accepted (the server looks
    /// unreachable); open ones are left alone.
    pub fn refuse(&self, refusing: bool) {
        self.inner.refusing.store(refusing, Ordering::SeqCst);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Inner {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CancellationToken>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn accept(listener: TcpListener, inner: Arc<Inner>) {
    let stop = inner.stop.clone();
    let weak = Arc::downgrade(&inner);
    drop(inner);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((client, _)) = accepted else { continue };
        let Some(inner) = weak.upgrade() else { return };
        if inner.refusing.load(Ordering::SeqCst) {
            reset(&client);
            continue;
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let cut = CancellationToken::new();
        inner.open().insert(id, cut.clone());
        let upstream = inner.upstream;
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            forward(client, upstream, cut).await;
            if let Some(inner) = weak.upgrade() {
                inner.open().remove(&id);
            }
        });
    }
}

/// Copies both ways until either side closes, or resets both when cut.
async fn forward(mut client: TcpStream, upstream: SocketAddr, cut: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = cut.cancelled() => {
            reset(&client);
            reset(&server);
        }
    }
}

/// Closes with a reset (SO_LINGER 0) rather than a FIN.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO));
}
