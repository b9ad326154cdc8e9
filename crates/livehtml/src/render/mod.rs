//! Rendering and the region diff: which parts of a view changed, as pure functions.
//!
//! A view renders to HTML; every element with an `id` in it is a *region*. The server keeps the
//! [`Fingerprints`] of what each page shows and, after each event, sends only the regions whose
//! fingerprint changed ([`Rendered::diff`]).
//!
//! ```
//! use livehtml::render::{Patch, Rendered};
//!
//! let before = Rendered::new(r#"<p id="n">1</p><p id="m">a</p>"#.into());
//! let after = Rendered::new(r#"<p id="n">2</p><p id="m">a</p>"#.into());
//! let Patch::Regions(changed) = after.diff(&before.fingerprints()) else { panic!() };
//! assert_eq!(&after.html()[changed[0].clone()], r#"<p id="n">2</p>"#);
//! ```

mod diff;
mod regions;

pub use diff::{Fingerprints, Patch, Rendered};
