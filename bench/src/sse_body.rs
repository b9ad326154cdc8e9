//! An SSE client's side of the wire: the response body de-chunked (HTTP/1.1 chunked framing,
//! or none) into text, cut into events at blank lines. Both client engines read streams with it.

/// The request that opens a stream at `/sse` (a few dozen bytes: a fresh socket takes them whole).
pub(crate) fn request(addr: std::net::SocketAddr) -> String {
    format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
}

/// A stream's body after its head: received bytes, and the text they carry.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// HTTP/1.1 chunked framing: bytes left in the current chunk, and whether its CRLF follows.
    pub(crate) chunked: bool,
    left: usize,
    crlf: bool,
    /// Received, not yet de-chunked.
    pub(crate) raw: Vec<u8>,
    /// De-chunked, not yet a whole event.
    pub(crate) text: Vec<u8>,
}

impl Body {
    /// Takes the response head off `raw` once it is all there: `Ok(false)` until then, an
    /// error unless it is a `200`.
    pub(crate) fn take_head(&mut self) -> Result<bool, String> {
        let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(false) };
        let head = String::from_utf8_lossy(&self.raw[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            return Err(format!("stream refused: {}", head.lines().next().unwrap_or("")));
        }
        self.chunked = head.contains("transfer-encoding: chunked");
        self.raw.drain(..end + 4);
        Ok(true)
    }

    /// Hands every whole event received so far to `each`; false once the body has ended.
    pub(crate) fn events(&mut self, mut each: impl FnMut(&[u8])) -> bool {
        let open = self.dechunk();
        // An event ends at a blank line: "\n\n", or "\r\n\r\n" (sse-starlette writes CRLF).
        while let Some((end, len)) = event_end(&self.text) {
            each(&self.text[..end]);
            self.text.drain(..end + len);
        }
        open
    }

    /// Moves what `raw` holds into `text` through the chunked framing; false at the body's end.
    fn dechunk(&mut self) -> bool {
        if !self.chunked {
            self.text.append(&mut self.raw);
            return true;
        }
        let mut at = 0;
        loop {
            if self.crlf {
                if self.raw.len() - at < 2 {
                    break;
                }
                at += 2;
                self.crlf = false;
            }
            if self.left > 0 {
                let n = self.left.min(self.raw.len() - at);
                if n == 0 {
                    break;
                }
                self.text.extend_from_slice(&self.raw[at..at + n]);
                at += n;
                self.left -= n;
                self.crlf = self.left == 0;
                continue;
            }
            let Some(end) = self.raw[at..].windows(2).position(|w| w == b"\r\n") else { break };
            let line = std::str::from_utf8(&self.raw[at..at + end]).unwrap_or("");
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            at += end + 2;
            if size == 0 {
                self.raw.clear();
                return false;
            }
            self.left = size;
        }
        self.raw.drain(..at);
        true
    }
}

/// Where the first event in `text` ends, and the length of its blank line.
fn event_end(text: &[u8]) -> Option<(usize, usize)> {
    let i = text.windows(2).position(|w| w == b"\n\n" || w == b"\n\r")?;
    if text[i + 1] == b'\n' {
        return Some((i, 2));
    }
    // "\n\r": a blank CRLF line when "\n" follows; else keep looking after it.
    match text.get(i + 2) {
        Some(b'\n') => Some((i, 3)),
        Some(_) => event_end(&text[i + 2..]).map(|(end, len)| (i + 2 + end, len)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Body, event_end};

    #[test]
    fn events_end_at_a_blank_line_of_either_kind() {
        assert_eq!(event_end(b"data: a\n\ndata: b"), Some((7, 2)));
        assert_eq!(event_end(b"data: a\r\n\r\ndata: b"), Some((8, 3)));
        assert_eq!(event_end(b"data: a\r\ndata: b\r\n\r\n"), Some((17, 3)));
        assert_eq!(event_end(b"data: a\r\n"), None);
    }

    #[test]
    fn a_chunked_body_split_anywhere_gives_the_same_events() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            d\r\ndata: one\n\nda\r\n\
            11\r\nta: two\n\ndata: th\r\n\
            7\r\nree\n\n: \r\n0\r\n\r\n";
        for cut in 1..wire.len() {
            let mut body = Body::default();
            let mut events = Vec::new();
            let mut head = false;
            let mut open = true;
            for part in [&wire[..cut], &wire[cut..]] {
                body.raw.extend_from_slice(part);
                if !head {
                    head = body.take_head().unwrap();
                    if !head {
                        continue;
                    }
                }
                // Past the last chunk nothing more is read.
                if open {
                    open = body.events(|e| events.push(String::from_utf8_lossy(e).into_owned()));
                }
            }
            assert!(head && !open, "cut at {cut}");
            assert_eq!(events, ["data: one", "data: two", "data: three"], "cut at {cut}");
        }
    }

    #[test]
    fn a_refused_stream_says_its_status() {
        let mut body = Body::default();
        body.raw.extend_from_slice(b"HTTP/1.1 403 Forbidden\r\n\r\n");
        assert_eq!(body.take_head(), Err("stream refused: http/1.1 403 forbidden".to_owned()));
    }
}
