//! Async work in a live view: a loading state until the task's value arrives, a failed task
//! rendered as an error (the view goes on), and tasks cancelled when their view goes away.

use std::sync::Arc;
use std::time::Duration;

use livehtml::session::{AsyncValue, Done};
use livehtml::{Context, Event, Html, Info, Live, LiveRoutes, LiveView, Mount, ViewError};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
struct Gate {
    /// Lets the slow task finish.
    release: Arc<Notify>,
    /// Told when a task's future is dropped (finished or cancelled).
    dropped: Arc<Notify>,
}

/// Tells `dropped` when the future holding it goes.
struct Guard(Arc<Notify>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

struct Panel {
    gate: Gate,
    total: AsyncValue<u64>,
    clicks: u32,
}

impl LiveView for Panel {
    type State = Gate;

    async fn mount(gate: &Gate, _: &Mount) -> Result<Self, ViewError> {
        Ok(Panel { gate: gate.clone(), total: AsyncValue::Loading, clicks: 0 })
    }

    fn render(&self) -> Html {
        let total = match &self.total {
            AsyncValue::Loading => "Loading…".to_owned(),
            AsyncValue::Ready(n) => format!("total {n}"),
            AsyncValue::Failed(e) => format!("failed: {}", Html::escape(e)),
        };
        Html::trusted(format!(r#"<p id="total">{total}</p><p id="clicks">{}</p>"#, self.clicks))
    }

    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), ViewError> {
        let gate = self.gate.clone();
        // Made outside the future: a task cancelled before it first ran drops it too.
        let guard = Guard(gate.dropped.clone());
        ctx.spawn("total", async move {
            let _guard = guard;
            gate.release.notified().await;
            42u64
        });
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("click") => self.clicks += 1,
            Some("broken") => {
                self.total = AsyncValue::Loading;
                ctx.spawn("total", async {
                    if true {
                        panic!("the service is down");
                    }
                    0u64
                });
            }
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }

    async fn on_info(&mut self, _: &mut Context, info: Info) -> Result<(), ViewError> {
        if let Ok(done) = info.take::<Done<u64>>() {
            self.total = done.into_result().into();
        }
        Ok(())
    }
}

fn views(gate: &Gate) -> livehtml::Views<Gate> {
    LiveRoutes::new(&Live::default(), gate.clone()).route::<Panel>("/panel").route::<Panel>("/other").build()
}

#[tokio::test]
async fn a_view_shows_loading_until_its_task_answers() {
    let gate = Gate::default();
    let mut page = views(&gate).test("/panel").await.unwrap();
    assert!(page.html().contains("Loading…"));
    // The view answers events meanwhile.
    assert!(page.event("click", &[]).await.unwrap().contains(r#"<p id="clicks">1</p>"#));
    gate.release.notify_one();
    let sent = page.next_message(WAIT).await.expect("the task's value arrives");
    assert_eq!(sent, r#"<p id="total">total 42</p>"#);
}

#[tokio::test]
async fn a_task_that_fails_renders_an_error_and_the_view_goes_on() {
    let gate = Gate::default();
    let mut page = views(&gate).test("/panel").await.unwrap();
    // Replacing the running task of the same name cancels it.
    page.event("broken", &[]).await.unwrap();
    tokio::time::timeout(WAIT, gate.dropped.notified()).await.expect("the replaced task was cancelled");
    let sent = page.next_message(WAIT).await.expect("the failure arrives");
    assert!(sent.contains("failed: task failed: the service is down"), "{sent}");
    assert!(page.event("click", &[]).await.unwrap().contains(">1<"));
}

#[tokio::test]
async fn a_task_is_cancelled_when_its_view_goes_away() {
    let gate = Gate::default();
    let views = views(&gate);
    // Navigated away from: the old view's task goes.
    let mut page = views.test("/panel").await.unwrap();
    page.navigate("/other").await.unwrap();
    tokio::time::timeout(WAIT, gate.dropped.notified()).await.expect("cancelled on navigation");
    // The page leaves: the new view's task goes too.
    drop(page);
    tokio::time::timeout(WAIT, gate.dropped.notified()).await.expect("cancelled when the page left");
}
