//! A topic's sequence: the offset of each message published to it, its epoch, and the bounded
//! history a reconnecting page is replayed from.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::{Frame, Position};

/// How much of a topic's past is kept for pages that reconnect: at most `messages` messages,
/// none older than `max_age` (default five minutes). Set per topic with
/// [`PubSub::keep_history`](super::PubSub::keep_history); topics without it keep none, and a
/// page that missed one of their messages is resynced instead.
///
/// What it costs: the kept messages themselves (their encoded bytes, shared with what was sent)
/// and about 100 bytes each for the entry, the frame's header and its position.
///
/// ```
/// use std::time::Duration;
/// use livehtml::pubsub::History;
///
/// let chat = History::new(500).max_age(Duration::from_secs(120));
/// assert_eq!((chat.messages(), chat.age()), (500, Duration::from_secs(120)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    messages: usize,
    max_age: Duration,
}

impl History {
    /// Keeps the last `messages` messages, for five minutes each.
    pub fn new(messages: usize) -> Self {
        Self { messages, max_age: Duration::from_secs(300) }
    }

    /// Keeps no message longer than `max_age`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How many messages are kept at most.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// How long a message is kept at most.
    pub fn age(&self) -> Duration {
        self.max_age
    }
}

/// What became of a page's topic when it (re)subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// A first subscription: the page claimed no position (nothing to recover).
    New,
    /// The page came back and got every message it had missed, this many, in order, before
    /// any new one (0: it had missed none).
    Replayed(usize),
    /// The page came back, but what it missed is no longer known (older than the topic's
    /// history, the topic was restarted, or there is no history): the session must send what
    /// the topic drives on the page in full. livehtml.js is told (`lh:resynced`).
    Lost,
}

/// A topic's offsets, epoch and kept messages. Locked for the whole of a publish, so every
/// subscriber sees a topic's messages in offset order, and a subscription starts exactly
/// after the last message it was replayed or told of.
#[derive(Debug)]
pub(super) struct Log {
    epoch: u32,
    /// The last message's offset.
    offset: u64,
    /// Kept messages, oldest first, each with its position and when it was published.
    kept: VecDeque<(Instant, Frame)>,
    history: Option<History>,
    /// The last publish or unsubscribe: a topic with history is forgotten once it has been
    /// idle, without subscribers, for longer than its messages are kept.
    pub(super) used: Instant,
}

impl Log {
    pub(super) fn new(history: Option<History>) -> Self {
        Self { epoch: new_epoch(), offset: 0, kept: VecDeque::new(), history, used: Instant::now() }
    }

    pub(super) fn set_history(&mut self, history: History) {
        self.history = Some(history);
        self.trim(Instant::now());
    }

    pub(super) fn has_history(&self) -> bool {
        self.history.is_some()
    }

    /// Where the topic is now: its epoch and its last message.
    pub(super) fn position(&self) -> Position {
        Position { epoch: self.epoch, offset: self.offset }
    }

    /// Gives `frame` the topic's next offset, keeps it if the topic has a history, and returns
    /// it as it is sent.
    pub(super) fn record(&mut self, frame: &Frame) -> Frame {
        self.offset += 1;
        let now = Instant::now();
        self.used = now;
        let at = frame.at(self.position());
        if let Some(history) = self.history.filter(|h| h.messages > 0) {
            if self.kept.len() >= history.messages {
                self.kept.pop_front();
            }
            self.kept.push_back((now, at.clone()));
            self.trim(now);
        }
        at
    }

    /// Drops what is older than the history keeps.
    fn trim(&mut self, now: Instant) {
        let Some(history) = self.history else { return };
        while self.kept.len() > history.messages
            || self.kept.front().is_some_and(|(at, _)| now.duration_since(*at) > history.max_age)
        {
            self.kept.pop_front();
        }
    }

    /// Everything after `seen`, in order: the whole gap or nothing (`None`: the gap is not
    /// kept whole, or `seen` is not of this history).
    pub(super) fn replay(&mut self, seen: Position) -> Option<Vec<Frame>> {
        if seen.epoch != self.epoch || seen.offset > self.offset {
            return None;
        }
        if seen.offset == self.offset {
            return Some(Vec::new());
        }
        self.trim(Instant::now());
        let oldest = self.kept.front()?.1.position()?.offset;
        if oldest > seen.offset + 1 {
            return None;
        }
        let from = usize::try_from(seen.offset + 1 - oldest).ok()?;
        Some(self.kept.iter().skip(from).map(|(_, f)| f.clone()).collect())
    }

    /// A topic with history that nobody has used for longer than it keeps messages.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.history.is_none_or(|h| now.duration_since(self.used) > h.max_age)
    }
}

/// A random epoch: a restarted process's topics never take up an old history's numbering.
fn new_epoch() -> u32 {
    // Without an OS random source (never on supported systems) the clock still varies.
    getrandom::u32().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        nanos.subsec_nanos() ^ nanos.as_secs() as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(frames: &[Frame]) -> Vec<u64> {
        frames.iter().map(|f| f.position().unwrap().offset).collect()
    }

    #[test]
    fn offsets_are_monotonic_and_the_gap_is_replayed_in_order() {
        let mut log = Log::new(Some(History::new(10)));
        let start = log.position();
        assert_eq!(start.offset, 0);
        for i in 1..=5 {
            let sent = log.record(&Frame::text(format!("m{i}")));
            assert_eq!(sent.position(), Some(Position { epoch: start.epoch, offset: i }));
            assert_eq!(sent.as_text(), Some(format!("m{i}").as_str()));
        }
        assert_eq!(offsets(&log.replay(Position { offset: 2, ..start }).unwrap()), [3, 4, 5]);
        assert_eq!(offsets(&log.replay(start).unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(log.replay(log.position()), Some(Vec::new()));
    }

    #[test]
    fn a_gap_older_than_the_history_is_refused_whole() {
        let mut log = Log::new(Some(History::new(3)));
        let start = log.position();
        for i in 0..6 {
            log.record(&Frame::text(i.to_string()));
        }
        // Offsets 4..=6 are kept: a page at 3 gets them, a page at 2 gets nothing at all.
        assert_eq!(offsets(&log.replay(Position { offset: 3, ..start }).unwrap()), [4, 5, 6]);
        assert_eq!(log.replay(Position { offset: 2, ..start }), None);
        assert_eq!(log.replay(Position { offset: 9, ..start }), None, "a position from the future");
    }

    #[test]
    fn another_epoch_or_no_history_is_a_loss() {
        let mut log = Log::new(Some(History::new(3)));
        log.record(&Frame::text("x"));
        let other = Log::new(None).position();
        assert_ne!(other.epoch, log.position().epoch);
        assert_eq!(log.replay(Position { epoch: other.epoch, offset: 0 }), None);

        let mut bare = Log::new(None);
        let seen = bare.position();
        bare.record(&Frame::text("x"));
        assert_eq!(bare.replay(seen), None, "no history: a missed message is a loss");
        assert_eq!(bare.replay(bare.position()), Some(Vec::new()), "nothing missed is no loss");
    }

    #[test]
    fn messages_older_than_the_history_age_are_dropped() {
        let mut log = Log::new(Some(History::new(10).max_age(Duration::from_secs(60))));
        let start = log.position();
        log.record(&Frame::text("old"));
        log.kept[0].0 -= Duration::from_secs(61);
        log.record(&Frame::text("new"));
        assert_eq!(log.kept.len(), 1);
        assert_eq!(log.replay(start), None);
        assert_eq!(offsets(&log.replay(Position { offset: 1, ..start }).unwrap()), [2]);
        assert!(!log.expired(Instant::now()));
        log.used -= Duration::from_secs(61);
        assert!(log.expired(Instant::now()));
    }
}
