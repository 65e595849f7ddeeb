//! `tbf`: the token bucket filter (Linux's `net/sched/sch_tbf.c`). Packets leave at
//! `rate`, with bursts of up to `burst` bytes; at most `limit` bytes wait in the queue.
//!
//! Tokens are kept in time units, as Linux does: the bucket holds up to
//! `buffer = burst / rate` seconds; a packet of `len` bytes costs `len / rate`. When the
//! head packet costs more than the bucket holds, dequeue reports when it may go and
//! the qdisc watchdog reschedules the queue then (counted as an overlimit).

use std::collections::VecDeque;
use std::time::Duration;

use super::{Dequeue, Qdisc};
use crate::dev::NetDevice;
use crate::skb::Skb;
use crate::time::Instant;

/// Token bucket filter parameters (`tc qdisc ... tbf rate R burst B limit L`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TbfConfig {
    /// Rate in bits per second.
    pub rate_bps: u64,
    /// Bucket size in bytes.
    pub burst: u32,
    /// Queue limit in bytes.
    pub limit: u32,
}

impl TbfConfig {
    /// `tc`'s `latency` form: the limit that makes a packet wait at most `latency`.
    pub fn with_latency(rate_bps: u64, burst: u32, latency: Duration) -> TbfConfig {
        let limit =
            (rate_bps as u128 * latency.as_nanos() / 8 / 1_000_000_000) as u64 + u64::from(burst);
        TbfConfig {
            rate_bps,
            burst,
            limit: limit.min(u64::from(u32::MAX)) as u32,
        }
    }
}

/// The token bucket filter.
#[derive(Debug)]
pub struct Tbf {
    cfg: TbfConfig,
    queue: VecDeque<Skb>,
    backlog: usize,
    /// Bucket depth in nanoseconds.
    buffer_ns: u64,
    /// Tokens (nanoseconds of sending) available at `t_c`.
    tokens_ns: u64,
    t_c: Instant,
    overlimits: u64,
}

impl Tbf {
    /// A tbf with a full bucket.
    pub fn new(cfg: TbfConfig) -> Tbf {
        let rate = cfg.rate_bps.max(1);
        let buffer_ns = Self::len_to_ns(rate, cfg.burst as usize);
        Tbf {
            cfg,
            queue: VecDeque::new(),
            backlog: 0,
            buffer_ns,
            tokens_ns: buffer_ns,
            t_c: Instant::ZERO,
            overlimits: 0,
        }
    }

    fn len_to_ns(rate_bps: u64, len: usize) -> u64 {
        ((len as u128 * 8 * 1_000_000_000) / u128::from(rate_bps.max(1))) as u64
    }

    /// The configuration.
    pub fn config(&self) -> TbfConfig {
        self.cfg
    }
}

impl Qdisc for Tbf {
    fn kind(&self) -> &'static str {
        "tbf"
    }

    fn enqueue(&mut self, skb: Skb, _dev: &NetDevice, _now: Instant) -> Result<(), Skb> {
        // A GSO skb that can never fit the bucket would stall the queue; Linux segments
        // it (tbf_segment). The caller's validate step segments it later; here we
        // refuse only what exceeds the queue limit.
        if self.backlog + skb.len() > self.cfg.limit as usize {
            return Err(skb);
        }
        self.backlog += skb.len();
        self.queue.push_back(skb);
        Ok(())
    }

    fn dequeue(&mut self, now: Instant) -> Dequeue {
        let Some(head) = self.queue.front() else {
            return Dequeue::Empty;
        };
        let elapsed = now.saturating_duration_since(self.t_c).as_nanos() as u64;
        let toks = self.tokens_ns.saturating_add(elapsed).min(self.buffer_ns);
        // A packet larger than the bucket may still go once the bucket is full (its cost
        // is capped at the bucket), so an oversized packet cannot stall the queue.
        let cost = Self::len_to_ns(self.cfg.rate_bps, head.len()).min(self.buffer_ns);
        if toks >= cost {
            let skb = self.queue.pop_front();
            self.tokens_ns = toks - cost;
            self.t_c = now;
            if let Some(skb) = skb {
                self.backlog -= skb.len();
                return Dequeue::Packet(skb);
            }
            return Dequeue::Empty;
        }
        self.overlimits += 1;
        Dequeue::Throttled(now + Duration::from_nanos(cost - toks))
    }

    fn qlen(&self) -> usize {
        self.queue.len()
    }

    fn backlog(&self) -> usize {
        self.backlog
    }

    fn reset(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        self.backlog = 0;
        n
    }

    fn describe(&self) -> String {
        format!(
            "rate {} burst {}b limit {}b",
            crate::util::fmt_rate(self.cfg.rate_bps),
            self.cfg.burst,
            self.cfg.limit
        )
    }

    fn overlimits(&self) -> u64 {
        self.overlimits
    }
}
