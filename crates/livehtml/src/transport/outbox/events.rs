//! Frames on a socket as Server-Sent Events: each event one HTTP/1.1 chunk carrying the
//! stream's next `id:` line and the event's shared bytes ([`Frame::sse`]), gathered into one
//! vectored write the way WebSocket frames are.
//!
//! A stream's `id:` lines are its own, so they are made on the stack at each write, never
//! stored: the queue holds the shared frames only, and a write that stops halfway is resumed
//! from the same bytes (an event's prefix depends only on its id and its length, and an id is
//! used up only once its event is written whole).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::{Out, Wire, Writer};
use crate::protocol::{Cursors, Frame};

/// Events gathered into one write: three slices each, within IOV_MAX (1024).
const EVENTS: usize = 128;

/// Events up to this long go out copied into one buffer on the stack, one `send`, when
/// written alone.
const CONTIGUOUS: usize = 1024;

/// The end of the chunked body (RFC 9112 section 7.1).
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// How a connection's frames are written to its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framing {
    /// WebSocket frames, exactly as published (plain htmx: topic positions are not sent).
    WebSocket,
    /// WebSocket frames with their topic position in front (livehtml.js: [`Frame::stamped`]).
    Stamped,
    /// SSE events in a chunked response body; `cursors` make the stream's `id:` (boxed: a
    /// WebSocket carries none).
    Sse { datastar: bool, cursors: Box<Cursors> },
    /// Frames a reader takes, positions and all (an SSE body that hyper writes).
    Pulled,
    /// WebSocket frames compressed (permessage-deflate, agreed with a `window`-bit window),
    /// `stamped` for livehtml.js; `max`: the largest message inflated from the page.
    Deflate { stamped: bool, window: u8, max: u32 },
}

impl Framing {
    /// SSE events for a page (`datastar`: Datastar's) on a socket of their own.
    pub(crate) fn sse(datastar: bool) -> Self {
        Self::Sse { datastar, cursors: Box::default() }
    }

    /// Whether the page is told topic positions that come with no message (marks).
    pub(crate) fn keeps_marks(&self) -> bool {
        !matches!(self, Self::WebSocket | Self::Deflate { stamped: false, .. })
    }

    /// A WebSocket frame's bytes on this connection's wire.
    pub(crate) fn websocket<'a>(&self, frame: &'a Frame) -> &'a [u8] {
        match *self {
            Self::Stamped => frame.stamped(),
            Self::Deflate { stamped, window, .. } => frame.deflated(stamped, window),
            Self::WebSocket | Self::Pulled | Self::Sse { .. } => frame.wire(),
        }
    }
}

/// Bytes of the stream's own (a heartbeat comment, the first events), as one chunk.
pub(crate) fn chunk(data: &[u8]) -> Frame {
    let mut out = Vec::with_capacity(data.len() + 12);
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    Frame::raw(Bytes::from(out))
}

/// What a frame is on an SSE stream.
enum Part<'a> {
    /// Already chunked: written as it is, with no id.
    Raw(&'a [u8]),
    /// An event: written as a chunk with the next id.
    Event(&'a [u8]),
    /// Nothing (a binary message, or an event a Datastar page has no form for).
    Skip,
}

fn part(frame: &Frame, datastar: bool) -> Part<'_> {
    if frame.is_raw() {
        return Part::Raw(frame.wire());
    }
    let event = if datastar { frame.datastar() } else { frame.sse() };
    if event.is_empty() { Part::Skip } else { Part::Event(event) }
}

/// An event's chunk-size line and its `id:` line.
#[derive(Clone, Copy)]
struct Prefix {
    bytes: [u8; PREFIX],
    len: u8,
}

/// The longest prefix: 16 hex digits and 2, then 4, an id of at most 119 bytes, and 1.
const PREFIX: usize = 144;

impl Prefix {
    const EMPTY: Self = Self { bytes: [0; PREFIX], len: 0 };

    /// The prefix of an event written with the stream's id at `cursors`.
    fn new(cursors: &Cursors, event_len: usize) -> Self {
        let mut id = [0u8; 120];
        let mut cursor = io::Cursor::new(&mut id[..]);
        let _ = cursors.write(&mut cursor);
        let written = cursor.position() as usize;
        let id = &id[..written];
        let size = 4 + id.len() + 1 + event_len;
        let mut prefix = Self::EMPTY;
        let mut cursor = io::Cursor::new(&mut prefix.bytes[..]);
        let _ = write!(cursor, "{size:x}\r\nid: ");
        let _ = cursor.write_all(id);
        let _ = cursor.write_all(b"\n");
        prefix.len = cursor.position() as u8;
        prefix
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The slices of one frame on the wire; `prefix` is its own when it is an event.
fn slices<'a>(part: &Part<'a>, prefix: &'a Prefix) -> [&'a [u8]; 3] {
    match *part {
        Part::Raw(bytes) => [bytes, &[], &[]],
        Part::Event(event) => [prefix.as_bytes(), event, b"\r\n"],
        Part::Skip => [&[], &[], &[]],
    }
}

/// A frame's length on the wire, written after `cursors` (the stream's id before it).
fn encoded_len(part: &Part<'_>, frame: &Frame, cursors: &Cursors) -> usize {
    match *part {
        Part::Event(event) => {
            let mut after = *cursors;
            after.advance(frame.position());
            encoded(part, &Prefix::new(&after, event.len()))
        }
        Part::Raw(_) | Part::Skip => encoded(part, &Prefix::EMPTY),
    }
}

/// A frame's length on the wire with `prefix` (its own, for an event).
fn encoded(part: &Part<'_>, prefix: &Prefix) -> usize {
    match *part {
        Part::Raw(bytes) => bytes.len(),
        Part::Event(event) => usize::from(prefix.len) + event.len() + 2,
        Part::Skip => 0,
    }
}

impl Out {
    /// [`Out::write_queued`] for an SSE stream: the queue in chunks of events.
    pub(super) fn write_events(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Out { frames, written, wire, progress, framing, .. } = self;
        let Framing::Sse { datastar, cursors } = framing else { unreachable!("called for SSE streams") };
        let datastar = *datastar;
        let Some(wire) = wire.as_mut() else { return Poll::Pending };
        while !frames.is_empty() {
            let count = frames.len().min(EVENTS);
            let mut prefixes = [Prefix::EMPTY; EVENTS];
            let mut id = **cursors;
            for (prefix, frame) in prefixes.iter_mut().zip(frames.iter()).take(count) {
                if let Part::Event(event) = part(frame, datastar) {
                    id.advance(frame.position());
                    *prefix = Prefix::new(&id, event.len());
                }
            }
            let mut buffers = [IoSlice::new(&[]); EVENTS * 3];
            let mut used = 0;
            let mut skip = *written;
            for (prefix, frame) in prefixes.iter().zip(frames.iter()).take(count) {
                for bytes in slices(&part(frame, datastar), prefix) {
                    if skip >= bytes.len() {
                        skip -= bytes.len();
                        continue;
                    }
                    buffers[used] = IoSlice::new(&bytes[skip..]);
                    skip = 0;
                    used += 1;
                }
            }
            let mut n = 0;
            if used > 0 {
                n = match Pin::new(&mut *wire).poll_write_vectored(cx, &buffers[..used]) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                };
                *progress = progress.wrapping_add(1);
            }
            // Past every frame written whole (and those with nothing to write). The batch's
            // frames have their prefix already (made with the ids they are popped with).
            let mut index = 0;
            while let Some(frame) = frames.front() {
                let part = part(frame, datastar);
                let whole =
                    if index < count { encoded(&part, &prefixes[index]) } else { encoded_len(&part, frame, cursors) };
                index += 1;
                let left = whole - *written;
                if n < left {
                    *written += n;
                    break;
                }
                n -= left;
                *written = 0;
                if matches!(part, Part::Event(_)) {
                    cursors.advance(frame.position());
                }
                frames.pop_front();
            }
        }
        *frames = VecDeque::new();
        self.writer = Writer::Anyone;
        Poll::Ready(Ok(()))
    }

    /// [`Out::write_single`]'s write for an SSE stream: one event, from its shared bytes and a
    /// prefix on the stack. Returns the write's result and the frame's whole length.
    pub(super) fn write_one_event(
        wire: &mut Wire,
        framing: &mut Framing,
        frame: &Frame,
        cx: &mut Context<'_>,
    ) -> (Poll<io::Result<usize>>, usize) {
        let Framing::Sse { datastar, cursors } = framing else { unreachable!("called for SSE streams") };
        let part = part(frame, *datastar);
        let mut after = **cursors;
        after.advance(frame.position());
        let prefix = match part {
            Part::Event(event) => Prefix::new(&after, event.len()),
            Part::Raw(_) | Part::Skip => Prefix::EMPTY,
        };
        let bytes = slices(&part, &prefix);
        let total = bytes.iter().map(|b| b.len()).sum::<usize>();
        if total == 0 {
            return (Poll::Ready(Ok(0)), 0);
        }
        let written = if total <= CONTIGUOUS {
            // One contiguous `send` costs the kernel less than a three-slice `writev` (no
            // iovec array to import): most of a closed-loop delivery is that syscall.
            let mut buffer = [0u8; CONTIGUOUS];
            let mut at = 0;
            for part in bytes {
                buffer[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            Pin::new(wire).poll_write(cx, &buffer[..total])
        } else {
            Pin::new(wire).poll_write_vectored(cx, &bytes.map(IoSlice::new))
        };
        if matches!(written, Poll::Ready(Ok(n)) if n == total) && matches!(part, Part::Event(_)) {
            **cursors = after;
        }
        (written, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_a_chunk_with_its_id() {
        let frame = Frame::event("users", "<b>1</b>");
        let part = part(&frame, false);
        let mut cursors = Cursors::default();
        for _ in 0..6 {
            cursors.advance(None);
        }
        let mut after = cursors;
        after.advance(None);
        let prefix = Prefix::new(&after, frame.sse().len());
        let bytes: Vec<u8> = slices(&part, &prefix).concat();
        let text = String::from_utf8(bytes).unwrap();
        let (size, rest) = text.split_once("\r\n").unwrap();
        let body = rest.strip_suffix("\r\n").unwrap();
        assert_eq!(usize::from_str_radix(size, 16).unwrap(), body.len());
        assert_eq!(body, "id: 7\nevent: users\ndata: <b>1</b>\n\n");
        assert_eq!(encoded_len(&part, &frame, &cursors), text.len());
    }

    #[test]
    fn a_published_event_carries_every_position_of_the_stream() {
        use crate::protocol::Position;
        let mut cursors = Cursors::default();
        cursors.advance(Some(Position { epoch: 0xa, offset: 3 }));
        let frame = Frame::text("<p>x</p>").at(Position { epoch: 0xb, offset: 9 });
        let mut after = cursors;
        after.advance(frame.position());
        let prefix = Prefix::new(&after, frame.sse().len());
        let text = String::from_utf8(slices(&part(&frame, false), &prefix).concat()).unwrap();
        assert!(text.ends_with("\r\nid: 0000000a-3.0000000b-9\ndata: <p>x</p>\n\n\r\n"), "{text}");
        let mark = Frame::mark(Position { epoch: 0xb, offset: 9 });
        assert_eq!(mark.sse(), b"event: lh-at\ndata: \n\n");
    }

    #[test]
    fn binary_frames_are_skipped_and_raw_ones_pass() {
        assert!(matches!(part(&Frame::binary(vec![1, 2]), false), Part::Skip));
        let heartbeat = chunk(b": heartbeat\n\n");
        assert_eq!(heartbeat.wire(), b"d\r\n: heartbeat\n\n\r\n");
        assert!(matches!(part(&heartbeat, false), Part::Raw(_)));
    }
}
