//! The view runtime: routes from URLs to views, the first render over HTTP, and the session that
//! runs a view on a socket.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;

use super::durable::{self, KEPT_CONNECTED, Saved};
use super::parked::{Parked, Parking};
use super::receiving::{Receiving, is_upload_event};
use super::stream::{self, Shown};
use super::token::{Claims, Signer};
use super::{DynView, LiveView, Mount, ViewError};
use crate::protocol::names::control;
use crate::protocol::{Event, Fragment, Frame, Html, Inbound, Swap, close};
use crate::pubsub::{Info, PubSub};
use crate::render::{Fingerprints, Patch, Rendered};
use crate::session::{Context, Session, SessionError};

/// How long an event of a view that outlives its process waits for the broker to take its state.
const KEEP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The event name livehtml.js sends to navigate; its `url` value is the target.
pub(crate) const NAV_EVENT: &str = control::NAV_EVENT;

type Mounter<St> = Box<dyn Fn(St, Mount) -> BoxFuture<'static, Result<Box<dyn DynView>, ViewError>> + Send + Sync>;

/// What a layout gets to build a page around a view.
#[derive(Debug, Clone)]
pub struct Page {
    pub(crate) url: String,
    pub(crate) title: String,
    pub(crate) connect_url: String,
    pub(crate) content: Html,
}

impl Page {
    /// The URL the page was rendered for (path and query).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The view's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Where the page's socket connects (it carries the signed view token).
    pub fn connect_url(&self) -> &str {
        &self.connect_url
    }

    /// The view's rendered HTML.
    pub fn content(&self) -> &Html {
        &self.content
    }

    /// The live root for livehtml.js: an `lh-flash` element for error messages and the
    /// `lh-view` element that holds the view and connects the socket.
    pub fn live_root(&self) -> Html {
        let mut out = String::from(r#"<div id="lh-flash" role="alert"></div><div id="lh-view" lh-connect=""#);
        crate::protocol::escape_attr(&mut out, &self.connect_url);
        out.push_str("\">");
        out.push_str(self.content.as_str());
        out.push_str("</div>");
        Html::trusted(out)
    }
}

pub(crate) type Layout = Arc<dyn Fn(&Page) -> Html + Send + Sync>;

/// The default page: a minimal document that loads livehtml.js around [`Page::live_root`].
pub(crate) fn default_layout(page: &Page) -> Html {
    let mut out = String::from("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    crate::protocol::escape_attr(&mut out, page.title());
    out.push_str("</title><script src=\"");
    out.push_str(crate::asset::SCRIPT_URL);
    out.push_str("\" defer></script></head><body>");
    out.push_str(page.live_root().as_str());
    out.push_str("</body></html>");
    Html::trusted(out)
}

pub(crate) struct Routes<St> {
    pub(crate) state: St,
    pub(crate) pubsub: PubSub,
    pub(crate) signer: Signer,
    pub(crate) socket_path: String,
    pub(crate) token_max_age: u64,
    pub(crate) layout: Layout,
    pub(crate) paths: Vec<String>,
    /// Views whose connection dropped, kept for their page's reconnect.
    pub(crate) parking: Parking,
    router: matchit::Router<usize>,
    mounters: Vec<Mounter<St>>,
}

impl<St: Clone + Send + Sync + 'static> Routes<St> {
    pub(crate) fn new(state: St, pubsub: PubSub, signer: Signer) -> Self {
        Self {
            state,
            pubsub,
            signer,
            socket_path: "/_livehtml/live".into(),
            token_max_age: 24 * 3600,
            layout: Arc::new(default_layout),
            paths: Vec::new(),
            parking: Parking::new(std::time::Duration::from_secs(30)),
            router: matchit::Router::new(),
            mounters: Vec::new(),
        }
    }

    /// Registers `V` at `path` (`/article/{id}`). Panics on an invalid or duplicate path, as
    /// axum's router does: that is a programming error, found at start-up.
    pub(crate) fn add<V: LiveView<State = St>>(&mut self, path: &str) {
        self.router.insert(path, self.mounters.len()).unwrap_or_else(|e| panic!("invalid live route {path:?}: {e}"));
        self.paths.push(path.to_owned());
        self.mounters.push(Box::new(|state: St, mount: Mount| {
            Box::pin(async move { V::mount(&state, &mount).await.map(|v| Box::new(v) as Box<dyn DynView>) })
        }));
    }

    /// Mounts the view for `url` (a path with an optional query, or an absolute URL).
    pub(crate) async fn mount(
        &self,
        url: &str,
        headers: HeaderMap,
        connected: bool,
    ) -> Result<(Box<dyn DynView>, String), ViewError> {
        let local = local_part(url).ok_or(ViewError::NotFound)?;
        let (path, query) = local.split_once('?').unwrap_or((local, ""));
        let matched = self.router.at(path).map_err(|_| ViewError::NotFound)?;
        let params = matched.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let query = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let mount = Mount { url: local.to_owned(), path: path.to_owned(), params, query, headers, connected };
        let view = (self.mounters[*matched.value])(self.state.clone(), mount).await?;
        Ok((view, local.to_owned()))
    }

    /// The complete page for `url`, rendered over HTTP, with a token for its socket.
    pub(crate) async fn page(&self, url: &str, headers: HeaderMap) -> Result<String, ViewError> {
        let (view, url) = self.mount(url, headers, false).await?;
        let html = view.render().into_string();
        let (token, _) = self.token_for(&url, &html);
        let page = Page {
            title: view.title(),
            url: url.clone(),
            connect_url: format!("{}?t={token}", self.socket_path),
            content: Html::trusted(html),
        };
        Ok((self.layout)(&page).into_string())
    }

    /// A token for a new render of `url`, and the page identity it carries.
    fn token_for(&self, url: &str, html: &str) -> (String, u64) {
        let page = new_page();
        (self.signer.sign(&Claims { url: url.to_owned(), render: fingerprint(html), issued: now(), page }), page)
    }
}

/// A path on this site: `https://host/a?b` → `/a?b`; `/a?b` stays. Anything else (another
/// scheme such as `javascript:`, a protocol-relative `//host`, a backslash, a control
/// character) is no path here: `None`, so a navigation or a redirect never carries it.
fn local_part(url: &str) -> Option<&str> {
    let local = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            rest.find('/').map_or("/", |i| &rest[i..])
        }
        Some(_) => return None,
        None => url,
    };
    let local = local.split('#').next().unwrap_or("/");
    let safe = local.starts_with('/')
        && !local.starts_with("//")
        && !local.contains('\\')
        && !local.chars().any(char::is_control);
    safe.then_some(local)
}

/// A random page identity (never 0, which means "none yet").
fn new_page() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    u64::from_ne_bytes(bytes).max(1)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn fingerprint(html: &str) -> u64 {
    let mut h = DefaultHasher::new();
    html.hash(&mut h);
    h.finish()
}

/// Runs one view at a time on a socket; navigation swaps the view.
pub(crate) struct ViewSession<St> {
    routes: Arc<Routes<St>>,
    token: Option<String>,
    headers: HeaderMap,
    /// livehtml.js morphs; plain htmx replaces.
    morph: bool,
    pub(super) view: Option<Box<dyn DynView>>,
    shown: Fingerprints,
    url: String,
    /// The page's identity (from its token; a navigation's new token changes it); 0 before
    /// the join.
    page: u64,
    /// The page says it is coming back (`resume=1`): a view it cannot resume is sent whole.
    resume: bool,
    /// The view's last write to the cluster (a view that opted in to outliving its process).
    saved: Saved,
    /// Bytes of the last update, and of the whole view it replaced: how much the diff saved.
    pub(crate) last_update: (usize, usize),
    /// The test client's copy of what the view's streams show (`None` on a real connection).
    pub(crate) streams: Option<Shown>,
    /// Files on their way to the view's uploads.
    pub(crate) receiving: Receiving,
}

/// Takes a render of `view` for the page: its streams forget what it sends them.
fn take_render(view: &dyn DynView, streams: &mut Option<Shown>) -> String {
    let (html, sent) = stream::take(|| view.render());
    if let Some(shown) = streams {
        shown.apply(sent);
    }
    html.into_string()
}

impl<St: Clone + Send + Sync + 'static> ViewSession<St> {
    pub(crate) fn new(
        routes: Arc<Routes<St>>,
        token: Option<String>,
        headers: HeaderMap,
        morph: bool,
        resume: bool,
    ) -> Self {
        Self {
            routes,
            token,
            headers,
            morph,
            view: None,
            shown: Fingerprints::default(),
            url: String::new(),
            page: 0,
            resume,
            saved: Saved::default(),
            last_update: (0, 0),
            streams: None,
            receiving: Receiving::default(),
        }
    }

    pub(crate) fn view(&self) -> Option<&dyn DynView> {
        self.view.as_deref()
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Mounts `url` as a connected view without a token (the test client's way in).
    pub(crate) async fn start(&mut self, ctx: &mut Context, url: &str) -> Result<(), ViewError> {
        let (mut view, url) = self.routes.mount(url, self.headers.clone(), true).await?;
        view.on_join(ctx).await?;
        self.shown = Rendered::new(take_render(view.as_ref(), &mut self.streams)).fingerprints();
        self.view = Some(view);
        self.url = url;
        Ok(())
    }

    /// Runs an event; errors are returned (the socket session shows them in `lh-flash`).
    pub(crate) async fn event(&mut self, ctx: &mut Context, event: Event) -> Result<(), ViewError> {
        if event.name.as_deref() == Some(NAV_EVENT) {
            let url = event.value("url").ok_or_else(|| ViewError::bad_request("navigation without a url"))?.to_owned();
            return self.navigate(ctx, &url).await;
        }
        if is_upload_event(&event) {
            if event.name.as_deref() == Some(control::UPLOAD_EVENT) {
                return self.offer(ctx, &event);
            }
            self.cancel_upload(ctx, &event);
            return Ok(());
        }
        let view = self.view.as_mut().ok_or(ViewError::NotFound)?;
        let result = view.on_event(ctx, event).await;
        self.persist(false).await;
        self.refresh(ctx);
        result
    }

    pub(crate) async fn info(&mut self, ctx: &mut Context, info: Info) -> Result<(), ViewError> {
        let Some(view) = self.view.as_mut() else { return Ok(()) };
        let result = view.on_info(ctx, info).await;
        self.persist(false).await;
        self.refresh(ctx);
        result
    }

    /// Renders again and pushes only the regions that changed.
    pub(crate) fn refresh(&mut self, ctx: &mut Context) {
        let Some(view) = &self.view else { return };
        let rendered = Rendered::new(take_render(view.as_ref(), &mut self.streams));
        let sent = match rendered.diff(&self.shown) {
            Patch::None => String::new(),
            Patch::Regions(changes) => {
                // livehtml.js morphs elements without hx-swap-oob; plain htmx is told to replace.
                rendered.encode(&changes, (!self.morph).then(|| Swap::Replace.oob_value()))
            }
            Patch::Whole => self.whole(rendered.html()),
        };
        if !sent.is_empty() {
            ctx.push_encoded(&sent);
        }
        self.last_update = (sent.len(), rendered.html().len());
        self.shown = rendered.fingerprints();
    }

    /// Writes the view's state to the cluster (if it opted in and it changed, or `always`)
    /// before the page is shown it: what a page saw is what a process that takes it over
    /// resumes, even if this one dies the moment after. Waits for the broker at most
    /// [`KEEP_WAIT`] (not at all while it is unreachable: the write goes when it is back).
    async fn persist(&mut self, always: bool) {
        let Some(view) = &self.view else { return };
        let pubsub = &self.routes.pubsub;
        if self.saved.write(pubsub, self.page, view.as_ref(), KEPT_CONNECTED, always) && pubsub.is_connected() {
            pubsub.flush(KEEP_WAIT).await;
        }
    }

    fn whole(&self, html: &str) -> String {
        let style = if self.morph { Swap::Morph } else { Swap::Inner }.oob_value();
        format!(r#"<div id="lh-view" hx-swap-oob="{style}">{html}</div>"#)
    }

    /// Switches to the view at `url` on the same socket.
    pub(crate) async fn navigate(&mut self, ctx: &mut Context, url: &str) -> Result<(), ViewError> {
        let (mut view, url) = match self.routes.mount(url, self.headers.clone(), true).await {
            Ok(found) => found,
            Err(ViewError::NotFound) => {
                // Not a live route: the page loads it the ordinary way, if it is a path here.
                let Some(local) = local_part(url) else {
                    return Err(ViewError::bad_request("only a path on this site can be navigated to"));
                };
                let msg = serde_json::json!({(control::KEY): control::REDIRECT, "url": local});
                ctx.push_frame(Frame::text(msg.to_string()));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.drop_files();
        if let Some(old) = self.view.as_mut() {
            old.on_leave(ctx).await;
            // What the old view pushed while leaving is not for the new one.
            ctx.take_frames();
        }
        ctx.unsubscribe_all();
        ctx.cancel_tasks();
        view.on_join(ctx).await?;
        let html = take_render(view.as_ref(), &mut self.streams);
        let (token, page) = self.routes.token_for(&url, &html);
        // The page is a new one now: the old identity is let go (nothing kept under it).
        self.routes.parking.release(self.page, None);
        if self.saved.version > 0 {
            self.routes.pubsub.keep(&durable::key(self.page), None, KEPT_CONNECTED);
        }
        self.routes.parking.activate(page);
        self.page = page;
        self.saved = Saved::default();
        let msg = serde_json::json!({
            (control::KEY): control::NAV,
            "url": url,
            "title": view.title(),
            "token": token,
            "html": html,
        });
        ctx.push_frame(Frame::text(msg.to_string()));
        self.shown = Rendered::new(html).fingerprints();
        self.view = Some(view);
        self.url = url;
        self.persist(true).await;
        Ok(())
    }

    pub(crate) fn flash(ctx: &mut Context, error: &ViewError) {
        if let ViewError::Internal(e) = error {
            tracing::error!(error = %e, "live view failed");
        }

        ctx.push(Fragment::inner("lh-flash", Html::escape(&error.user_message())));
    }
}

impl<St: Clone + Send + Sync + 'static> Session for ViewSession<St> {
    /// Events as any session's; binary messages are the chunks of files being uploaded.
    async fn on_message(&mut self, ctx: &mut Context, message: Inbound) -> Result<(), SessionError> {
        match message {
            Inbound::Text(text) => crate::session::text_event(self, ctx, &text).await,
            Inbound::Binary(bytes) => self.chunk(ctx, &bytes).await,
        }
    }

    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        // A view recovers whole (resumed or sent anew), never topic by topic.
        ctx.forget_since();
        let Some(token) = self.token.take() else {
            return Err(SessionError::close(close::STALE_VIEW, "missing view token"));
        };
        let claims = self.routes.signer.verify(&token, now(), self.routes.token_max_age).map_err(|e| {
            crate::observe::rejected(crate::observe::Rejected::Token);
            SessionError::close(close::STALE_VIEW, e.to_string())
        })?;
        self.page = claims.page;
        let parked = self.routes.parking.claim(claims.page).await;
        // A page coming back, in a cluster: its view's state may be kept in the broker, written
        // by the process it was on (which may have died since).
        let kept = match self.resume && self.routes.pubsub.is_clustered() {
            true => self.routes.pubsub.take(&durable::key(claims.page)).await,
            false => None,
        };
        let kept = kept.as_deref().and_then(durable::decode);
        // A copy parked here is stale if the page was resumed elsewhere since (a newer version).
        let parked = parked.filter(|p| kept.is_none_or(|(version, _)| p.saved.version >= version));
        if let Some(Parked { mut view, shown, url, saved }) = parked {
            // The same page within the grace period: the same view, state and all. It joins
            // this connection (topics, timers) and the page gets what changed meanwhile.
            if let Err(e) = view.on_join(ctx).await {
                Self::flash(ctx, &e);
            }
            self.view = Some(view);
            self.shown = shown;
            self.url = url;
            self.saved = saved;
            self.refresh(ctx);
            self.persist(true).await;
            ctx.push_frame(Frame::text(serde_json::json!({ (control::KEY): control::RESUMED }).to_string()));
            return Ok(());
        }
        let (mut view, url) = match self.routes.mount(&claims.url, self.headers.clone(), true).await {
            Ok(found) => found,
            Err(e) => {
                self.routes.parking.release(claims.page, None);
                self.page = 0;
                if let ViewError::Internal(e) = e {
                    tracing::error!(error = %e, "mounting a live view failed");
                    return Err(SessionError::close(close::INTERNAL, "mount failed"));
                }
                return Err(SessionError::close(close::STALE_VIEW, e.user_message()));
            }
        };
        // Kept by another process (or by this one before it restarted): the view as it was.
        let restored = kept.filter(|(_, saved)| view.restore(saved)).map(|(version, _)| version);
        if let Err(e) = view.on_join(ctx).await {
            Self::flash(ctx, &e);
        }
        let rendered = Rendered::new(take_render(view.as_ref(), &mut self.streams));
        // The page shows the HTTP render, or (coming back) whatever it was last sent, by this
        // process or another. If the view renders differently now, or the page is back, it
        // gets the whole view: never a silent gap.
        if self.resume || fingerprint(rendered.html()) != claims.render {
            let whole = self.whole(rendered.html());
            ctx.push_encoded(&whole);
        }
        if let Some(version) = restored {
            self.saved = Saved::from(version);
            ctx.push_frame(Frame::text(serde_json::json!({ (control::KEY): control::RESUMED }).to_string()));
        } else if self.resume {
            ctx.push_frame(Frame::text(serde_json::json!({ (control::KEY): control::RESYNCED }).to_string()));
        }
        self.shown = rendered.fingerprints();
        self.view = Some(view);
        self.url = url;
        self.persist(true).await;
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        if let Err(e) = self.event(ctx, event).await {
            ctx.refuse(e.user_message());
            Self::flash(ctx, &e);
        }
        Ok(())
    }

    async fn on_info(&mut self, ctx: &mut Context, info: Info) -> Result<(), SessionError> {
        if let Err(e) = self.info(ctx, info).await {
            Self::flash(ctx, &e);
        }
        Ok(())
    }

    /// The view leaves this connection (`on_leave`) and is kept for its page's reconnect
    /// during the grace period: here, and (a view that opted in, in a cluster) in the broker.
    async fn on_leave(&mut self, ctx: &mut Context) {
        self.drop_files();
        let parked = match self.view.take() {
            Some(mut view) => {
                view.on_leave(ctx).await;
                let grace = self.routes.parking.grace();
                if grace.is_zero() && self.saved.version > 0 {
                    self.routes.pubsub.keep(&durable::key(self.page), None, KEPT_CONNECTED);
                } else if !grace.is_zero() {
                    self.saved.write(&self.routes.pubsub, self.page, view.as_ref(), grace, true);
                }
                let (shown, url) = (std::mem::take(&mut self.shown), std::mem::take(&mut self.url));
                Some(Parked { view, shown, url, saved: self.saved })
            }
            None => None,
        };
        if self.page != 0 {
            self.routes.parking.release(self.page, parked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::local_part;

    #[test]
    fn urls_are_reduced_to_path_and_query() {
        assert_eq!(local_part("http://127.0.0.1:3000/article/1?x=1#c"), Some("/article/1?x=1"));
        assert_eq!(local_part("https://example.com"), Some("/"));
        assert_eq!(local_part("/blog"), Some("/blog"));
    }

    /// An outside probe had `lh:nav` to `javascript:alert(1)` answered with a redirect to it.
    #[test]
    fn only_paths_on_this_site_are_navigated_to() {
        for url in [
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//evil.example/x",
            "/\\evil.example",
            "/a\nb",
            "blog",
            "",
        ] {
            assert_eq!(local_part(url), None, "{url:?}");
        }
    }
}
