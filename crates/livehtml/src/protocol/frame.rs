use bytes::{BufMut, Bytes, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::Fragment;

/// One WebSocket message, encoded for the wire once and cheap to clone: a broadcast is framed
/// once and every subscriber's socket is written from the same bytes.
///
/// A server's frames are not masked (RFC 6455 section 5.1), so the bytes on the wire are the
/// same for every client: the header is written here, in front of the payload, and no
/// per-connection framing or copy happens when the frame is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Header and payload, exactly as written to the socket.
    wire: Bytes,
    /// Where the payload starts in `wire`.
    header: u8,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
    /// Bytes already framed elsewhere (tungstenite's control frames), passed through.
    Raw,
}

impl Frame {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::encode(OpCode::Data(Data::Text), Kind::Text, text.into().as_bytes())
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::encode(OpCode::Data(Data::Binary), Kind::Binary, &bytes.into())
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
        Self::encode(OpCode::Control(Control::Ping), Kind::Raw, b"")
    }

    /// Bytes that are already one or more whole frames.
    pub(crate) fn raw(wire: Bytes) -> Self {
        Self { wire, header: 0, kind: Kind::Raw }
    }

    fn encode(opcode: OpCode, kind: Kind, payload: &[u8]) -> Self {
        let header = FrameHeader { opcode, ..FrameHeader::default() };
        let length = payload.len() as u64;
        let header_len = header.len(length);
        let mut wire = BytesMut::with_capacity(header_len + payload.len()).writer();
        header.format(length, &mut wire).expect("writing to memory cannot fail");
        let mut wire = wire.into_inner();
        wire.put_slice(payload);
        Self { wire: wire.freeze(), header: header_len as u8, kind }
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            // Built from a `String`: always valid UTF-8.
            Kind::Text => std::str::from_utf8(self.payload()).ok(),
            Kind::Binary | Kind::Raw => None,
        }
    }

    fn payload(&self) -> &[u8] {
        &self.wire[usize::from(self.header)..]
    }

    /// The payload's size in bytes.
    pub fn len(&self) -> usize {
        self.wire.len() - usize::from(self.header)
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes to write to the socket: header and payload.
    pub(crate) fn wire(&self) -> &[u8] {
        &self.wire
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
}
