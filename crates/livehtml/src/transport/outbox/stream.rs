//! The stream tungstenite reads from and writes its control frames to.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

use super::{Framing, Out, Shared};
use crate::protocol::Frame;
use crate::protocol::deflate::Inflater;

/// The stream tungstenite reads from and writes its control frames to. Its writes join the
/// same queue as everything else, so frames never interleave on the wire.
#[derive(Debug)]
pub(crate) struct Io {
    pub(super) shared: Arc<Shared>,
    pub(super) waker: Waker,
}

impl Drop for Io {
    fn drop(&mut self) {
        // Closes the TCP connection now, even while a topic or a timer still holds the queue.
        // (A queue that never had a socket stays as it is: its frames wait to be popped.)
        let mut out = self.shared.out();
        if out.wire.is_some() {
            out.drop_wire();
        }
    }
}

impl Io {
    /// Bytes read from the socket before it came here (what hyper read past the upgrade
    /// request): tungstenite reads them first.
    pub(crate) fn read_ahead(&self, raw: &[u8]) {
        if raw.is_empty() {
            return;
        }
        self.with(|out, _| match out.framing {
            Framing::Deflate { max, .. } => inflate(&mut out.inflater, &mut out.unread, raw, max as usize),
            _ => out.unread = Some(raw.into()),
        });
    }

    /// Runs `f` on the queue with a context whose waker wakes the connection's task (through the
    /// inbox's waker, which the task registers on every poll).
    fn with<T>(&self, f: impl FnOnce(&mut Out, &mut Context<'_>) -> T) -> T {
        let mut cx = Context::from_waker(&self.waker);
        f(&mut self.shared.out(), &mut cx)
    }
}

fn would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// permessage-deflate: `raw`, read from the socket, rewritten for tungstenite into `unread`
/// (what is no whole frame yet waits in the inflater). Called with nothing unread.
fn inflate(inflater: &mut Option<Box<Inflater>>, unread: &mut Option<Box<[u8]>>, raw: &[u8], max: usize) {
    let state = inflater.get_or_insert_with(Box::default);
    let mut rewritten = Vec::new();
    state.push(raw, &mut rewritten, max);
    if state.is_empty() {
        *inflater = None;
    }
    if !rewritten.is_empty() {
        *unread = Some(rewritten.into_boxed_slice());
    }
}

/// What one read from a socket can bring: one buffer per thread, shared by its connections.
const READ_AHEAD: usize = 64 * 1024;

thread_local! {
    pub(super) static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_AHEAD].into_boxed_slice());
}

/// Reads through the thread's buffer, as uWebSockets does: a connection keeps only what
/// tungstenite has not taken yet, and nothing while idle. (tungstenite's own buffer stays
/// small, see [`crate::Limits::read_buffer`], and asks for a few bytes at a time; those come
/// from `unread` without a syscall.)
impl io::Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|out, cx| {
            // Reading also moves the queue along (the close handshake reads while it writes).
            if !out.frames.is_empty() {
                let _ = out.poll_write_out(cx);
            }
            loop {
                if let Some(unread) = out.unread.as_deref() {
                    let at = out.unread_at as usize;
                    let n = (unread.len() - at).min(buf.len());
                    buf[..n].copy_from_slice(&unread[at..at + n]);
                    let next = at + n;
                    if next == unread.len() {
                        out.unread = None;
                        out.unread_at = 0;
                    } else if let Ok(next) = u32::try_from(next) {
                        out.unread_at = next;
                    } else {
                        // Past 4 GiB (a read's worth of inflated messages can be): the rest
                        // starts again at 0.
                        out.unread = Some(unread[next..].into());
                        out.unread_at = 0;
                    }
                    return Ok(n);
                }
                let max = match out.framing {
                    Framing::Deflate { max, .. } => Some(max as usize),
                    _ => None,
                };
                let Some(wire) = out.wire.as_mut() else { return Ok(0) };
                let read = READ_BUFFER.with(|ahead| -> io::Result<Option<usize>> {
                    let mut ahead = ahead.borrow_mut();
                    let mut ahead = ReadBuf::new(&mut ahead[..]);
                    would_block(Pin::new(wire).poll_read(cx, &mut ahead))?;
                    let read = ahead.filled();
                    let Some(max) = max.filter(|_| !read.is_empty()) else {
                        let n = read.len().min(buf.len());
                        buf[..n].copy_from_slice(&read[..n]);
                        if read.len() > n {
                            out.unread = Some(read[n..].into());
                        }
                        return Ok(Some(n));
                    };
                    // permessage-deflate: tungstenite reads the frames as rewritten, and what a
                    // read brought may be no whole frame yet: then the socket is read again
                    // (until it would block, which registers the task for more).
                    inflate(&mut out.inflater, &mut out.unread, read, max);
                    Ok(None)
                })?;
                if let Some(n) = read {
                    return Ok(n);
                }
            }
        })
    }
}

impl io::Write for Io {
    /// tungstenite's own frames (pongs, close frames) join the queue whole.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|out, cx| {
            if out.wire.is_none() {
                return Err(io::ErrorKind::NotConnected.into());
            }
            out.frames.push_back(Frame::raw(Bytes::copy_from_slice(buf)));
            let _ = out.poll_write_out(cx);
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with(|out, cx| would_block(out.poll_write_out(cx)))
    }
}
