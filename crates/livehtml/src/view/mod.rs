//! Live views: state on the server, events from the page, only changed regions sent back.
//!
//! A [`LiveView`] is a plain struct. It is mounted from a URL (first over plain HTTP, so the
//! page is real HTML for `curl` and search engines; then again when the page's socket joins),
//! renders to HTML, and changes with the events the page sends and the messages it receives.
//! After each change the view is rendered again and only the regions (elements with an `id`)
//! whose fingerprint changed travel back (the region diff).
//!
//! Several views share one socket: links marked `lh-nav` switch views over it (push-state
//! navigation), and a reload of any URL renders the same page over HTTP.
//!
//! ```
//! use livehtml::view::{LiveView, Mount, ViewError};
//! use livehtml::{Context, Event, Html};
//! use maud::html;
//!
//! /// A counter whose state lives on the server.
//! struct Counter {
//!     count: i64,
//! }
//!
//! impl LiveView for Counter {
//!     type State = ();
//!
//!     async fn mount(_: &(), mount: &Mount) -> Result<Self, ViewError> {
//!         let start = mount.query("start").and_then(|s| s.parse().ok()).unwrap_or(0);
//!         Ok(Counter { count: start })
//!     }
//!
//!     fn render(&self) -> Html {
//!         html! {
//!             p #count { (self.count) }
//!             button lh-click="inc" { "+1" }
//!         }
//!         .into()
//!     }
//!
//!     async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
//!         match event.name.as_deref() {
//!             Some("inc") => self.count += 1,
//!             _ => return Err(ViewError::unknown_event(&event)),
//!         }
//!         Ok(())
//!     }
//! }
//! ```

mod durable;
mod parked;
mod receiving;
pub(crate) mod runtime;
mod stream;
mod testing;
pub(crate) mod token;
mod upload;

use std::future::Future;

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;

pub use durable::{KEPT_CONNECTED, MAX_SAVED};
pub use stream::Stream;
pub use testing::ViewTest;
pub use upload::{CHUNK, Entry, Upload, UploadedFile};

use crate::protocol::{Event, Html};
use crate::pubsub::Info;
use crate::session::Context;

/// A live view. See the [module docs](self).
///
/// # Errors
///
/// A handler's error is shown to the page (in the element `lh-flash`) and the view goes on;
/// an error from `mount` answers the HTTP request with its status (404, 400, 500), or closes
/// a socket that tried to join with 4002 ([`crate::protocol::close::STALE_VIEW`]: reload).
pub trait LiveView: Send + Sized + 'static {
    /// What the app shares with its views (a database pool, counters): given to `mount`.
    type State: Clone + Send + Sync + 'static;

    /// Builds the view for a URL. Runs for the HTTP render and again when the socket joins;
    /// [`Mount::connected`] tells which.
    fn mount(state: &Self::State, mount: &Mount) -> impl Future<Output = Result<Self, ViewError>> + Send;

    /// The view's HTML. Every element with an `id` is a region that is updated on its own.
    fn render(&self) -> Html;

    /// The page title (`<title>`), also set when navigating to this view.
    fn title(&self) -> String {
        String::new()
    }

    /// Called once the page's socket is connected: subscribe to topics, start timers here.
    fn on_join(&mut self, ctx: &mut Context) -> impl Future<Output = Result<(), ViewError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// An event from the page (`lh-click`, `lh-submit`, a `ws-send` form...). An event the view
    /// does not know should return [`ViewError::unknown_event`].
    fn on_event(&mut self, ctx: &mut Context, event: Event) -> impl Future<Output = Result<(), ViewError>> + Send;

    /// A message from a topic this view subscribed to, or from its own timer.
    fn on_info(&mut self, ctx: &mut Context, info: Info) -> impl Future<Output = Result<(), ViewError>> + Send {
        let _ = (ctx, info);
        async { Ok(()) }
    }

    /// The view's [`Upload`] named `name` (a file input's `lh-upload="name"`), if it has one:
    /// files offered to it are checked against it, and their progress lives in it.
    fn upload(&mut self, name: &str) -> Option<&mut Upload> {
        let _ = name;
        None
    }

    /// A file arrived whole at one of the view's uploads. Store it (the bytes are the view's
    /// now); an error is shown to the page as a handler's is.
    fn on_upload(
        &mut self,
        ctx: &mut Context,
        file: UploadedFile,
    ) -> impl Future<Output = Result<(), ViewError>> + Send {
        let _ = (ctx, file);
        async { Ok(()) }
    }

    /// Called once when the view ends: its page left, or navigated to another view over the
    /// same socket. Its subscriptions are dropped right after; nothing pushed here is sent.
    fn on_leave(&mut self, ctx: &mut Context) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Opts the view in to outliving its process: what the user made of it (a count, a draft,
    /// a selection) as bytes, with serde say (`serde_json::to_vec(&self.count).ok()`). In a
    /// [cluster](crate::pubsub#a-cluster) it is written to the broker when the view joins,
    /// after each event or message that changes it (the page is sent the change once the broker
    /// took it), and when its page drops; a page that comes back to another process, or whose
    /// process died, gets the view mounted there and [restored](LiveView::restore) from it
    /// (`lh:recovered`), and its topics replay what it missed as they do. Kept at most
    /// [`KEPT_CONNECTED`] after its last write while the page is connected, and the views'
    /// grace period after it drops; at most [`MAX_SAVED`] bytes (a larger state is not kept,
    /// and logged). `None` (the default): the view is kept by its own process only, and mounted
    /// anew elsewhere (`lh:resynced`).
    ///
    /// What `mount` or a database gives back need not travel. Called after every event and
    /// message: it should be cheap.
    fn save(&self) -> Option<Vec<u8>> {
        None
    }

    /// Takes back what [`LiveView::save`] wrote, into a view just mounted for the same URL on
    /// whichever process the page came back to (then `on_join` runs, as for any view that
    /// joins). `false`: the bytes are not this view's (an older version of the app wrote them),
    /// and it stays as mounted: the page is sent it whole and told (`lh:resynced`).
    ///
    /// ```
    /// use livehtml::view::{LiveView, Mount, ViewError};
    /// use livehtml::{Context, Event, Html};
    ///
    /// struct Counter {
    ///     count: i64,
    /// }
    ///
    /// impl LiveView for Counter {
    ///     type State = ();
    ///
    ///     async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
    ///         Ok(Counter { count: 0 })
    ///     }
    ///
    ///     fn render(&self) -> Html {
    ///         Html::escape(&self.count.to_string())
    ///     }
    ///
    ///     async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), ViewError> {
    ///         self.count += 1;
    ///         Ok(())
    ///     }
    ///
    ///     fn save(&self) -> Option<Vec<u8>> {
    ///         serde_json::to_vec(&self.count).ok()
    ///     }
    ///
    ///     fn restore(&mut self, saved: &[u8]) -> bool {
    ///         serde_json::from_slice(saved).map(|count| self.count = count).is_ok()
    ///     }
    /// }
    /// ```
    fn restore(&mut self, saved: &[u8]) -> bool {
        let _ = saved;
        false
    }
}

/// The request a view is mounted for.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Path and query, as requested.
    pub(crate) url: String,
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) connected: bool,
}

impl Mount {
    /// A path parameter of the route (`{id}` in `/article/{id}`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter, decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The URL's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request's headers (cookies, for a session): those of the page's GET, then those of
    /// the socket's upgrade request.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Whether this mount is for a connected socket (`false` for the HTTP render).
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Runs one of the app's axum extractors (`FromRequestParts`: a signed cookie jar, a
    /// session, the signed-in user) on the request this view is mounted for: the page's GET,
    /// then again the socket's join, so a view re-checks who is asking when its page connects.
    /// The join carries the upgrade request's `Cookie`, `Authorization`, `User-Agent` and
    /// `Accept-Language` headers (the rest is not kept).
    ///
    /// ```
    /// # use livehtml::{Mount, ViewError};
    /// use axum::http::HeaderMap;
    ///
    /// # async fn mount(mount: &Mount) -> Result<(), ViewError> {
    /// let headers: HeaderMap = mount.extract(&()).await.map_err(|e| match e {})?;
    /// # Ok(()) }
    /// ```
    pub async fn extract<E, S>(&self, state: &S) -> Result<E, E::Rejection>
    where
        E: axum::extract::FromRequestParts<S>,
        S: Send + Sync,
    {
        let request = axum::http::Request::builder().uri(self.url.as_str()).body(()).unwrap_or_default();
        let (mut parts, ()) = request.into_parts();
        parts.headers = self.headers.clone();
        E::from_request_parts(&mut parts, state).await
    }
}

/// Why a view could not mount or handle something.
#[derive(Debug)]
#[non_exhaustive]
pub enum ViewError {
    /// Nothing at this URL (HTTP 404).
    NotFound,
    /// The request or the event's values are not acceptable; the text is shown to the user.
    BadRequest(String),
    /// An event the view has no handler for.
    UnknownEvent(String),
    /// Something failed inside; logged, and shown to the user as a generic message.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ViewError {
    /// The error for an event the view does not handle.
    pub fn unknown_event(event: &Event) -> Self {
        Self::UnknownEvent(event.name.clone().unwrap_or_default())
    }

    /// A bad value, with a message for the user.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Wraps any error as internal.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    /// What the user is shown.
    pub fn user_message(&self) -> String {
        match self {
            Self::NotFound => "not found".into(),
            Self::BadRequest(m) => m.clone(),
            Self::UnknownEvent(name) => format!("unknown event {name:?}"),
            Self::Internal(_) => "something went wrong".into(),
        }
    }
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Internal(e) => write!(f, "internal error: {e}"),
            other => f.write_str(&other.user_message()),
        }
    }
}

impl std::error::Error for ViewError {}

/// A mounted view of any type: what the runtime holds.
pub(crate) trait DynView: Send {
    fn render(&self) -> Html;
    fn title(&self) -> String;
    fn on_join<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, Result<(), ViewError>>;
    fn on_event<'a>(&'a mut self, ctx: &'a mut Context, event: Event) -> BoxFuture<'a, Result<(), ViewError>>;
    fn on_info<'a>(&'a mut self, ctx: &'a mut Context, info: Info) -> BoxFuture<'a, Result<(), ViewError>>;
    fn on_leave<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ()>;
    fn upload(&mut self, name: &str) -> Option<&mut Upload>;
    fn on_upload<'a>(&'a mut self, ctx: &'a mut Context, file: UploadedFile) -> BoxFuture<'a, Result<(), ViewError>>;
    fn save(&self) -> Option<Vec<u8>>;
    fn restore(&mut self, saved: &[u8]) -> bool;
}

impl<V: LiveView> DynView for V {
    fn render(&self) -> Html {
        LiveView::render(self)
    }

    fn title(&self) -> String {
        LiveView::title(self)
    }

    fn on_join<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, Result<(), ViewError>> {
        Box::pin(LiveView::on_join(self, ctx))
    }

    fn on_event<'a>(&'a mut self, ctx: &'a mut Context, event: Event) -> BoxFuture<'a, Result<(), ViewError>> {
        Box::pin(LiveView::on_event(self, ctx, event))
    }

    fn on_info<'a>(&'a mut self, ctx: &'a mut Context, info: Info) -> BoxFuture<'a, Result<(), ViewError>> {
        Box::pin(LiveView::on_info(self, ctx, info))
    }

    fn on_leave<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ()> {
        Box::pin(LiveView::on_leave(self, ctx))
    }

    fn upload(&mut self, name: &str) -> Option<&mut Upload> {
        LiveView::upload(self, name)
    }

    fn on_upload<'a>(&'a mut self, ctx: &'a mut Context, file: UploadedFile) -> BoxFuture<'a, Result<(), ViewError>> {
        Box::pin(LiveView::on_upload(self, ctx, file))
    }

    fn save(&self) -> Option<Vec<u8>> {
        LiveView::save(self)
    }

    fn restore(&mut self, saved: &[u8]) -> bool {
        LiveView::restore(self, saved)
    }
}
