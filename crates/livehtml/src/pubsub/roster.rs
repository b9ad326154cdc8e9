//! Presence across a cluster: each process counts its own pages ([`super::presence`]), tells
//! the others of its joins and leaves through the broker, and hears theirs. A topic's members
//! are everyone any process counts; a process that falls silent (it died, or lost the broker)
//! for longer than the node timeout has left, with all its members.
//!
//! Every signal carries its process's sequence number: one that skips a number (a signal lost
//! while the broker was away) makes the listener ask that process for its whole state, so a
//! lost signal never leaves a member counted or missed for longer than one heartbeat.
//!
//! Hand-written: a few fixed fields per signal; a general format would add a dependency and
//! copies for nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::backend::Outgoing;
use super::presence::{Member, PresenceDiff};
use super::{Inner, PubSub};

/// How long a process may stay silent before it counts as gone, unless told otherwise
/// ([`PubSub::set_node_timeout`]). It sends a heartbeat three times as often.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(6);

/// What this process knows of the others.
#[derive(Debug, Default)]
pub(super) struct Roster {
    remote: Mutex<HashMap<u64, Remote>>,
    /// This process's last signal number; signals are numbered and queued under it, so they
    /// leave in their numbers' order.
    own: Mutex<u64>,
    /// In milliseconds; 0: the default.
    timeout: AtomicU64,
}

#[derive(Debug)]
struct Remote {
    heard: Instant,
    seq: u64,
    /// Each topic's members, with when they joined.
    topics: HashMap<String, Vec<(u64, Member)>>,
}

/// A process's members: each topic's, with when they joined.
type State = HashMap<String, Vec<(u64, Member)>>;

impl Roster {
    fn remote(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Remote>> {
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn timeout(&self) -> Duration {
        match self.timeout.load(Ordering::Relaxed) {
            0 => DEFAULT_NODE_TIMEOUT,
            millis => Duration::from_millis(millis),
        }
    }

    /// Whether a process tagged `tag` ([`PubSub::node`]: the high half of its node) has been
    /// heard from within the node timeout.
    pub(super) fn knows(&self, tag: u32) -> bool {
        self.remote().keys().any(|node| (node >> 32) as u32 == tag)
    }

    /// Whether another process counts `key` on `topic`.
    fn elsewhere(&self, topic: &str, key: &str) -> bool {
        self.remote().values().any(|r| r.topics.get(topic).is_some_and(|m| m.iter().any(|(_, m)| m.key == key)))
    }

    /// Adds the other processes' members of `topic` to `members` (with when they joined).
    pub(super) fn add_remote(&self, topic: &str, members: &mut Vec<(u64, Member)>) {
        for r in self.remote().values() {
            members.extend(r.topics.get(topic).into_iter().flatten().cloned());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Join = b'J' as isize,
    Leave = b'L' as isize,
    State = b'S' as isize,
    Heartbeat = b'H' as isize,
    Query = b'Q' as isize,
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (s, rest) = rest.split_at_checked(usize::try_from(u32::from_be_bytes(*len)).ok()?)?;
    *bytes = rest;
    std::str::from_utf8(s).ok()
}

fn take_u64(bytes: &mut &[u8]) -> Option<u64> {
    let (n, rest) = bytes.split_first_chunk::<8>()?;
    *bytes = rest;
    Some(u64::from_be_bytes(*n))
}

impl PubSub {
    /// Sends a presence signal: `p`, the op, this process, its next number (or the current one
    /// for a heartbeat), then `body`.
    fn presence_send(&self, op: Op, body: &[u8]) {
        let Some(cluster) = self.inner.cluster.get() else { return };
        let mut own = cluster.roster.own.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(op, Op::Heartbeat | Op::Query) {
            *own += 1;
        }
        let mut out = Vec::with_capacity(18 + body.len());
        out.extend_from_slice(&[b'p', op as u8]);
        out.extend_from_slice(&cluster.node.to_be_bytes());
        out.extend_from_slice(&own.to_be_bytes());
        out.extend_from_slice(body);
        cluster.send(Outgoing::Signal(Bytes::from(out)));
    }

    /// A page of this process made `member` join `topic` here: the cluster is told, and this
    /// process's sessions too if no other process counted it already.
    pub(super) fn joined_here(&self, topic: &str, member: Member) {
        if let Some(cluster) = self.inner.cluster.get() {
            let mut body = Vec::new();
            let joined = super::presence::now_millis().to_string();
            for s in [topic, &member.key, &member.meta, &joined] {
                put(&mut body, s);
            }
            self.presence_send(Op::Join, &body);
            if cluster.roster.elsewhere(topic, &member.key) {
                return;
            }
        }
        self.presence_changed(topic, PresenceDiff { joins: vec![member], leaves: Vec::new() });
    }

    /// `member` left `topic` here (its last page here ended, and the grace period passed).
    pub(super) fn left_here(&self, topic: &str, member: Member) {
        if let Some(cluster) = self.inner.cluster.get() {
            let mut body = Vec::new();
            for s in [topic, &member.key] {
                put(&mut body, s);
            }
            self.presence_send(Op::Leave, &body);
            if cluster.roster.elsewhere(topic, &member.key) {
                return;
            }
        }
        self.presence_changed(topic, PresenceDiff { joins: Vec::new(), leaves: vec![member] });
    }

    /// Tells every process what this one counts (after a (re)connect), and asks for theirs.
    pub(super) fn announce(&self) {
        self.send_state();
        let mut body = Vec::new();
        body.extend_from_slice(&0u64.to_be_bytes());
        self.presence_send(Op::Query, &body);
    }

    fn send_state(&self) {
        let mut body = Vec::new();
        for (topic, joined, member) in self.inner.members.all() {
            for s in [topic.as_str(), &member.key, &member.meta, &joined.to_string()] {
                put(&mut body, s);
            }
        }
        self.presence_send(Op::State, &body);
    }

    /// A presence signal (after its `p`).
    pub(super) fn presence_signal(&self, bytes: &[u8]) {
        let Some(cluster) = self.inner.cluster.get() else { return };
        let Some((&op, mut rest)) = bytes.split_first() else { return };
        let (Some(node), Some(seq)) = (take_u64(&mut rest), take_u64(&mut rest)) else { return };
        if node == cluster.node {
            return;
        }
        let roster = &cluster.roster;
        // A number skipped, or a process not known yet: ask it for its state.
        let known = roster.remote().get(&node).map(|r| r.seq);
        let behind = match op {
            b'H' => known != Some(seq),
            b'J' | b'L' => known.is_none_or(|k| k + 1 != seq),
            _ => false,
        };
        match op {
            b'J' => {
                let (Some(topic), Some(key), Some(meta), Some(joined)) =
                    (take(&mut rest), take(&mut rest), take(&mut rest), take(&mut rest))
                else {
                    return;
                };
                let member = (joined.parse().unwrap_or(0), Member { key: key.to_owned(), meta: meta.to_owned() });
                self.change(node, seq, |topics| {
                    let members = topics.entry(topic.to_owned()).or_default();
                    if !members.iter().any(|(_, m)| m.key == key) {
                        members.push(member);
                    }
                });
            }
            b'L' => {
                let (Some(topic), Some(key)) = (take(&mut rest), take(&mut rest)) else { return };
                self.change(node, seq, |topics| {
                    if let Some(members) = topics.get_mut(topic) {
                        members.retain(|(_, m)| m.key != key);
                    }
                });
            }
            b'S' => {
                let mut state = State::new();
                while let (Some(topic), Some(key), Some(meta), Some(joined)) =
                    (take(&mut rest), take(&mut rest), take(&mut rest), take(&mut rest))
                {
                    let member = Member { key: key.to_owned(), meta: meta.to_owned() };
                    state.entry(topic.to_owned()).or_default().push((joined.parse().unwrap_or(0), member));
                }
                self.change(node, seq, |topics| *topics = state);
            }
            b'H' => {
                if let Some(r) = roster.remote().get_mut(&node) {
                    r.heard = Instant::now();
                }
            }
            b'Q' if take_u64(&mut rest).is_some_and(|target| target == 0 || target == cluster.node) => {
                self.send_state();
            }
            _ => {}
        }
        if behind {
            let mut body = Vec::new();
            body.extend_from_slice(&node.to_be_bytes());
            self.presence_send(Op::Query, &body);
        }
    }

    /// Applies a change to what process `node` counts, and tells this process's sessions of
    /// every member that joined or left the cluster's view by it.
    fn change(&self, node: u64, seq: u64, apply: impl FnOnce(&mut State)) {
        let Some(cluster) = self.inner.cluster.get() else { return };
        let (before, after) = {
            let mut remote = cluster.roster.remote();
            let entry =
                remote.entry(node).or_insert_with(|| Remote { heard: Instant::now(), seq, topics: HashMap::new() });
            let before = entry.topics.clone();
            apply(&mut entry.topics);
            entry.seq = seq;
            entry.heard = Instant::now();
            (before, entry.topics.clone())
        };
        self.tell_changes(node, &before, &after);
    }

    /// Process `node` went from counting `before` to `after`: sessions here are told of each
    /// member that no one else (this process, another one) counts, and so joined or left.
    fn tell_changes(&self, node: u64, before: &State, after: &State) {
        let Some(cluster) = self.inner.cluster.get() else { return };
        let mut topics: Vec<&String> = before.keys().chain(after.keys()).collect();
        topics.sort_unstable();
        topics.dedup();
        let has =
            |list: Option<&Vec<(u64, Member)>>, key: &str| list.is_some_and(|l| l.iter().any(|(_, m)| m.key == key));
        for topic in topics {
            let (old, new) = (before.get(topic.as_str()), after.get(topic.as_str()));
            let others = |key: &str| {
                self.inner.members.has(topic, key)
                    || cluster.roster.remote().iter().any(|(n, r)| *n != node && has(r.topics.get(topic.as_str()), key))
            };
            let joins: Vec<Member> = new
                .into_iter()
                .flatten()
                .map(|(_, m)| m)
                .filter(|m| !has(old, &m.key) && !others(&m.key))
                .cloned()
                .collect();
            let leaves: Vec<Member> = old
                .into_iter()
                .flatten()
                .map(|(_, m)| m)
                .filter(|m| !has(new, &m.key) && !others(&m.key))
                .cloned()
                .collect();
            if !joins.is_empty() || !leaves.is_empty() {
                self.presence_changed(topic, PresenceDiff { joins, leaves });
            }
        }
    }

    /// How long a process of the cluster may stay silent (it died, or lost the broker) before
    /// it counts as gone, with all its members (default [`DEFAULT_NODE_TIMEOUT`]). Each
    /// process sends a heartbeat three times as often; give every process the same.
    pub fn set_node_timeout(&self, timeout: Duration) {
        if let Some(cluster) = self.inner.cluster.get() {
            let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(3);
            cluster.roster.timeout.store(millis, Ordering::Relaxed);
        }
    }

    /// Forgets the processes not heard from within the timeout: their members leave.
    fn sweep(&self) {
        let Some(cluster) = self.inner.cluster.get() else { return };
        let timeout = cluster.roster.timeout();
        let gone: Vec<(u64, State)> = {
            let mut remote = cluster.roster.remote();
            let silent: Vec<u64> =
                remote.iter().filter(|(_, r)| r.heard.elapsed() > timeout).map(|(node, _)| *node).collect();
            silent.into_iter().filter_map(|node| remote.remove(&node).map(|r| (node, r.topics))).collect()
        };
        for (node, topics) in gone {
            tracing::info!(node = format!("{node:016x}"), "a process of the cluster fell silent: its members left");
            self.tell_changes(node, &topics, &State::new());
        }
    }
}

/// Heartbeats and the sweep of silent processes, until the pub/sub is dropped.
pub(super) async fn beat(inner: Weak<Inner>) {
    loop {
        let period = {
            let Some(inner) = inner.upgrade() else { return };
            let pubsub = PubSub { inner };
            pubsub.presence_send(Op::Heartbeat, &[]);
            pubsub.sweep();
            pubsub.inner.cluster.get().map_or(DEFAULT_NODE_TIMEOUT, |c| c.roster.timeout()) / 3
        };
        tokio::time::sleep(period).await;
    }
}
