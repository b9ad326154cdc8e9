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
//! A stream's container (`lh-stream`) holds what its stream sent with this render, not what the
//! page shows: it is fingerprinted by its tags alone, and sent whenever it holds anything.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;

use super::regions::{self, Region};

/// What a page currently shows, in fingerprints: about 24 bytes per region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fingerprints {
    root: u64,
    regions: HashMap<String, (u64, u64)>,
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
    /// These regions changed (byte ranges of their elements in the render), outermost first.
    Regions(Vec<Range<usize>>),
    /// Send the whole view.
    Whole,
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
            out.insert(r.id.clone(), (outer, if r.stream { outer } else { self.skeleton(regions, Some(i)) }));
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

    fn descend(&self, regions: &[Region], parent: Option<usize>, old: &Fingerprints, send: &mut Vec<Range<usize>>) {
        for (i, r) in regions.iter().enumerate().filter(|(_, r)| r.parent == parent) {
            let Some(&(outer, skeleton)) = old.regions.get(&r.id) else {
                // The parent's skeleton names its children, so an unknown child means the
                // parent changed; reaching here would be a fingerprint collision. Be safe.
                send.push(r.outer.clone());
                continue;
            };
            if r.stream {
                if self.outer(r) != outer || !self.html[r.inner.clone()].trim().is_empty() {
                    send.push(r.outer.clone());
                }
                continue;
            }
            if self.outer(r) == outer {
                continue;
            }
            if self.skeleton(regions, Some(i)) == skeleton {
                self.descend(regions, Some(i), old, send);
            } else {
                send.push(r.outer.clone());
            }
        }
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

    /// The element at `range` with `hx-swap-oob="<style>"` added to its start tag.
    pub(crate) fn region_with_oob(&self, range: &Range<usize>, style: &str) -> String {
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
            Patch::Regions(r) => r.iter().map(|r| after.html()[r.clone()].to_owned()).collect(),
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
    fn added_removed_and_reordered_children_send_their_parent() {
        let added = PAGE.replace(r#"<li id="d">2</li>"#, r#"<li id="d">2</li><li id="z">3</li>"#);
        assert_eq!(patch(PAGE, &added), [r#"<ul id="b"><li id="c">1</li><li id="d">2</li><li id="z">3</li></ul>"#]);
        let removed = PAGE.replace(r#"<li id="d">2</li>"#, "");
        assert_eq!(patch(PAGE, &removed), [r#"<ul id="b"><li id="c">1</li></ul>"#]);
        let reordered = PAGE.replace(r#"<li id="c">1</li><li id="d">2</li>"#, r#"<li id="d">2</li><li id="c">1</li>"#);
        assert_eq!(patch(PAGE, &reordered), [r#"<ul id="b"><li id="d">2</li><li id="c">1</li></ul>"#]);
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
