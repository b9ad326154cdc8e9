//! What the generator sends to each kind of peer, and how it finds its marker in what comes back.
//!
//! Every sent message carries `~<seq>:<unix nanos>~`. Digits, `:` and `~` pass unchanged through
//! JSON, HTML escaping and Socket.IO framing, so one scan finds them in any peer's output.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wire a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Dialect {
    /// htmx 2 `ws-send` JSON in, HTML fragments out (livehtml).
    Htmx,
    /// The FastAPI example's JSON: `{"name", "message"}` in, the same plus `"time"` out.
    Json,
    /// Socket.IO (Engine.IO 4 over WebSocket): `42["chat", {...}]`.
    Socketio,
    /// Server-Sent Events: clients hold `GET /sse` streams; the sender `POST`s the FastAPI
    /// example's JSON to `/post`, which the peer sends to every stream as one event.
    Sse,
}

impl Dialect {
    /// The WebSocket URL for a peer whose base URL is `base` (`ws://127.0.0.1:PORT`).
    pub(crate) fn url(self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        match self {
            Self::Socketio => format!("{base}/socket.io/?EIO=4&transport=websocket"),
            Self::Htmx | Self::Json => format!("{base}/ws"),
            Self::Sse => format!("{base}/sse"),
        }
    }

    /// One chat message carrying `seq` and the current time.
    pub(crate) fn message(self, seq: u64) -> String {
        let text = format!("hello from the bench ~{seq}:{}~", now_nanos());
        match self {
            Self::Htmx => format!(
                r#"{{"name":"bench","message":"{text}","HEADERS":{{"HX-Request":"true","HX-Trigger":"chat-form","HX-Trigger-Name":null,"HX-Target":"chat-form","HX-Current-URL":"http://127.0.0.1/chat"}}}}"#
            ),
            Self::Json | Self::Sse => format!(r#"{{"name":"bench","message":"{text}"}}"#),
            Self::Socketio => format!(r#"42["chat",{{"name":"bench","message":"{text}"}}]"#),
        }
    }
}

/// What a Socket.IO (Engine.IO 4) client does with a text message it receives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EngineIo {
    /// Answer with this.
    Send(&'static str),
    /// The namespace connect is done: the client has joined.
    Joined,
    /// A message of the chat.
    Payload,
    Ignore,
}

/// A Socket.IO client's step for `text`: before it has joined, the Engine.IO open packet is
/// answered with the connect to the default namespace, whose acknowledgement joins it; after,
/// the Engine.IO heartbeat is answered (or the server drops the client) and the rest is chat.
pub(crate) fn engine_io(text: &str, joined: bool) -> EngineIo {
    if !joined {
        if text.starts_with("40") {
            EngineIo::Joined
        } else if text.starts_with('0') {
            EngineIo::Send("40")
        } else {
            EngineIo::Ignore
        }
    } else if text == "2" {
        EngineIo::Send("3")
    } else {
        EngineIo::Payload
    }
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Finds `~seq:nanos~` in a received payload.
pub(crate) fn marker(payload: &[u8]) -> Option<(u64, u64)> {
    let start = payload.iter().position(|&b| b == b'~')? + 1;
    let mut seq = 0u64;
    let mut i = start;
    while i < payload.len() && payload[i].is_ascii_digit() {
        seq = seq * 10 + u64::from(payload[i] - b'0');
        i += 1;
    }
    if i == start || payload.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let ts_start = i;
    let mut ts = 0u64;
    while i < payload.len() && payload[i].is_ascii_digit() {
        ts = ts * 10 + u64::from(payload[i] - b'0');
        i += 1;
    }
    (i > ts_start && payload.get(i) == Some(&b'~')).then_some((seq, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_survives_every_dialect() {
        for d in [Dialect::Htmx, Dialect::Json, Dialect::Socketio] {
            let m = d.message(42);
            let (seq, ts) = marker(m.as_bytes()).unwrap();
            assert_eq!(seq, 42);
            assert!(ts > 0);
        }
        let html = br#"<ul id="messages" hx-swap-oob="beforeend"><li>[12:00:00] bench: hello ~7:123~</li></ul>"#;
        assert_eq!(marker(html), Some((7, 123)));
        assert_eq!(marker(b"no marker"), None);
        assert_eq!(marker(b"~12~"), None);
    }

    #[test]
    fn a_socketio_client_joins_then_answers_heartbeats() {
        assert_eq!(engine_io(r#"0{"sid":"x","pingInterval":25000}"#, false), EngineIo::Send("40"));
        assert_eq!(engine_io(r#"40{"sid":"y"}"#, false), EngineIo::Joined);
        assert_eq!(engine_io("2", false), EngineIo::Ignore);
        assert_eq!(engine_io("2", true), EngineIo::Send("3"));
        assert_eq!(engine_io(r#"42["chat",{}]"#, true), EngineIo::Payload);
    }
}
