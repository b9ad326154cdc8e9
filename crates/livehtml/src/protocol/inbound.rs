//! What browsers send: one parser for every client dialect.
//!
//! Three shapes arrive as WebSocket text messages, and all become one [`Event`]:
//!
//! * **htmx 2** (`ws-send`): form values at the top level plus a `HEADERS` object carrying
//!   `HX-Request`, `HX-Trigger`, `HX-Trigger-Name`, `HX-Target` and `HX-Current-URL`.
//! * **htmx 4** (`hx-ws:send`): form values at the top level plus a lower-case `headers` object
//!   (`HX-Source` names the element as `tag#id`), or `{"headers": {...}, "body": {...}}`.
//! * **livehtml.js**: the htmx 2 shape, with `LH-Event` naming the event when the page gives one.
//!
//! A field with several values (checkboxes, multi-selects) is a JSON array. Numbers and booleans
//! (from `hx-vals`) become their JSON text. Anything else is a [`ParseError`], never a panic.

use super::names;
use std::fmt;

use serde_json::{Map, Value};

/// Limits applied while parsing one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest message accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays accepted (the top-level object is depth 1).
    pub max_depth: usize,
    /// Most form fields accepted in one message.
    pub max_fields: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_bytes: 64 * 1024, max_depth: 4, max_fields: 1024 }
    }
}

/// Which client produced an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// htmx 2 with `htmx-ext-ws` (`HEADERS`).
    Htmx2,
    /// htmx 4's built-in `hx-ws` (`headers`, maybe `body`).
    Htmx4,
    /// livehtml.js (the htmx 2 shape plus `LH-Event`).
    LiveHtml,
    /// A bare JSON object with no headers at all (a script, a test, a CLI client).
    Bare,
    /// Datastar 1.0 (`@post` with its signals; `Datastar-Request` among the headers).
    Datastar,
}

/// One event sent by a page: which element fired it and the form values that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's name: livehtml.js's `LH-Event`, else a form field named `lh-event`, else the
    /// trigger's `name`, else its `id`.
    pub name: Option<String>,
    /// `id` of the element that fired the event (`HX-Trigger`, or the id in htmx 4's `HX-Source`).
    pub trigger: Option<String>,
    /// `name` attribute of the element that fired the event (`HX-Trigger-Name`).
    pub trigger_name: Option<String>,
    /// The element the page expects to be updated (`HX-Target`), without a `tag#` prefix.
    pub target: Option<String>,
    /// The page's URL when the event fired (`HX-Current-URL`).
    pub current_url: Option<String>,
    /// The form values, in the order they were sent.
    pub values: Values,
    /// Which client sent it.
    pub dialect: Dialect,
    /// The number livehtml.js gave it (`LH-Ref`): once it is handled, the page is told
    /// (`lh-reply`), and the element that sent it leaves its loading state.
    pub reference: Option<u64>,
}

impl Event {
    /// The first value of the form field `name`; shorthand for `self.values.get(name)`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name)
    }
}

/// Form values as an ordered multimap: a field may carry several values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values(Vec<(String, String)>);

impl Values {
    /// The first value of `name`, if the field was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in the order sent; empty when the field is absent.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// All `(name, value)` pairs in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of `(name, value)` pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no values were sent.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a value; used by the parser and handy in tests.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Values {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

/// Why an inbound message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is larger than [`ParseLimits::max_bytes`].
    TooBig {
        /// The message's size in bytes.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The message is not valid JSON.
    NotJson(String),
    /// The JSON is valid but its top level is not an object.
    NotAnObject,
    /// Objects or arrays nest deeper than [`ParseLimits::max_depth`].
    TooDeep {
        /// The limit it broke.
        limit: usize,
    },
    /// More fields than [`ParseLimits::max_fields`].
    TooManyFields {
        /// The limit it broke.
        limit: usize,
    },
    /// A field holds a value of a type forms never send (an object, or `null` inside an array).
    WrongType {
        /// The offending field.
        field: String,
        /// What was found there.
        found: &'static str,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig { size, limit } => write!(f, "message of {size} bytes exceeds {limit}"),
            Self::NotJson(e) => write!(f, "not JSON: {e}"),
            Self::NotAnObject => f.write_str("not a JSON object"),
            Self::TooDeep { limit } => write!(f, "nested deeper than {limit}"),
            Self::TooManyFields { limit } => write!(f, "more than {limit} fields"),
            Self::WrongType { field, found } => write!(f, "field {field:?} holds {found}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one inbound text message in any supported dialect.
///
/// ```
/// use livehtml::protocol::{parse_event, Dialect, ParseLimits};
///
/// let msg = r#"{"message":"hi","HEADERS":{"HX-Request":"true","HX-Trigger":"chat-form"}}"#;
/// let event = parse_event(msg, &ParseLimits::default()).unwrap();
/// assert_eq!(event.dialect, Dialect::Htmx2);
/// assert_eq!(event.trigger.as_deref(), Some("chat-form"));
/// assert_eq!(event.value("message"), Some("hi"));
///
/// assert!(parse_event("[1, 2]", &ParseLimits::default()).is_err());
/// ```
pub fn parse_event(text: &str, limits: &ParseLimits) -> Result<Event, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooBig { size: text.len(), limit: limits.max_bytes });
    }
    // serde_json refuses nesting beyond 128 on its own, so this cannot overflow the stack;
    // the tighter, configurable limit is checked on the parsed value.
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(mut top) = value else {
        return Err(ParseError::NotAnObject);
    };
    check_depth(&top, 1, limits.max_depth)?;

    let (dialect, headers) = if let Some(h) = top.remove("HEADERS") {
        let headers = header_map(h, "HEADERS")?;
        let dialect = if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(super::datastar::REQUEST_HEADER)) {
            Dialect::Datastar
        } else if headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(names::header::EVENT) || k.eq_ignore_ascii_case(names::header::CLIENT))
        {
            Dialect::LiveHtml
        } else {
            Dialect::Htmx2
        };
        (dialect, headers)
    } else if let Some(h) = top.remove("headers") {
        (Dialect::Htmx4, header_map(h, "headers")?)
    } else {
        (Dialect::Bare, Vec::new())
    };

    let mut values = Values::default();
    if dialect == Dialect::Htmx4
        && let Some(body) = top.remove("body")
    {
        match body {
            Value::Object(body) => collect_values(body, &mut values, limits)?,
            other => return Err(ParseError::WrongType { field: "body".into(), found: type_name(&other) }),
        }
    }
    collect_values(top, &mut values, limits)?;

    let header = |name: &str| {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    };
    let trigger = header("HX-Trigger").or_else(|| header("HX-Source").and_then(|s| id_of(&s)));
    let trigger_name = header("HX-Trigger-Name");
    // The event's name: livehtml.js says it; a plain htmx form can name it in a field
    // called `lh-event`; otherwise the element's name, then its id.
    let name = header(names::header::EVENT)
        .or_else(|| values.get("lh-event").map(str::to_owned))
        .or_else(|| trigger_name.clone())
        .or_else(|| trigger.clone());
    Ok(Event {
        name,
        trigger,
        trigger_name,
        target: header("HX-Target").map(|t| id_of(&t).unwrap_or(t)),
        current_url: header("HX-Current-URL"),
        reference: header(names::header::REF).and_then(|r| r.parse().ok()),
        values,
        dialect,
    })
}

/// htmx 4 names elements as `tag#id` (`form#chat`); the id is what a server routes on.
fn id_of(identifier: &str) -> Option<String> {
    identifier.split_once('#').map(|(_, id)| id.to_owned()).filter(|id| !id.is_empty())
}

fn header_map(value: Value, field: &str) -> Result<Vec<(String, String)>, ParseError> {
    let Value::Object(map) = value else {
        return Err(ParseError::WrongType { field: field.into(), found: type_name(&value) });
    };
    // htmx 2 sends `"HX-Trigger-Name": null` for an element without a name: null means absent.
    map.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match scalar(&v) {
            Some(s) => Ok((k, s)),
            None => Err(ParseError::WrongType { field: format!("{field}.{k}"), found: type_name(&v) }),
        })
        .collect()
}

fn collect_values(map: Map<String, Value>, out: &mut Values, limits: &ParseLimits) -> Result<(), ParseError> {
    for (k, v) in map {
        match v {
            Value::Array(items) => {
                for item in items {
                    let s = scalar(&item)
                        .ok_or_else(|| ParseError::WrongType { field: k.clone(), found: type_name(&item) })?;
                    out.push(k.clone(), s);
                }
            }
            Value::Null => {}
            other => {
                let s = scalar(&other)
                    .ok_or_else(|| ParseError::WrongType { field: k.clone(), found: type_name(&other) })?;
                out.push(k, s);
            }
        }
        if out.len() > limits.max_fields {
            return Err(ParseError::TooManyFields { limit: limits.max_fields });
        }
    }
    Ok(())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_depth(map: &Map<String, Value>, depth: usize, limit: usize) -> Result<(), ParseError> {
    if depth > limit {
        return Err(ParseError::TooDeep { limit });
    }
    map.values().try_for_each(|v| check_value_depth(v, depth + 1, limit))
}

fn check_value_depth(v: &Value, depth: usize, limit: usize) -> Result<(), ParseError> {
    match v {
        Value::Object(m) => check_depth(m, depth, limit),
        Value::Array(_) if depth > limit => Err(ParseError::TooDeep { limit }),
        Value::Array(items) => items.iter().try_for_each(|i| check_value_depth(i, depth + 1, limit)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Event, ParseError> {
        parse_event(s, &ParseLimits::default())
    }

    #[test]
    fn htmx2_ws_send_with_headers_and_multi_values() {
        let e = parse(
            r#"{"name":"Ann","tags":["a","b"],"HEADERS":{"HX-Request":"true","HX-Trigger":"chat",
                "HX-Trigger-Name":"send","HX-Target":"log","HX-Current-URL":"http://x/chat"}}"#,
        )
        .unwrap();
        assert_eq!(e.dialect, Dialect::Htmx2);
        assert_eq!(e.trigger.as_deref(), Some("chat"));
        assert_eq!(e.trigger_name.as_deref(), Some("send"));
        assert_eq!(e.name.as_deref(), Some("send"));
        assert_eq!(e.target.as_deref(), Some("log"));
        assert_eq!(e.current_url.as_deref(), Some("http://x/chat"));
        assert_eq!(e.value("name"), Some("Ann"));
        assert_eq!(e.values.get_all("tags").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn htmx2_without_trigger_name_uses_the_id() {
        // Exactly what htmx 2.0.11 + htmx-ext-ws 2.0.4 send for `<form id="room-form" ws-send>`.
        let e = parse(
            r#"{"message":"hi","HEADERS":{"HX-Request":"true","HX-Trigger":"room-form","HX-Trigger-Name":null,
                "HX-Target":"room-form","HX-Current-URL":"http://127.0.0.1:45437/htmx2"}}"#,
        )
        .unwrap();
        assert_eq!(e.dialect, Dialect::Htmx2);
        assert_eq!(e.name.as_deref(), Some("room-form"));
        assert_eq!(e.trigger_name, None);
        let e = parse(r#"{"HEADERS":{"HX-Trigger":"chat","HX-Trigger-Name":""}}"#).unwrap();
        assert_eq!(e.trigger_name, None);
        assert!(matches!(parse(r#"{"HEADERS":{"HX-Trigger":["a"]}}"#), Err(ParseError::WrongType { .. })));
    }

    #[test]
    fn htmx4_top_level_values_and_source_identifier() {
        let e = parse(
            r#"{"message":"hi","n":3,"ok":true,"headers":{"HX-Request":"true","HX-Source":"form#chat-form",
                "HX-Target":"div#room","HX-Current-URL":"http://x/"}}"#,
        )
        .unwrap();
        assert_eq!(e.dialect, Dialect::Htmx4);
        assert_eq!(e.trigger.as_deref(), Some("chat-form"));
        assert_eq!(e.target.as_deref(), Some("room"));
        assert_eq!(e.value("n"), Some("3"));
        assert_eq!(e.value("ok"), Some("true"));
    }

    #[test]
    fn htmx4_body_envelope() {
        let e = parse(r#"{"headers":{"HX-Source":"button#go"},"body":{"x":"1","y":["2","3"]}}"#).unwrap();
        assert_eq!(e.dialect, Dialect::Htmx4);
        assert_eq!(e.trigger.as_deref(), Some("go"));
        assert_eq!(e.values.iter().collect::<Vec<_>>(), [("x", "1"), ("y", "2"), ("y", "3")]);
    }

    #[test]
    fn livehtml_event_name_wins() {
        let e = parse(r#"{"HEADERS":{"HX-Trigger":"b1","LH-Event":"toggle"},"v":"1"}"#).unwrap();
        assert_eq!(e.dialect, Dialect::LiveHtml);
        assert_eq!(e.name.as_deref(), Some("toggle"));
    }

    #[test]
    fn a_field_can_name_the_event_for_plain_htmx() {
        let e = parse(r#"{"lh-event":"inc","HEADERS":{"HX-Trigger":"f","HX-Trigger-Name":"go"}}"#).unwrap();
        assert_eq!(e.name.as_deref(), Some("inc"));
    }

    #[test]
    fn bare_object() {
        let e = parse(r#"{"message":"x"}"#).unwrap();
        assert_eq!(e.dialect, Dialect::Bare);
        assert_eq!(e.name, None);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert!(matches!(parse("hello"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse(""), Err(ParseError::NotJson(_))));
        assert!(matches!(parse("{\"a\":"), Err(ParseError::NotJson(_))));
        assert_eq!(parse("[]"), Err(ParseError::NotAnObject));
        assert_eq!(parse("\"s\""), Err(ParseError::NotAnObject));
        assert_eq!(parse("null"), Err(ParseError::NotAnObject));
        assert!(matches!(parse(r#"{"a":{"b":1}}"#), Err(ParseError::WrongType { .. })));
        assert!(matches!(parse(r#"{"a":[null]}"#), Err(ParseError::WrongType { .. })));
        assert!(matches!(parse(r#"{"HEADERS":"x"}"#), Err(ParseError::WrongType { .. })));
        assert!(matches!(parse(r#"{"headers":{},"body":[1]}"#), Err(ParseError::WrongType { .. })));
        assert_eq!(parse(r#"{"a":[[[[["x"]]]]]}"#), Err(ParseError::TooDeep { limit: 4 }));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep).is_err(), "deep nesting must not overflow the stack");
    }

    #[test]
    fn size_and_field_limits() {
        let limits = ParseLimits { max_bytes: 10, ..Default::default() };
        assert_eq!(
            parse_event(r#"{"message":"0123456789"}"#, &limits),
            Err(ParseError::TooBig { size: 24, limit: 10 })
        );
        let limits = ParseLimits { max_fields: 2, ..Default::default() };
        assert_eq!(parse_event(r#"{"a":["1","2","3"]}"#, &limits), Err(ParseError::TooManyFields { limit: 2 }));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(ParseError::NotAnObject.to_string(), "not a JSON object");
        assert_eq!(ParseError::TooBig { size: 9, limit: 8 }.to_string(), "message of 9 bytes exceeds 8");
    }
}
