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
///
/// In one process the log numbers the messages itself (each offset one more than the last).
/// In a cluster it follows the broker's numbering ([`Log::accept`]): offsets grow, but not
/// always by one, so each kept message also keeps its predecessor's offset, and a gap is a
/// message whose predecessor is not the last one seen.
#[derive(Debug)]
pub(super) struct Log {
    epoch: u32,
    /// The last message's offset.
    offset: u64,
    /// Kept messages, oldest first, each with when it was published, its predecessor's offset
    /// and the frame (which carries its position).
    kept: VecDeque<(Instant, u64, Frame)>,
    history: Option<History>,
    /// The last publish or unsubscribe: a topic with history is forgotten once it has been
    /// idle, without subscribers, for longer than its messages are kept.
    pub(super) used: Instant,
}

/// What became of a message from the broker ([`Log::accept`]).
#[derive(Debug)]
pub(super) enum Accept {
    /// The next message: recorded, to be delivered as it is returned.
    Next(Frame),
    /// Already seen (a broker's redelivery, or caught up from its history before).
    Seen,
    /// Messages before it were missed: the log must catch up from the broker first.
    Gap,
}

impl Log {
    pub(super) fn new(history: Option<History>) -> Self {
        Self::at(Position { epoch: new_epoch(), offset: 0 }, history)
    }

    /// A log that starts at `position` (a cluster's topic, as the broker has it; epoch 0: the
    /// topic has had no message yet).
    pub(super) fn at(position: Position, history: Option<History>) -> Self {
        Self { epoch: position.epoch, offset: position.offset, kept: VecDeque::new(), history, used: Instant::now() }
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
        let position = Position { epoch: self.epoch, offset: self.offset + 1 };
        self.keep(position, self.offset, frame)
    }

    /// A message numbered by the broker: the next one (recorded), one seen before, or one after
    /// a gap. A topic that had no message (epoch 0) takes the epoch of its first.
    pub(super) fn accept(&mut self, position: Position, prev: u64, frame: &Frame) -> Accept {
        if self.epoch == 0 && self.offset == 0 && prev == 0 {
            self.epoch = position.epoch;
        }
        if position.epoch != self.epoch {
            return Accept::Gap;
        }
        if position.offset <= self.offset {
            return Accept::Seen;
        }
        if prev != self.offset {
            return Accept::Gap;
        }
        Accept::Next(self.keep(position, prev, frame))
    }

    /// Starts over at `position`, keeping nothing: what the log held is gone (a new epoch, or
    /// a gap the broker no longer keeps).
    pub(super) fn restart(&mut self, position: Position) {
        (self.epoch, self.offset) = (position.epoch, position.offset);
        self.kept.clear();
    }

    fn keep(&mut self, position: Position, prev: u64, frame: &Frame) -> Frame {
        self.offset = position.offset;
        let now = Instant::now();
        self.used = now;
        let at = frame.at(position);
        if let Some(history) = self.history.filter(|h| h.messages > 0) {
            if self.kept.len() >= history.messages {
                self.kept.pop_front();
            }
            self.kept.push_back((now, prev, at.clone()));
            self.trim(now);
        }
        at
    }

    /// Drops what is older than the history keeps.
    fn trim(&mut self, now: Instant) {
        let Some(history) = self.history else { return };
        while self.kept.len() > history.messages
            || self.kept.front().is_some_and(|(at, _, _)| now.duration_since(*at) > history.max_age)
        {
            self.kept.pop_front();
        }
    }

    /// Everything after `seen`, in order: the whole gap or nothing (`None`: the gap is not
    /// kept whole, or `seen` is not of this history). A position of epoch 0 and offset 0 is
    /// "before the topic's first message" (what a page subscribed to a topic that had none
    /// was told), whatever epoch the topic took since.
    pub(super) fn replay(&mut self, seen: Position) -> Option<Vec<Frame>> {
        let before_first = seen == Position::default();
        if !before_first && (seen.epoch != self.epoch || seen.offset > self.offset) {
            return None;
        }
        if seen.offset == self.offset {
            return Some(Vec::new());
        }
        self.trim(Instant::now());
        let from = self.kept.iter().position(|(_, _, f)| f.position().is_some_and(|p| p.offset > seen.offset))?;
        if self.kept[from].1 != seen.offset {
            return None;
        }
        Some(self.kept.iter().skip(from).map(|(_, _, f)| f.clone()).collect())
    }

    /// A topic with history that nobody has used for longer than it keeps messages.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.history.is_none_or(|h| now.duration_since(self.used) > h.max_age)
    }
}

/// A random epoch: a restarted process's topics never take up an old history's numbering.
/// Never 0, which is "no message yet" in a cluster.
pub(crate) fn new_epoch() -> u32 {
    // Without an OS random source (never on supported systems) the clock still varies.
    let epoch = getrandom::u32().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        nanos.subsec_nanos() ^ nanos.as_secs() as u32
    });
    epoch.max(1)
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

    #[test]
    fn a_brokers_numbering_is_followed_and_its_gaps_seen() {
        // A NATS stream numbers every topic together: this topic's offsets are 3, 8, 9.
        let mut log = Log::at(Position::default(), Some(History::new(10)));
        let at = |offset| Position { epoch: 7, offset };
        assert!(matches!(log.accept(at(3), 0, &Frame::text("a")), Accept::Next(_)));
        assert_eq!(log.position(), at(3), "the first message gives the topic its epoch");
        assert!(matches!(log.accept(at(8), 3, &Frame::text("b")), Accept::Next(_)));
        assert!(matches!(log.accept(at(8), 3, &Frame::text("b")), Accept::Seen));
        assert!(matches!(log.accept(at(12), 10, &Frame::text("d")), Accept::Gap), "10 was missed");
        assert!(matches!(log.accept(Position { epoch: 9, offset: 1 }, 0, &Frame::text("x")), Accept::Gap));
        assert_eq!(offsets(&log.replay(at(3)).unwrap()), [8]);
        assert_eq!(offsets(&log.replay(Position::default()).unwrap()), [3, 8], "before the first message");
        assert_eq!(log.replay(at(5)).map(|f| f.len()), None, "5 is no offset of this topic");
        log.restart(Position { epoch: 9, offset: 4 });
        assert_eq!(log.replay(at(8)), None, "the old epoch is gone");
        assert_eq!(log.replay(Position { epoch: 9, offset: 4 }), Some(Vec::new()));
    }
}
