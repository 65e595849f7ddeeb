//! Byte queue limits (Linux's `lib/dynamic_queue_limits.c`): how many bytes a driver may
//! have queued to hardware before the stack stops feeding it.
//!
//! The limit starts at zero (one packet in flight) and adapts at each completion: if the
//! hardware ran dry while the stack was held back (the queue was over the limit and
//! everything completed), the limit grows by what was missing; if the queue stayed busy
//! with bytes to spare for a whole `slack_hold_time`, the limit shrinks by the smallest
//! spare seen. The effect is to keep just enough bytes in the ring to never starve it,
//! and no more — latency stays in the qdisc, where it can be managed.

use crate::time::Instant;
use std::time::Duration;

/// Largest limit (`DQL_MAX_LIMIT`).
pub const DQL_MAX_LIMIT: u32 = (u32::MAX / 16) - 65536;

/// Dynamic queue limit state for one transmit queue.
#[derive(Clone, Debug)]
pub struct Dql {
    num_queued: u32,
    adj_limit: u32,
    last_obj_cnt: u32,
    limit: u32,
    num_completed: u32,
    prev_ovlimit: u32,
    prev_num_queued: u32,
    prev_last_obj_cnt: u32,
    lowest_slack: u32,
    slack_start_time: Instant,
    /// Upper bound for the limit.
    pub max_limit: u32,
    /// Lower bound for the limit.
    pub min_limit: u32,
    /// How long spare bytes must persist before the limit shrinks (1 s, `HZ`).
    pub slack_hold_time: Duration,
}

impl Default for Dql {
    fn default() -> Self {
        Dql::new()
    }
}

/// `a - b` if positive, else 0 (Linux's `POSDIFF`).
fn posdiff(a: u32, b: u32) -> u32 {
    let d = a.wrapping_sub(b) as i32;
    if d > 0 {
        d as u32
    } else {
        0
    }
}

/// `a >= b` in sequence space (Linux's `AFTER_EQ`).
fn after_eq(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

impl Dql {
    /// A fresh limit (`dql_init`).
    pub fn new() -> Dql {
        Dql {
            num_queued: 0,
            adj_limit: 0,
            last_obj_cnt: 0,
            limit: 0,
            num_completed: 0,
            prev_ovlimit: 0,
            prev_num_queued: 0,
            prev_last_obj_cnt: 0,
            lowest_slack: u32::MAX,
            slack_start_time: Instant::ZERO,
            max_limit: DQL_MAX_LIMIT,
            min_limit: 0,
            slack_hold_time: Duration::from_secs(1),
        }
    }

    /// `dql_reset`.
    pub fn reset(&mut self) {
        let (max, min, hold) = (self.max_limit, self.min_limit, self.slack_hold_time);
        *self = Dql::new();
        self.max_limit = max;
        self.min_limit = min;
        self.limit = min;
        self.adj_limit = min;
        self.slack_hold_time = hold;
    }

    /// `dql_queued`: `count` bytes handed to hardware.
    pub fn queued(&mut self, count: u32) {
        self.last_obj_cnt = count;
        self.num_queued = self.num_queued.wrapping_add(count);
    }

    /// `dql_avail`: bytes that may still be queued (negative: over the limit).
    pub fn avail(&self) -> i64 {
        i64::from(self.adj_limit.wrapping_sub(self.num_queued) as i32)
    }

    /// The current limit in bytes.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Bytes queued to hardware and not yet completed.
    pub fn inflight(&self) -> u32 {
        self.num_queued.wrapping_sub(self.num_completed)
    }

    /// `dql_completed`: hardware finished `count` bytes; adapt the limit.
    pub fn completed(&mut self, count: u32, now: Instant) {
        let num_queued = self.num_queued;
        let completed = self.num_completed.wrapping_add(count);
        let mut limit = self.limit;
        let mut ovlimit = posdiff(num_queued.wrapping_sub(self.num_completed), limit);
        let inprogress = num_queued.wrapping_sub(completed);
        let prev_inprogress = self.prev_num_queued.wrapping_sub(self.num_completed);
        let all_prev_completed = after_eq(completed, self.prev_num_queued);

        if (ovlimit != 0 && inprogress == 0) || (self.prev_ovlimit != 0 && all_prev_completed) {
            // Starved: the queue was held back yet the hardware emptied. Grow by the
            // bytes completed beyond what was queued last time, plus the old excess.
            limit = limit
                .wrapping_add(posdiff(completed, self.prev_num_queued))
                .wrapping_add(self.prev_ovlimit);
            self.slack_start_time = now;
            self.lowest_slack = u32::MAX;
        } else if inprogress != 0 && prev_inprogress != 0 && !all_prev_completed {
            // Busy the whole interval: measure the slack (bytes beyond what kept the
            // hardware busy) and shrink by its minimum once it has held long enough.
            let slack = posdiff(
                limit.wrapping_add(self.prev_ovlimit),
                2u32.wrapping_mul(completed.wrapping_sub(self.num_completed)),
            );
            let slack_last_objs = if self.prev_ovlimit != 0 {
                posdiff(self.prev_last_obj_cnt, self.prev_ovlimit)
            } else {
                0
            };
            let slack = slack.max(slack_last_objs);
            if slack < self.lowest_slack {
                self.lowest_slack = slack;
            }
            if now > self.slack_start_time + self.slack_hold_time {
                limit = posdiff(limit, self.lowest_slack);
                self.slack_start_time = now;
                self.lowest_slack = u32::MAX;
            }
        }

        limit = limit.clamp(self.min_limit, self.max_limit);
        if limit != self.limit {
            self.limit = limit;
            ovlimit = 0;
        }
        self.adj_limit = limit.wrapping_add(completed);
        self.prev_ovlimit = ovlimit;
        self.prev_last_obj_cnt = self.last_obj_cnt;
        self.num_completed = completed;
        self.prev_num_queued = num_queued;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_room_for_one_packet_then_grows_when_starved() {
        let mut d = Dql::new();
        assert_eq!(d.avail(), 0);
        d.queued(1514);
        assert!(d.avail() < 0, "the first packet uses up a zero limit");
        d.completed(1514, Instant::ZERO);
        assert!(d.limit() >= 1514, "starved: limit grows, got {}", d.limit());
        assert!(d.avail() >= 1514);
    }

    #[test]
    fn keeps_growing_while_the_hardware_keeps_draining() {
        let mut d = Dql::new();
        let mut t = Instant::ZERO;
        for _ in 0..20 {
            // Fill to the limit (plus one packet), then the hardware completes all.
            let mut n = 0;
            while d.avail() >= 0 {
                d.queued(1514);
                n += 1;
            }
            t += Duration::from_micros(100);
            d.completed(1514 * n, t);
        }
        assert!(d.limit() > 10 * 1514, "limit {}", d.limit());
    }

    #[test]
    fn shrinks_when_there_is_persistent_slack() {
        let mut d = Dql::new();
        d.limit = 100_000;
        d.adj_limit = 100_000;
        let mut t = Instant::ZERO;
        // Hardware always busy, but only ~10 kB completes per interval while 100 kB sits
        // queued: lots of slack.
        d.queued(100_000);
        for _ in 0..30 {
            t += Duration::from_millis(100);
            d.completed(10_000, t);
            d.queued(10_000);
        }
        assert!(d.limit() < 100_000, "limit {}", d.limit());
    }

    #[test]
    fn limit_is_clamped() {
        let mut d = Dql::new();
        d.max_limit = 5000;
        for _ in 0..10 {
            while d.avail() >= 0 {
                d.queued(1500);
            }
            d.completed(d.inflight(), Instant::ZERO);
        }
        assert!(d.limit() <= 5000);
    }
}
