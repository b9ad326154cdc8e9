//! What the server sends: HTML fragments that target elements by id.
//!
//! Every top-level element of a fragment carries an explicit `hx-swap-oob`. That is what makes
//! one byte string work under htmx 2 (which swaps every top-level element by id), htmx 4 (which
//! applies only `hx-swap-oob` and `<hx-partial>`) and livehtml.js (which follows htmx). (A live
//! view's region updates to a livehtml.js page are the one exception: livehtml.js morphs an
//! element without `hx-swap-oob` into the one with its id, and they go without it.)

use std::fmt::{self, Write};

/// Markup that is safe to put on a page as is.
///
/// User text only becomes `Html` through [`Html::escape`] (or a template engine that escapes,
/// such as maud); [`Html::trusted`] is the one explicit door for markup you built yourself.
///
/// ```
/// use livehtml::Html;
///
/// assert_eq!(Html::escape("<script>").as_str(), "&lt;script&gt;");
/// assert_eq!(Html::trusted("<b>hi</b>").as_str(), "<b>hi</b>");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// Escapes `text` so it shows as text: `<`, `>`, `&`, `"` and `'` become entities.
    pub fn escape(text: &str) -> Self {
        let mut out = String::with_capacity(text.len());
        escape_into(&mut out, text);
        Self(out)
    }

    /// Takes `markup` as it is, without escaping. Only for markup you built or a template engine
    /// escaped; never for text that came from a user.
    pub fn trusted(markup: impl Into<String>) -> Self {
        Self(markup.into())
    }

    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "askama")]
impl Html {
    /// Renders an askama template. An HTML template escapes what it interpolates (askama's
    /// default for `.html` templates and `ext = "html"`), so user text stays text.
    ///
    /// A template that fails to render (a filter's error) is logged and shown as a short
    /// message: a view's `render` cannot fail.
    ///
    /// ```
    /// use askama::Template;
    /// use livehtml::Html;
    ///
    /// #[derive(Template)]
    /// #[template(source = r#"<p id="count">{{ count }}</p><p>{{ name }}</p>"#, ext = "html")]
    /// struct Counter<'a> {
    ///     count: i64,
    ///     name: &'a str,
    /// }
    ///
    /// let html = Html::from_template(&Counter { count: 3, name: "<b>Ann</b>" });
    /// assert_eq!(html.as_str(), r#"<p id="count">3</p><p>&#60;b&#62;Ann&#60;/b&#62;</p>"#);
    /// ```
    pub fn from_template(template: &impl askama::Template) -> Self {
        match template.render() {
            Ok(markup) => Self(markup),
            Err(e) => {
                tracing::error!(error = %e, "a template failed to render");
                Self("<p>This part of the page could not be shown.</p>".into())
            }
        }
    }
}

#[cfg(feature = "maud")]
impl From<maud::Markup> for Html {
    fn from(markup: maud::Markup) -> Self {
        Self(markup.into_string())
    }
}

#[cfg(feature = "maud")]
impl maud::Render for Html {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(&self.0);
    }
}

/// Escapes text for an HTML text node or a double- or single-quoted attribute value.
///
/// Hand-written because it is seven lines and sits on the encode path of every fragment; the
/// template engines' escapers are tied to their own buffer types.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// How a [`Fragment`] lands on its target element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Swap {
    /// Replace the target element with the fragment (`outerHTML`).
    Replace,
    /// Replace the target's children (`innerHTML`).
    Inner,
    /// Add after the target's last child (`beforeend`).
    Append,
    /// Add before the target's first child (`afterbegin`).
    Prepend,
    /// Add before the target, as a sibling (`beforebegin`).
    Before,
    /// Add after the target, as a sibling (`afterend`).
    After,
    /// Remove the target (`delete`).
    Remove,
    /// Morph the target's children into the new ones, keeping focus and typed input where nothing
    /// changed (`innerMorph`: native in htmx 4 and livehtml.js; htmx 2 without a morph extension
    /// falls back to `innerHTML`, which shows the same result).
    Morph,
    /// Morph the target itself into the new element (`outerMorph`): a live view's changed
    /// region. htmx 2 without a morph extension falls back to `outerHTML`.
    OuterMorph,
}

impl Swap {
    /// The `hx-swap-oob` value for this style.
    pub const fn oob_value(self) -> &'static str {
        match self {
            Self::Replace => "outerHTML",
            Self::Inner => "innerHTML",
            Self::Append => "beforeend",
            Self::Prepend => "afterbegin",
            Self::Before => "beforebegin",
            Self::After => "afterend",
            Self::Remove => "delete",
            Self::Morph => "innerMorph",
            Self::OuterMorph => "outerMorph",
        }
    }

    /// Every style, in declaration order.
    pub const ALL: [Swap; 9] = [
        Self::Replace,
        Self::Inner,
        Self::Append,
        Self::Prepend,
        Self::Before,
        Self::After,
        Self::Remove,
        Self::Morph,
        Self::OuterMorph,
    ];
}

/// A piece of HTML aimed at one element by its `id`.
///
/// The fragment is encoded as a wrapper element carrying the target's `id` and `hx-swap-oob`.
/// For [`Swap::Replace`] the wrapper *is* the new element, so give it the target's tag with
/// [`Fragment::tag`]; for the other styles the wrapper is dropped and only its children land.
///
/// ```
/// use livehtml::{Fragment, Html};
///
/// let f = Fragment::append("log", Html::escape("<b>hi</b>")).tag("ul");
/// assert_eq!(f.to_string(), r#"<ul id="log" hx-swap-oob="beforeend">&lt;b&gt;hi&lt;/b&gt;</ul>"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    id: String,
    swap: Swap,
    tag: &'static str,
    attrs: Vec<(&'static str, String)>,
    content: Html,
}

impl Fragment {
    /// A fragment for `id` with any swap style.
    pub fn new(id: impl Into<String>, swap: Swap, content: impl Into<Html>) -> Self {
        Self { id: id.into(), swap, tag: "div", attrs: Vec::new(), content: content.into() }
    }

    /// Replaces the element `id` with a new one holding `content`.
    pub fn replace(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::Replace, content)
    }

    /// Replaces the children of `id`.
    pub fn inner(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::Inner, content)
    }

    /// Appends `content` inside `id`.
    pub fn append(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::Append, content)
    }

    /// Prepends `content` inside `id`.
    pub fn prepend(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::Prepend, content)
    }

    /// Inserts `content` before `id`, as siblings.
    pub fn before(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::Before, content)
    }

    /// Inserts `content` after `id`, as siblings.
    pub fn after(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::After, content)
    }

    /// Removes the element `id`.
    pub fn remove(id: impl Into<String>) -> Self {
        Self::new(id, Swap::Remove, Html::default())
    }

    /// Morphs the children of `id` into `content`.
    pub fn morph(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::Morph, content)
    }

    /// Morphs the element `id` itself into a new one holding `content` (give it the target's
    /// tag with [`Fragment::tag`]).
    pub fn morph_outer(id: impl Into<String>, content: impl Into<Html>) -> Self {
        Self::new(id, Swap::OuterMorph, content)
    }

    /// The wrapper's tag (default `div`). It matters for [`Swap::Replace`], and for content the
    /// HTML parser only accepts inside certain parents (`tr` inside `tbody`, `li` is fine anywhere).
    ///
    /// A name that is not ASCII letters, digits and `-` is ignored and `div` is kept.
    pub fn tag(mut self, tag: &'static str) -> Self {
        if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            self.tag = tag;
        }
        self
    }

    /// Adds an attribute to the wrapper (useful with [`Swap::Replace`]); the value is escaped.
    /// A name that is not ASCII letters, digits, `-`, `_` or `:` is ignored.
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
            && !name.eq_ignore_ascii_case("id")
            && !name.eq_ignore_ascii_case("hx-swap-oob");
        if ok {
            self.attrs.push((name, value.into()));
        }
        self
    }

    /// The target element's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The swap style.
    pub fn swap(&self) -> Swap {
        self.swap
    }

    /// Appends the encoded fragment to `out`.
    pub fn encode_into(&self, out: &mut String) {
        out.push('<');
        out.push_str(self.tag);
        out.push_str(" id=\"");
        escape_into(out, &self.id);
        out.push_str("\" hx-swap-oob=\"");
        out.push_str(self.swap.oob_value());
        out.push('"');
        for (name, value) in &self.attrs {
            let _ = write!(out, " {name}=\"");
            escape_into(out, value);
            out.push('"');
        }
        out.push('>');
        out.push_str(self.content.as_str());
        out.push_str("</");
        out.push_str(self.tag);
        out.push('>');
    }

    /// Encodes several fragments as one message.
    pub fn encode_all<'a>(fragments: impl IntoIterator<Item = &'a Fragment>) -> String {
        let mut out = String::new();
        for f in fragments {
            f.encode_into(&mut out);
        }
        out
    }
}

impl fmt::Display for Fragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.encode_into(&mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_has_an_explicit_oob_value() {
        let cases = [
            (Fragment::replace("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="outerHTML">x</div>"#),
            (Fragment::inner("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="innerHTML">x</div>"#),
            (Fragment::append("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="beforeend">x</div>"#),
            (Fragment::prepend("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="afterbegin">x</div>"#),
            (Fragment::before("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="beforebegin">x</div>"#),
            (Fragment::after("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="afterend">x</div>"#),
            (Fragment::remove("a"), r#"<div id="a" hx-swap-oob="delete"></div>"#),
            (Fragment::morph("a", Html::trusted("x")), r#"<div id="a" hx-swap-oob="innerMorph">x</div>"#),
        ];
        for (f, want) in cases {
            assert_eq!(f.to_string(), want);
        }
    }

    #[test]
    fn user_text_is_escaped_everywhere() {
        let f = Fragment::replace("x\"><script>", Html::escape("<script>alert('1')</script>&"))
            .tag("p")
            .attr("title", "\"><img src=x onerror=alert(1)>");
        assert_eq!(
            f.to_string(),
            "<p id=\"x&quot;&gt;&lt;script&gt;\" hx-swap-oob=\"outerHTML\" \
             title=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\">\
             &lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;&amp;</p>"
        );
    }

    #[test]
    fn bad_tag_and_attribute_names_are_ignored() {
        let f = Fragment::inner("a", Html::default()).tag("div onload=x").attr("on load", "x").attr("id", "b");
        assert_eq!(f.to_string(), r#"<div id="a" hx-swap-oob="innerHTML"></div>"#);
    }

    #[test]
    fn several_fragments_make_one_message() {
        let msg = Fragment::encode_all(&[Fragment::inner("a", Html::trusted("1")), Fragment::remove("b")]);
        assert_eq!(msg, r#"<div id="a" hx-swap-oob="innerHTML">1</div><div id="b" hx-swap-oob="delete"></div>"#);
    }

    #[test]
    fn maud_output_is_escaped_by_default() {
        let user = "<script>";
        let f = Fragment::append("log", maud::html! { li { (user) } });
        assert_eq!(f.to_string(), r#"<div id="log" hx-swap-oob="beforeend"><li>&lt;script&gt;</li></div>"#);
    }
}
