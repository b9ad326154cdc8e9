//! The test client: drive a live view in process, without a browser or a socket.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;

use super::ViewError;
use super::runtime::{Routes, ViewSession};
use crate::protocol::{Dialect, Event, Frame, ParseLimits, Values};
use crate::pubsub::{Info, Offer, Subscriber};
use crate::session::Context;

/// The test page's connection: what topics and timers send it waits here to be taken.
#[derive(Debug, Default)]
struct Mailbox {
    items: Mutex<VecDeque<Result<Frame, Info>>>,
    arrived: tokio::sync::Notify,
}

impl Mailbox {
    fn put(&self, item: Result<Frame, Info>) -> Offer {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).push_back(item);
        self.arrived.notify_one();
        Offer::Queued
    }

    async fn take(&self) -> Result<Frame, Info> {
        loop {
            let arrived = self.arrived.notified();
            if let Some(item) = self.items.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return item;
            }
            arrived.await;
        }
    }
}

impl Subscriber for Mailbox {
    fn offer(&self, frame: Frame) -> Offer {
        if frame.is_mark() {
            // Only a topic position: what a plain page is not sent either.
            return Offer::Queued;
        }
        self.put(Ok(frame))
    }

    fn offer_info(&self, info: Info) -> Offer {
        self.put(Err(info))
    }

    fn is_closed(&self) -> bool {
        false
    }

    /// A test page has no connection to lose: it sees the next message, and the test the gap.
    fn resync(&self) {}
}

/// A live view mounted in process, as a connected page would have it: send events, follow
/// navigation, receive topic messages, and look at the HTML and at what would have been sent.
///
/// ```
/// # use livehtml::view::{LiveView, Mount, ViewError};
/// # use livehtml::{Context, Event, Html, Live, LiveRoutes};
/// # struct Counter { count: i64 }
/// # impl LiveView for Counter {
/// #     type State = ();
/// #     async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> { Ok(Counter { count: 0 }) }
/// #     fn render(&self) -> Html { Html::trusted(format!(r#"<p id="count">{}</p>"#, self.count)) }
/// #     async fn on_event(&mut self, _: &mut Context, e: Event) -> Result<(), ViewError> {
/// #         if e.name.as_deref() == Some("inc") { self.count += 1; Ok(()) } else { Err(ViewError::unknown_event(&e)) }
/// #     }
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let views = LiveRoutes::new(&Live::default(), ()).route::<Counter>("/counter").build();
/// let mut page = views.test("/counter").await.unwrap();
/// assert!(page.html().contains(">0<"));
///
/// let sent = page.event("inc", &[]).await.unwrap();
/// assert_eq!(sent, r#"<p id="count">1</p>"#);
/// assert!(page.event("nope", &[]).await.is_err());
/// # });
/// ```
pub struct ViewTest<St> {
    session: ViewSession<St>,
    ctx: Context,
    mailbox: Arc<Mailbox>,
}

impl<St: Clone + Send + Sync + 'static> ViewTest<St> {
    pub(crate) async fn start(routes: Arc<Routes<St>>, url: &str, headers: HeaderMap) -> Result<Self, ViewError> {
        let mailbox = Arc::new(Mailbox::default());
        let mut ctx = Context::new(0, mailbox.clone(), routes.pubsub.clone(), ParseLimits::default());
        let mut session = ViewSession::new(routes, None, headers, true, false);
        session.streams = Some(Default::default());
        session.start(&mut ctx, url).await?;
        ctx.take_frames();
        Ok(Self { session, ctx, mailbox })
    }

    /// The view's current HTML.
    pub fn html(&self) -> String {
        self.session.view().map(|v| v.render().into_string()).unwrap_or_default()
    }

    /// The view's title.
    pub fn title(&self) -> String {
        self.session.view().map(|v| v.title()).unwrap_or_default()
    }

    /// The URL of the current view (it changes with navigation).
    pub fn url(&self) -> &str {
        self.session.url()
    }

    /// Sends the event `name` with `values` and returns what the page would have been sent
    /// (the changed regions), or the view's error.
    pub async fn event(&mut self, name: &str, values: &[(&str, &str)]) -> Result<String, ViewError> {
        let event = Event {
            name: Some(name.to_owned()),
            trigger: None,
            trigger_name: None,
            target: None,
            current_url: None,
            values: values.iter().copied().collect::<Values>(),
            dialect: Dialect::LiveHtml,
            reference: None,
        };
        let result = self.session.event(&mut self.ctx, event).await;
        let sent = self.take_sent();
        result.map(|()| sent)
    }

    /// Uploads a file to the view's upload `upload`, as livehtml.js does: offers it (with
    /// `values`, as an input's `lh-value-*`), then, if the upload accepts it, sends it in
    /// chunks. Returns everything the page would have been sent (progress, the view after
    /// [`super::LiveView::on_upload`]); a refused file returns what the page is shown about it.
    pub async fn upload(
        &mut self,
        upload: &str,
        file_name: &str,
        content_type: &str,
        bytes: &[u8],
        values: &[(&str, &str)],
    ) -> Result<String, ViewError> {
        let files = serde_json::json!([{ "ref": "t", "name": file_name, "size": bytes.len(), "type": content_type }])
            .to_string();
        let mut offer = vec![("upload", upload), ("files", files.as_str())];
        offer.extend_from_slice(values);
        let mut sent = self.event(crate::protocol::names::control::UPLOAD_EVENT, &offer).await?;
        let go = format!("{}=\"t:", crate::protocol::names::attr::UPLOAD_GO);
        let Some(id) =
            sent.split(&go).nth(1).and_then(|rest| rest.split('"').next()).and_then(|id| id.parse::<u32>().ok())
        else {
            return Ok(sent);
        };
        let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(super::CHUNK).collect() };
        for piece in pieces {
            let mut message = id.to_be_bytes().to_vec();
            message.extend_from_slice(piece);
            self.session.chunk(&mut self.ctx, &message).await.map_err(|e| ViewError::bad_request(e.to_string()))?;
            sent.push_str(&self.take_sent());
        }
        Ok(sent)
    }

    /// Follows a link to `url` over the socket, as an `lh-nav` link does.
    pub async fn navigate(&mut self, url: &str) -> Result<(), ViewError> {
        let result = self.session.navigate(&mut self.ctx, url).await;
        self.take_sent();
        result
    }

    /// Waits (at most `timeout`) for the next message from a topic or a timer, lets the view
    /// handle it, and returns what the page would have been sent. Frames published to the
    /// view's topics are returned as they are. `None` when nothing arrived in time.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<String> {
        let info = match tokio::time::timeout(timeout, self.mailbox.take()).await.ok()? {
            Err(info) => info,
            Ok(frame) => return Some(frame.as_text().unwrap_or_default().to_owned()),
        };
        let _ = self.session.info(&mut self.ctx, info).await;
        Some(self.take_sent())
    }

    /// The items the page shows in the stream whose container is `id` ([`super::Stream`]),
    /// in order: what every render so far sent it, applied as livehtml.js applies it (limit
    /// included). [`ViewTest::html`] shows only what the stream has not sent yet.
    pub fn stream(&self, id: &str) -> Vec<String> {
        self.session.streams.as_ref().map(|s| s.items(id)).unwrap_or_default()
    }

    /// Bytes sent by the last update, and the size of the whole view it replaced.
    pub fn last_update_bytes(&self) -> (usize, usize) {
        self.session.last_update
    }

    fn take_sent(&mut self) -> String {
        self.ctx.take_frames().iter().filter_map(|f| f.as_text().map(str::to_owned)).collect()
    }
}
