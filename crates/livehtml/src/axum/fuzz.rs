//! Fuzzing on stable Rust: property tests (proptest) that feed every parser of outside input
//! arbitrary and near-valid bytes, and check that none panics and that each keeps its promise
//! (limits, signatures, byte ranges). `cargo test` runs each target for a bounded number of
//! cases (`PROPTEST_CASES`, 512 by default here; CI runs the default); a failure prints the
//! shrunk input to add to the bad-input corpus (`tests/corpus/`).
//!
//! Here, inside the axum module, because it reaches what only the crate sees: the region
//! scanner and diff, the token verifier, the long-poll query and the SSE post parsing.

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::{poll, sse};
use crate::protocol::{ParseLimits, Since, envelope, parse_event};
use crate::render::{Patch, Rendered};
use crate::view::token::{Claims, Signer};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// JSON-ish text: arbitrary bytes are mostly rejected at the first character, so half of the
/// inputs are made of JSON's own pieces, nested and broken.
fn jsonish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("null".to_owned()),
        Just("\"HEADERS\"".to_owned()),
        Just("\"lh\"".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just("1e999".to_owned()),
        Just("-0".to_owned()),
        "\"[a-z<>&'\\\\]{0,8}\"",
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    prop_oneof![prop::collection::vec(atom, 0..40).prop_map(|parts| parts.concat()), any::<String>(),]
}

/// HTML-ish text: elements with and without ids, nested, void, raw-text and broken.
fn htmlish() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z &<>\"']{0,6}",
        Just("<br>".to_owned()),
        Just("<img src=x/>".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just("<script>if (a < b) {}</script>".to_owned()),
        Just("</div>".to_owned()),
        Just("<div".to_owned()),
        Just("<p id=\"".to_owned()),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        (
            prop::sample::select(vec!["div", "p", "span", "ul", "li", "textarea"]),
            "[a-c]{0,2}",
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(tag, id, children)| {
                let attr = if id.is_empty() { String::new() } else { format!(" id=\"{id}\"") };
                format!("<{tag}{attr} class='x'>{}</{tag}>", children.concat())
            })
    })
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(*name, value);
        }
    }
    map
}

proptest! {
    #![proptest_config(config())]

    /// The event parser: any text gets an event or an error, within the limits.
    #[test]
    fn the_event_parser_holds_its_limits(text in jsonish()) {
        let limits = ParseLimits { max_bytes: 256, max_depth: 3, max_fields: 8 };
        if let Ok(event) = parse_event(&text, &limits) {
            prop_assert!(text.len() <= limits.max_bytes);
            prop_assert!(event.values.len() <= limits.max_fields);
        }
    }

    /// The region scanner and the diff: a render compared with itself is unchanged; with
    /// another, each changed region is a whole element of the new render.
    #[test]
    fn region_diffs_are_elements_of_the_new_render(old in htmlish(), new in htmlish()) {
        let before = Rendered::new(old.clone());
        prop_assert_eq!(before.diff(&before.fingerprints()), Patch::None);
        let after = Rendered::new(new.clone());
        if let Patch::Regions(changes) = after.diff(&before.fingerprints()) {
            for change in changes {
                let element = &new[change.outer().clone()];
                prop_assert!(element.starts_with('<') && element.ends_with('>'), "{element:?} in {new:?}");
                prop_assert!(element.contains(" id=\""));
            }
        }
    }

    /// The token verifier: only what the key signed verifies; a changed byte never does.
    #[test]
    fn tokens_verify_only_as_signed(
        junk in any::<String>(),
        url in "/[a-z/?=&]{0,20}",
        at in any::<usize>(),
        to in any::<char>(),
    ) {
        let signer = Signer::new(b"fuzzing key");
        prop_assert!(signer.verify(&junk, 1_000, 3_600).is_err());
        let claims = Claims { url: url.clone(), render: 7, issued: 1_000, page: 3 };
        let token = signer.sign(&claims);
        prop_assert_eq!(signer.verify(&token, 1_000, 3_600).map(|c| c.url), Ok(url));
        let mut chars: Vec<char> = token.chars().collect();
        let i = at % chars.len();
        if chars[i] != to {
            chars[i] = to;
            let forged: String = chars.into_iter().collect();
            prop_assert!(signer.verify(&forged, 1_000, 3_600).is_err(), "{forged}");
        }
        prop_assert!(Signer::new(b"another key").verify(&token, 1_000, 3_600).is_err());
    }

    /// The long-poll query, resume positions and cross-process envelopes take any input.
    #[test]
    fn queries_positions_and_envelopes_take_any_input(text in any::<String>(), bytes in any::<Vec<u8>>()) {
        let _ = poll::ask(Some(&text));
        let since = Since::parse(&text);
        prop_assert!(since.positions.len() <= crate::protocol::MAX_POSITIONS);
        let _ = envelope::decode(&bytes);
        let _ = envelope::decode(text.as_bytes());
    }

    /// An SSE post: Datastar signals, forms and stream ids from any body and headers.
    #[test]
    fn sse_posts_take_any_body_and_headers(
        body in any::<Vec<u8>>(),
        json in jsonish(),
        id in any::<String>(),
        query in any::<String>(),
    ) {
        let map = headers(&[("lh-stream", id.clone()), ("hx-trigger", id), ("datastar-request", "true".into())]);
        let _ = sse::datastar_event(&body, &map, None);
        let _ = sse::datastar_event(json.as_bytes(), &map, Some("delete"));
        let _ = sse::form_to_json(&body, None);
        let _ = sse::stream_id(&map, Some(&query));
    }

    /// The WebSocket frame reader livehtml configures (tungstenite, with its size limits),
    /// over arbitrary bytes after a valid masked frame: an error or a message, never a panic
    /// or an allocation beyond the limit.
    #[test]
    fn the_frame_reader_takes_any_bytes(tail in any::<Vec<u8>>(), first in any::<[u8; 2]>()) {
        let mut bytes = vec![0x81, 0x85, 1, 2, 3, 4, b'h' ^ 1, b'e' ^ 2, b'l' ^ 3, b'l' ^ 4, b'o' ^ 1];
        bytes.extend_from_slice(&first);
        bytes.extend_from_slice(&tail);
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(1024))
            .max_frame_size(Some(1024))
            .read_buffer_size(64);
        let mut socket = tungstenite::WebSocket::from_raw_socket(
            std::io::Cursor::new(bytes),
            tungstenite::protocol::Role::Server,
            Some(config),
        );
        let first = socket.read().ok().and_then(|m| m.into_text().ok());
        prop_assert_eq!(first.as_ref().map(|t| t.as_str()), Some("hello"));
        for _ in 0..64 {
            match socket.read() {
                Ok(message) => prop_assert!(message.len() <= 1024),
                Err(_) => break,
            }
        }
    }
}
