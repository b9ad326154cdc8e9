//! Rendering and the region diff: which parts of a view changed, as pure functions.
//!
//! A view renders to HTML; every element with an `id` in it is a *region*. The server keeps the
//! [`Fingerprints`] of what each page shows and, after each event, sends only the regions whose
//! fingerprint changed ([`Rendered::diff`]).
//!
//! Internal: only the view runtime uses it. (`diff.rs`'s tests show it at work.)

mod diff;
mod regions;

pub(crate) use diff::{Fingerprints, Patch, Rendered};
pub(crate) use regions::{root_id, with_root_attr};
