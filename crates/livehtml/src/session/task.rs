//! Async work of a session or a live view: started from a handler, its result delivered to
//! `on_info` as a message, cancelled when the page goes away.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio::task::AbortHandle;

use crate::pubsub::{Info, SubscriberRef};

/// How many tasks a connection runs at once: starting one more cancels its oldest.
pub const MAX_TASKS: usize = 64;

/// What a task started with [`crate::Context::spawn`] gives back, as the payload of an
/// [`Info`] for `on_info` (an empty topic; take it with [`Info::take`]).
///
/// ```
/// use livehtml::session::Done;
/// use livehtml::Info;
///
/// struct Stats(u64);
///
/// fn on_info(stats: &mut Option<Result<u64, String>>, info: Info) {
///     match info.take::<Done<Stats>>() {
///         Ok(done) if done.name() == "stats" => {
///             *stats = Some(done.into_result().map(|s| s.0).map_err(|e| e.to_string()));
///         }
///         Ok(_) | Err(_) => {}
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Done<T> {
    name: String,
    result: Result<T, TaskFailed>,
}

impl<T> Done<T> {
    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its value, or how it failed.
    pub fn into_result(self) -> Result<T, TaskFailed> {
        self.result
    }
}

/// A task that panicked: its message, as the panic gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailed(pub String);

impl std::fmt::Display for TaskFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task failed: {}", self.0)
    }
}

impl std::error::Error for TaskFailed {}

/// A value a view waits for: what it renders while loading, once loaded, or failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AsyncValue<T> {
    /// Not there yet (a task is loading it).
    #[default]
    Loading,
    /// Loaded.
    Ready(T),
    /// Loading it failed; the message is for the user.
    Failed(String),
}

impl<T> AsyncValue<T> {
    /// Whether it is still loading (a view kept across a reconnect starts its task again).
    pub fn is_loading(&self) -> bool {
        matches!(self, Self::Loading)
    }
}

impl<T, E: std::fmt::Display> From<Result<T, E>> for AsyncValue<T> {
    fn from(result: Result<T, E>) -> Self {
        match result {
            Ok(v) => Self::Ready(v),
            Err(e) => Self::Failed(e.to_string()),
        }
    }
}

/// A connection's running tasks; dropping it cancels them.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    running: Vec<(String, AbortHandle)>,
}

impl Tasks {
    pub(crate) fn spawn<T, F>(&mut self, outbox: SubscriberRef, name: String, work: F)
    where
        T: Any + Send + Sync,
        F: Future<Output = T> + Send + 'static,
    {
        self.running.retain(|(n, task)| {
            let replaced = *n == name;
            if replaced {
                task.abort();
            }
            !replaced && !task.is_finished()
        });
        if self.running.len() >= MAX_TASKS {
            let (_, oldest) = self.running.remove(0);
            oldest.abort();
        }
        let delivered = name.clone();
        let task = tokio::spawn(async move {
            let result = AssertUnwindSafe(work).catch_unwind().await.map_err(|panic| TaskFailed(message(&*panic)));
            if let Err(e) = &result {
                tracing::error!(task = %delivered, error = %e, "a live task failed");
            }
            outbox.offer_info(Info::new("", Done { name: delivered, result }));
        });
        self.running.push((name, task.abort_handle()));
    }

    /// Cancels the task named `name`, if it runs.
    pub(crate) fn cancel(&mut self, name: &str) {
        self.running.retain(|(n, task)| {
            if n == name {
                task.abort();
            }
            n != name
        });
    }

    pub(crate) fn cancel_all(&mut self) {
        for (_, task) in self.running.drain(..) {
            task.abort();
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}
