use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::Fragment;
use super::names::event::AT as AT_EVENT;
use super::position::Position;

/// One outbound message, published once and encoded at most once per wire: its WebSocket frame
/// is made with it, its Server-Sent Events form the first time an SSE stream needs it, and
/// every subscriber on a wire is written from the same bytes. Cheap to clone (one reference
/// count).
///
/// A server's WebSocket frames are not masked (RFC 6455 section 5.1), so the bytes on the wire
/// are the same for every client: the header is written here, in front of the payload, and no
/// per-connection framing or copy happens when the frame is sent.
#[derive(Clone)]
pub struct Frame(Arc<Encoded>);

struct Encoded {
    /// The WebSocket frame: header and payload, exactly as written to the socket.
    wire: Bytes,
    /// Where the payload starts in `wire`.
    header: u8,
    kind: Kind,
    /// The SSE event name (`event:`); `None` for an unnamed event (`message`).
    event: Option<Box<str>>,
    /// The SSE form (`event:` and `data:` lines and the blank line), made on first use.
    sse: OnceLock<Bytes>,
    /// Datastar's form (`datastar-patch-elements` events), made on first use.
    datastar: OnceLock<Bytes>,
    /// Where the message sits in its topic, once published to one.
    position: Option<Position>,
    /// For livehtml.js over a WebSocket: the frame with `<!--lh:position-->` in front of its
    /// payload, made on first use.
    stamped: OnceLock<Bytes>,
    /// Its permessage-deflate forms, made on first use (boxed: most frames never meet a page
    /// that compresses).
    deflated: OnceLock<Box<Deflated>>,
}

/// A message compressed (RFC 7692), once per form and shared by every page that takes it: the
/// plain and the stamped frame with the usual 15-bit window, and, for the rare client that asks
/// for a smaller one, each other window. An empty slot (zlib failed) sends the frame
/// uncompressed.
#[derive(Default)]
struct Deflated {
    usual: [OnceLock<Bytes>; 2],
    /// Windows of 9 to 14 bits, plain and stamped.
    smaller: OnceLock<Box<[OnceLock<Bytes>; 12]>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
    /// Bytes already framed elsewhere (tungstenite's control frames), passed through.
    Raw,
    /// No message: only a topic position, which a page that keeps positions is told (a
    /// subscription's start) and any other skips.
    Mark,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        (self.0.kind, &self.0.wire, &self.0.event) == (other.0.kind, &other.0.wire, &other.0.event)
    }
}

impl Eq for Frame {}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.0.kind)
            .field("event", &self.0.event)
            .field("len", &self.len())
            .finish()
    }
}

impl Frame {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::encode(OpCode::Data(Data::Text), Kind::Text, text.into().as_bytes(), None)
    }

    /// A binary message (WebSocket only: an SSE stream skips it).
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::encode(OpCode::Data(Data::Binary), Kind::Binary, &bytes.into(), None)
    }

    /// A named Server-Sent Event: on an SSE stream `event: name` with `data` (what htmx's
    /// `sse-swap="name"` swaps, and what htmx 4 dispatches as a DOM event); on a WebSocket, a
    /// text message of `data`.
    ///
    /// ```
    /// use livehtml::Frame;
    ///
    /// let users = Frame::event("users", "<b>42</b>");
    /// assert_eq!(users.as_text(), Some("<b>42</b>"));
    /// assert_eq!(users.event_name(), Some("users"));
    /// ```
    pub fn event(name: &str, data: impl Into<String>) -> Self {
        // Event names are one line without a colon at the start; anything else is dropped.
        let name = name.lines().next().unwrap_or_default().trim_start_matches(':');
        let name = (!name.is_empty()).then(|| name.into());
        Self::encode(OpCode::Data(Data::Text), Kind::Text, data.into().as_bytes(), name)
    }

    /// One text message carrying every fragment, each with its explicit `hx-swap-oob`.
    ///
    /// ```
    /// use livehtml::{Fragment, Frame, Html};
    ///
    /// let frame = Frame::fragments(&[Fragment::inner("status", Html::escape("ready"))]);
    /// assert_eq!(frame.as_text(), Some(r#"<div id="status" hx-swap-oob="innerHTML">ready</div>"#));
    /// ```
    pub fn fragments<'a>(fragments: impl IntoIterator<Item = &'a Fragment>) -> Self {
        Self::text(Fragment::encode_all(fragments))
    }

    /// An empty ping (the server's heartbeat).
    pub(crate) fn ping() -> Self {
        Self::encode(OpCode::Control(Control::Ping), Kind::Raw, b"", None)
    }

    /// Bytes that are already one or more whole frames.
    pub(crate) fn raw(wire: Bytes) -> Self {
        Self::with(wire, 0, Kind::Raw, None, None)
    }

    /// A topic's position with no message: where a page's subscription starts.
    pub(crate) fn mark(position: Position) -> Self {
        Self::with(Bytes::new(), 0, Kind::Mark, None, Some(position))
    }

    /// The same message at `position` of a topic: the payload is shared, not copied.
    pub(crate) fn at(&self, position: Position) -> Self {
        let e = &self.0;
        Self::with(e.wire.clone(), e.header, e.kind, e.event.clone(), Some(position))
    }

    fn with(wire: Bytes, header: u8, kind: Kind, event: Option<Box<str>>, position: Option<Position>) -> Self {
        Self(Arc::new(Encoded {
            wire,
            header,
            kind,
            event,
            sse: OnceLock::new(),
            datastar: OnceLock::new(),
            position,
            stamped: OnceLock::new(),
            deflated: OnceLock::new(),
        }))
    }

    fn encode(opcode: OpCode, kind: Kind, payload: &[u8], event: Option<Box<str>>) -> Self {
        let header = FrameHeader { opcode, ..FrameHeader::default() };
        let length = payload.len() as u64;
        let header_len = header.len(length);
        let mut wire = BytesMut::with_capacity(header_len + payload.len()).writer();
        header.format(length, &mut wire).expect("writing to memory cannot fail");
        let mut wire = wire.into_inner();
        wire.put_slice(payload);
        Self::with(wire.freeze(), header_len as u8, kind, event, None)
    }

    /// Where the message sits in its topic, once published to one (as a subscriber gets it).
    pub fn position(&self) -> Option<Position> {
        self.0.position
    }

    /// Only a position (see [`Frame::mark`]).
    pub(crate) fn is_mark(&self) -> bool {
        self.0.kind == Kind::Mark
    }

    /// The message as text for a page that keeps topic positions (long-polling): the
    /// `<!--lh:position-->` of [`Frame::stamped`] in front of the text. `None` for what is not
    /// text (binary, raw frames).
    pub(crate) fn stamped_text(&self) -> Option<String> {
        let text = match self.0.kind {
            Kind::Text => self.as_text()?,
            Kind::Mark => "",
            Kind::Binary | Kind::Raw => return None,
        };
        Some(match self.0.position {
            Some(position) => format!("<!--lh:{position}-->{text}"),
            None => text.to_owned(),
        })
    }

    /// The bytes to write to a WebSocket whose page keeps topic positions (livehtml.js): a
    /// text message published to a topic carries `<!--lh:position-->` in front (an HTML
    /// comment: whatever swaps the message ignores it), a mark is that comment alone. Made
    /// once, shared by every such page.
    pub(crate) fn stamped(&self) -> &[u8] {
        let Some(position) = self.0.position.filter(|_| matches!(self.0.kind, Kind::Text | Kind::Mark)) else {
            return self.wire();
        };
        self.0.stamped.get_or_init(|| {
            let mut text = format!("<!--lh:{position}-->");
            if let Some(payload) = self.as_text() {
                text.push_str(payload);
            }
            Self::text(text).0.wire.clone()
        })
    }

    /// The bytes to write to a WebSocket that agreed to permessage-deflate with a `window`-bit
    /// window: the frame (`stamped`: as [`Frame::stamped`]) with its payload compressed and RSV1
    /// set, made once per form and shared; the plain bytes for control frames, which are never
    /// compressed.
    pub(crate) fn deflated(&self, stamped: bool, window: u8) -> &[u8] {
        let plain = if stamped { self.stamped() } else { self.wire() };
        if !matches!(self.0.kind, Kind::Text | Kind::Binary | Kind::Mark) || plain.is_empty() {
            return plain;
        }
        let forms = self.0.deflated.get_or_init(Box::default);
        let slot = match window {
            15 => &forms.usual[usize::from(stamped)],
            _ => {
                let smaller = forms.smaller.get_or_init(Box::default);
                &smaller[usize::from(window.clamp(9, 14) - 9) * 2 + usize::from(stamped)]
            }
        };
        let bytes = slot.get_or_init(|| {
            let header = match plain[1] & 0x7f {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            let Some(compressed) = super::deflate::compress(&plain[header..], window) else { return Bytes::new() };
            let opcode = if self.0.kind == Kind::Binary { Data::Binary } else { Data::Text };
            let head = FrameHeader { rsv1: true, opcode: OpCode::Data(opcode), ..FrameHeader::default() };
            let length = compressed.len() as u64;
            let mut wire = BytesMut::with_capacity(head.len(length) + compressed.len()).writer();
            head.format(length, &mut wire).expect("writing to memory cannot fail");
            let mut wire = wire.into_inner();
            wire.put_slice(&compressed);
            wire.freeze()
        });
        if bytes.is_empty() { plain } else { bytes }
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self.0.kind {
            // Built from a `String`: always valid UTF-8.
            Kind::Text => std::str::from_utf8(self.payload()).ok(),
            Kind::Binary | Kind::Raw | Kind::Mark => None,
        }
    }

    /// The SSE event name, for a named event.
    pub fn event_name(&self) -> Option<&str> {
        self.0.event.as_deref()
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.0.wire[usize::from(self.0.header)..]
    }

    /// A binary message.
    pub(crate) fn is_binary(&self) -> bool {
        self.0.kind == Kind::Binary
    }

    /// The payload's size in bytes.
    pub fn len(&self) -> usize {
        self.0.wire.len() - usize::from(self.0.header)
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes already framed for their wire (a control frame, a stream's own chunk), written as
    /// they are.
    pub(crate) fn is_raw(&self) -> bool {
        self.0.kind == Kind::Raw
    }

    /// The bytes to write to a WebSocket: header and payload.
    pub(crate) fn wire(&self) -> &[u8] {
        &self.0.wire
    }

    /// The message as Datastar 1.0 events (`datastar-patch-elements`), made once and shared
    /// by every Datastar stream. Empty for named events, binary and control frames.
    pub(crate) fn datastar(&self) -> &[u8] {
        self.0.datastar.get_or_init(|| match (self.as_text(), &self.0.event) {
            (Some(text), None) => super::datastar::patch_elements(text),
            _ if self.is_mark() => Self::mark_event(),
            _ => Bytes::new(),
        })
    }

    /// The Server-Sent Event for a text message, made once and shared by every stream: an
    /// `event:` line if it is named, one `data:` line per line of text, and the blank line that
    /// ends the event. Empty for binary and control frames, which an SSE stream skips. (A
    /// stream writes its own `id:` line before it.)
    pub(crate) fn sse(&self) -> &[u8] {
        self.0.sse.get_or_init(|| {
            if self.is_mark() {
                return Self::mark_event();
            }
            let Some(text) = self.as_text() else { return Bytes::new() };
            let mut out = BytesMut::with_capacity(text.len() + 16);
            if let Some(name) = &self.0.event {
                out.put_slice(b"event: ");
                out.put_slice(name.as_bytes());
                out.put_u8(b'\n');
            }
            // SSE ends a line at \r\n, \r or \n: each becomes a data line of its own, and the
            // client joins them with \n (HTML does not care which line break it gets back).
            for line in text.split(['\n', '\r']) {
                out.put_slice(b"data: ");
                out.put_slice(line.as_bytes());
                out.put_u8(b'\n');
            }
            out.put_u8(b'\n');
            out.freeze()
        })
    }
}

impl Frame {
    /// A mark on an SSE stream: an event with no data of its own, so that the stream's `id:`
    /// (which [`Frame::sse`]'s writer puts in front) reaches the page: `EventSource` keeps it for
    /// its reconnect and shows it to livehtml.js. htmx swaps no event of this name.
    fn mark_event() -> Bytes {
        Bytes::from(format!("event: {AT_EVENT}\ndata: \n\n"))
    }
}

impl From<Fragment> for Frame {
    fn from(fragment: Fragment) -> Self {
        Self::fragments([&fragment])
    }
}

/// A data message received from a client, before any parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// A text message (valid UTF-8, checked by the WebSocket layer).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl Inbound {
    /// The same payload as an outbound frame (what an echo sends back).
    pub fn into_frame(self) -> Frame {
        match self {
            Self::Text(t) => Frame::text(t),
            Self::Binary(b) => Frame::binary(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frame;

    #[test]
    fn frames_carry_their_header() {
        let short = Frame::text("hi");
        assert_eq!(short.wire(), b"\x81\x02hi");
        assert_eq!((short.as_text(), short.len()), (Some("hi"), 2));

        let medium = Frame::binary(vec![7u8; 300]);
        assert_eq!(&medium.wire()[..4], &[0x82, 126, 1, 44]);
        assert_eq!((medium.as_text(), medium.len()), (None, 300));

        let long = Frame::text("x".repeat(70_000));
        assert_eq!(&long.wire()[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(long.len(), 70_000);

        assert_eq!(Frame::ping().wire(), b"\x89\x00");
    }

    #[test]
    fn the_sse_form_names_the_event_and_splits_lines() {
        assert_eq!(Frame::text("<p>hi</p>").sse(), b"data: <p>hi</p>\n\n");
        assert_eq!(
            Frame::event("users", "<b>1</b>\n<i>2</i>").sse(),
            b"event: users\ndata: <b>1</b>\ndata: <i>2</i>\n\n"
        );
        // A line break in a name cannot smuggle in a field.
        assert_eq!(Frame::event("a\ndata: x", "y").sse(), b"event: a\ndata: y\n\n");
        assert_eq!(Frame::binary(vec![1u8]).sse(), b"");
        let shared = Frame::text("x");
        assert!(std::ptr::eq(shared.sse(), shared.clone().sse()), "encoded once, shared by clones");
    }
}
