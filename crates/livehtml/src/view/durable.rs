//! Views that outlive their process. A view whose type opts in ([`LiveView::save`]) has its
//! state written to the cluster's broker ([`PubSub::keep`]) when it joins, whenever what it
//! saves changes, and when its page drops; a page that comes back to another process, or whose
//! process died, takes it there ([`PubSub::take`]) and the view is rebuilt from it
//! ([`LiveView::restore`]). Alone, a process keeps its views in memory ([`super::parked`]) and
//! writes nothing.
//!
//! Each write carries a version: the process that resumes a view writes it again at once (the
//! take removed it), one version up, so a copy another process still parks (the page was
//! there before) is older than the broker's and loses to it.
//!
//! [`LiveView::save`]: super::LiveView::save
//! [`LiveView::restore`]: super::LiveView::restore

use std::hash::{DefaultHasher, Hasher};
use std::time::Duration;

use bytes::Bytes;

use super::DynView;
use crate::pubsub::PubSub;

/// The most a view's saved state may weigh; a larger one is not kept (logged), and the view is
/// kept by its process only.
pub const MAX_SAVED: usize = 64 * 1024;

/// How long a view's state is kept after a write while its page is connected: a process that
/// dies takes nothing with it for this long after the view's last change.
pub const KEPT_CONNECTED: Duration = Duration::from_secs(3600);

/// Where a page's view is kept: the page's identity is random per render and signed, so only
/// the page that holds its token can claim it.
pub(crate) fn key(page: u64) -> String {
    format!("view-{page:016x}")
}

/// A kept state: its version, then the view's bytes.
pub(crate) fn decode(kept: &[u8]) -> Option<(u64, &[u8])> {
    let (version, saved) = kept.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*version), saved))
}

/// What a view's runtime knows of its last write.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Saved {
    pub(crate) version: u64,
    /// A hash of the bytes last written: a render that saves the same is not written again.
    hash: u64,
}

impl Saved {
    /// Continues from a kept state of `version`.
    pub(crate) fn from(version: u64) -> Self {
        Self { version, hash: 0 }
    }

    /// Writes `view`'s state for `page`, kept `ttl`, if it opted in and it changed (or
    /// `always`: it joined, or its page dropped). Only in a cluster. Whether it was queued for
    /// the broker.
    pub(crate) fn write(
        &mut self,
        pubsub: &PubSub,
        page: u64,
        view: &dyn DynView,
        ttl: Duration,
        always: bool,
    ) -> bool {
        if page == 0 || !pubsub.is_clustered() {
            return false;
        }
        let Some(saved) = view.save() else { return false };
        if saved.len() > MAX_SAVED {
            tracing::warn!(bytes = saved.len(), max = MAX_SAVED, "a live view's saved state is too large to keep");
            return false;
        }
        let mut hasher = DefaultHasher::new();
        hasher.write(&saved);
        let hash = hasher.finish();
        if hash == self.hash && !always {
            return false;
        }
        self.hash = hash;
        self.version += 1;
        let mut kept = Vec::with_capacity(8 + saved.len());
        kept.extend_from_slice(&self.version.to_be_bytes());
        kept.extend_from_slice(&saved);
        pubsub.keep(&key(page), Some(Bytes::from(kept)), ttl);
        true
    }
}
