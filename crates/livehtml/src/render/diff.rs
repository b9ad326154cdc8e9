//! The region diff: given the fingerprints of what a page shows and a new render, which regions
//! must be sent. Pure: no clock, no I/O.
//!
//! Each region (element with an `id`) has two fingerprints: of its whole markup, and of its
//! *skeleton* (its markup with each child region replaced by that child's id). When a region's
//! markup changed but its skeleton did not, only children changed: the diff descends into them
//! and the parent is not sent. When the skeleton changed (its own text or attributes, or which
//! children it has, or their order), the region is sent whole. The same rule applies to the
//! view's root, whose "children" are the top-level regions: a change outside every region sends
//! the whole view.
//!
//! A *list* is a region whose content is only child regions (and whitespace between them): a
//! third fingerprint, of its own tags, says whether anything but its children changed. When
//! only which children it has or their order changed, it is sent *keyed*: its tags with the new
//! order of its children's ids, and only the children that are new or changed (a moved card is
//! its id in the order, not the board); unchanged children stay on the page.
//!
//! A stream's container (`lh-stream`) holds what its stream sent with this render, not what the
//! page shows: it is fingerprinted by its tags alone, and sent whenever it holds anything.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;

use super::regions::{self, Region};

/// What a page currently shows, in fingerprints: about 32 bytes per region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fingerprints {
    root: u64,
    regions: HashMap<String, Print>,
}

/// One region's fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print {
    outer: u64,
    skeleton: u64,
    /// A list's tags (0: not a list).
    list: u64,
}

/// A render of a view, scanned for regions.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    html: String,
    /// `None` when the markup could not be scanned: such a view is always sent whole.
    regions: Option<Vec<Region>>,
}

/// What to send after a render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Patch {
    /// Nothing changed.
    None,
    /// These regions changed, outermost first.
    Regions(Vec<Change>),
    /// Send the whole view.
    Whole,
}

/// One region to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The element at this byte range of the render, whole.
    Region(Range<usize>),
    /// A list (the element at `outer`) by the order of its children's ids, with only the
    /// children at `include` (new or changed).
    Keyed { outer: Range<usize>, order: Vec<String>, include: Vec<Range<usize>> },
}

impl Change {
    /// The element it is about, in the render.
    pub(crate) fn outer(&self) -> &Range<usize> {
        match self {
            Self::Region(r) | Self::Keyed { outer: r, .. } => r,
        }
    }
}

impl Rendered {
    /// Scans `html` for regions.
    pub(crate) fn new(html: String) -> Self {
        let regions = regions::scan(&html).filter(|r| unique_ids(r));
        Self { html, regions }
    }

    /// The markup.
    pub(crate) fn html(&self) -> &str {
        &self.html
    }

    /// The fingerprints of this render.
    pub(crate) fn fingerprints(&self) -> Fingerprints {
        let Some(regions) = &self.regions else {
            return Fingerprints { root: hash(&self.html), regions: HashMap::new() };
        };
        let mut out = HashMap::with_capacity(regions.len());
        for (i, r) in regions.iter().enumerate() {
            let outer = self.outer(r);
            let skeleton = if r.stream { outer } else { self.skeleton(regions, Some(i)) };
            out.insert(r.id.clone(), Print { outer, skeleton, list: self.list(regions, i) });
        }
        Fingerprints { root: self.skeleton(regions, None), regions: out }
    }

    /// Compares with what the page shows (`old`).
    pub(crate) fn diff(&self, old: &Fingerprints) -> Patch {
        let Some(regions) = &self.regions else {
            return if hash(&self.html) == old.root && old.regions.is_empty() { Patch::None } else { Patch::Whole };
        };
        if old.regions.is_empty() && !regions.is_empty() || self.skeleton(regions, None) != old.root {
            return Patch::Whole;
        }
        let mut send = Vec::new();
        self.descend(regions, None, old, &mut send);
        if send.is_empty() { Patch::None } else { Patch::Regions(send) }
    }

    fn descend(&self, regions: &[Region], parent: Option<usize>, old: &Fingerprints, send: &mut Vec<Change>) {
        for (i, r) in regions.iter().enumerate().filter(|(_, r)| r.parent == parent) {
            let Some(print) = old.regions.get(&r.id) else {
                // The parent's skeleton names its children, so an unknown child means the
                // parent changed; reaching here would be a fingerprint collision. Be safe.
                send.push(Change::Region(r.outer.clone()));
                continue;
            };
            match self.judge(regions, i, print) {
                Verdict::Same => {}
                Verdict::Children => self.descend(regions, Some(i), old, send),
                Verdict::Keyed => {
                    let at = send.len();
                    let mut include = Vec::new();
                    let mut order = Vec::new();
                    for (c, child) in regions.iter().enumerate().filter(|(_, c)| c.parent == Some(i)) {
                        order.push(child.id.clone());
                        match old.regions.get(&child.id).map(|p| self.judge(regions, c, p)) {
                            Some(Verdict::Same) => {}
                            Some(Verdict::Children) => self.descend(regions, Some(c), old, send),
                            _ => include.push(child.outer.clone()),
                        }
                    }
                    // The list goes before what changed inside its children.
                    send.insert(at, Change::Keyed { outer: r.outer.clone(), order, include });
                }
                Verdict::Whole => send.push(Change::Region(r.outer.clone())),
            }
        }
    }

    /// What to send for region `i`, which the page shows with `old`'s fingerprints.
    fn judge(&self, regions: &[Region], i: usize, old: &Print) -> Verdict {
        let r = &regions[i];
        if r.stream {
            let holds = !self.html[r.inner.clone()].trim().is_empty();
            return if self.outer(r) != old.outer || holds { Verdict::Whole } else { Verdict::Same };
        }
        if self.outer(r) == old.outer {
            Verdict::Same
        } else if self.skeleton(regions, Some(i)) == old.skeleton {
            Verdict::Children
        } else if old.list != 0 && self.list(regions, i) == old.list {
            Verdict::Keyed
        } else {
            Verdict::Whole
        }
    }

    /// The fingerprint of region `i`'s tags if it is a list (only child regions and whitespace
    /// inside it), else 0.
    fn list(&self, regions: &[Region], i: usize) -> u64 {
        let r = &regions[i];
        if r.stream || r.inner.is_empty() {
            return 0;
        }
        let mut at = r.inner.start;
        for child in regions.iter().filter(|c| c.parent == Some(i)) {
            if !self.html[at..child.outer.start].trim().is_empty() {
                return 0;
            }
            at = child.outer.end;
        }
        if !self.html[at..r.inner.end].trim().is_empty() {
            return 0;
        }
        let mut h = DefaultHasher::new();
        self.html[r.outer.start..r.inner.start].hash(&mut h);
        self.html[r.inner.end..r.outer.end].hash(&mut h);
        h.finish().max(1)
    }

    /// Hash of a region's markup; of its tags alone for a stream's container.
    fn outer(&self, r: &Region) -> u64 {
        if !r.stream {
            return hash(&self.html[r.outer.clone()]);
        }
        let mut h = DefaultHasher::new();
        self.html[r.outer.start..r.inner.start].hash(&mut h);
        self.html[r.inner.end..r.outer.end].hash(&mut h);
        h.finish()
    }

    /// Hash of a region's markup (or the whole render's, for `None`) with each direct child
    /// region replaced by its id.
    fn skeleton(&self, regions: &[Region], of: Option<usize>) -> u64 {
        let span = of.map_or(0..self.html.len(), |i| regions[i].outer.clone());
        let mut h = DefaultHasher::new();
        let mut at = span.start;
        for child in regions.iter().filter(|r| r.parent == of) {
            self.html[at..child.outer.start].hash(&mut h);
            // A separator no markup contains, then the id: children are named, in order.
            "\u{0}region\u{0}".hash(&mut h);
            child.id.hash(&mut h);
            at = child.outer.end;
        }
        self.html[at..span.end].hash(&mut h);
        h.finish()
    }

    /// The changes as one message. For livehtml.js (`oob` is `None`) each element as it is
    /// (livehtml.js morphs an element without `hx-swap-oob` into the one with its id: the
    /// attribute would be 24 bytes of every update) and lists keyed. For plain htmx, each with
    /// `hx-swap-oob="<oob>"`, and lists whole (what changed inside them is not sent again).
    pub(crate) fn encode(&self, changes: &[Change], oob: Option<&str>) -> String {
        let mut out = String::new();
        let mut whole: Option<&Range<usize>> = None;
        for change in changes {
            let outer = change.outer();
            if whole.is_some_and(|w| w.start <= outer.start && outer.end <= w.end) {
                continue;
            }
            match change {
                Change::Keyed { outer, order, include } if oob.is_none() => {
                    let Some(r) = self.regions.iter().flatten().find(|r| r.outer == *outer) else { continue };
                    out.push_str(self.html[outer.start..r.attr_at].trim_end());
                    out.push(' ');
                    out.push_str(crate::protocol::names::attr::ORDER);
                    out.push_str("=\"");
                    crate::protocol::escape_attr(&mut out, &order.join(" "));
                    out.push('"');
                    out.push_str(&self.html[r.attr_at..r.inner.start]);
                    for child in include {
                        out.push_str(&self.html[child.clone()]);
                    }
                    out.push_str(&self.html[r.inner.end..outer.end]);
                }
                _ => {
                    match oob {
                        Some(style) => out.push_str(&self.region_with_oob(outer, style)),
                        None => out.push_str(&self.html[outer.clone()]),
                    }
                    whole = Some(outer);
                }
            }
        }
        out
    }

    /// The element at `range` with `hx-swap-oob="<style>"` added to its start tag.
    fn region_with_oob(&self, range: &Range<usize>, style: &str) -> String {
        let regions = self.regions.as_deref().unwrap_or_default();
        let Some(at) = regions.iter().find(|r| r.outer == *range).map(|r| r.attr_at) else {
            return self.html[range.clone()].to_owned();
        };
        let mut out = String::with_capacity(range.len() + 32);
        out.push_str(self.html[range.start..at].trim_end());
        out.push_str(" hx-swap-oob=\"");
        out.push_str(style);
        out.push('"');
        out.push_str(&self.html[at..range.end]);
        out
    }
}

/// What a region needs, compared with what the page shows.
enum Verdict {
    Same,
    /// Only what is inside its child regions changed.
    Children,
    /// A list whose children were added, removed, moved or changed: send it keyed.
    Keyed,
    Whole,
}

fn unique_ids(regions: &[Region]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(regions.len());
    regions.iter().all(|r| seen.insert(r.id.as_str()))
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(old: &str, new: &str) -> Vec<String> {
        let before = Rendered::new(old.to_owned()).fingerprints();
        let after = Rendered::new(new.to_owned());
        match after.diff(&before) {
            Patch::None => vec![],
            Patch::Whole => vec!["WHOLE".into()],
            Patch::Regions(changes) => changes
                .iter()
                .map(|c| match c {
                    Change::Region(r) => after.html()[r.clone()].to_owned(),
                    Change::Keyed { .. } => after.encode(std::slice::from_ref(c), None),
                })
                .collect(),
        }
    }

    const PAGE: &str =
        r#"<h1>Blog</h1><div id="a"><p>x</p><ul id="b"><li id="c">1</li><li id="d">2</li></ul></div><p id="e">e</p>"#;

    #[test]
    fn unchanged_sends_nothing() {
        assert!(patch(PAGE, PAGE).is_empty());
    }

    #[test]
    fn a_changed_leaf_is_sent_alone() {
        let new = PAGE.replace(">2<", ">two<");
        assert_eq!(patch(PAGE, &new), [r#"<li id="d">two</li>"#]);
        let new = PAGE.replace(r#"<p id="e">e</p>"#, r#"<p id="e" class="x">e</p>"#);
        assert_eq!(patch(PAGE, &new), [r#"<p id="e" class="x">e</p>"#]);
    }

    #[test]
    fn a_parent_whose_own_markup_changed_is_sent_whole() {
        let new = PAGE.replace("<p>x</p>", "<p>y</p>");
        assert_eq!(patch(PAGE, &new).len(), 1);
        assert!(patch(PAGE, &new)[0].starts_with(r#"<div id="a"><p>y</p>"#));
    }

    #[test]
    fn a_list_whose_children_were_added_removed_or_moved_is_sent_keyed() {
        let keyed = |order: &str, children: &str| format!(r#"<ul id="b" lh-order="{order}">{children}</ul>"#);
        let added = PAGE.replace(r#"<li id="d">2</li>"#, r#"<li id="d">2</li><li id="z">3</li>"#);
        assert_eq!(patch(PAGE, &added), [keyed("c d z", r#"<li id="z">3</li>"#)]);
        let removed = PAGE.replace(r#"<li id="d">2</li>"#, "");
        assert_eq!(patch(PAGE, &removed), [keyed("c", "")]);
        let reordered = PAGE.replace(r#"<li id="c">1</li><li id="d">2</li>"#, r#"<li id="d">2</li><li id="c">1</li>"#);
        assert_eq!(patch(PAGE, &reordered), [keyed("d c", "")]);
        // Moved and changed: the changed child travels whole; one changed deep inside is
        // sent on its own, after the list.
        let old = r#"<ul id="b"> <li id="c">1</li> <li id="d"><i id="di">x</i></li> </ul>"#;
        let new = r#"<ul id="b"> <li id="d"><i id="di">y</i></li> <li id="c">one</li> </ul>"#;
        assert_eq!(patch(old, new), [keyed("d c", r#"<li id="c">one</li>"#), r#"<i id="di">y</i>"#.into()]);
    }

    #[test]
    fn only_a_list_is_sent_keyed() {
        // Text beside the children, or changed attributes of its own: sent whole.
        let old = r#"<div id="a"><h2>T</h2><p id="x">1</p><p id="y">2</p></div>"#;
        let new = r#"<div id="a"><h2>T</h2><p id="y">2</p><p id="x">1</p></div>"#;
        assert_eq!(patch(old, new), [new]);
        let old = r#"<ul id="l" class="a"><li id="x">1</li></ul>"#;
        let new = r#"<ul id="l" class="b"><li id="x">1</li><li id="y">2</li></ul>"#;
        assert_eq!(patch(old, new), [new]);
    }

    #[test]
    fn without_keyed_updates_a_list_goes_whole_and_nothing_inside_it_twice() {
        let old = r#"<ul id="b"><li id="c">1</li><li id="d"><i id="di">x</i></li></ul>"#;
        let new = r#"<ul id="b"><li id="d"><i id="di">y</i></li><li id="c">1</li></ul>"#;
        let after = Rendered::new(new.to_owned());
        let Patch::Regions(changes) = after.diff(&Rendered::new(old.to_owned()).fingerprints()) else { panic!() };
        assert_eq!(changes.len(), 2);
        assert_eq!(
            after.encode(&changes, Some("true")),
            new.replace(r#"<ul id="b">"#, r#"<ul id="b" hx-swap-oob="true">"#)
        );
    }

    #[test]
    fn changes_outside_every_region_or_to_top_level_ids_send_the_whole_view() {
        assert_eq!(patch(PAGE, &PAGE.replace("<h1>Blog</h1>", "<h1>News</h1>")), ["WHOLE"]);
        assert_eq!(patch(PAGE, &PAGE.replace(r#"<p id="e">e</p>"#, "")), ["WHOLE"]);
        assert_eq!(patch("", PAGE), ["WHOLE"]);
    }

    #[test]
    fn several_independent_changes_are_each_sent() {
        let new = PAGE.replace(">1<", ">one<").replace(">e<", ">E<");
        assert_eq!(patch(PAGE, &new), [r#"<li id="c">one</li>"#, r#"<p id="e">E</p>"#]);
    }

    #[test]
    fn escaped_user_text_stays_escaped_and_is_compared_as_sent() {
        let old = r#"<ul id="comments"><li>&lt;b&gt;hi&lt;/b&gt;</li></ul>"#;
        let new = r#"<ul id="comments"><li>&lt;b&gt;hi&lt;/b&gt;</li><li>&lt;script&gt;</li></ul>"#;
        assert_eq!(patch(old, new), [new]);
    }

    #[test]
    fn unscannable_or_duplicate_ids_fall_back_to_whole() {
        assert_eq!(patch("<div id=a>", "<div id=a>x"), ["WHOLE"]);
        assert!(patch("<div id=a>", "<div id=a>").is_empty());
        let dup = r#"<p id="x">1</p><p id="x">2</p>"#;
        assert_eq!(patch(dup, &dup.replace(">2<", ">3<")), ["WHOLE"]);
    }

    #[test]
    fn a_stream_is_sent_when_it_holds_changes_and_never_for_what_it_no_longer_holds() {
        let view = |items: &str, limit: &str| {
            format!(r#"<h1>Chat</h1><ul id="log" lh-stream="{limit}">{items}</ul><p id="n">n</p>"#)
        };
        let first = view(r#"<li id="m1">1</li>"#, "5");
        // The items were sent; the next render holds none: nothing to send.
        assert!(patch(&first, &view("", "5")).is_empty());
        assert_eq!(
            patch(&view("", "5"), &view(r#"<li id="m2">2</li>"#, "5")),
            [r#"<ul id="log" lh-stream="5"><li id="m2">2</li></ul>"#]
        );
        // Whatever it held before, new items are sent, alone.
        assert_eq!(patch(&first, &view(r#"<li id="m2">2</li>"#, "5")).len(), 1);
        // Its own attributes are compared.
        assert_eq!(patch(&view("", "5"), &view("", "9")), [r#"<ul id="log" lh-stream="9"></ul>"#]);
    }

    #[test]
    fn oob_attribute_goes_into_the_start_tag() {
        let with_oob = |html: &str, id: &str| {
            let r = Rendered::new(html.to_owned());
            let range = r.regions.as_ref().unwrap().iter().find(|x| x.id == id).unwrap().outer.clone();
            r.region_with_oob(&range, "outerMorph")
        };
        assert_eq!(with_oob(PAGE, "c"), r#"<li id="c" hx-swap-oob="outerMorph">1</li>"#);
        assert_eq!(
            with_oob(r#"<input id="i" value="a>b"/>"#, "i"),
            r#"<input id="i" value="a>b" hx-swap-oob="outerMorph"/>"#
        );
        assert_eq!(with_oob(r#"<p id="p" >x</p>"#, "p"), r#"<p id="p" hx-swap-oob="outerMorph">x</p>"#);
    }
}
