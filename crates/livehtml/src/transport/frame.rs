use bytes::Bytes;
use tungstenite::{Message, Utf8Bytes};

use crate::protocol::Fragment;

/// One encoded WebSocket message, cheap to clone: a broadcast is encoded once and the same bytes
/// are shared by every subscriber's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Frame {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self(Kind::Text(Utf8Bytes::from(text.into())))
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self(Kind::Binary(bytes.into()))
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

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            Kind::Text(t) => Some(t.as_str()),
            Kind::Binary(_) => None,
        }
    }

    /// The payload's size in bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Kind::Text(t) => t.len(),
            Kind::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn into_message(self) -> Message {
        match self.0 {
            Kind::Text(t) => Message::Text(t),
            Kind::Binary(b) => Message::Binary(b),
        }
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
