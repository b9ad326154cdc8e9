//! The wire dialects as plain data: what clients send, what the server sends, close codes.
//!
//! No I/O here; every malformed input maps to a typed [`ParseError`].

pub mod close;
pub(crate) mod datastar;
pub(crate) mod deflate;
pub(crate) mod envelope;
mod fragment;
mod frame;
mod inbound;
pub mod names;
mod position;

pub(crate) use fragment::escape_into as escape_attr;
pub use fragment::{Fragment, Html, Swap};
pub use frame::{Frame, Inbound};
pub use inbound::{Dialect, Event, ParseError, ParseLimits, Values, parse_event};
pub(crate) use position::Cursors;
pub use position::{MAX_POSITIONS, NotAPosition, Position, Since};

/// The vocabulary shared with livehtml.js, checked against the committed fixture that the
/// client's node test reads too.
#[cfg(test)]
mod wire_fixture {
    use super::Swap;
    use super::close::{self, Policy};

    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("../../fixtures/wire.json")).expect("wire.json is JSON")
    }

    #[test]
    fn close_policies_match_the_fixture() {
        let fixture = fixture();
        let codes = fixture["close"].as_object().expect("a close table");
        for (code, policy) in codes {
            let code: u16 = code.parse().expect("a numeric code");
            let expected = match policy.as_str() {
                Some("stay") => Policy::Stay,
                Some("reconnect") => Policy::Reconnect,
                Some("reload") => Policy::Reload,
                other => panic!("unknown policy {other:?}"),
            };
            assert_eq!(close::policy(code), expected, "close code {code}");
        }
        // Every code the server sends is in the table.
        for code in [
            close::NORMAL,
            close::GOING_AWAY,
            close::PROTOCOL_ERROR,
            close::UNSUPPORTED,
            close::INVALID_DATA,
            close::POLICY,
            close::TOO_BIG,
            close::INTERNAL,
            close::RESTART,
            close::SLOW_CONSUMER,
            close::HEARTBEAT_TIMEOUT,
            close::STALE_VIEW,
        ] {
            assert!(codes.contains_key(&code.to_string()), "{code} is missing from wire.json");
        }
    }

    #[test]
    fn names_match_the_fixture() {
        use super::names::{attr, comment, control, event, header, query};
        let fixture = fixture();
        let names = &fixture["names"];
        let ours = [
            ("header", "STREAM", header::STREAM),
            ("header", "EVENT", header::EVENT),
            ("header", "CLIENT", header::CLIENT),
            ("header", "REF", header::REF),
            ("event", "STREAM", event::STREAM),
            ("event", "CLOSE", event::CLOSE),
            ("event", "AT", event::AT),
            ("control", "KEY", control::KEY),
            ("control", "NAV", control::NAV),
            ("control", "REDIRECT", control::REDIRECT),
            ("control", "NAV_EVENT", control::NAV_EVENT),
            ("control", "UPLOAD_EVENT", control::UPLOAD_EVENT),
            ("control", "UPLOAD_CANCEL_EVENT", control::UPLOAD_CANCEL_EVENT),
            ("control", "RESUMED", control::RESUMED),
            ("control", "RESYNCED", control::RESYNCED),
            ("control", "RECOVERED", control::RECOVERED),
            ("query", "STREAM", query::STREAM),
            ("query", "CLIENT", query::CLIENT),
            ("query", "RESUME", query::RESUME),
            ("query", "SINCE", query::SINCE),
            ("query", "POLL", query::POLL),
            ("query", "ACK", query::ACK),
            ("attr", "STREAM", attr::STREAM),
            ("attr", "INSERT_AT", attr::INSERT_AT),
            ("attr", "STREAM_RESET", attr::STREAM_RESET),
            ("attr", "STREAM_DELETE", attr::STREAM_DELETE),
            ("attr", "ORDER", attr::ORDER),
            ("attr", "UPLOAD", attr::UPLOAD),
            ("attr", "UPLOAD_GO", attr::UPLOAD_GO),
            ("attr", "UPLOAD_STOP", attr::UPLOAD_STOP),
            ("comment", "REPLY", comment::REPLY),
            ("comment", "REFUSED", comment::REFUSED),
        ];
        for (group, name, value) in ours {
            assert_eq!(names[group][name].as_str(), Some(value), "{group}.{name}");
        }
        let listed: usize = names.as_object().unwrap().values().map(|g| g.as_object().unwrap().len()).sum();
        assert_eq!(listed, ours.len(), "every name in wire.json is one of ours");
    }

    #[test]
    fn swap_styles_match_the_fixture() {
        let fixture = fixture();
        let listed: Vec<&str> = fixture["swap"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let ours: Vec<&str> = Swap::ALL.iter().map(|s| s.oob_value()).collect();
        assert_eq!(ours, listed);
    }
}
