//! `fq`: the Fair Queue packet scheduler with per-flow pacing (Linux's
//! `net/sched/sch_fq.c`).
//!
//! * **Flows.** Every packet of a socket is one flow (keyed by the socket, which the skb
//!   carries as its owner); packets without a full socket — forwarded, SYN-ACKs of a
//!   listener, UDP — are "orphans", grouped by their flow hash masked with
//!   `orphan_mask`. Flows live in `buckets` hash buckets. A flow that has been empty and
//!   off the round-robin lists for more than 3 s is garbage-collected when a lookup
//!   passes through its bucket (`fq_gc`).
//! * **Round robin.** Flows that just got a packet join `new_flows`, which is always
//!   served before `old_flows` (deficit round robin): each dequeue charges the packet's
//!   length to the flow's credit; a flow out of credit gets `quantum` more and goes to
//!   the tail of `old_flows`. A new flow starts with `initial_quantum`, and one idle for
//!   `refill_delay` comes back with at least a quantum.
//! * **Pacing.** A packet leaves no earlier than its skb timestamp (EDT: TCP stamps each
//!   skb with its departure time) nor than its flow's `time_next_packet`, which fq sets
//!   from the socket's `sk_pacing_rate` (or `maxrate`) for packets that carry no
//!   timestamp. A flow that must wait is throttled: it leaves the lists for a
//!   time-ordered heap, and dequeue answers [`Dequeue::Throttled`] with the earliest
//!   time, for the qdisc watchdog.
//! * **TCP.** The first packet of a socket through fq sets its `sk_pacing_status` to
//!   [`PacingStatus::Fq`](crate::sock::PacingStatus::Fq): TCP then stops pacing with
//!   its own timer and only stamps departure times (`tcp_needs_internal_pacing`).
//! * **Priority.** `TC_PRIO_CONTROL` packets skip the flows through a high-priority
//!   queue ("highprio").
//!
//! Not modelled: the three priority bands and weights of Linux 6.7+ and its fast path
//! (this is the single-band scheduler of earlier kernels); `offload_horizon`.
//!
//! Storage is reused: flow slots, per-flow queues, bucket and list vectors keep their
//! capacity, so once warmed up the qdisc does not allocate per packet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use super::{Dequeue, Qdisc};
use crate::dev::flow::flow_hash_ipv4;
use crate::dev::rx::{ETH_HLEN, ETH_P_IP};
use crate::dev::NetDevice;
use crate::skb::Skb;
use crate::time::Instant;

/// `TC_PRIO_CONTROL`: packets of this priority go to the high-priority queue.
const TC_PRIO_CONTROL: u32 = 7;
/// A detached flow idle longer than this may be garbage-collected (`FQ_GC_AGE`).
pub const FQ_GC_AGE: Duration = Duration::from_secs(3);
/// Most flows one fq tracks. Past it (Linux: a failed flow allocation) packets go to
/// the high-priority queue and count as `alloc_errors`.
pub const FQ_MAX_FLOWS: usize = 1 << 16;
const NSEC_PER_SEC: u64 = 1_000_000_000;

/// fq's parameters (`tc qdisc ... fq [limit N] [flow_limit N] ...`). Rates are in bytes
/// per second, as the kernel keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FqConfig {
    /// Packets queued in all (`limit`).
    pub limit: u32,
    /// Packets queued per flow (`flow_limit`).
    pub flow_limit: u32,
    /// Hash buckets for flow lookup, a power of two from 2 to 262144 (`buckets`).
    pub buckets: u32,
    /// Mask applied to the flow hash of packets without a socket (`orphan_mask`).
    pub orphan_mask: u32,
    /// Credit a flow gets each round, bytes (`quantum`; default 2 × MTU).
    pub quantum: u32,
    /// Credit of a new flow, bytes (`initial_quantum`; default 10 × MTU).
    pub initial_quantum: u32,
    /// Per-flow rate cap, bytes per second (`maxrate`; `u64::MAX`: none).
    pub maxrate: u64,
    /// Below this rate packets are paced one by one rather than per quantum,
    /// bytes per second (`low_rate_threshold`; default 550 kbit/s).
    pub low_rate_threshold: u64,
    /// A flow idle this long comes back with a full quantum (`refill_delay`).
    pub refill_delay: Duration,
    /// Whether fq paces at all (`pacing` / `nopacing`).
    pub pacing: bool,
    /// Watchdog slack (`timer_slack`; reported only, the simulator's timers are exact).
    pub timer_slack: Duration,
    /// How far in the future a timestamp may lie (`horizon`).
    pub horizon: Duration,
    /// Beyond the horizon, drop (`horizon_drop`) or cap the time (`horizon_cap`).
    pub horizon_drop: bool,
    /// Mark ECN CE on packets sent this late (`ce_threshold`; `None`: off).
    pub ce_threshold: Option<Duration>,
}

impl FqConfig {
    /// Linux's defaults for a device of `mtu` (quanta count the link header, as
    /// `psched_mtu`).
    pub fn for_mtu(mtu: u32) -> FqConfig {
        let psched_mtu = mtu.saturating_add(ETH_HLEN as u32);
        FqConfig {
            limit: 10_000,
            flow_limit: 100,
            buckets: 1024,
            orphan_mask: 1023,
            quantum: psched_mtu.saturating_mul(2),
            initial_quantum: psched_mtu.saturating_mul(10),
            maxrate: u64::MAX,
            low_rate_threshold: 550_000 / 8,
            refill_delay: Duration::from_millis(40),
            pacing: true,
            timer_slack: Duration::from_micros(10),
            horizon: Duration::from_secs(10),
            horizon_drop: true,
            ce_threshold: None,
        }
    }

    /// Linux's defaults for `dev`.
    pub fn for_device(dev: &NetDevice) -> FqConfig {
        FqConfig::for_mtu(dev.mtu())
    }

    /// Check the parameters as `fq_change` does.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
        if self.limit == 0 || self.flow_limit == 0 {
            return bad("fq: limit and flow_limit must be at least 1 packet".into());
        }
        if !self.buckets.is_power_of_two() || !(2..=256 * 1024).contains(&self.buckets) {
            return bad(format!(
                "fq: buckets {} must be a power of two from 2 to 262144",
                self.buckets
            ));
        }
        if self.quantum == 0 || self.quantum > 1 << 20 {
            return bad(format!("fq: invalid quantum {}", self.quantum));
        }
        if self.initial_quantum > i32::MAX as u32 {
            return bad(format!(
                "fq: initial_quantum {} too large",
                self.initial_quantum
            ));
        }
        let max_us = Duration::from_micros(u64::from(u32::MAX));
        if self.horizon > max_us || self.refill_delay > max_us {
            return bad("fq: horizon and refill_delay are at most 4294 s".into());
        }
        if self.ce_threshold.is_some_and(|c| c > max_us) {
            return bad("fq: ce_threshold is at most 4294 s".into());
        }
        Ok(())
    }

    /// Apply `tc`'s fq options (`limit 1000 flow_limit 50 maxrate 10mbit nopacing ...`)
    /// on top of these values. Unknown or malformed options are an error.
    pub fn parse(mut self, args: &[&str]) -> io::Result<FqConfig> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let mut it = args.iter();
        while let Some(&key) = it.next() {
            let mut val = || {
                it.next()
                    .copied()
                    .ok_or_else(|| bad(format!("fq: {key} needs a value")))
            };
            let num = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| bad(format!("fq: {key} {v:?}: not a number")))
            };
            let size = |v: &str| {
                crate::util::parse_size(v)
                    .map_err(|e| bad(format!("fq: {key}: {e}")))
                    .and_then(|n| u32::try_from(n).map_err(|_| bad(format!("fq: {key} too big"))))
            };
            let rate = |v: &str| {
                crate::util::parse_rate(v)
                    .map(|bits| bits / 8)
                    .map_err(|e| bad(format!("fq: {key}: {e}")))
            };
            let time =
                |v: &str| crate::util::parse_time(v).map_err(|e| bad(format!("fq: {key}: {e}")));
            match key {
                "limit" => self.limit = num(val()?)?,
                "flow_limit" => self.flow_limit = num(val()?)?,
                "buckets" => {
                    let n = num(val()?)?;
                    // tc rounds up to a power of two.
                    self.buckets = n.max(1).checked_next_power_of_two().unwrap_or(0);
                }
                "orphan_mask" => self.orphan_mask = num(val()?)?,
                "quantum" => self.quantum = size(val()?)?,
                "initial_quantum" => self.initial_quantum = size(val()?)?,
                "maxrate" => self.maxrate = rate(val()?)?,
                "low_rate_threshold" => self.low_rate_threshold = rate(val()?)?,
                "refill_delay" => self.refill_delay = time(val()?)?,
                "timer_slack" => self.timer_slack = time(val()?)?,
                "horizon" => self.horizon = time(val()?)?,
                "ce_threshold" => self.ce_threshold = Some(time(val()?)?),
                "pacing" => self.pacing = true,
                "nopacing" => self.pacing = false,
                "horizon_drop" => self.horizon_drop = true,
                "horizon_cap" => self.horizon_drop = false,
                other => return Err(bad(format!("fq: unknown option {other:?}"))),
            }
        }
        self.validate()?;
        Ok(self)
    }
}

/// fq's own counters (`tc -s qdisc`'s xstats, Linux's `struct tc_fq_qd_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FqStats {
    /// Flows tracked.
    pub flows: u32,
    /// Flows with no packet queued.
    pub inactive_flows: u32,
    /// Flows waiting for their next departure time now.
    pub throttled_flows: u32,
    /// Flows freed by garbage collection.
    pub gc_flows: u64,
    /// Packets sent through the high-priority queue.
    pub highprio_packets: u64,
    /// Times a flow was throttled.
    pub throttled: u64,
    /// How late throttled flows were released, on average (EWMA, ns).
    pub unthrottle_latency_ns: u64,
    /// Packets marked ECN CE for leaving later than `ce_threshold`.
    pub ce_mark: u64,
    /// Packets dropped because their flow was full.
    pub flows_plimit: u64,
    /// Packets whose pacing delay was clamped to one second.
    pub pkts_too_long: u64,
    /// Flows that could not be created (more than [`FQ_MAX_FLOWS`]).
    pub allocation_errors: u64,
    /// Packets dropped for a timestamp beyond the horizon.
    pub horizon_drops: u64,
    /// Timestamps beyond the horizon brought back to it.
    pub horizon_caps: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowState {
    /// Slot unused.
    Free,
    /// On no list (empty and idle since `age`).
    Detached,
    /// On `new_flows`.
    New,
    /// On `old_flows`.
    Old,
    /// In the delayed heap until `time_next_packet`.
    Throttled,
}

#[derive(Debug)]
struct Flow {
    key: u64,
    /// Packets with their time to send, in that order (FIFO among equal times).
    q: VecDeque<(Instant, Skb)>,
    credit: i64,
    state: FlowState,
    /// When it was detached (for the refill delay and gc).
    age: Instant,
    /// Earliest departure of its next packet (`ZERO`: not yet paced).
    time_next_packet: Instant,
}

/// The Fair Queue scheduler.
#[derive(Debug)]
pub struct Fq {
    cfg: FqConfig,
    flows: Vec<Flow>,
    free: Vec<u32>,
    buckets: Vec<Vec<u32>>,
    bucket_shift: u32,
    new_flows: VecDeque<u32>,
    old_flows: VecDeque<u32>,
    /// Throttled flows by (time_next_packet, insertion order).
    delayed: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    delayed_seq: u64,
    time_next_delayed_flow: Instant,
    internal: VecDeque<Skb>,
    qlen: usize,
    backlog: usize,
    stats: FqStats,
}

impl Fq {
    /// An fq with `cfg`, or an error naming the bad parameter.
    pub fn new(cfg: FqConfig) -> io::Result<Fq> {
        cfg.validate()?;
        Ok(Fq {
            cfg,
            flows: Vec::new(),
            free: Vec::new(),
            buckets: (0..cfg.buckets).map(|_| Vec::new()).collect(),
            bucket_shift: 64 - cfg.buckets.trailing_zeros(),
            new_flows: VecDeque::new(),
            old_flows: VecDeque::new(),
            delayed: BinaryHeap::new(),
            delayed_seq: 0,
            time_next_delayed_flow: Instant::MAX,
            internal: VecDeque::new(),
            qlen: 0,
            backlog: 0,
            stats: FqStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> FqConfig {
        self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> FqStats {
        self.stats
    }

    /// When the earliest throttled flow may send, if any flow is throttled.
    pub fn next_throttled(&self) -> Option<Instant> {
        (self.time_next_delayed_flow != Instant::MAX).then_some(self.time_next_delayed_flow)
    }

    /// `hash_ptr`: the bucket of a flow key.
    fn bucket_of(&self, key: u64) -> usize {
        (key.wrapping_mul(0x61C8_8646_80B5_83EB) >> self.bucket_shift) as usize
    }

    /// `fq_classify`: the flow slot for `skb`, made if new (`None`: the high-priority
    /// queue). Detached flows idle past [`FQ_GC_AGE`] in the same bucket are freed.
    fn classify(&mut self, skb: &mut Skb, now: Instant) -> Option<u32> {
        if skb.priority & 15 == TC_PRIO_CONTROL {
            return None;
        }
        let key = match skb.sk_pacing() {
            // Socket ids are unique: no reallocated-socket check is needed.
            Some(p) => p.id() << 1,
            None => {
                if skb.hash == 0
                    && skb.protocol == ETH_P_IP
                    && skb.network_header_offset().is_some()
                {
                    skb.hash = flow_hash_ipv4(skb.network_header());
                }
                (u64::from(skb.hash & self.cfg.orphan_mask) << 1) | 1
            }
        };
        let b = self.bucket_of(key);
        let mut found = None;
        let mut i = 0;
        while i < self.buckets[b].len() {
            let idx = self.buckets[b][i];
            let f = &self.flows[idx as usize];
            if f.key == key {
                found = Some(idx);
            } else if f.state == FlowState::Detached
                && now.saturating_duration_since(f.age) > FQ_GC_AGE
            {
                self.buckets[b].swap_remove(i);
                self.flows[idx as usize].state = FlowState::Free;
                self.free.push(idx);
                self.stats.flows -= 1;
                self.stats.inactive_flows -= 1;
                self.stats.gc_flows += 1;
                continue;
            }
            i += 1;
        }
        if found.is_some() {
            return found;
        }
        let idx = match self.free.pop() {
            Some(idx) => idx,
            None if self.flows.len() < FQ_MAX_FLOWS => {
                self.flows.push(Flow {
                    key,
                    q: VecDeque::new(),
                    credit: 0,
                    state: FlowState::Free,
                    age: now,
                    time_next_packet: Instant::ZERO,
                });
                (self.flows.len() - 1) as u32
            }
            None => {
                self.stats.allocation_errors += 1;
                return None;
            }
        };
        let f = &mut self.flows[idx as usize];
        f.key = key;
        f.credit = i64::from(self.cfg.initial_quantum);
        f.state = FlowState::Detached;
        f.age = now;
        f.time_next_packet = Instant::ZERO;
        self.buckets[b].push(idx);
        self.stats.flows += 1;
        self.stats.inactive_flows += 1;
        if self.cfg.pacing {
            if let Some(p) = skb.sk_pacing() {
                p.set_fq();
            }
        }
        Some(idx)
    }

    /// `fq_check_throttled`: flows whose time has come go back to `old_flows`.
    fn check_throttled(&mut self, now: Instant) {
        if self.time_next_delayed_flow > now {
            return;
        }
        let sample = (now - self.time_next_delayed_flow).as_nanos() as u64;
        if sample > 0 {
            let l = &mut self.stats.unthrottle_latency_ns;
            *l = *l - (*l >> 3) + (sample >> 3);
        }
        self.time_next_delayed_flow = Instant::MAX;
        while let Some(&Reverse((t, _, idx))) = self.delayed.peek() {
            if t > now {
                self.time_next_delayed_flow = t;
                break;
            }
            self.delayed.pop();
            self.stats.throttled_flows -= 1;
            self.flows[idx as usize].state = FlowState::Old;
            self.old_flows.push_back(idx);
        }
    }

    fn set_throttled(&mut self, idx: u32) {
        let t = self.flows[idx as usize].time_next_packet;
        self.flows[idx as usize].state = FlowState::Throttled;
        self.delayed_seq += 1;
        self.delayed.push(Reverse((t, self.delayed_seq, idx)));
        self.stats.throttled_flows += 1;
        self.stats.throttled += 1;
        self.time_next_delayed_flow = self.time_next_delayed_flow.min(t);
    }

    /// After a packet left flow `idx`: advance its `time_next_packet` by the pacing
    /// rate (the socket's for packets without a departure time, capped by `maxrate`).
    fn pace_after(&mut self, idx: u32, skb: &Skb, now: Instant) {
        let mut plen = skb.len() as u64;
        let mut rate = self.cfg.maxrate;
        let quantum = i64::from(self.cfg.quantum);
        let f = &mut self.flows[idx as usize];
        if skb.tstamp == Instant::ZERO {
            if let Some(p) = skb.sk_pacing() {
                rate = rate.min(p.rate());
            }
            if rate <= self.cfg.low_rate_threshold {
                // Slow flows are paced packet by packet.
                f.credit = 0;
            } else {
                // Faster ones send a quantum, then wait for it.
                plen = plen.max(quantum as u64);
                if f.credit > 0 {
                    return;
                }
            }
        }
        if rate == u64::MAX {
            return;
        }
        let mut len = (u128::from(plen) * u128::from(NSEC_PER_SEC))
            .checked_div(u128::from(rate))
            .unwrap_or(u128::MAX);
        if len > u128::from(NSEC_PER_SEC) {
            len = u128::from(NSEC_PER_SEC);
            self.stats.pkts_too_long += 1;
        }
        let mut len = len as u64;
        if f.time_next_packet != Instant::ZERO {
            // Credit back timer lateness, up to half the gap.
            let late = (now - f.time_next_packet).as_nanos() as u64;
            len -= (len / 2).min(late);
        }
        f.time_next_packet = now + Duration::from_nanos(len);
    }

    fn fmt_time(d: Duration) -> String {
        let ns = d.as_nanos() as f64;
        let (v, unit) = if ns >= 1e9 {
            (ns / 1e9, "s")
        } else if ns >= 1e6 {
            (ns / 1e6, "ms")
        } else if ns >= 1e3 {
            (ns / 1e3, "us")
        } else {
            (ns, "ns")
        };
        format!("{}{unit}", (v * 10.0).round() / 10.0)
    }
}

impl Qdisc for Fq {
    fn kind(&self) -> &'static str {
        "fq"
    }

    fn enqueue(&mut self, mut skb: Skb, _dev: &NetDevice, now: Instant) -> Result<(), Skb> {
        if self.qlen >= self.cfg.limit as usize {
            return Err(skb);
        }
        let time_to_send = if skb.tstamp == Instant::ZERO {
            now
        } else {
            let horizon = now + self.cfg.horizon;
            if skb.tstamp > horizon {
                if self.cfg.horizon_drop {
                    self.stats.horizon_drops += 1;
                    return Err(skb);
                }
                self.stats.horizon_caps += 1;
                skb.tstamp = horizon;
            }
            skb.tstamp
        };
        let len = skb.len();
        let Some(idx) = self.classify(&mut skb, now) else {
            self.internal.push_back(skb);
            self.stats.highprio_packets += 1;
            self.qlen += 1;
            self.backlog += len;
            return Ok(());
        };
        let quantum = i64::from(self.cfg.quantum);
        let f = &mut self.flows[idx as usize];
        if f.q.len() >= self.cfg.flow_limit as usize {
            self.stats.flows_plimit += 1;
            return Err(skb);
        }
        if f.state == FlowState::Detached {
            f.state = FlowState::New;
            if now.saturating_duration_since(f.age) > self.cfg.refill_delay {
                f.credit = f.credit.max(quantum);
            }
            self.new_flows.push_back(idx);
        }
        if f.q.is_empty() {
            self.stats.inactive_flows -= 1;
        }
        // Out-of-order departure times are sorted in; equal times stay FIFO.
        match f.q.back() {
            Some((t, _)) if *t > time_to_send => {
                let at = f.q.partition_point(|(t, _)| *t <= time_to_send);
                f.q.insert(at, (time_to_send, skb));
            }
            _ => f.q.push_back((time_to_send, skb)),
        }
        self.qlen += 1;
        self.backlog += len;
        Ok(())
    }

    fn dequeue(&mut self, now: Instant) -> Dequeue {
        if self.qlen == 0 {
            return Dequeue::Empty;
        }
        if let Some(skb) = self.internal.pop_front() {
            self.qlen -= 1;
            self.backlog -= skb.len();
            return Dequeue::Packet(skb);
        }
        self.check_throttled(now);
        let (idx, mut skb, late) = loop {
            let from_new = !self.new_flows.is_empty();
            let head = if from_new {
                self.new_flows.front()
            } else {
                self.old_flows.front()
            };
            let Some(&idx) = head else {
                return match self.next_throttled() {
                    Some(t) => Dequeue::Throttled(t),
                    None => Dequeue::Empty,
                };
            };
            let list = if from_new {
                &mut self.new_flows
            } else {
                &mut self.old_flows
            };
            let f = &mut self.flows[idx as usize];
            if f.credit <= 0 {
                f.credit += i64::from(self.cfg.quantum);
                list.pop_front();
                f.state = FlowState::Old;
                self.old_flows.push_back(idx);
                continue;
            }
            let Some(&(time_to_send, _)) = f.q.front() else {
                list.pop_front();
                if from_new {
                    // One pass through old_flows first, so new flows cannot starve them.
                    f.state = FlowState::Old;
                    self.old_flows.push_back(idx);
                } else {
                    f.state = FlowState::Detached;
                    f.age = now;
                }
                continue;
            };
            let time_next_packet = time_to_send.max(f.time_next_packet);
            if now < time_next_packet {
                list.pop_front();
                f.time_next_packet = time_next_packet;
                self.set_throttled(idx);
                continue;
            }
            let Some((_, skb)) = f.q.pop_front() else {
                continue;
            };
            if f.q.is_empty() {
                self.stats.inactive_flows += 1;
            }
            let late = self
                .cfg
                .ce_threshold
                .is_some_and(|ce| now.saturating_duration_since(time_next_packet) > ce);
            break (idx, skb, late);
        };
        if late && set_ce(&mut skb) {
            self.stats.ce_mark += 1;
        }
        self.qlen -= 1;
        self.backlog -= skb.len();
        self.flows[idx as usize].credit -= skb.len() as i64;
        if self.cfg.pacing {
            self.pace_after(idx, &skb, now);
        }
        Dequeue::Packet(skb)
    }

    fn qlen(&self) -> usize {
        self.qlen
    }

    fn backlog(&self) -> usize {
        self.backlog
    }

    fn reset(&mut self) -> usize {
        let n = self.qlen;
        self.internal.clear();
        for b in &mut self.buckets {
            b.clear();
        }
        self.free.clear();
        for (i, f) in self.flows.iter_mut().enumerate() {
            f.q.clear();
            f.state = FlowState::Free;
            self.free.push(i as u32);
        }
        self.new_flows.clear();
        self.old_flows.clear();
        self.delayed.clear();
        self.time_next_delayed_flow = Instant::MAX;
        self.qlen = 0;
        self.backlog = 0;
        self.stats.flows = 0;
        self.stats.inactive_flows = 0;
        self.stats.throttled_flows = 0;
        n
    }

    fn describe(&self) -> String {
        let c = &self.cfg;
        let mut s = format!(
            "limit {}p flow_limit {}p buckets {} orphan_mask {} ",
            c.limit, c.flow_limit, c.buckets, c.orphan_mask
        );
        if !c.pacing {
            s.push_str("nopacing ");
        }
        let _ = write!(
            s,
            "quantum {}b initial_quantum {}b ",
            c.quantum, c.initial_quantum
        );
        if c.maxrate != u64::MAX {
            let _ = write!(
                s,
                "maxrate {} ",
                crate::util::fmt_rate(c.maxrate.saturating_mul(8))
            );
        }
        if c.low_rate_threshold != 0 {
            let _ = write!(
                s,
                "low_rate_threshold {} ",
                crate::util::fmt_rate(c.low_rate_threshold.saturating_mul(8))
            );
        }
        let _ = write!(s, "refill_delay {} ", Self::fmt_time(c.refill_delay));
        if let Some(ce) = c.ce_threshold {
            let _ = write!(s, "ce_threshold {} ", Self::fmt_time(ce));
        }
        let _ = write!(
            s,
            "timer_slack {} horizon {} {}",
            Self::fmt_time(c.timer_slack),
            Self::fmt_time(c.horizon),
            if c.horizon_drop {
                "horizon_drop"
            } else {
                "horizon_cap"
            }
        );
        s
    }

    fn xstats(&self) -> Option<String> {
        let st = &self.stats;
        let mut s = format!(
            "  flows {} (inactive {} throttled {})\n  gc {} highprio {} throttled {}",
            st.flows,
            st.inactive_flows,
            st.throttled_flows,
            st.gc_flows,
            st.highprio_packets,
            st.throttled
        );
        if st.unthrottle_latency_ns != 0 {
            let _ = write!(
                s,
                " latency {}",
                Self::fmt_time(Duration::from_nanos(st.unthrottle_latency_ns))
            );
        }
        if st.ce_mark != 0 {
            let _ = write!(s, " ce_mark {}", st.ce_mark);
        }
        if st.flows_plimit != 0 {
            let _ = write!(s, " flows_plimit {}", st.flows_plimit);
        }
        if st.pkts_too_long != 0
            || st.allocation_errors != 0
            || st.horizon_drops != 0
            || st.horizon_caps != 0
        {
            let _ = write!(
                s,
                "\n  pkts_too_long {} alloc_errors {}",
                st.pkts_too_long, st.allocation_errors
            );
            if st.horizon_drops != 0 {
                let _ = write!(s, " horizon_drops {}", st.horizon_drops);
            }
            if st.horizon_caps != 0 {
                let _ = write!(s, " horizon_caps {}", st.horizon_caps);
            }
        }
        Some(s)
    }
}

/// `INET_ECN_set_ce` for IPv4: mark an ECN-capable packet Congestion Experienced and
/// fix the header checksum. Returns whether the packet carries CE now.
fn set_ce(skb: &mut Skb) -> bool {
    if skb.protocol != ETH_P_IP || skb.network_header_offset().is_none() {
        return false;
    }
    let h = skb.network_header_mut();
    let ihl = usize::from(h.first().copied().unwrap_or(0) & 0x0f) * 4;
    if h.len() < 20 || h[0] >> 4 != 4 || ihl < 20 || h.len() < ihl {
        return false;
    }
    match h[1] & 3 {
        0 => return false,
        3 => return true,
        _ => {}
    }
    h[1] |= 3;
    h[10] = 0;
    h[11] = 0;
    let sum = usnet_wire::checksum::checksum(&h[..ihl]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    true
}

#[cfg(test)]
#[path = "fq_tests.rs"]
mod tests;
