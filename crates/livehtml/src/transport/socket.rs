//! A WebSocket's protocol state, held only while a message is part-way read.
//!
//! tungstenite's state (`WebSocketContext`: its configuration, frame codec, partial message and
//! pending replies: 256 bytes) was most of an idle connection's task. Between two messages none
//! of it holds anything: the codec has no bytes, no message is open, and the replies tungstenite
//! makes (pongs) have gone to the connection's queue, which takes every write. So it is boxed,
//! made when the client sends something, and dropped when a read finds nothing more to read and
//! what was read so far ends whole messages. tungstenite does not say where it is in the
//! client's frames, so [`Boundary`] follows the frame headers of the bytes it reads.

use std::io::{self, Read, Write};

use tungstenite::Message;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};

use super::Limits;
use super::outbox::Io;

/// Bytes read to learn whether the client sent anything before tungstenite's state is made.
const PROBE: usize = 64;

/// tungstenite's state machine over the connection's [`Io`], with no async adapter between
/// them: `Io` answers `WouldBlock` and wakes the task through its inbox's waker.
pub(crate) struct Socket {
    io: Io,
    /// `None` between messages (an idle connection).
    protocol: Option<Box<Protocol>>,
}

struct Protocol {
    context: WebSocketContext,
    boundary: Boundary,
}

impl Protocol {
    fn new(limits: &Limits) -> Box<Self> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(limits.max_message_bytes))
            .max_frame_size(Some(limits.max_message_bytes))
            .read_buffer_size(limits.read_buffer);
        Box::new(Self { context: WebSocketContext::new(Role::Server, Some(config)), boundary: Boundary::default() })
    }
}

impl Socket {
    pub(crate) fn new(io: Io) -> Self {
        Self { io, protocol: None }
    }

    /// The next message, as tungstenite's `read` gives it (`WouldBlock` while there is none).
    pub(crate) fn read(&mut self, limits: &Limits) -> tungstenite::Result<Message> {
        let mut first = [0; PROBE];
        let mut probed = 0;
        let protocol = match self.protocol.as_mut() {
            Some(protocol) => protocol,
            None => {
                // A read that finds nothing (a wake-up for the queue, a ping due) makes no state;
                // what it found is tungstenite's first read.
                probed = self.io.read(&mut first)?;
                self.protocol.insert(Protocol::new(limits))
            }
        };
        let Protocol { context, boundary } = &mut **protocol;
        let read = context.read(&mut Counted { first: &first[..probed], io: &mut self.io, boundary });
        let waiting = matches!(&read, Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock);
        // `can_write`: still open (neither side has sent a close frame).
        if waiting && boundary.between_messages() && context.can_write() {
            self.protocol = None;
        }
        read
    }

    /// Writes out what tungstenite and the queue hold.
    pub(crate) fn flush(&mut self) -> tungstenite::Result<()> {
        match self.protocol.as_mut() {
            Some(protocol) => protocol.context.flush(&mut self.io),
            None => Ok(self.io.flush()?),
        }
    }

    /// Sends a close frame (tungstenite then waits for the client's).
    pub(crate) fn close(&mut self, limits: &Limits, frame: CloseFrame) -> tungstenite::Result<()> {
        let protocol = self.protocol.get_or_insert_with(|| Protocol::new(limits));
        protocol.context.close(&mut self.io, Some(frame))
    }
}

/// The connection's `Io` (after what the probe read, if anything), noting where the bytes
/// tungstenite reads are in the client's frames.
struct Counted<'a> {
    first: &'a [u8],
    io: &'a mut Io,
    boundary: &'a mut Boundary,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.first.is_empty() {
            self.io.read(buf)?
        } else {
            let n = self.first.len().min(buf.len());
            buf[..n].copy_from_slice(&self.first[..n]);
            self.first = &self.first[n..];
            n
        };
        self.boundary.advance(&buf[..n]);
        Ok(n)
    }
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}

/// Where a client's byte stream is in its frames (RFC 6455 section 5.2), from their headers
/// alone: the payloads are counted, not kept.
#[derive(Debug, Default)]
struct Boundary {
    /// The current frame's header so far: 2 bytes, up to 8 of length, 4 of mask.
    head: [u8; 14],
    have: u8,
    /// The current frame's payload bytes still to come.
    left: u64,
    /// A data message is open: a frame without FIN, until its last continuation.
    open: bool,
}

impl Boundary {
    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                let take = usize::try_from(self.left).map_or(bytes.len(), |left| left.min(bytes.len()));
                self.left -= take as u64;
                bytes = &bytes[take..];
                continue;
            }
            let have = usize::from(self.have);
            let take = (self.header_len() - have).min(bytes.len());
            self.head[have..have + take].copy_from_slice(&bytes[..take]);
            self.have += take as u8;
            bytes = &bytes[take..];
            // The second byte says how long the header is.
            if usize::from(self.have) == self.header_len() {
                self.end_header();
            }
        }
    }

    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let length = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
        2 + length + mask
    }

    fn end_header(&mut self) {
        let fin = self.head[0] & 0x80 != 0;
        let opcode = self.head[0] & 0x0f;
        self.left = match self.head[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => u64::from_be_bytes([
                self.head[2],
                self.head[3],
                self.head[4],
                self.head[5],
                self.head[6],
                self.head[7],
                self.head[8],
                self.head[9],
            ]),
            n => u64::from(n),
        };
        // Data frames (continuation 0, text 1, binary 2) open or close a message; control
        // frames come between a message's frames and leave it as it was.
        if opcode < 8 {
            self.open = !fin;
        }
        self.have = 0;
    }

    /// Everything so far ends whole messages.
    fn between_messages(&self) -> bool {
        self.have == 0 && self.left == 0 && !self.open
    }
}

#[cfg(test)]
mod tests {
    use super::Boundary;

    /// A client's frame: masked, with this FIN bit, opcode and payload.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend_from_slice(payload);
        out
    }

    /// Feeds `stream` cut at `cut`, and says where each part left it.
    fn ends_after(stream: &[u8], cut: usize) -> (bool, bool) {
        let mut boundary = Boundary::default();
        boundary.advance(&stream[..cut]);
        let first = boundary.between_messages();
        boundary.advance(&stream[cut..]);
        (first, boundary.between_messages())
    }

    #[test]
    fn whole_messages_end_at_their_last_byte_and_nowhere_before() {
        let small = frame(true, 1, b"hello");
        let medium = frame(true, 2, &[7; 300]);
        let large = frame(true, 2, &vec![7; 70_000]);
        for message in [&small, &medium, &large] {
            for cut in 1..message.len() {
                assert_eq!(ends_after(message, cut), (false, true), "cut at {cut} of {}", message.len());
            }
        }
    }

    #[test]
    fn a_fragmented_message_is_open_until_its_last_continuation_with_pings_between() {
        let mut stream = frame(false, 1, b"hel");
        let first = stream.len();
        stream.extend(frame(true, 9, b"ping"));
        let ping = stream.len();
        stream.extend(frame(true, 0, b"lo"));
        for cut in 1..stream.len() {
            let (between, end) = ends_after(&stream, cut);
            assert!(!between, "not between messages at {cut} (first frame ends at {first}, the ping at {ping})");
            assert!(end);
        }
    }

    #[test]
    fn an_empty_frame_and_a_control_frame_between_messages_end_where_they_end() {
        let mut stream = frame(true, 1, b"");
        let empty = stream.len();
        stream.extend(frame(true, 10, b""));
        assert_eq!(ends_after(&stream, empty), (true, true));
        assert_eq!(ends_after(&stream, empty + 1), (false, true));
    }
}
