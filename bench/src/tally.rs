//! A worker's tally: what its clients received, reported to the coordinator as JSON lines on
//! stdout (`warm`, `all`, `done`, `pongs`, `stats`). Both client engines keep one.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use serde_json::json;

use crate::dialect;

/// What a worker's clients received.
pub(crate) struct Stats {
    pub(crate) per_seq: Vec<u32>,
    pub(crate) warm: u32,
    pub(crate) delivered: u64,
    pub(crate) bytes: u64,
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) open: u32,
    pub(crate) failed: u32,
    pub(crate) dropped: u32,
    pub(crate) pong_round: u64,
    pub(crate) pongs: u32,
    pub(crate) errors: Vec<String>,
}

pub(crate) fn emit(v: serde_json::Value) {
    println!("{v}");
}

impl Stats {
    /// A worker's tally for a run of `messages` messages.
    pub(crate) fn new(messages: u64) -> Result<Self, hdrhistogram::CreationError> {
        Ok(Self {
            per_seq: vec![0; messages as usize + 1],
            warm: 0,
            delivered: 0,
            bytes: 0,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            open: 0,
            failed: 0,
            dropped: 0,
            pong_round: 0,
            pongs: 0,
            errors: Vec::new(),
        })
    }

    pub(crate) fn on_payload(&mut self, payload: &[u8], warmed: &mut bool, messages: u64) {
        let Some((seq, sent)) = dialect::marker(payload) else { return };
        if seq == 0 {
            if !*warmed {
                *warmed = true;
                self.warm += 1;
                if self.warm == self.open {
                    emit(json!({"ev": "warm"}));
                }
            }
            return;
        }
        let latency_us = dialect::now_nanos().saturating_sub(sent) / 1000;
        let _ = self.latency_us.record(latency_us.max(1));
        self.delivered += 1;
        self.bytes += payload.len() as u64;
        if let Some(count) = self.per_seq.get_mut(seq as usize) {
            *count += 1;
            if *count == self.open {
                emit(json!({"ev": "all", "seq": seq}));
            }
        }
        if self.delivered == u64::from(self.open) * messages {
            emit(json!({"ev": "done"}));
        }
    }

    pub(crate) fn on_pong(&mut self, payload: &[u8]) {
        let round = payload.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        if round == Some(self.pong_round) {
            self.pongs += 1;
            if self.pongs == self.open {
                emit(json!({"ev": "pongs", "round": self.pong_round}));
            }
        }
    }

    pub(crate) fn error(&mut self, e: impl std::fmt::Display) {
        if self.errors.len() < 5 {
            self.errors.push(e.to_string());
        }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let mut buf = Vec::new();
        let _ = V2Serializer::new().serialize(&self.latency_us, &mut buf);
        json!({
            "ev": "stats",
            "open": self.open,
            "failed": self.failed,
            "dropped": self.dropped,
            "delivered": self.delivered,
            "bytes": self.bytes,
            "pongs": self.pongs,
            "hist": base64::engine::general_purpose::STANDARD.encode(buf),
            "errors": self.errors,
        })
    }
}
