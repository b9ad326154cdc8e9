//! Datastar 1.0's wire: an outbound message as `datastar-patch-elements` events.
//!
//! livehtml's fragments are top-level elements with an `id` and an `hx-swap-oob` style; each
//! becomes one event whose `selector` and `mode` say the same thing in Datastar's terms (as its
//! SDK specification and `@starfederation/datastar-sdk` 1.0 write them: the data lines
//! `selector`, `mode` (omitted for the default, `outer`), then one `elements` line per line of
//! HTML).
//!
//! The splitting is hand-written because it only has to read the server's own output (elements
//! written by [`super::Fragment`] or a view's region diff), where an HTML parser crate would
//! build a whole tree to find top-level tags.

use bytes::{BufMut, Bytes, BytesMut};

/// The event Datastar patches elements with.
pub(crate) const PATCH_ELEMENTS: &str = "datastar-patch-elements";
/// The event Datastar patches signals with.
pub(crate) const PATCH_SIGNALS: &str = "datastar-patch-signals";
/// The header every Datastar request carries.
pub(crate) const REQUEST_HEADER: &str = "Datastar-Request";
/// The query parameter Datastar 1.0.4 sends a `GET`'s and a `DELETE`'s signals in (as JSON);
/// other methods send them as the body.
pub(crate) const QUERY_SIGNALS: &str = "datastar";
/// HTTP's `QUERY` method, which Datastar's `@query()` sends its signals with, as a JSON body.
pub(crate) const QUERY_METHOD: &str = "QUERY";

/// The signals a Datastar request carries in its query string (`?datastar=`), if any.
pub(crate) fn query_signals(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == QUERY_SIGNALS).map(|(_, v)| v.into_owned())
}

/// One top-level element of a message.
struct Element<'a> {
    outer: &'a str,
    inner: &'a str,
    id: Option<&'a str>,
    oob: Option<&'a str>,
}

/// The message `html` as Datastar events (empty when nothing in it targets an element).
pub(crate) fn patch_elements(html: &str) -> Bytes {
    let mut out = BytesMut::new();
    for element in top_level(html) {
        let style = element.oob.unwrap_or("outerMorph");
        let (style, selector) = match style.split_once(':') {
            Some((style, selector)) => (style, Some(selector.to_owned())),
            None => (style, element.id.map(id_selector)),
        };
        // (mode, whether the element itself or its children are patched in)
        let (mode, whole) = match style {
            "outerMorph" => (None, true),
            "true" | "outerHTML" => (Some("replace"), true),
            "innerHTML" | "innerMorph" => (Some("inner"), false),
            "beforeend" => (Some("append"), false),
            "afterbegin" => (Some("prepend"), false),
            "beforebegin" => (Some("before"), false),
            "afterend" => (Some("after"), false),
            "delete" => (Some("remove"), false),
            _ => continue,
        };
        let Some(selector) = selector else { continue };
        out.put_slice(b"event: ");
        out.put_slice(PATCH_ELEMENTS.as_bytes());
        out.put_u8(b'\n');
        if !whole {
            line(&mut out, "selector", &selector);
        }
        if let Some(mode) = mode {
            line(&mut out, "mode", mode);
        }
        let elements = if whole { element.outer } else { element.inner };
        if mode != Some("remove") {
            for l in elements.split('\n') {
                line(&mut out, "elements", l);
            }
        }
        out.put_u8(b'\n');
    }
    out.freeze()
}

/// A `datastar-patch-signals` event setting `signals` (a JSON object).
pub(crate) fn patch_signals(signals: &str) -> String {
    format!("event: {PATCH_SIGNALS}\ndata: signals {signals}\n\n")
}

fn line(out: &mut BytesMut, key: &str, value: &str) {
    out.put_slice(b"data: ");
    out.put_slice(key.as_bytes());
    out.put_u8(b' ');
    out.put_slice(value.trim_end_matches('\r').as_bytes());
    out.put_u8(b'\n');
}

fn id_selector(id: &str) -> String {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        format!("#{id}")
    } else {
        format!("[id=\"{}\"]", id.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Elements that never have children or an end tag.
const VOID: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];

/// The top-level elements of `html`, with their `id` and `hx-swap-oob`.
fn top_level(html: &str) -> Vec<Element<'_>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(open) = html[at..].find('<').map(|i| at + i) {
        let Some((name, attrs, tag_end, self_closing)) = open_tag(html, open) else {
            at = open + 1;
            continue;
        };
        let (inner_end, end) = if self_closing || VOID.contains(&name.to_ascii_lowercase().as_str()) {
            (tag_end, tag_end)
        } else {
            match closing(html, tag_end, name) {
                Some(found) => found,
                None => break,
            }
        };
        found.push(Element {
            outer: &html[open..end],
            inner: &html[tag_end..inner_end],
            id: attr(attrs, "id"),
            oob: attr(attrs, "hx-swap-oob"),
        });
        at = end;
    }
    found
}

/// At `at` (a `<`): the tag's name, its attributes, where it ends and whether it closes itself.
fn open_tag(html: &str, at: usize) -> Option<(&str, &str, usize, bool)> {
    let rest = &html[at + 1..];
    let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))?;
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let mut quote = None;
    for (i, c) in rest[name_len..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                let end = at + 1 + name_len + i + 1;
                let attrs = &rest[name_len..name_len + i];
                return Some((name, attrs, end, attrs.trim_end().ends_with('/')));
            }
            _ => {}
        }
    }
    None
}

/// From `from`, the end of the children of an open `name` element and the end of its end tag.
fn closing(html: &str, from: usize, name: &str) -> Option<(usize, usize)> {
    let mut depth = 1;
    let mut at = from;
    while let Some(lt) = html[at..].find('<').map(|i| at + i) {
        let rest = &html[lt + 1..];
        if let Some(after) = rest.strip_prefix('/') {
            let tag_len = after.find('>')?;
            if after[..tag_len].trim().eq_ignore_ascii_case(name) {
                depth -= 1;
                if depth == 0 {
                    return Some((lt, lt + 2 + tag_len + 1));
                }
            }
            at = lt + 2 + tag_len + 1;
        } else if let Some((inner, _, end, self_closing)) = open_tag(html, lt) {
            if inner.eq_ignore_ascii_case(name) && !self_closing {
                depth += 1;
            }
            at = end;
        } else {
            at = lt + 1;
        }
    }
    None
}

/// The value of attribute `name` in a tag's attribute text.
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attrs;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let (quote, body) = match value.chars().next() {
                Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
                _ => (None, value),
            };
            let end = match quote {
                Some(q) => body.find(q)?,
                None => body.find(|c: char| c.is_ascii_whitespace() || c == '/').unwrap_or(body.len()),
            };
            return Some(&body[..end]);
        }
        rest = &rest[i + name.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::patch_elements;

    fn text(html: &str) -> String {
        String::from_utf8(patch_elements(html).to_vec()).unwrap()
    }

    #[test]
    fn fragments_become_patch_events_with_selector_and_mode() {
        assert_eq!(
            text(r#"<ul id="log" hx-swap-oob="beforeend"><li>a</li></ul><div id="n" hx-swap-oob="innerHTML">2</div>"#),
            "event: datastar-patch-elements\ndata: selector #log\ndata: mode append\ndata: elements <li>a</li>\n\n\
             event: datastar-patch-elements\ndata: selector #n\ndata: mode inner\ndata: elements 2\n\n"
        );
        // A view's changed region morphs (Datastar's default mode), and is sent whole.
        assert_eq!(
            text(r#"<output id="count" hx-swap-oob="outerMorph">1</output>"#),
            "event: datastar-patch-elements\n\
             data: elements <output id=\"count\" hx-swap-oob=\"outerMorph\">1</output>\n\n"
        );
        assert_eq!(
            text(r#"<div id="x" hx-swap-oob="delete"></div>"#),
            "event: datastar-patch-elements\ndata: selector #x\ndata: mode remove\n\n"
        );
    }

    #[test]
    fn nesting_void_elements_and_lines_are_kept_whole() {
        let html = "<div id=\"a\" hx-swap-oob=\"innerHTML\"><div><input name=\"q\"><br>x\ny</div></div><p>no id</p>";
        assert_eq!(
            text(html),
            "event: datastar-patch-elements\ndata: selector #a\ndata: mode inner\n\
             data: elements <div><input name=\"q\"><br>x\n\
             data: elements y</div>\n\n"
        );
        assert_eq!(text("just text"), "");
        assert_eq!(
            text(r#"<p id="we ird">x</p>"#),
            "event: datastar-patch-elements\ndata: elements <p id=\"we ird\">x</p>\n\n"
        );
    }
}
