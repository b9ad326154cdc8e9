//! `/counter`: a counter per page (state on the server), a counter every tab shares, and a
//! clock pushed by the server once a second (a message from a timer).

use std::time::Duration;

use livehtml::view::{LiveView, Mount, ViewError};
use livehtml::{Context, Event, Html, Info};
use maud::html;

use crate::AppState;

const TOPIC: &str = "counter";

struct Tick;

/// The counter page.
pub struct CounterView {
    mine: i64,
    /// Where the shared count lives (every process of a cluster reads the same).
    shared: crate::shared::Shared,
    shared_seen: i64,
    offset: time::UtcOffset,
    now: String,
    /// Clock ticks this page has seen (shown in the details panel, so it changes every second).
    ticks: u64,
    saved: u64,
}

/// What a counter page keeps across processes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    mine: i64,
    saved: u64,
}

fn clock(offset: time::UtcOffset) -> String {
    let now = time::OffsetDateTime::now_utc().to_offset(offset);
    now.format(time::macros::format_description!("[hour]:[minute]:[second]")).unwrap_or_default()
}

impl LiveView for CounterView {
    type State = AppState;

    async fn mount(state: &AppState, _: &Mount) -> Result<Self, ViewError> {
        let shared = state.shared.clone();
        let shared_seen = shared.count().await.map_err(ViewError::internal)?;
        Ok(Self { mine: 0, shared, shared_seen, offset: state.offset, now: clock(state.offset), ticks: 0, saved: 0 })
    }

    fn title(&self) -> String {
        "Counter".into()
    }

    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), ViewError> {
        ctx.subscribe(TOPIC);
        // Also when a kept view comes back: other tabs may have counted while it was away.
        self.shared_seen = self.shared_seen.max(self.shared.count().await.map_err(ViewError::internal)?);
        ctx.every(Duration::from_secs(1), || Tick);
        Ok(())
    }

    fn render(&self) -> Html {
        html! {
            h1 { "Counter" }
            section {
                h2 { "This page" }
                p { "Count: " output #mine { (self.mine) } }
                button #dec type="button" lh-click="dec" { "−1" }
                " "
                button #inc type="button" lh-click="inc" { "+1" }
                " "
                button #add5 type="button" lh-click="add" lh-value-by="5" { "+5" }
                " "
                // At most one click a second reaches the server.
                button #slow type="button" lh-click="inc" lh-throttle="1000" { "+1 (throttled)" }
            }
            section {
                h2 { "Every tab" }
                p { "Shared: " output #shared { (self.shared_seen) } }
                button #shared-inc type="button" lh-click="shared-inc" { "+1 for everyone" }
            }
            p { "Server time: " time #clock { (self.now) } }
            section {
                h2 { "Slow work, and a panel the page opens by itself" }
                // Disabled and relabelled while its event is in flight (a second, on purpose).
                button #save type="button" lh-click="save" lh-disable-with="Saving…" { "Save" }
                " " output #saved { (self.saved) " saved" }
                " "
                // No round trip: the page shows and hides it; the server's updates keep it so.
                button #toggle-details type="button" lh-js="toggle #details" { "Details" }
                div #details hidden { "Clock ticks seen by this page: " (self.ticks) }
            }
        }
        .into()
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("inc") => self.mine += 1,
            Some("dec") => self.mine -= 1,
            Some("add") => {
                let by: i64 = event
                    .value("by")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ViewError::bad_request("by must be a number"))?;
                self.mine += by.clamp(-1000, 1000);
            }
            Some("save") => {
                // Stands for a slow service: the button shows its loading state meanwhile.
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.saved += 1;
            }
            Some("shared-inc") => {
                self.shared_seen = self.shared.bump().await.map_err(ViewError::internal)?;
                // To every tab, on every process of a cluster.
                ctx.pubsub().publish_text_info(TOPIC, self.shared_seen.to_string());
            }
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }

    /// What the user counted outlives this process: a page that comes back to another one (or
    /// whose process died) resumes it. The clock and the shared count are mounted anew.
    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&Saved { mine: self.mine, saved: self.saved }).ok()
    }

    fn restore(&mut self, saved: &[u8]) -> bool {
        let Ok(Saved { mine, saved }) = serde_json::from_slice(saved) else { return false };
        (self.mine, self.saved) = (mine, saved);
        true
    }

    async fn on_info(&mut self, _: &mut Context, info: Info) -> Result<(), ViewError> {
        if info.get::<Tick>().is_some() {
            self.now = clock(self.offset);
            self.ticks += 1;
        } else if let Some(value) = info.get::<String>().and_then(|v| v.parse::<i64>().ok()) {
            // Messages can cross: keep the newest value.
            self.shared_seen = self.shared_seen.max(value);
        }
        Ok(())
    }
}
