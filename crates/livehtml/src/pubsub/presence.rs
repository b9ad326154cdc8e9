//! Presence: who is on a topic. A member is a key (a user, not a connection: several tabs of
//! one user are one member) with what the page shows of it (a name). Joins and leaves reach the
//! topic's sessions as a [`PresenceDiff`] info; a member whose last connection drops leaves only
//! after a grace period, so a page that reconnects within it never left.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// One member of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Who it is (a user id): the same key from several connections is one member.
    pub key: String,
    /// What pages show of it (a name), as its first connection gave it.
    pub meta: String,
}

/// A change of a topic's members, delivered to its sessions' `on_info`
/// ([`crate::Info::get`]`::<PresenceDiff>()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresenceDiff {
    /// Who joined.
    pub joins: Vec<Member>,
    /// Who left (their last connection ended, and the grace period passed).
    pub leaves: Vec<Member>,
}

/// How long a member whose last connection dropped still counts as present, unless told
/// otherwise ([`super::PubSub::set_presence_grace`]).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Entry {
    member: Member,
    /// Its connections tracked now.
    connections: usize,
    /// Bumped by every track: a leave scheduled before it is void.
    generation: u64,
    /// When it joined, in milliseconds since the Unix epoch: a cluster lists its members by it.
    joined: u64,
    /// Its place in the topic's join order here.
    order: u64,
}

/// Now, in milliseconds since the Unix epoch.
pub(super) fn now_millis() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// One topic's members here, by key: a track, an untrack and a leave cost the same however
/// many there are; the join order is built only when the list is asked for.
#[derive(Debug, Default)]
struct Topic {
    entries: HashMap<String, Entry>,
    next: u64,
}

/// Every topic's members.
#[derive(Debug, Default)]
pub(super) struct Members {
    topics: Mutex<HashMap<String, Topic>>,
}

impl Members {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn list(&self, topic: &str) -> Vec<Member> {
        self.timed(topic).into_iter().map(|(_, m)| m).collect()
    }

    /// The members with when they joined, in the order they joined.
    pub(super) fn timed(&self, topic: &str) -> Vec<(u64, Member)> {
        let topics = self.topics();
        let Some(entries) = topics.get(topic).map(|t| &t.entries) else { return Vec::new() };
        let mut listed: Vec<&Entry> = entries.values().collect();
        listed.sort_unstable_by_key(|e| e.order);
        listed.into_iter().map(|e| (e.joined, e.member.clone())).collect()
    }

    pub(super) fn has(&self, topic: &str, key: &str) -> bool {
        self.topics().get(topic).is_some_and(|t| t.entries.contains_key(key))
    }

    /// Every topic's members, for a process that tells the cluster what it counts.
    pub(super) fn all(&self) -> Vec<(String, u64, Member)> {
        let topics = self.topics();
        topics
            .iter()
            .flat_map(|(t, topic)| topic.entries.values().map(move |e| (t.clone(), e.joined, e.member.clone())))
            .collect()
    }

    /// One more connection of `key`: the member that joined, if it is new.
    pub(super) fn track(&self, topic: &str, key: &str, meta: &str) -> Option<Member> {
        let mut topics = self.topics();
        let topic = topics.entry(topic.to_owned()).or_default();
        if let Some(entry) = topic.entries.get_mut(key) {
            entry.connections += 1;
            entry.generation += 1;
            return None;
        }
        let member = Member { key: key.to_owned(), meta: meta.to_owned() };
        topic.next += 1;
        let entry =
            Entry { member: member.clone(), connections: 1, generation: 0, joined: now_millis(), order: topic.next };
        topic.entries.insert(key.to_owned(), entry);
        Some(member)
    }

    /// One connection of `key` fewer: `Some(generation)` when it was its last (its leave is
    /// due after the grace period, if nothing tracks it again by then).
    pub(super) fn untrack(&self, topic: &str, key: &str) -> Option<u64> {
        let mut topics = self.topics();
        let entry = topics.get_mut(topic)?.entries.get_mut(key)?;
        entry.connections = entry.connections.saturating_sub(1);
        (entry.connections == 0).then_some(entry.generation)
    }

    /// The member leaves, if it is still without connections since `generation`.
    pub(super) fn leave(&self, topic: &str, key: &str, generation: u64) -> Option<Member> {
        let mut topics = self.topics();
        let entries = &mut topics.get_mut(topic)?.entries;
        let entry = entries.get(key)?;
        if entry.connections != 0 || entry.generation != generation {
            return None;
        }
        let left = entries.remove(key)?.member;
        if entries.is_empty() {
            topics.remove(topic);
        }
        Some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_of_one_member_are_one_and_a_return_cancels_the_leave() {
        let members = Members::default();
        assert_eq!(members.track("t", "u1", "Ann").map(|m| m.meta), Some("Ann".into()));
        assert_eq!(members.track("t", "u1", "Ann (tab 2)"), None, "a second tab is no join");
        assert_eq!(members.track("t", "u2", "Bob").map(|m| m.key), Some("u2".into()));
        assert_eq!(members.untrack("t", "u1"), None, "one tab is still open");
        let due = members.untrack("t", "u1").expect("the last tab closed");
        // It comes back before its leave is due: the leave is void.
        assert_eq!(members.track("t", "u1", "Ann"), None);
        assert_eq!(members.leave("t", "u1", due), None);
        assert_eq!(members.list("t").iter().map(|m| m.meta.as_str()).collect::<Vec<_>>(), ["Ann", "Bob"]);
        let due = members.untrack("t", "u1").unwrap();
        assert_eq!(members.leave("t", "u1", due).map(|m| m.key), Some("u1".into()));
        assert_eq!(members.list("t").len(), 1);
        let due = members.untrack("t", "u2").unwrap();
        members.leave("t", "u2", due);
        assert!(members.topics().is_empty(), "an empty topic is forgotten");
    }
}
