//! examples/counter/src/main.rs: a live view on http://127.0.0.1:3000/counter, and its test
use livehtml::view::{LiveView, Mount, ViewError};
use livehtml::{Context, Event, Html, Live, LiveRoutes};
use maud::html;

struct Counter {
    count: i64,
}

impl LiveView for Counter {
    type State = (); // what the app shares with its views: a pool, counters...

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        Ok(Counter { count: 0 })
    }

    fn render(&self) -> Html {
        html! { output #count { (self.count) } button lh-click="inc" { "+1" } }.into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("inc") => self.count += 1,
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }
}

fn app(live: &Live) -> axum::Router {
    let views = LiveRoutes::new(live, ()).route::<Counter>("/counter").build();
    views.router().merge(live.client_script())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let live = Live::default();
    let listener = livehtml::Listener::bind("127.0.0.1:3000").await?;
    livehtml::serve(listener, app(&live)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test client drives the view in process: no browser, no socket.
    #[tokio::test]
    async fn a_click_sends_only_the_count() {
        let views = LiveRoutes::new(&Live::default(), ()).route::<Counter>("/counter").build();
        let mut page = views.test("/counter").await.unwrap();
        assert_eq!(page.event("inc", &[]).await.unwrap(), r#"<output id="count">1</output>"#);
    }
}
