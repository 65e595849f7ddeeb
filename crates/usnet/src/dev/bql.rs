//! Byte queue limits (Linux's `lib/dynamic_queue_limits.c`): how many bytes a driver may
//! have queued to hardware before the stack stops feeding it.
//!
//! The limit starts at zero (one packet in flight) and adapts at each completion: if the
//! hardware ran dry while the stack was held back (the queue was over the limit and
//! everything completed), the limit grows by what was missing; if the queue stayed busy
//! with bytes to spare for a whole `slack_hold_time`, the limit shrinks by the smallest
//! spare seen. The effect is to keep just enough bytes in the ring to never starve it,
//! and no more — latency stays in the qdisc, where it can be managed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::time::Instant;

/// Largest limit (`DQL_MAX_LIMIT`).
pub const DQL_MAX_LIMIT: u32 = (u32::MAX / 16) - 65536;

/// Dynamic queue limit state for one transmit queue.
///
/// As in Linux, the producer side (`queued`, `avail`) takes no lock: the driver calls
/// it under its own transmit lock, so there is one producer at a time. The completion
/// side (`completed`) keeps its state under a small lock and publishes the new
/// `adj_limit` for the producer.
#[derive(Debug)]
pub struct Dql {
    num_queued: AtomicU32,
    last_obj_cnt: AtomicU32,
    adj_limit: AtomicU32,
    c: Mutex<Completion>,
}

/// The completion side of [`Dql`].
#[derive(Clone, Debug)]
struct Completion {
    limit: u32,
    num_completed: u32,
    prev_ovlimit: u32,
    prev_num_queued: u32,
    prev_last_obj_cnt: u32,
    lowest_slack: u32,
    slack_start_time: Instant,
    max_limit: u32,
    min_limit: u32,
    slack_hold_time: Duration,
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
    /// A fresh limit (`dql_init`): limit 0, so one packet may be in flight.
    pub fn new() -> Dql {
        Dql {
            num_queued: AtomicU32::new(0),
            last_obj_cnt: AtomicU32::new(0),
            adj_limit: AtomicU32::new(0),
            c: Mutex::new(Completion {
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
            }),
        }
    }

    /// `dql_reset`: forget history; the limit restarts at `min_limit`.
    pub fn reset(&self) {
        let mut c = self.c.lock();
        let (max, min, hold) = (c.max_limit, c.min_limit, c.slack_hold_time);
        let q = self.num_queued.load(Ordering::Acquire);
        *c = Completion {
            limit: min,
            num_completed: q,
            prev_ovlimit: 0,
            prev_num_queued: q,
            prev_last_obj_cnt: 0,
            lowest_slack: u32::MAX,
            slack_start_time: Instant::ZERO,
            max_limit: max,
            min_limit: min,
            slack_hold_time: hold,
        };
        self.adj_limit.store(min.wrapping_add(q), Ordering::Release);
    }

    /// Set the bounds of the limit (`/sys/class/net/DEV/queues/tx-N/byte_queue_limits/
    /// limit_min` and `limit_max`), then reset.
    pub fn set_bounds(&self, min_limit: u32, max_limit: u32) {
        {
            let mut c = self.c.lock();
            c.min_limit = min_limit.min(max_limit);
            c.max_limit = max_limit;
        }
        self.reset();
    }

    /// `dql_queued`: `count` bytes handed to hardware. Call with the driver's transmit
    /// lock held (one producer at a time).
    #[inline]
    pub fn queued(&self, count: u32) {
        self.last_obj_cnt.store(count, Ordering::Relaxed);
        let q = self.num_queued.load(Ordering::Relaxed);
        self.num_queued
            .store(q.wrapping_add(count), Ordering::Release);
    }

    /// `dql_avail`: bytes that may still be queued (negative: over the limit).
    #[inline]
    pub fn avail(&self) -> i64 {
        let adj = self.adj_limit.load(Ordering::Acquire);
        let q = self.num_queued.load(Ordering::Acquire);
        i64::from(adj.wrapping_sub(q) as i32)
    }

    /// The current limit in bytes.
    pub fn limit(&self) -> u32 {
        self.c.lock().limit
    }

    /// Bytes queued to hardware and not yet completed.
    pub fn inflight(&self) -> u32 {
        let c = self.c.lock();
        self.num_queued
            .load(Ordering::Acquire)
            .wrapping_sub(c.num_completed)
    }

    /// `dql_completed`: hardware finished `count` bytes; adapt the limit.
    pub fn completed(&self, count: u32, now: Instant) {
        let num_queued = self.num_queued.load(Ordering::Acquire);
        let last_obj_cnt = self.last_obj_cnt.load(Ordering::Relaxed);
        let mut c = self.c.lock();
        let completed = c.num_completed.wrapping_add(count);
        let mut limit = c.limit;
        let mut ovlimit = posdiff(num_queued.wrapping_sub(c.num_completed), limit);
        let inprogress = num_queued.wrapping_sub(completed);
        let prev_inprogress = c.prev_num_queued.wrapping_sub(c.num_completed);
        let all_prev_completed = after_eq(completed, c.prev_num_queued);

        if (ovlimit != 0 && inprogress == 0) || (c.prev_ovlimit != 0 && all_prev_completed) {
            // Starved: the queue was held back yet the hardware emptied. Grow by the
            // bytes completed beyond what was queued last time, plus the old excess.
            limit = limit
                .wrapping_add(posdiff(completed, c.prev_num_queued))
                .wrapping_add(c.prev_ovlimit);
            c.slack_start_time = now;
            c.lowest_slack = u32::MAX;
        } else if inprogress != 0 && prev_inprogress != 0 && !all_prev_completed {
            // Busy the whole interval: measure the slack (bytes beyond what kept the
            // hardware busy) and shrink by its minimum once it has held long enough.
            let slack = posdiff(
                limit.wrapping_add(c.prev_ovlimit),
                2u32.wrapping_mul(completed.wrapping_sub(c.num_completed)),
            );
            let slack_last_objs = if c.prev_ovlimit != 0 {
                posdiff(c.prev_last_obj_cnt, c.prev_ovlimit)
            } else {
                0
            };
            let slack = slack.max(slack_last_objs);
            if slack < c.lowest_slack {
                c.lowest_slack = slack;
            }
            if now > c.slack_start_time + c.slack_hold_time {
                limit = posdiff(limit, c.lowest_slack);
                c.slack_start_time = now;
                c.lowest_slack = u32::MAX;
            }
        }

        limit = limit.clamp(c.min_limit, c.max_limit);
        if limit != c.limit {
            c.limit = limit;
            ovlimit = 0;
        }
        self.adj_limit
            .store(limit.wrapping_add(completed), Ordering::Release);
        c.prev_ovlimit = ovlimit;
        c.prev_last_obj_cnt = last_obj_cnt;
        c.num_completed = completed;
        c.prev_num_queued = num_queued;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_room_for_one_packet_then_grows_when_starved() {
        let d = Dql::new();
        assert_eq!(d.avail(), 0);
        d.queued(1514);
        assert!(d.avail() < 0, "the first packet uses up a zero limit");
        d.completed(1514, Instant::ZERO);
        assert!(d.limit() >= 1514, "starved: limit grows, got {}", d.limit());
        assert!(d.avail() >= 1514);
    }

    #[test]
    fn keeps_growing_while_the_hardware_keeps_draining() {
        let d = Dql::new();
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
        let d = Dql::new();
        d.set_bounds(100_000, DQL_MAX_LIMIT);
        d.set_bounds(0, DQL_MAX_LIMIT);
        {
            d.c.lock().limit = 100_000;
            d.adj_limit.store(100_000, Ordering::Release);
        }
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
        let d = Dql::new();
        d.set_bounds(0, 5000);
        for _ in 0..10 {
            while d.avail() >= 0 {
                d.queued(1500);
            }
            d.completed(d.inflight(), Instant::ZERO);
        }
        assert!(d.limit() <= 5000);
    }
}
