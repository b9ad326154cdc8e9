//! Names on the wire that the server and livehtml.js share: header names, Server-Sent Event
//! names, control messages, the live-view socket's query. Declared once here; livehtml.js keeps
//! the same table (`livehtml.wire`), and both are checked against `fixtures/wire.json`.

/// Header names (in a socket message's `HEADERS`, or on an HTTP request).
pub mod header {
    /// The signed id of the SSE stream a `POST` is for.
    pub const STREAM: &str = "LH-Stream";
    /// The event's name, from livehtml.js (`lh-send="name"`, `lh-click="name"`...).
    pub const EVENT: &str = "LH-Event";
    /// Set by livehtml.js on everything it sends.
    pub const CLIENT: &str = "LH-Client";
    /// The number livehtml.js gives an event it waits for: the server answers it with a
    /// [`super::comment::REPLY`] once the event is handled, and the page ends its loading state.
    pub const REF: &str = "LH-Ref";
}

/// Server-Sent Event names.
pub mod event {
    /// The stream's first event: its signed id, which the page's posts carry.
    pub const STREAM: &str = "lh-stream";
    /// The last event of a stream the server ends: `{"code", "reason"}`, with the WebSocket
    /// close code's meaning ([`super::super::close::policy`]).
    pub const CLOSE: &str = "lh-close";
    /// An event with no data that carries the stream's `id:` only: where a subscription starts
    /// ([`super::super::Position`]), so a reconnect's `Last-Event-ID` can say it.
    pub const AT: &str = "lh-at";
}

/// Control messages: a JSON object whose [`control::KEY`] names what to do, where fragments are
/// HTML.
pub mod control {
    /// The key that marks a control message.
    pub const KEY: &str = "lh";
    /// Show another live view: `url`, `title`, `token`, `html`.
    pub const NAV: &str = "nav";
    /// Load `url` the ordinary way (not a live view).
    pub const REDIRECT: &str = "redirect";
    /// The event name livehtml.js sends to navigate; its `url` value is the target.
    pub const NAV_EVENT: &str = "lh:nav";
    /// The event livehtml.js sends when files are chosen in an `lh-upload` input: `upload`
    /// (its name) and `files` (a JSON list of `{ref, name, size, type}`), with the input's
    /// `lh-value-*`. Answered with [`super::attr::UPLOAD_GO`] for the files accepted.
    pub const UPLOAD_EVENT: &str = "lh:upload";
    /// The event that cancels an upload's file: `upload` and `id`.
    pub const UPLOAD_CANCEL_EVENT: &str = "lh:upload-cancel";
    /// A reconnect resumed the page's live view (kept for the grace period): what changed
    /// meanwhile was sent before this; the page lost nothing.
    pub const RESUMED: &str = "resumed";
    /// A reconnect found the page's live view gone (the grace period ended, or the server
    /// restarted): it was mounted anew and the whole view sent before this.
    pub const RESYNCED: &str = "resynced";
    /// A reconnect's topics were recovered from their history: `replayed` messages the page
    /// had missed were sent before this, in order.
    pub const RECOVERED: &str = "recovered";
}

/// Attributes on the page's elements that carry meaning between the server and livehtml.js.
pub mod attr {
    /// On a container whose children are a stream's items (`lh-stream="50"`: the page keeps
    /// at most 50 of them; empty: no limit). What arrives for it is merged, never swapped
    /// over what it holds: an item whose id is there already is updated in place, a new one is
    /// inserted (at the end, or at its [`INSERT_AT`]), and the far end is trimmed to the limit.
    pub const STREAM: &str = "lh-stream";
    /// On a stream's item: the index it is inserted at (0: first); absent, it is appended.
    pub const INSERT_AT: &str = "lh-insert-at";
    /// On a `<template>` in a stream's container: the items shown before it are removed.
    pub const STREAM_RESET: &str = "lh-stream-reset";
    /// On a `<template>` in a stream's container: removes the item with this id.
    pub const STREAM_DELETE: &str = "lh-stream-delete";
    /// On a list sent keyed: the ids of its children, in order (space-separated). The children
    /// it carries are new or changed; the others are the page's, moved into this order; a child
    /// not named is removed.
    pub const ORDER: &str = "lh-order";
    /// On a file input: the name of the live view's upload its files go to.
    pub const UPLOAD: &str = "lh-upload";
    /// On a `<template>`: files the server accepted, as `ref:id` pairs (space-separated); the
    /// page sends each in binary messages: the id (4 bytes, big-endian), then up to 32 KiB.
    pub const UPLOAD_GO: &str = "lh-upload-go";
    /// On a `<template>`: stop sending the file with this id (cancelled, or refused midway).
    pub const UPLOAD_STOP: &str = "lh-upload-stop";
}

/// Comments the server ends a message with: `<!--lh-reply 7-->` (the event numbered 7 by its
/// [`header::REF`] is handled: its element leaves its loading state) or `<!--lh-refused 7 why-->`
/// (refused, `why` percent-encoded: optimistic changes made when it was sent are undone). A
/// comment is the shortest thing a page can be sent that swaps nothing.
pub mod comment {
    /// The event is handled.
    pub const REPLY: &str = "lh-reply";
    /// The event was refused.
    pub const REFUSED: &str = "lh-refused";
}

/// Datastar signals.
pub mod signal {
    /// The signal that carries a Datastar page's stream id (its posts send every signal back).
    pub const STREAM: &str = "lhStream";
}

/// Query parameters.
pub mod query {
    /// The signed id of the SSE stream a `POST` is for, where a header cannot be set.
    pub const STREAM: &str = "lh-stream";
    /// `client=lh`: the page runs livehtml.js (it morphs; plain htmx pages get plain swaps).
    pub const CLIENT: &str = "client";
    /// `resume=1`: a live view's socket opened again by the same page (livehtml.js sets it on
    /// every reconnect), so a view that cannot be resumed is sent whole.
    pub const RESUME: &str = "resume";
    /// What a reconnecting page saw: its topic positions (`epoch-offset`, joined with `.`), as
    /// an SSE stream's `Last-Event-ID` says them.
    pub const SINCE: &str = "lh-since";
    /// Long-polling: `lh-poll=1` opens a session (the answer is `{"id"}`, the signed id its
    /// polls and posts carry); `lh-poll=<id>` waits for what the session sends.
    pub const POLL: &str = "lh-poll";
    /// The last batch a poll's page received (`batch` of the last answer): a batch not
    /// acknowledged is sent again, so an answer lost on the way loses nothing.
    pub const ACK: &str = "lh-ack";
}
