//! Live views have the same hooks as sessions: `on_join`, `on_event`, `on_info`, `on_leave`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use livehtml::{Context, Event, Html, Info, Live, LiveRoutes, LiveView, Mount, ViewError};

#[derive(Clone, Default)]
struct Counts {
    joined: Arc<AtomicUsize>,
    left: Arc<AtomicUsize>,
}

struct Page {
    counts: Counts,
    infos: usize,
}

impl LiveView for Page {
    type State = Counts;

    async fn mount(counts: &Counts, _: &Mount) -> Result<Self, ViewError> {
        Ok(Page { counts: counts.clone(), infos: 0 })
    }

    fn render(&self) -> Html {
        Html::trusted(format!(r#"<p id="infos">{}</p>"#, self.infos))
    }

    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), ViewError> {
        self.counts.joined.fetch_add(1, Ordering::SeqCst);
        ctx.subscribe("t");
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        Err(ViewError::unknown_event(&event))
    }

    async fn on_info(&mut self, _: &mut Context, info: Info) -> Result<(), ViewError> {
        self.infos += usize::from(info.get::<u8>().is_some());
        Ok(())
    }

    async fn on_leave(&mut self, _: &mut Context) {
        self.counts.left.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_view_joins_hears_infos_and_leaves_when_navigated_away() {
    let live = Live::default();
    let counts = Counts::default();
    let views = LiveRoutes::new(&live, counts.clone()).route::<Page>("/a").route::<Page>("/b").build();
    let mut page = views.test("/a").await.unwrap();
    assert_eq!(counts.joined.load(Ordering::SeqCst), 1);

    live.pubsub().publish_info("t", 7u8);
    let sent = page.next_message(std::time::Duration::from_secs(10)).await.expect("the info arrives");
    assert_eq!(sent, r#"<p id="infos">1</p>"#);

    page.navigate("/b").await.unwrap();
    assert_eq!((counts.joined.load(Ordering::SeqCst), counts.left.load(Ordering::SeqCst)), (2, 1));
}

/// A navigation can only lead to a path on this site: a script URL is refused, never answered
/// with a redirect to it (an outside probe got `{"lh":"redirect","url":"javascript:alert(1)"}`).
#[tokio::test]
async fn a_navigation_to_a_script_url_is_refused() {
    let live = Live::default();
    let views = LiveRoutes::new(&live, Counts::default()).route::<Page>("/a").build();
    let mut page = views.test("/a").await.unwrap();
    for url in ["javascript:alert(1)", "//evil.example/", "data:text/html,x"] {
        let refused = page.navigate(url).await;
        assert!(matches!(refused, Err(ViewError::BadRequest(_))), "{url}: {refused:?}");
    }
    // A path here that is not a live view is still loaded the ordinary way.
    assert!(page.navigate("/elsewhere").await.is_ok());
}
