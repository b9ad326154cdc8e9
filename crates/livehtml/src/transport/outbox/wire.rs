//! The socket under a connection: a WebSocket's upgraded stream as hyper hands it over, or the
//! bare TCP stream when it can be taken out of hyper (an SSE response's after its head, a
//! WebSocket's after the upgrade: see `crate::Listener`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's socket.
#[derive(Debug)]
pub(crate) enum Wire {
    /// What hyper hands over after a `101 Switching Protocols`. Boxed (48 bytes against the
    /// pointer's 8): every connection's queue holds a `Wire`, and one served by
    /// `livehtml::serve` over a `Listener` has the bare socket instead.
    Upgraded(Box<TokioIo<Upgraded>>),
    /// A socket taken from hyper: after an SSE response's head, or after a WebSocket upgrade
    /// on a `Listener`'s connection served by `livehtml::serve`.
    Tcp(TcpStream),
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Upgraded(io) => Pin::new(&mut **io).poll_read(cx, buf),
            Wire::Tcp(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Upgraded(io) => Pin::new(&mut **io).poll_write(cx, buf),
            Wire::Tcp(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Upgraded(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
            Wire::Tcp(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Wire::Upgraded(io) => io.is_write_vectored(),
            Wire::Tcp(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Upgraded(io) => Pin::new(&mut **io).poll_flush(cx),
            Wire::Tcp(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Upgraded(io) => Pin::new(&mut **io).poll_shutdown(cx),
            Wire::Tcp(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
