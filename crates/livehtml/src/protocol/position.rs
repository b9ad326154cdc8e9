//! Where a page is in a topic, as it travels on the wire: a topic's *epoch* (random per
//! history: a new one means everything before it is gone) and the *offset* of the last message
//! the page got (monotonic per topic; 0 before the first).
//!
//! One position is written `epoch-offset`, the epoch in 8 hex digits (`3f9a12c4-17`); a page's
//! positions in several topics are joined with `.`. That text is an SSE stream's `id:` (so
//! `Last-Event-ID` brings it back on a reconnect), the `<!--lh:3f9a12c4-17-->` in front of a
//! topic's message to livehtml.js over a WebSocket, and the `lh-since` query parameter
//! livehtml.js reconnects with. Positions are matched by epoch: the page never needs to name
//! its topics.

use std::fmt;

/// A page's position in one topic's history.
///
/// ```
/// use livehtml::protocol::Position;
///
/// let at = Position { epoch: 0x3f9a12c4, offset: 17 };
/// assert_eq!(at.to_string(), "3f9a12c4-17");
/// assert_eq!("3f9a12c4-17".parse::<Position>(), Ok(at));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Position {
    /// The topic's history: random, and changed whenever that history is lost.
    pub epoch: u32,
    /// The last message's offset (0: none yet).
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{}", self.epoch, self.offset)
    }
}

/// Text that is not a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAPosition;

impl std::str::FromStr for Position {
    type Err = NotAPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (epoch, offset) = s.split_once('-').ok_or(NotAPosition)?;
        if epoch.len() != 8 {
            return Err(NotAPosition);
        }
        Ok(Self {
            epoch: u32::from_str_radix(epoch, 16).map_err(|_| NotAPosition)?,
            offset: offset.parse().map_err(|_| NotAPosition)?,
        })
    }
}

/// Most positions a page's claim is read for, and an SSE stream's `id:` carries: a page on
/// more topics than this is resynced for the rest, never left with a gap.
pub const MAX_POSITIONS: usize = 4;

/// What a connecting page says it saw: nothing (a first connection), or, on a reconnect, its
/// positions (which may be none at all: a page that had seen no topic message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Since {
    /// The page was connected before (it sent `Last-Event-ID` or `lh-since`).
    pub reconnect: bool,
    /// Its positions, at most [`MAX_POSITIONS`].
    pub positions: Vec<Position>,
    /// The page moves its positions on as messages arrive (an SSE stream's ids, livehtml.js),
    /// so it is replayed what it missed. A page whose claim is fixed (a plain htmx socket that
    /// reconnects to the URL it was rendered with, `lh-since` and all) may have seen some of
    /// what came after it: it is resynced on any gap instead, never sent a message twice.
    pub tracks: bool,
}

impl Since {
    /// Reads `Last-Event-ID` or `lh-since`: positions joined with `.`; anything else in it (an
    /// SSE counter id) still says the page is back, with no position.
    ///
    /// ```
    /// use livehtml::protocol::{Position, Since};
    ///
    /// let since = Since::parse("3f9a12c4-17.00000001-0");
    /// assert!(since.reconnect);
    /// assert_eq!(since.find(0x3f9a12c4), Some(Position { epoch: 0x3f9a12c4, offset: 17 }));
    /// assert_eq!(Since::parse("42").positions, []);
    /// ```
    pub fn parse(text: &str) -> Self {
        let positions = text.split('.').filter_map(|p| p.trim().parse().ok()).take(MAX_POSITIONS).collect();
        Self { reconnect: true, positions, tracks: true }
    }

    /// The claimed position in the history with `epoch`.
    pub fn find(&self, epoch: u32) -> Option<Position> {
        self.positions.iter().copied().find(|p| p.epoch == epoch)
    }
}

/// An SSE stream's id: its positions in the topics it got messages from (the newest
/// [`MAX_POSITIONS`]), or, before any, a count of its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursors {
    positions: [Position; MAX_POSITIONS],
    len: u8,
    count: u64,
}

impl Cursors {
    /// The id after an event at `position` (or one with none: a page's own message).
    pub(crate) fn advance(&mut self, position: Option<Position>) {
        let Some(at) = position else {
            self.count += 1;
            return;
        };
        let len = usize::from(self.len);
        if let Some(known) = self.positions[..len].iter_mut().find(|p| p.epoch == at.epoch) {
            known.offset = known.offset.max(at.offset);
            return;
        }
        if len < MAX_POSITIONS {
            self.positions[len] = at;
            self.len += 1;
        } else {
            // The oldest goes; a reconnect resyncs its topic rather than miss anything.
            self.positions.rotate_left(1);
            self.positions[MAX_POSITIONS - 1] = at;
        }
    }

    /// Writes the id (at most 4 × 29 + 3 bytes). Every SSE event of a burst makes one, so it
    /// is written by hand rather than through `fmt` (the same text as [`Position`]'s `Display`).
    pub(crate) fn write(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut digits = itoa::Buffer::new();
        if self.len == 0 {
            return out.write_all(digits.format(self.count).as_bytes());
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, p) in self.positions[..usize::from(self.len)].iter().enumerate() {
            let mut text = [0u8; 9];
            for (k, byte) in text[..8].iter_mut().enumerate() {
                *byte = HEX[(p.epoch >> (28 - 4 * k) & 0xf) as usize];
            }
            text[8] = b'-';
            if i > 0 {
                out.write_all(b".")?;
            }
            out.write_all(&text)?;
            out.write_all(digits.format(p.offset).as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(cursors: &Cursors) -> String {
        let mut out = Vec::new();
        cursors.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_id_lists_the_positions_it_has_seen() {
        let mut cursors = Cursors::default();
        cursors.advance(None);
        assert_eq!(id(&cursors), "1");
        cursors.advance(Some(Position { epoch: 1, offset: 3 }));
        cursors.advance(Some(Position { epoch: 0xab, offset: 9 }));
        cursors.advance(Some(Position { epoch: 1, offset: 4 }));
        cursors.advance(None);
        assert_eq!(id(&cursors), "00000001-4.000000ab-9");
        let since = Since::parse(&id(&cursors));
        assert_eq!(since.positions, [Position { epoch: 1, offset: 4 }, Position { epoch: 0xab, offset: 9 }]);
        let far = Position { epoch: 0xfedc_ba98, offset: u64::MAX };
        cursors.advance(Some(far));
        assert!(id(&cursors).ends_with(&format!(".{far}")), "as Display writes it");
    }

    #[test]
    fn the_oldest_position_gives_way() {
        let mut cursors = Cursors::default();
        for epoch in 1..=5 {
            cursors.advance(Some(Position { epoch, offset: u64::MAX }));
        }
        let text = id(&cursors);
        assert!(text.len() <= 4 * 29 + 3, "{text}");
        assert_eq!(Since::parse(&text).positions.iter().map(|p| p.epoch).collect::<Vec<_>>(), [2, 3, 4, 5]);
    }

    #[test]
    fn malformed_claims_are_no_positions() {
        for text in ["", "x", "1-2", "zzzzzzzz-1", "00000001-", "00000001-x", "00000001-1-1"] {
            assert_eq!(Since::parse(text).positions, [], "{text:?}");
        }
        assert_eq!(Since::parse(&"00000001-1.".repeat(100)).positions.len(), MAX_POSITIONS);
    }
}
