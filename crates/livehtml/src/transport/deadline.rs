//! The write deadline of a stalled connection.

use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

/// The write deadline of a stalled connection: the progress seen when it was set, and its timer
/// (boxed by its owner: only a stalled connection pays for one).
pub(crate) struct Deadline {
    timer: Pin<Box<tokio::time::Sleep>>,
    progress: u32,
}

impl Deadline {
    pub(crate) fn new(after: Duration, progress: u32) -> Self {
        Self { timer: Box::pin(tokio::time::sleep(after)), progress }
    }

    /// Starts again from `progress`, `after` from now.
    pub(crate) fn restart(&mut self, after: Duration, progress: u32) {
        self.timer.as_mut().reset(tokio::time::Instant::now() + after);
        self.progress = progress;
    }

    /// Whether the timer ran out (if not, `cx` is woken when it does).
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }

    /// The write progress seen when the deadline was (re)started.
    pub(crate) fn progress(&self) -> u32 {
        self.progress
    }
}
