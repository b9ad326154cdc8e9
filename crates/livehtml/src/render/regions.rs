//! Finding regions in rendered HTML: every element with an `id`, with its byte span.
//!
//! Hand-written because what the diff needs (byte offsets of elements in a string we just
//! rendered) is not what HTML parsers give: html5ever and friends build a tree and normalise the
//! text, losing the offsets. The input is a template's output, so the scanner handles what
//! templates produce (void elements, `/>`, comments, raw-text elements, quoted attributes) and,
//! on markup it cannot follow, returns no regions rather than wrong ones: the view is then sent
//! whole, which is always correct.

use std::ops::Range;

/// One element with an `id` in a rendered view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) id: String,
    /// The whole element, start tag to end tag.
    pub(crate) outer: Range<usize>,
    /// Where an attribute can be added: just before the start tag's `>` (or `/>`).
    pub(crate) attr_at: usize,
    /// Index of the enclosing region in the list, if any.
    pub(crate) parent: Option<usize>,
    /// A stream's container (`lh-stream`): its content is what the stream sent with this
    /// render, not what the page shows, and ids inside it are items, not regions.
    pub(crate) stream: bool,
    /// Between the start tag and the end tag (empty for a void or self-closing element).
    pub(crate) inner: Range<usize>,
}

const VOID: [&str; 14] =
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];
const RAW_TEXT: [&str; 4] = ["script", "style", "textarea", "title"];

struct Open {
    name: String,
    region: Option<usize>,
    /// Inside a stream's container (this element or an enclosing one).
    in_stream: bool,
}

/// Scans `html` for regions, outermost first. `None` when the markup is not well nested.
pub(crate) fn scan(html: &str) -> Option<Vec<Region>> {
    let bytes = html.as_bytes();
    let mut regions: Vec<Region> = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let lt = i + off;
        let rest = &html[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = lt + 4 + comment.find("-->")? + 3;
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = lt + rest.find('>')? + 1;
            continue;
        }
        if let Some(after) = rest.strip_prefix("</") {
            let name_len = after.find(|c: char| !c.is_ascii_alphanumeric() && c != '-')?;
            let name = after[..name_len].to_ascii_lowercase();
            let gt = lt + rest.find('>')? + 1;
            let open = stack.pop()?;
            if open.name != name {
                return None;
            }
            if let Some(r) = open.region {
                regions[r].outer.end = gt;
                regions[r].inner.end = lt;
            }
            i = gt;
            continue;
        }
        let after = &rest[1..];
        let name_len = after.find(|c: char| !c.is_ascii_alphanumeric() && c != '-').unwrap_or(after.len());
        if name_len == 0 {
            // A lone `<` in text (templates escape it, but be lenient).
            i = lt + 1;
            continue;
        }
        let name = after[..name_len].to_ascii_lowercase();
        let Tag { end: gt, id, self_closing, stream } = start_tag(bytes, lt + 1 + name_len)?;
        let attr_at = if self_closing { gt - 2 } else { gt - 1 };
        let parent = stack.iter().rev().find_map(|o| o.region);
        let in_stream = stack.last().is_some_and(|o| o.in_stream);
        let region = id.filter(|_| !in_stream).map(|id| {
            regions.push(Region { id, outer: lt..gt, attr_at, parent, stream, inner: gt..gt });
            regions.len() - 1
        });
        i = gt;
        if self_closing || VOID.contains(&name.as_str()) {
            continue;
        }
        if RAW_TEXT.contains(&name.as_str()) {
            // Content runs to the matching end tag, whatever it holds.
            let close = format!("</{name}");
            let end = lt + html[lt..].to_ascii_lowercase().find(&close)?;
            let gt = end + html[end..].find('>')? + 1;
            if let Some(r) = region {
                regions[r].outer.end = gt;
                regions[r].inner.end = end;
            }
            i = gt;
            continue;
        }
        stack.push(Open { name, region, in_stream: in_stream || stream });
    }
    stack.is_empty().then_some(regions)
}

/// A start tag, read.
struct Tag {
    /// The index after its `>`.
    end: usize,
    id: Option<String>,
    /// It ended with `/>`.
    self_closing: bool,
    /// It has an `lh-stream` attribute.
    stream: bool,
}

/// Reads a start tag's attributes from just after its name.
fn start_tag(b: &[u8], mut i: usize) -> Option<Tag> {
    let mut id = None;
    let mut stream = false;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i)? {
            b'>' => return Some(Tag { end: i + 1, id, self_closing: false, stream }),
            b'/' if b.get(i + 1) == Some(&b'>') => return Some(Tag { end: i + 2, id, self_closing: true, stream }),
            b'/' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = &b[name_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            match b.get(i)? {
                q @ (b'"' | b'\'') => {
                    let q = *q;
                    let start = i + 1;
                    let len = b[start..].iter().position(|&c| c == q)?;
                    value = Some(&b[start..start + len]);
                    i = start + len + 1;
                }
                _ => {
                    let start = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = Some(&b[start..i]);
                }
            }
        }
        if name.eq_ignore_ascii_case(b"id") {
            id = value.map(|v| unescape(&String::from_utf8_lossy(v)));
        } else if name.eq_ignore_ascii_case(crate::protocol::names::attr::STREAM.as_bytes()) {
            stream = true;
        }
    }
}

/// The id of the element `html` starts with (after any whitespace), if it has one.
pub(crate) fn root_id(html: &str) -> Option<String> {
    let rest = html.trim_start();
    let name_len = rest.strip_prefix('<')?.find(|c: char| !c.is_ascii_alphanumeric() && c != '-')?;
    if name_len == 0 {
        return None;
    }
    let at = html.len() - rest.len() + 1 + name_len;
    start_tag(html.as_bytes(), at)?.id
}

/// `html` with `attr` (` name="value"`, escaped by the caller) added to the start tag of the
/// element it starts with; unchanged when it does not start with an element.
pub(crate) fn with_root_attr(html: &str, attr: &str) -> String {
    let rest = html.trim_start();
    let found = rest
        .strip_prefix('<')
        .and_then(|r| r.find(|c: char| !c.is_ascii_alphanumeric() && c != '-'))
        .filter(|n| *n > 0);
    let Some(tag) = found.and_then(|n| start_tag(html.as_bytes(), html.len() - rest.len() + 1 + n)) else {
        return html.to_owned();
    };
    let at = if tag.self_closing { tag.end - 2 } else { tag.end - 1 };
    let mut out = String::with_capacity(html.len() + attr.len());
    out.push_str(html[..at].trim_end());
    out.push_str(attr);
    out.push_str(&html[at..]);
    out
}

/// Ids are escaped in attributes; regions are matched on the real value.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(html: &str) -> Vec<(String, String, Option<usize>)> {
        scan(html).unwrap().into_iter().map(|r| (r.id.clone(), html[r.outer.clone()].to_owned(), r.parent)).collect()
    }

    #[test]
    fn finds_nested_regions_with_their_spans() {
        let html = r#"<div id="a"><p>x</p><ul id="b"><li id="c">1</li><li>2</li></ul></div><span id='d'>y</span>"#;
        assert_eq!(
            ids(html),
            [
                ("a".into(), r#"<div id="a"><p>x</p><ul id="b"><li id="c">1</li><li>2</li></ul></div>"#.into(), None),
                ("b".into(), r#"<ul id="b"><li id="c">1</li><li>2</li></ul>"#.into(), Some(0)),
                ("c".into(), r#"<li id="c">1</li>"#.into(), Some(1)),
                ("d".into(), "<span id='d'>y</span>".into(), None),
            ]
        );
    }

    #[test]
    fn void_self_closing_comments_and_raw_text() {
        let html = concat!(
            r#"<form id="f"><input id="i" name="x" value="a>b"><br/><img src=x>"#,
            r#"<!-- <div id="no"> --><textarea id="t"><div id="not-a-region"></textarea>"#,
            r#"<script>if (a < b) { x = "</div>"; }</script></form>"#
        );
        let found: Vec<_> = ids(html).into_iter().map(|(id, _, p)| (id, p)).collect();
        assert_eq!(found, [("f".into(), None), ("i".into(), Some(0)), ("t".into(), Some(0))]);
        let t = scan(html).unwrap().into_iter().find(|r| r.id == "t").unwrap();
        assert_eq!(&html[t.outer], r#"<textarea id="t"><div id="not-a-region"></textarea>"#);
    }

    #[test]
    fn escaped_ids_and_unquoted_values() {
        assert_eq!(ids(r#"<p id=plain>x</p>"#)[0].0, "plain");
        assert_eq!(ids(r#"<p id="a&amp;b">x</p>"#)[0].0, "a&b");
    }

    #[test]
    fn ids_inside_a_stream_are_items_not_regions() {
        let html = concat!(
            r#"<div id="a"><ul id="s" lh-stream="5"><li id="m1">1</li><li><b id="x">2</b></li></ul>"#,
            r#"<p id="p">p</p></div>"#
        );
        let found = scan(html).unwrap();
        let ids: Vec<_> = found.iter().map(|r| (r.id.as_str(), r.stream)).collect();
        assert_eq!(ids, [("a", false), ("s", true), ("p", false)]);
        assert_eq!(&html[found[1].inner.clone()], r#"<li id="m1">1</li><li><b id="x">2</b></li>"#);
    }

    #[test]
    fn the_root_element_of_an_item() {
        assert_eq!(root_id(r#"  <li id="m1" class="x">1</li>"#).as_deref(), Some("m1"));
        assert_eq!(root_id("<li>1</li>"), None);
        assert_eq!(root_id("text"), None);
        assert_eq!(with_root_attr(r#"<li id="m1">1</li>"#, r#" a="1""#), r#"<li id="m1" a="1">1</li>"#);
        assert_eq!(with_root_attr(r#"<img id="i"/>"#, r#" a="1""#), r#"<img id="i" a="1"/>"#);
        assert_eq!(with_root_attr("text", r#" a="1""#), "text");
    }

    #[test]
    fn badly_nested_markup_gives_no_regions() {
        assert_eq!(scan("<div id=a><p></div></p>"), None);
        assert_eq!(scan("<div id=a>"), None);
        assert_eq!(scan("<div id=\"a>"), None);
    }
}
