//! A page's message allowance in the session loop: a token bucket, so one page that floods
//! costs the server no more than its allowance and never slows the others.

use std::time::Instant;

use crate::link::Rate;

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Handle,
    /// Beyond the allowance: dropped.
    Drop,
    /// Beyond it by as much again: the page is closed.
    Close,
}

/// The bucket: how many messages may come now (negative: how far beyond), and when it was
/// last filled, in milliseconds since the process's first bucket (8 bytes: it is in every
/// connection's task).
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f32,
    at: u32,
}

fn millis() -> u32 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u32::try_from(epoch.elapsed().as_millis()).unwrap_or(u32::MAX)
}

impl Bucket {
    pub(crate) fn new(rate: Rate) -> Self {
        Self { tokens: rate.burst as f32, at: millis() }
    }

    /// Takes one message's token at `now` (milliseconds, as [`millis`]).
    fn take_at(&mut self, rate: Rate, now: u32) -> Verdict {
        if rate == Rate::NONE {
            return Verdict::Handle;
        }
        let elapsed = now.saturating_sub(self.at) as f32 / 1000.0;
        self.at = now;
        let burst = rate.burst as f32;
        self.tokens = (self.tokens + elapsed * rate.per_second as f32).min(burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Verdict::Handle
        } else if self.tokens > -burst {
            Verdict::Drop
        } else {
            Verdict::Close
        }
    }

    pub(crate) fn take(&mut self, rate: Rate) -> Verdict {
        self.take_at(rate, millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_a_flood_is_dropped_then_closed_and_time_refills() {
        let rate = Rate { per_second: 10, burst: 5 };
        let mut bucket = Bucket { tokens: 5.0, at: 0 };
        let verdicts: Vec<Verdict> = (0..11).map(|_| bucket.take_at(rate, 0)).collect();
        assert_eq!(&verdicts[..5], [Verdict::Handle; 5]);
        assert_eq!(&verdicts[5..9], [Verdict::Drop; 4]);
        assert_eq!(verdicts[10], Verdict::Close);

        // At the allowed pace, a page is never cut off.
        let mut steady = Bucket { tokens: 5.0, at: 0 };
        assert!((1..1000).all(|i| steady.take_at(rate, i * 100) == Verdict::Handle));
        // No limit, no count.
        let mut free = Bucket { tokens: 0.0, at: 0 };
        assert!((0..10_000).all(|_| free.take_at(Rate::NONE, 0) == Verdict::Handle));
    }
}
