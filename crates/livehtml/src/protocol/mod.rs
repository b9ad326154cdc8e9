//! The wire dialects as plain data: what clients send, what the server sends, close codes.
//!
//! No I/O here; every malformed input maps to a typed [`ParseError`].

pub mod close;
mod fragment;
mod inbound;

pub(crate) use fragment::escape_into as escape_attr;
pub use fragment::{Fragment, Html, Swap};
pub use inbound::{Dialect, Event, ParseError, ParseLimits, Values, parse_event};
