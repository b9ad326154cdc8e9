//! Live views on an axum router: a GET route per view (the first render) and one socket.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html as HtmlResponse, IntoResponse, Response};
use axum::routing::get;

use super::Live;
use crate::Limits;
use crate::protocol::Html;
use crate::view::runtime::{Page, Routes, ViewSession};
use crate::view::{LiveView, ViewError, ViewTest};

/// Registers live views on URL paths. See [`crate::view`].
///
/// ```
/// # use livehtml::view::{LiveView, Mount, ViewError};
/// # use livehtml::{Context, Event, Html, Live, LiveRoutes};
/// # struct Home;
/// # impl LiveView for Home {
/// #     type State = ();
/// #     async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> { Ok(Home) }
/// #     fn render(&self) -> Html { Html::trusted("<h1>Home</h1>") }
/// #     async fn on_event(&mut self, _: &mut Context, e: Event) -> Result<(), ViewError> { Err(ViewError::unknown_event(&e)) }
/// # }
/// let live = Live::default();
/// let views = LiveRoutes::new(&live, ()).route::<Home>("/").build();
/// let app: axum::Router = views.router().merge(live.client_script());
/// ```
pub struct LiveRoutes<St> {
    live: Live,
    routes: Routes<St>,
    /// The views' socket's limits; `None`: the `Live`'s.
    limits: Option<Limits>,
}

impl<St: Clone + Send + Sync + 'static> LiveRoutes<St> {
    /// Views sharing `state`, on `live`'s pub/sub and signing key.
    pub fn new(live: &Live, state: St) -> Self {
        let routes = Routes::new(state, live.pubsub().clone(), live.inner.signer.clone());
        Self { live: live.clone(), routes, limits: None }
    }

    /// Limits of these views' socket (message size, queue, the page's message allowance, …);
    /// the `Live`'s by default. Views that need other limits go in a `LiveRoutes` of their own
    /// with its own [`LiveRoutes::socket_path`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Serves the view `V` at `path` (axum's syntax: `/article/{id}`).
    ///
    /// # Panics
    ///
    /// On an invalid path or one registered twice.
    pub fn route<V: LiveView<State = St>>(mut self, path: &str) -> Self {
        self.routes.add::<V>(path);
        self
    }

    /// The page around each view; the default is a minimal document loading livehtml.js around
    /// [`Page::live_root`].
    pub fn layout(mut self, layout: impl Fn(&Page) -> Html + Send + Sync + 'static) -> Self {
        self.routes.layout = Arc::new(layout);
        self
    }

    /// How long a view is kept after its connection drops (default 30 s): a reconnect of the
    /// same page within it resumes the same view, state and all, and gets only what changed
    /// meanwhile; after it, the view is mounted anew and sent whole. Zero keeps nothing.
    /// Views are kept in this process: a reconnect that reaches another process mounts anew.
    pub fn grace(mut self, grace: std::time::Duration) -> Self {
        self.routes.parking.set_grace(grace);
        self
    }

    /// Where the views' socket is served (default `/_livehtml/live`).
    pub fn socket_path(mut self, path: &str) -> Self {
        self.routes.socket_path = path.to_owned();
        self
    }

    /// Finishes the table.
    pub fn build(self) -> Views<St> {
        Views { live: self.live, routes: Arc::new(self.routes), limits: self.limits }
    }
}

/// Built live routes: serve them with [`Views::router`], test them with [`Views::test`].
pub struct Views<St> {
    live: Live,
    routes: Arc<Routes<St>>,
    limits: Option<Limits>,
}

impl<St> Clone for Views<St> {
    fn clone(&self) -> Self {
        Self { live: self.live.clone(), routes: self.routes.clone(), limits: self.limits }
    }
}

impl<St: Clone + Send + Sync + 'static> Views<St> {
    /// A router with a GET route per view (the complete page, for browsers, `curl` and search
    /// engines) and the socket the pages connect to.
    pub fn router<T: Clone + Send + Sync + 'static>(&self) -> Router<T> {
        let mut router = Router::new();
        for path in &self.routes.paths {
            let routes = self.routes.clone();
            router = router.route(
                path,
                get(move |uri: Uri, headers: HeaderMap| {
                    let routes = routes.clone();
                    async move { page(&routes, uri, headers).await }
                }),
            );
        }
        let routes = self.routes.clone();
        let limits = self.limits.unwrap_or(self.live.inner.config.limits);
        let socket = self.live.endpoint_with(limits, move |connect| {
            let query = connect.uri().query().unwrap_or("");
            let mut token = None;
            let mut morph = false;
            let mut resume = false;
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                match k.as_ref() {
                    "t" => token = Some(v.into_owned()),
                    crate::protocol::names::query::CLIENT => morph = v == "lh",
                    crate::protocol::names::query::RESUME => resume = v == "1",
                    _ => {}
                }
            }
            // Only what a mount may read, copied: the request's buffer is freed after the upgrade.
            let mut headers = HeaderMap::new();
            for name in [header::COOKIE, header::AUTHORIZATION, header::USER_AGENT, header::ACCEPT_LANGUAGE] {
                if let Some(v) = connect.headers().get(&name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
                    headers.insert(name, v);
                }
            }
            ViewSession::new(routes.clone(), token, headers, morph, resume)
        });
        router.route(&self.routes.socket_path, socket)
    }

    /// Mounts the view at `url` in process, connected, for tests. See [`ViewTest`].
    pub async fn test(&self, url: &str) -> Result<ViewTest<St>, ViewError> {
        ViewTest::start(self.routes.clone(), url, HeaderMap::new()).await
    }

    /// [`Views::test`] for a request with these headers (a session cookie: who is asking, as
    /// [`crate::Mount::extract`] sees it).
    pub async fn test_as(&self, url: &str, headers: HeaderMap) -> Result<ViewTest<St>, ViewError> {
        ViewTest::start(self.routes.clone(), url, headers).await
    }

    /// The complete HTML page for `url`, as a GET would return it.
    pub async fn render_page(&self, url: &str) -> Result<String, ViewError> {
        self.routes.page(url, HeaderMap::new()).await
    }
}

async fn page<St: Clone + Send + Sync + 'static>(routes: &Routes<St>, uri: Uri, headers: HeaderMap) -> Response {
    let url = uri.path_and_query().map_or("/", |p| p.as_str());
    match routes.page(url, headers).await {
        Ok(html) => HtmlResponse(html).into_response(),
        Err(e) => {
            let status = match &e {
                ViewError::NotFound => StatusCode::NOT_FOUND,
                ViewError::BadRequest(_) | ViewError::UnknownEvent(_) => StatusCode::BAD_REQUEST,
                ViewError::Internal(err) => {
                    tracing::error!(error = %err, %url, "rendering a live view failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            (status, HtmlResponse(Html::escape(&e.user_message()).into_string())).into_response()
        }
    }
}
