//! permessage-deflate (RFC 7692): the offer a client makes and the answer, compressing a
//! message once for every subscriber, and inflating what a client compressed.
//!
//! livehtml always answers with `server_no_context_takeover` and `client_no_context_takeover`
//! (RFC 7692 section 7.1.1: a server may add the latter unasked). So each message is compressed
//! and inflated on its own: a broadcast is compressed once and its bytes shared by every
//! compressing subscriber, and a connection keeps no compression state (an idle connection
//! costs what it did without compression). The price is a lower ratio on many small messages
//! that resemble each other.
//!
//! Inbound frames are rewritten before tungstenite reads them ([`Inflater`]): tungstenite 0.29
//! has no permessage-deflate (snapview/tungstenite-rs#426 is open), and refuses a frame with RSV1
//! set. A compressed message is collected, inflated (never beyond the message limit: a bomb costs
//! the limit, not its expansion) and handed on as one plain frame; everything else passes
//! unchanged, so tungstenite still judges every frame as RFC 6455 says.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub(crate) const EXTENSION: &str = "permessage-deflate";

/// What a connection agreed to: the largest LZ77 window (bits) the server may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// `server_max_window_bits`, 9 to 15.
    pub(crate) window: u8,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` value of the answer.
    pub(crate) fn header(self) -> String {
        let mut header = format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
        if self.window < 15 {
            header.push_str(&format!("; server_max_window_bits={}", self.window));
        }
        header
    }
}

/// The first offer of permessage-deflate in `Sec-WebSocket-Extensions` values that livehtml can
/// accept (offers are in the client's order of preference); `None` declines them all.
///
/// An offer is declined when a parameter is unknown, repeated or out of range (section 7.1), or
/// asks for a server window of 8 bits, which zlib cannot make (it makes 9).
pub(crate) fn negotiate<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Agreed> {
    values.into_iter().flat_map(|value| value.split(',')).find_map(offer)
}

fn offer(offer: &str) -> Option<Agreed> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case(EXTENSION) {
        return None;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut window = 15;
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        let bits = |value: Option<&str>| value.and_then(|v| v.parse::<u8>().ok()).filter(|b| (8..=15).contains(b));
        match (name, value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(_)) => window = bits(value).filter(|&b| b > 8)?,
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(_)) => {
                bits(value)?;
            }
            _ => return None,
        }
    }
    Some(Agreed { window })
}

thread_local! {
    /// One compressor per window size in use, kept by the thread (zlib's state is about 256 KB:
    /// made once, reset per message).
    static COMPRESSORS: RefCell<Vec<(u8, Compress)>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSOR: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// `payload` compressed as one message (no context kept) with a `window`-bit window, the
/// trailing `00 00 FF FF` removed (section 7.2.1). Every data message is compressed, short ones
/// too (a few bytes longer at worst): RFC 7692 allows either, but some clients (kosoku's
/// Autobahn cases among them) expect every message of a compressing connection compressed.
/// `None` only if zlib fails.
pub(crate) fn compress(payload: &[u8], window: u8) -> Option<Bytes> {
    COMPRESSORS.with(|all| {
        let mut all = all.borrow_mut();
        let at = match all.iter().position(|(w, _)| *w == window) {
            Some(at) => at,
            None => {
                all.push((window, Compress::new_with_window_bits(Compression::default(), false, window)));
                all.len() - 1
            }
        };
        let compressor = &mut all[at].1;
        compressor.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        loop {
            let read = compressor.total_in() as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            compressor.compress_vec(&payload[read..], &mut out, FlushCompress::Sync).ok()?;
            // Done once all input is in and the flush left room to spare (nothing more pending).
            if compressor.total_in() as usize == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        out.truncate(out.len().checked_sub(4).filter(|_| out.ends_with(&[0, 0, 0xff, 0xff]))?);
        Some(Bytes::from(out))
    })
}

/// Inflates one message's compressed payload; `Err(TooBig)` as soon as it would pass `max`
/// bytes (the rest is never inflated), `Err(Invalid)` for data that is not deflate.
pub(crate) fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    // The tail the sender removed (section 7.2.2).
    let input = [compressed, &[0, 0, 0xff, 0xff]].concat();
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        let d = d.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        let mut out = Vec::with_capacity((input.len() * 4).min(max + 1).max(64));
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().min(max + 1 - out.len().min(max)).max(64));
            }
            let before = (d.total_in(), d.total_out());
            match d.decompress_vec(&input[d.total_in() as usize..], &mut out, FlushDecompress::Sync) {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(Status::Ok | Status::BufError) => {}
                Err(_) => return Err(InflateError::Invalid),
            }
            if out.len() > max {
                return Err(InflateError::TooBig);
            }
            let consumed = d.total_in() as usize == input.len();
            if consumed && out.len() < out.capacity() {
                return Ok(out);
            }
            if (d.total_in(), d.total_out()) == before && out.len() < out.capacity() {
                // Stuck with room to spare: not a whole deflate stream.
                return Err(InflateError::Invalid);
            }
        }
    })
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates beyond the message limit.
    TooBig,
    /// It is not deflate data.
    Invalid,
}

/// Rewrites a client's frames for tungstenite: compressed messages inflated into one plain frame
/// each, everything else passed on as it came. Holds bytes only while a frame or a compressed
/// message is incomplete.
#[derive(Debug, Default)]
pub(crate) struct Inflater {
    /// Bytes of a frame not yet whole.
    pending: Vec<u8>,
    /// A compressed message being collected: its opcode and unmasked payload so far.
    message: Option<(u8, Vec<u8>)>,
    /// A plain fragmented message is under way (its continuations pass on too).
    plain: bool,
    /// Everything passes on from here (a frame over the limit, or an error already handed on).
    passing: bool,
}

/// A frame tungstenite refuses (RSV2 set, which no extension here uses): how an error the
/// inflater found becomes a protocol error (1002) there.
const REFUSED: [u8; 6] = [0x80 | 0x20 | 0x1, 0x80, 0, 0, 0, 0];

impl Inflater {
    /// Whether it holds nothing (an idle connection's inflater can be dropped).
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.message.is_none() && !self.plain && !self.passing
    }

    /// Takes `input` from the socket and appends to `out` what tungstenite is to read. `max`:
    /// the largest message (bigger ones are handed on as a header announcing more than `max`,
    /// which tungstenite closes with 1009).
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) {
        if self.passing {
            out.extend_from_slice(input);
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(input);
        let mut at = 0;
        while let Some(frame) = FrameHead::parse(&pending[at..]) {
            if frame.len > max as u64 {
                // tungstenite says no to the header alone: no need to wait for the payload.
                self.passing = true;
                break;
            }
            let total = frame.header + frame.len as usize;
            if pending.len() - at < total {
                break;
            }
            self.frame(&frame, &pending[at..at + total], out, max);
            at += total;
            if self.passing {
                break;
            }
        }
        if self.passing {
            // What follows is handed on as it is: tungstenite fails the connection on it.
            out.extend_from_slice(&pending[at..]);
            return;
        }
        pending.drain(..at);
        // An idle connection keeps no buffer.
        self.pending = if pending.is_empty() { Vec::new() } else { pending };
    }

    fn frame(&mut self, frame: &FrameHead, bytes: &[u8], out: &mut Vec<u8>, max: usize) {
        let control = frame.opcode >= 8;
        match (frame.opcode, frame.rsv1, self.message.is_some()) {
            // Control frames, plain data and what tungstenite will refuse by itself pass on.
            _ if control => out.extend_from_slice(bytes),
            (1 | 2, false, false) => {
                self.plain = !frame.fin;
                out.extend_from_slice(bytes);
            }
            (0, false, false) => {
                if frame.fin {
                    self.plain = false;
                }
                out.extend_from_slice(bytes);
            }
            (1 | 2, true, false) if !self.plain => {
                let payload = frame.unmasked(bytes);
                if frame.fin {
                    self.finish(frame.opcode, &payload, out, max);
                } else {
                    self.message = Some((frame.opcode, payload));
                }
            }
            (0, false, true) => {
                let (opcode, mut payload) = self.message.take().expect("a message is being collected");
                payload.extend_from_slice(&frame.unmasked(bytes));
                if payload.len() > max {
                    self.too_big(out, max);
                } else if frame.fin {
                    self.finish(opcode, &payload, out, max);
                } else {
                    self.message = Some((opcode, payload));
                }
            }
            // A new message inside a compressed one, RSV1 on a continuation, a compressed
            // message inside a plain one: not the protocol.
            _ => self.refuse(out),
        }
    }

    fn finish(&mut self, opcode: u8, compressed: &[u8], out: &mut Vec<u8>, max: usize) {
        match inflate(compressed, max) {
            Ok(payload) => {
                out.push(0x80 | opcode);
                push_length(out, payload.len() as u64);
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&payload);
            }
            Err(InflateError::TooBig) => self.too_big(out, max),
            Err(InflateError::Invalid) => self.refuse(out),
        }
    }

    /// A header announcing one byte more than the limit: tungstenite closes with 1009.
    fn too_big(&mut self, out: &mut Vec<u8>, max: usize) {
        out.push(0x81);
        push_length(out, max as u64 + 1);
        out.extend_from_slice(&[0, 0, 0, 0]);
        self.passing = true;
    }

    fn refuse(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&REFUSED);
        self.passing = true;
    }
}

/// A masked client frame's length field, with the mask bit.
fn push_length(out: &mut Vec<u8>, len: u64) {
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// A frame's header: enough of it to find the frame's end and what it is.
struct FrameHead {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    /// Header bytes, mask included.
    header: usize,
    mask: Option<[u8; 4]>,
    len: u64,
}

impl FrameHead {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (&first, &second) = (bytes.first()?, bytes.get(1)?);
        let (len, mut header) = match second & 0x7f {
            126 => (u64::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])), 4),
            127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
            n => (u64::from(n), 2),
        };
        let mask = if second & 0x80 != 0 {
            let key: [u8; 4] = bytes.get(header..header + 4)?.try_into().ok()?;
            header += 4;
            Some(key)
        } else {
            None
        };
        Some(Self { fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, opcode: first & 0x0f, header, mask, len })
    }

    fn unmasked(&self, bytes: &[u8]) -> Vec<u8> {
        let payload = &bytes[self.header..];
        match self.mask {
            Some(key) => payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect(),
            None => payload.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_taken_in_order_and_bad_ones_declined() {
        let agreed = |v: &str| negotiate([v]);
        assert_eq!(agreed("permessage-deflate"), Some(Agreed { window: 15 }));
        assert_eq!(agreed("permessage-deflate; client_max_window_bits"), Some(Agreed { window: 15 }));
        assert_eq!(agreed("permessage-deflate; server_max_window_bits=10"), Some(Agreed { window: 10 }));
        assert_eq!(agreed(r#"permessage-deflate; server_max_window_bits="12""#), Some(Agreed { window: 12 }));
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown",
        ] {
            assert_eq!(agreed(bad), None, "{bad}");
        }
        // The first acceptable offer, across headers and lists.
        let second =
            negotiate(["permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover"]);
        assert_eq!(second, Some(Agreed { window: 15 }));
        assert_eq!(
            Agreed { window: 10 }.header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
    }

    #[test]
    fn a_message_compresses_and_inflates_back_with_any_window() {
        let text = "<li>hello <b>world</b></li>".repeat(40);
        for window in 9..=15 {
            let small = compress(text.as_bytes(), window).expect("worth compressing");
            assert!(small.len() < text.len() / 4, "{} of {}", small.len(), text.len());
            assert_eq!(inflate(&small, 1 << 20).unwrap(), text.as_bytes());
        }
        let short = compress(b"short", 15).expect("compressed all the same");
        assert_eq!(inflate(&short, 64).unwrap(), b"short");
        assert_eq!(inflate(&compress(b"", 15).unwrap(), 64).unwrap(), b"");
    }

    #[test]
    fn a_bomb_is_inflated_only_to_the_limit() {
        let bomb = compress(&vec![b'a'; 10 << 20], 15).unwrap();
        assert!(bomb.len() < 20 * 1024, "10 MB in {} bytes", bomb.len());
        assert_eq!(inflate(&bomb, 64 * 1024), Err(InflateError::TooBig));
        assert_eq!(inflate(b"\xff\xff\xff\xff not deflate", 1024), Err(InflateError::Invalid));
    }

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        push_length(&mut out, payload.len() as u64);
        let key = [1, 2, 3, 4];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    #[test]
    fn compressed_frames_become_plain_ones_and_the_rest_passes_unchanged() {
        let text = b"{\"say\":\"hello hello hello hello hello hello\"}";
        let compressed = compress(text, 15).unwrap();
        let mut out = Vec::new();
        let mut inflater = Inflater::default();
        // Split across reads, one byte at a time.
        let frame = masked(0x80 | 0x40 | 1, &compressed);
        for b in &frame {
            inflater.push(&[*b], &mut out, 1024);
        }
        let mut expected = vec![0x81];
        push_length(&mut expected, text.len() as u64);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        expected.extend_from_slice(text);
        assert_eq!(out, expected);
        assert!(inflater.is_empty());

        // Fragmented, with a ping between: the ping first, then the whole message.
        out.clear();
        let (a, b) = compressed.split_at(5);
        let ping = masked(0x89, b"p");
        let input = [masked(0x40 | 1, a), ping.clone(), masked(0x80, b)].concat();
        inflater.push(&input, &mut out, 1024);
        assert_eq!(out, [ping, expected].concat());

        // Plain frames pass as they came.
        out.clear();
        let plain = [masked(0x01, b"ab"), masked(0x80, b"cd"), masked(0x82, b"bin")].concat();
        inflater.push(&plain, &mut out, 1024);
        assert_eq!(out, plain);
        assert!(inflater.is_empty());
    }

    #[test]
    fn bombs_and_broken_messages_are_handed_on_as_frames_tungstenite_refuses() {
        let bomb = compress(&vec![b'a'; 1 << 20], 15).unwrap();
        let mut out = Vec::new();
        Inflater::default().push(&masked(0xc1, &bomb), &mut out, 4096);
        assert_eq!(&out[..2], &[0x81, 0x80 | 126], "a header announcing 4097 bytes");
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 4097);

        for broken in [
            [masked(0x40 | 1, b"\x01\x02"), masked(0x81, b"new message inside")].concat(),
            [masked(0x40 | 1, b"\x01\x02"), masked(0x80 | 0x40, b"rsv1 on a continuation")].concat(),
            masked(0xc1, b"\xff\xff\xff\xff not deflate"),
        ] {
            let mut out = Vec::new();
            Inflater::default().push(&broken, &mut out, 4096);
            assert!(out.ends_with(&REFUSED), "{broken:?}");
        }
    }
}
