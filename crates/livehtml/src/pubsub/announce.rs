//! Presence changes as a topic's sessions hear them: counted, so [`PubSub::member_count`] is a
//! read and not a recount, and coalesced: the first change of a quiet topic is delivered at
//! once, and those that follow within [`COALESCE`] are merged into one [`PresenceDiff`]
//! delivered when it ends. A thousand pages joining within a second cost each of the topic's
//! sessions a few dozen infos, not a thousand (each of which a chat answers with its count).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::PubSub;
use super::presence::PresenceDiff;

/// How long the changes that follow a delivered one are gathered before they go out together.
pub const COALESCE: Duration = Duration::from_millis(25);

/// Each topic's count of members, and the changes gathered while its window is open.
#[derive(Debug, Default)]
pub(super) struct Announcer(Mutex<HashMap<String, Announced>>);

#[derive(Debug, Default)]
struct Announced {
    /// The topic's members, in the whole cluster.
    count: usize,
    /// `Some` while a window is open: what it gathered so far.
    gathered: Option<PresenceDiff>,
}

impl Announcer {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Announced>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds `next` to what a window gathered: a member that joined and left within it (or left and
/// came back) is no change at all.
fn merge(into: &mut PresenceDiff, next: PresenceDiff) {
    for member in next.joins {
        if let Some(at) = into.leaves.iter().position(|m| m.key == member.key) {
            into.leaves.remove(at);
        } else if !into.joins.iter().any(|m| m.key == member.key) {
            into.joins.push(member);
        }
    }
    for member in next.leaves {
        if let Some(at) = into.joins.iter().position(|m| m.key == member.key) {
            into.joins.remove(at);
        } else if !into.leaves.iter().any(|m| m.key == member.key) {
            into.leaves.push(member);
        }
    }
}

impl PubSub {
    /// How many members `topic` has ([`crate::Context::track`]; in a cluster, every process's,
    /// each key once): what [`PubSub::members`] would list, without building the list.
    pub fn member_count(&self, topic: &str) -> usize {
        self.inner.announcer.topics().get(topic).map_or(0, |a| a.count)
    }

    /// Members joined or left `topic` (the cluster's view of it): counted, and told to its
    /// sessions now or, within a window, together.
    pub(super) fn presence_changed(&self, topic: &str, diff: PresenceDiff) {
        let now = {
            let mut topics = self.inner.announcer.topics();
            let announced = topics.entry(topic.to_owned()).or_default();
            announced.count = (announced.count + diff.joins.len()).saturating_sub(diff.leaves.len());
            match (&mut announced.gathered, tokio::runtime::Handle::try_current()) {
                (Some(gathered), _) => {
                    merge(gathered, diff);
                    return;
                }
                (None, Ok(runtime)) => {
                    announced.gathered = Some(PresenceDiff::default());
                    runtime.spawn(self.clone().close_window(topic.to_owned()));
                    diff
                }
                // No runtime to wait on: told now, each change on its own.
                (None, Err(_)) => diff,
            }
        };
        self.publish_info(topic, now);
    }

    /// Ends `topic`'s window after [`COALESCE`]: what it gathered goes out, and a new window
    /// opens for as long as changes keep coming.
    async fn close_window(self, topic: String) {
        loop {
            tokio::time::sleep(COALESCE).await;
            let gathered = {
                let mut topics = self.inner.announcer.topics();
                let Some(announced) = topics.get_mut(&topic) else { return };
                let gathered = announced.gathered.take().unwrap_or_default();
                if gathered.joins.is_empty() && gathered.leaves.is_empty() {
                    if announced.count == 0 {
                        topics.remove(&topic);
                    }
                    return;
                }
                announced.gathered = Some(PresenceDiff::default());
                gathered
            };
            self.publish_info(&topic, gathered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::Member;

    fn member(key: &str) -> Member {
        Member { key: key.into(), meta: key.to_uppercase() }
    }

    #[test]
    fn a_window_merges_what_it_gathers() {
        let mut gathered = PresenceDiff::default();
        merge(&mut gathered, PresenceDiff { joins: vec![member("a"), member("b")], leaves: vec![] });
        merge(&mut gathered, PresenceDiff { joins: vec![], leaves: vec![member("a"), member("c")] });
        merge(&mut gathered, PresenceDiff { joins: vec![member("c"), member("b")], leaves: vec![] });
        assert_eq!(gathered, PresenceDiff { joins: vec![member("b")], leaves: vec![] });
    }

    #[tokio::test]
    async fn a_burst_of_joins_is_counted_at_once_and_told_in_two() {
        let pubsub = PubSub::default();
        let (mut tap, _) = pubsub.tap("room", None, 1024);
        let guards: Vec<_> = (0..100).map(|i| pubsub.track("room", &format!("u{i}"), "")).collect();
        assert_eq!(pubsub.member_count("room"), 100);
        assert_eq!(pubsub.members("room").len(), 100);
        let mut told = Vec::new();
        while told.iter().map(|d: &PresenceDiff| d.joins.len()).sum::<usize>() < 100 {
            if let Some(super::super::Tapped::Info(info)) = tap.next().await {
                told.push(info.get::<PresenceDiff>().unwrap().clone());
            }
        }
        assert_eq!(told.len(), 2, "the first join at once, the other 99 together");
        drop(guards);
    }
}
