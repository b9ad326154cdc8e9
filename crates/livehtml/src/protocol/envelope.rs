//! A published message as it travels between the processes of a cluster: rendered once by the
//! publisher, carried by the broker as these bytes, and framed once by each process for its own
//! subscribers.
//!
//! The first byte says what it is: `T` a text message, `B` binary, `E` a named event (one byte
//! of name length, the name), `I` a text info (a [`crate::Info`] whose payload is a `String`).
//! The payload follows as it is. Hand-written: five cases, no schema to evolve, and the payload
//! must be neither copied into nor escaped by a general format.

use bytes::{BufMut, Bytes, BytesMut};

use super::Frame;

/// What a cluster message holds, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// A message for the topic's pages.
    Frame(Frame),
    /// Text for the topic's sessions' `on_info`.
    Info(String),
}

/// Bytes that are not an envelope (another program's message on the same broker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotAnEnvelope;

/// `frame` as it travels; `None` for what never crosses processes (marks and raw frames).
pub(crate) fn frame(frame: &Frame) -> Option<Bytes> {
    let payload = frame.payload();
    let mut out = BytesMut::with_capacity(payload.len() + 2 + frame.event_name().map_or(0, str::len));
    match (frame.as_text(), frame.event_name()) {
        (Some(_), Some(name)) if name.len() <= usize::from(u8::MAX) => {
            out.put_u8(b'E');
            out.put_u8(name.len() as u8);
            out.put_slice(name.as_bytes());
        }
        (Some(_), _) => out.put_u8(b'T'),
        (None, _) if frame.is_binary() => out.put_u8(b'B'),
        (None, _) => return None,
    }
    out.put_slice(payload);
    Some(out.freeze())
}

/// A text info as it travels.
pub(crate) fn info(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 1);
    out.put_u8(b'I');
    out.put_slice(text.as_bytes());
    out.freeze()
}

/// Reads what [`frame`] or [`info`] wrote.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, NotAnEnvelope> {
    let (&kind, rest) = bytes.split_first().ok_or(NotAnEnvelope)?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| NotAnEnvelope);
    Ok(match kind {
        b'T' => Envelope::Frame(Frame::text(text(rest)?)),
        b'B' => Envelope::Frame(Frame::binary(Bytes::copy_from_slice(rest))),
        b'E' => {
            let (&len, rest) = rest.split_first().ok_or(NotAnEnvelope)?;
            let (name, data) = rest.split_at_checked(usize::from(len)).ok_or(NotAnEnvelope)?;
            let name = std::str::from_utf8(name).map_err(|_| NotAnEnvelope)?;
            Envelope::Frame(Frame::event(name, text(data)?))
        }
        b'I' => Envelope::Info(text(rest)?),
        _ => return Err(NotAnEnvelope),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_travels_unchanged() {
        for f in [
            Frame::text("<p id=x hx-swap-oob=true>hé</p>"),
            Frame::text(""),
            Frame::binary(vec![0u8, 255, 7]),
            Frame::event("users", "<b>42</b>\nline two"),
        ] {
            let bytes = frame(&f).unwrap();
            assert_eq!(decode(&bytes), Ok(Envelope::Frame(f.clone())));
        }
        assert_eq!(decode(&info("42")), Ok(Envelope::Info("42".into())));
        assert_eq!(frame(&Frame::mark(super::super::Position::default())), None);
    }

    #[test]
    fn foreign_bytes_are_refused() {
        for bad in [&b""[..], b"X", b"E", b"E\x05ab", b"T\xff\xfe", b"I\xc3"] {
            assert_eq!(decode(bad), Err(NotAnEnvelope), "{bad:?}");
        }
    }
}
