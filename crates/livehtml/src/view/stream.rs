//! Streams: collections a live view adds to, updates and trims without keeping them.
//!
//! A chat log, a notification feed, a table of log lines: the page holds the items, the view
//! holds only what it changed since its last render. Each render sends those changes once
//! (the runtime forgets them as soon as the render is taken), and livehtml.js merges them into
//! the container (`lh-stream`), keeping at most the stream's limit.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::protocol::Html;
use crate::protocol::names::attr;

/// A collection shown by a live view and kept by the page, not by the view.
///
/// The view keeps a `Stream` as a field, changes it in its handlers, and renders it inside a
/// container that carries the stream's id and [`Stream::limit_attr`] as `lh-stream`. Every
/// item is an element with an `id` (unique within the stream): inserting an item whose id the
/// page shows already updates it in place.
///
/// What the page shows after each render:
/// - the first render of a new stream (and the first after [`Stream::reset`]) is the items as
///   they end up, limit applied, so the HTTP render is the real list; it also clears what a page
///   showed before (a view mounted again after a reconnect sends its stream anew).
/// - later renders carry only the changes since the previous one; the view keeps nothing of
///   an item once it is rendered.
///
/// Streams need livehtml.js on the page (plain htmx would swap the container over its items).
///
/// ```
/// use livehtml::view::{LiveView, Mount, Stream, ViewError};
/// use livehtml::{Context, Event, Html};
/// use maud::html;
///
/// struct Feed {
///     entries: Stream,
///     next: u64,
/// }
///
/// impl LiveView for Feed {
///     type State = ();
///
///     async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
///         // The page keeps the newest 50.
///         Ok(Feed { entries: Stream::new("entries").limit(50), next: 0 })
///     }
///
///     fn render(&self) -> Html {
///         html! {
///             button lh-click="add" { "Add" }
///             ul id=(self.entries.id()) lh-stream=(self.entries.limit_attr()) { (self.entries) }
///         }
///         .into()
///     }
///
///     async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
///         self.next += 1;
///         self.entries.append(html! { li id={ "entry-" (self.next) } { "entry " (self.next) } });
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Stream {
    id: String,
    limit: Option<usize>,
    batch: Arc<Mutex<Batch>>,
}

/// What a stream changed since the page last saw it.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The page shows none of this stream's items (a new stream, or one reset): the next
    /// render is the list itself.
    pub(crate) fresh: bool,
    pub(crate) ops: Vec<Op>,
}

/// One change to a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// An item (its id, if its markup has one) at the end, or at an index.
    Insert { id: Option<String>, html: String, at: Option<usize> },
    /// The item with this id goes.
    Delete(String),
}

impl Stream {
    /// A stream shown in the container whose id is `id`, without a limit.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), limit: None, batch: Arc::new(Mutex::new(Batch { fresh: true, ops: Vec::new() })) }
    }

    /// The page keeps at most `limit` items: an append trims the oldest (first) ones, an
    /// insert at an index the last ones. `0` means no limit.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = (limit > 0).then_some(limit);
        self
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The value of the container's `lh-stream` attribute: the limit, or empty.
    pub fn limit_attr(&self) -> String {
        self.limit.map(|l| l.to_string()).unwrap_or_default()
    }

    /// Adds `item` at the end (or updates it in place, if the page shows its id).
    pub fn append(&mut self, item: impl Into<Html>) {
        self.insert(item.into(), None);
    }

    /// Adds `item` first (or updates it in place).
    pub fn prepend(&mut self, item: impl Into<Html>) {
        self.insert(item.into(), Some(0));
    }

    /// Adds `item` at `index` (0 is first; past the end appends), or updates it in place.
    pub fn insert_at(&mut self, index: usize, item: impl Into<Html>) {
        self.insert(item.into(), Some(index));
    }

    /// Removes the item whose id is `id` from the page.
    pub fn delete(&mut self, id: &str) {
        self.lock().ops.push(Op::Delete(id.to_owned()));
    }

    /// Removes every item from the page; what is inserted after this is the new list.
    pub fn reset(&mut self) {
        let mut batch = self.lock();
        batch.fresh = true;
        batch.ops.clear();
    }

    fn insert(&mut self, item: Html, at: Option<usize>) {
        let html = item.into_string();
        let id = crate::render::root_id(&html);
        self.lock().ops.push(Op::Insert { id, html, at });
    }

    fn lock(&self) -> MutexGuard<'_, Batch> {
        // A panic while holding it leaves only a list of strings: still usable.
        self.batch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The changes as markup for the container (see the type's docs).
    pub fn render(&self) -> Html {
        let batch = self.lock();
        let mut out = String::new();
        if batch.fresh {
            out.push_str("<template ");
            out.push_str(attr::STREAM_RESET);
            out.push_str("></template>");
            for (_, html) in settle(&batch.ops, self.limit) {
                out.push_str(html);
            }
        } else {
            for op in &batch.ops {
                match op {
                    Op::Insert { html, at: None, .. } => out.push_str(html),
                    Op::Insert { html, at: Some(at), .. } => {
                        let mut insert = String::from(" ");
                        insert.push_str(attr::INSERT_AT);
                        insert.push_str("=\"");
                        insert.push_str(&at.to_string());
                        insert.push('"');
                        out.push_str(&crate::render::with_root_attr(html, &insert));
                    }
                    Op::Delete(id) => {
                        out.push_str("<template ");
                        out.push_str(attr::STREAM_DELETE);
                        out.push_str("=\"");
                        crate::protocol::escape_attr(&mut out, id);
                        out.push_str("\"></template>");
                    }
                }
            }
        }
        drop(batch);
        RENDERING.with(|r| {
            if let Some(taken) = r.borrow_mut().as_mut() {
                taken.push(Taken { id: self.id.clone(), limit: self.limit, batch: self.batch.clone() });
            }
        });
        Html::trusted(out)
    }
}

#[cfg(feature = "maud")]
impl maud::Render for Stream {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(self.render().as_str());
    }
}

/// The items of a fresh stream as they end up: each op applied to an empty list, in order.
fn settle(ops: &[Op], limit: Option<usize>) -> Vec<(Option<&str>, &str)> {
    let mut list: Vec<(Option<&str>, &str)> = Vec::new();
    for op in ops {
        match op {
            Op::Insert { id, html, at } => {
                if let Some(i) = id.as_deref().and_then(|id| list.iter().position(|(k, _)| *k == Some(id))) {
                    list[i].1 = html;
                    continue;
                }
                match at {
                    None => {
                        list.push((id.as_deref(), html));
                        if let Some(l) = limit.filter(|l| list.len() > *l) {
                            list.drain(..list.len() - l);
                        }
                    }
                    Some(at) => {
                        list.insert((*at).min(list.len()), (id.as_deref(), html));
                        if let Some(l) = limit {
                            list.truncate(l);
                        }
                    }
                }
            }
            Op::Delete(id) => list.retain(|(k, _)| *k != Some(id.as_str())),
        }
    }
    list
}

/// A stream rendered while the runtime was taking a render: what it sent, to be forgotten.
pub(crate) struct Taken {
    pub(crate) id: String,
    pub(crate) limit: Option<usize>,
    batch: Arc<Mutex<Batch>>,
}

thread_local! {
    /// Set while the runtime takes a render (rendering is synchronous: nothing else runs on
    /// this thread meanwhile); streams rendered then register here.
    static RENDERING: RefCell<Option<Vec<Taken>>> = const { RefCell::new(None) };
}

/// What a stream sent with one render, as a page applies it.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) id: String,
    pub(crate) limit: Option<usize>,
    pub(crate) fresh: bool,
    pub(crate) ops: Vec<Op>,
}

/// Renders with `render` and forgets what every stream rendered by it sent: the render is
/// what the page is sent (or shows already). Returns the render and what the streams sent.
pub(crate) fn take<R>(render: impl FnOnce() -> R) -> (R, Vec<Sent>) {
    let outer = RENDERING.with(|r| r.borrow_mut().replace(Vec::new()));
    let rendered = render();
    let taken = RENDERING.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer)).unwrap_or_default();
    let sent = taken
        .into_iter()
        .map(|t| {
            let mut batch = t.batch.lock().unwrap_or_else(|e| e.into_inner());
            let sent = Sent { id: t.id, limit: t.limit, fresh: batch.fresh, ops: std::mem::take(&mut batch.ops) };
            batch.fresh = false;
            sent
        })
        .collect();
    (rendered, sent)
}

/// A page's copy of its streams, for the test client: what each holds, applied as livehtml.js
/// applies it.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    streams: std::collections::HashMap<String, Vec<(Option<String>, String)>>,
}

impl Shown {
    pub(crate) fn apply(&mut self, sent: Vec<Sent>) {
        for s in sent {
            let list = self.streams.entry(s.id).or_default();
            if s.fresh {
                list.clear();
            }
            let ops: Vec<Op> = s.ops;
            let mut owned: Vec<Op> =
                list.drain(..).map(|(id, html)| Op::Insert { id, html, at: None }).collect::<Vec<_>>();
            owned.extend(ops);
            *list = settle(&owned, s.limit)
                .into_iter()
                .map(|(id, html)| (id.map(str::to_owned), html.to_owned()))
                .collect();
        }
    }

    pub(crate) fn items(&self, id: &str) -> Vec<String> {
        self.streams.get(id).map(|l| l.iter().map(|(_, html)| html.clone()).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn li(id: &str, text: &str) -> Html {
        Html::trusted(format!(r#"<li id="{id}">{text}</li>"#))
    }

    fn taken(s: &Stream) -> (String, Vec<Sent>) {
        let (html, sent) = take(|| s.render());
        (html.into_string(), sent)
    }

    #[test]
    fn a_new_stream_renders_its_list_with_the_limit_applied_then_only_changes() {
        let mut s = Stream::new("feed").limit(2);
        for i in 1..=3 {
            s.append(li(&format!("m{i}"), &i.to_string()));
        }
        let (html, _) = taken(&s);
        assert_eq!(html, r#"<template lh-stream-reset></template><li id="m2">2</li><li id="m3">3</li>"#);
        // Taken: the view holds nothing of them now.
        assert_eq!(s.render().as_str(), "");
        s.append(li("m4", "4"));
        s.prepend(li("m0", "0"));
        s.insert_at(1, li("m9", "9"));
        s.delete("m2");
        assert_eq!(
            taken(&s).0,
            concat!(
                r#"<li id="m4">4</li><li id="m0" lh-insert-at="0">0</li><li id="m9" lh-insert-at="1">9</li>"#,
                r#"<template lh-stream-delete="m2"></template>"#
            )
        );
        assert!(s.lock().ops.is_empty());
    }

    #[test]
    fn a_render_outside_the_runtime_forgets_nothing() {
        let mut s = Stream::new("feed");
        s.append(li("a", "a"));
        assert_eq!(s.render(), s.render());
        assert_eq!(s.lock().ops.len(), 1);
    }

    #[test]
    fn reset_starts_the_list_again() {
        let mut s = Stream::new("feed");
        s.append(li("a", "a"));
        taken(&s);
        s.append(li("b", "b"));
        s.reset();
        s.append(li("c", "c"));
        assert_eq!(taken(&s).0, r#"<template lh-stream-reset></template><li id="c">c</li>"#);
    }

    #[test]
    fn settling_updates_in_place_inserts_at_and_trims_the_far_end() {
        let ins = |id: &str, at: Option<usize>| Op::Insert { id: Some(id.into()), html: id.into(), at };
        let order = |ops: &[Op], limit| settle(ops, limit).into_iter().map(|(_, h)| h.to_owned()).collect::<Vec<_>>();
        let ops = [ins("a", None), ins("b", None), ins("c", Some(0)), ins("a", Some(5)), Op::Delete("b".into())];
        assert_eq!(order(&ops, None), ["c", "a"]);
        // An insert at an index trims the last items; an append the first ones.
        assert_eq!(order(&[ins("a", None), ins("b", None), ins("c", Some(0))], Some(2)), ["c", "a"]);
        let list = order(&[ins("a", None), ins("b", None), ins("c", None)], Some(2));
        assert_eq!(list, ["b", "c"]);
    }

    #[test]
    fn the_test_page_applies_what_was_sent() {
        let mut s = Stream::new("feed").limit(3);
        let mut shown = Shown::default();
        for i in 0..10 {
            s.append(li(&format!("m{i}"), &i.to_string()));
            shown.apply(taken(&s).1);
        }
        s.append(li("m8", "eight"));
        s.delete("m9");
        shown.apply(taken(&s).1);
        assert_eq!(shown.items("feed"), [r#"<li id="m7">7</li>"#, r#"<li id="m8">eight</li>"#]);
    }
}
