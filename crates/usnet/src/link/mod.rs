//! The in-memory wire that emulated NICs plug into: a point-to-point cable between two
//! ports, or a learning switch between more. Each port's incoming direction carries
//! its own [`Netem`] impairments.
//!
//! Frames travel as skbs: the emulated DMA hands the buffer on instead of copying it
//! (payload pages stay shared with the sender's retransmit queue; nothing on the wire
//! ever writes to them — a corrupted frame is copied first). A frame whose transport
//! checksum was offloaded (`CHECKSUM_PARTIAL`) crosses unfinished, as over Linux's
//! veth: the receiving NIC knows it is intact. The checksum is finished in software
//! only when the bytes matter — before a corruption, so the receiver can detect it.
//!
//! A TSO packet from a NIC is a train of frames that leave back to back. The wire
//! keeps the train whole where nothing would see its frames one by one — the port's
//! direction has no impairment or drop filter and the receiving NIC coalesces TCP
//! segments in hardware ([`Endpoint::accepts_coalesced`], `NETIF_F_GRO_HW`), so what
//! it would rebuild is the packet that was sent — and otherwise cuts it into its
//! frames at the sender (the NIC's TSO engine, [`segment`]) before impairing and
//! queueing each. The counters count frames either way.
//!
//! Each port counts what it was sent and what became of it, so a test can check that
//! `sent = delivered + lost + dropped(limit) + malformed - duplicated` holds exactly.

pub mod netem;

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use usnet_wire::EthernetAddress;

use netem::NetemState;
pub use netem::{Loss, Netem};

use crate::dev::gso::{segment, skb_checksum_help, wire_frames};
use crate::dev::rx::ETH_HLEN;
use crate::skb::{GsoType, IpSummed, Skb};
use crate::time::{Clock, Instant};

/// Something plugged into a wire port (a NIC's PHY).
pub trait Endpoint: Send + Sync {
    /// A frame will be waiting at this port at `at` (now or later): pull it with
    /// [`Wire::pull`] then.
    fn frame_arriving(&self, at: Instant);

    /// Whether this port's NIC coalesces in-order TCP segments in hardware (GRO_HW)
    /// into a packet of `ip_len` bytes (IP header on), so a TSO train that long may
    /// reach it whole over an unimpaired direction.
    fn accepts_coalesced(&self, ip_len: usize) -> bool {
        let _ = ip_len;
        false
    }
}

/// Counters of one port's incoming direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames sent towards this port.
    pub sent: u64,
    /// Bytes sent towards this port.
    pub sent_bytes: u64,
    /// Frames handed to the port's NIC.
    pub delivered: u64,
    /// Bytes handed to the port's NIC.
    pub delivered_bytes: u64,
    /// Frames lost by the loss model.
    pub lost: u64,
    /// Frames dropped because the link queue was at its limit.
    pub dropped_limit: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Frames with a flipped bit.
    pub corrupted: u64,
    /// Frames sent ahead of delayed ones.
    pub reordered: u64,
    /// TSO packets that could not be cut into frames (unreadable headers), dropped;
    /// counted once each.
    pub malformed: u64,
}

impl PortStats {
    /// Every counter by name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("sent", self.sent),
            ("sent_bytes", self.sent_bytes),
            ("delivered", self.delivered),
            ("delivered_bytes", self.delivered_bytes),
            ("lost", self.lost),
            ("dropped_limit", self.dropped_limit),
            ("duplicated", self.duplicated),
            ("corrupted", self.corrupted),
            ("reordered", self.reordered),
            ("malformed", self.malformed),
        ]
    }
}

struct InFlight {
    tts: Instant,
    skb: Skb,
    /// Frames it stands for on the wire (a TSO train: more than one) and their bytes.
    frames: u64,
    bytes: u64,
}

impl InFlight {
    fn frame(tts: Instant, skb: Skb) -> InFlight {
        let bytes = skb.len() as u64;
        InFlight {
            tts,
            skb,
            frames: 1,
            bytes,
        }
    }
}

/// A drop filter: frames (from the Ethernet header) for which it returns true are lost.
pub type DropFilter = Arc<dyn Fn(&Skb) -> bool + Send + Sync>;

struct Direction {
    netem: Netem,
    /// Targeted drops for tests ("lose the 3rd data segment"), applied before netem.
    filter: Option<DropFilter>,
    state: NetemState,
    /// Frames ordered by time to send (ties in arrival order).
    queue: VecDeque<InFlight>,
    stats: PortStats,
    /// Frames of the TSO train being cut (kept for its capacity).
    cut: Vec<Skb>,
}

impl Direction {
    /// Queue keeping the order by (time to send, arrival); the common case appends.
    fn insert(&mut self, item: InFlight) {
        if self.queue.back().is_none_or(|b| b.tts <= item.tts) {
            self.queue.push_back(item);
        } else {
            let pos = self.queue.partition_point(|e| e.tts <= item.tts);
            self.queue.insert(pos, item);
        }
    }
}

struct Port {
    endpoint: OnceLock<Arc<dyn Endpoint>>,
    dir: Mutex<Direction>,
}

/// A port number on a wire.
pub type PortId = usize;

/// Ports handled without allocation per transmit batch.
const MAX_FAST_PORTS: usize = 16;

/// A small list of destination ports (inline up to [`MAX_FAST_PORTS`]).
#[derive(Default)]
struct Dests {
    inline: [PortId; MAX_FAST_PORTS],
    len: usize,
    more: Vec<PortId>,
}

impl Dests {
    fn clear(&mut self) {
        self.len = 0;
        self.more.clear();
    }
    fn push(&mut self, p: PortId) {
        if self.len < MAX_FAST_PORTS {
            self.inline[self.len] = p;
            self.len += 1;
        } else {
            self.more.push(p);
        }
    }
    fn len(&self) -> usize {
        self.len + self.more.len()
    }
    fn iter(&self) -> impl Iterator<Item = PortId> + '_ {
        self.inline[..self.len]
            .iter()
            .copied()
            .chain(self.more.iter().copied())
    }
}

struct WireInner {
    clock: Arc<dyn Clock>,
    ports: Box<[Port]>,
    attached: AtomicUsize,
    fdb: Mutex<HashMap<EthernetAddress, PortId>>,
}

/// An emulated wire (cable or switch). Clones share it.
#[derive(Clone)]
pub struct Wire {
    inner: Arc<WireInner>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("ports", &self.inner.ports.len())
            .field("attached", &self.attached())
            .finish()
    }
}

impl Wire {
    /// A cable (two ports) using `clock`, whose impairments draw from `seed`.
    pub fn new(clock: Arc<dyn Clock>, seed: u64) -> Wire {
        Wire::switch(clock, seed, 2)
    }

    /// A learning switch with `ports` ports (a cable when 2).
    pub fn switch(clock: Arc<dyn Clock>, seed: u64, ports: usize) -> Wire {
        let ports = (0..ports.max(2))
            .map(|id| Port {
                endpoint: OnceLock::new(),
                dir: Mutex::new(Direction {
                    netem: Netem::default(),
                    filter: None,
                    state: NetemState::new(seed ^ (0x9e37_79b9 * (id as u64 + 1))),
                    queue: VecDeque::new(),
                    stats: PortStats::default(),
                    cut: Vec::new(),
                }),
            })
            .collect();
        Wire {
            inner: Arc::new(WireInner {
                clock,
                ports,
                attached: AtomicUsize::new(0),
                fdb: Mutex::new(HashMap::default()),
            }),
        }
    }

    /// Plug an endpoint into the next free port; `None` when all are taken. The wire
    /// keeps the endpoint alive, so it must not own the wire.
    pub fn attach(&self, endpoint: Arc<dyn Endpoint>) -> Option<PortId> {
        let id = self.inner.attached.fetch_add(1, Ordering::AcqRel);
        let port = self.inner.ports.get(id)?;
        port.endpoint.set(endpoint).ok()?;
        Some(id)
    }

    /// Number of ports.
    pub fn ports(&self) -> usize {
        self.inner.ports.len()
    }

    /// Number of attached endpoints.
    pub fn attached(&self) -> usize {
        self.inner
            .attached
            .load(Ordering::Acquire)
            .min(self.inner.ports.len())
    }

    /// Set the impairments of frames going *to* `port`.
    pub fn set_netem(&self, port: PortId, netem: Netem) {
        if let Some(p) = self.inner.ports.get(port) {
            p.dir.lock().netem = netem;
        }
    }

    /// Drop frames going to `port` for which `filter` returns true (counted as `lost`);
    /// `None` removes the filter. For tests that need a specific segment lost.
    pub fn set_drop_filter(&self, port: PortId, filter: Option<DropFilter>) {
        if let Some(p) = self.inner.ports.get(port) {
            p.dir.lock().filter = filter;
        }
    }

    /// The impairments of frames going to `port`.
    pub fn netem(&self, port: PortId) -> Option<Netem> {
        self.inner.ports.get(port).map(|p| p.dir.lock().netem)
    }

    /// Counters of frames going to `port`.
    pub fn stats(&self, port: PortId) -> Vec<(&'static str, u64)> {
        self.inner
            .ports
            .get(port)
            .map(|p| p.dir.lock().stats.snapshot())
            .unwrap_or_default()
    }

    /// Frames waiting on the link towards `port`.
    pub fn in_flight(&self, port: PortId) -> usize {
        self.inner
            .ports
            .get(port)
            .map(|p| p.dir.lock().queue.len())
            .unwrap_or(0)
    }

    /// Where a frame from `from` goes: the other end of a cable, or as a learning switch
    /// forwards it (flooding broadcasts and unknown destinations).
    fn destinations(&self, from: PortId, frame: &[u8], n: usize, out: &mut Dests) {
        if n == 2 {
            out.push(1 - from.min(1));
            return;
        }
        if frame.len() < 12 {
            return;
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[0..6]);
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        let (dst, src) = (EthernetAddress(dst), EthernetAddress(src));
        let mut fdb = self.inner.fdb.lock();
        if src.is_unicast() {
            fdb.insert(src, from);
        }
        match fdb.get(&dst) {
            Some(&p) if dst.is_unicast() => {
                if p != from {
                    out.push(p);
                }
            }
            _ => {
                for p in (0..n).filter(|&p| p != from) {
                    out.push(p);
                }
            }
        }
    }

    /// Put frames from port `from` on the wire (the NIC's transmit side). Takes them out
    /// of `frames`.
    pub fn transmit(&self, from: PortId, frames: &mut Vec<Skb>) {
        let now = self.inner.clock.now();
        // Earliest arrival per destination port among the frames just queued, so each
        // endpoint is told once per batch.
        let mut wake: [Option<Instant>; MAX_FAST_PORTS] = [None; MAX_FAST_PORTS];
        let mut wake_many: Vec<(PortId, Instant)> = Vec::new();
        let ports = &self.inner.ports;
        let n = self.attached();
        let mut dests = Dests::default();
        for skb in frames.drain(..) {
            dests.clear();
            self.destinations(from, skb.data(), n, &mut dests);
            let mut skb = Some(skb);
            let nd = dests.len();
            for (i, d) in dests.iter().enumerate() {
                let copy = if i + 1 == nd {
                    skb.take()
                } else {
                    skb.as_ref().map(|s| s.clone_shared())
                };
                let (Some(copy), Some(port)) = (copy, ports.get(d)) else {
                    continue;
                };
                if let Some(at) = Self::enqueue(port, copy, now) {
                    match wake.get_mut(d) {
                        Some(w) => *w = Some(w.map_or(at, |x: Instant| x.min(at))),
                        None => wake_many.push((d, at)),
                    }
                }
            }
        }
        let notify = |d: PortId, at: Instant| {
            if let Some(ep) = ports.get(d).and_then(|p| p.endpoint.get()) {
                ep.frame_arriving(at);
            }
        };
        for (d, at) in wake.iter().enumerate() {
            if let Some(at) = at {
                notify(d, *at);
            }
        }
        for (d, at) in wake_many {
            notify(d, at);
        }
    }

    /// Queue a frame or a TSO train for `port` — whole if nothing on the way would
    /// see its frames one by one, else cut into frames each impaired on its own.
    /// Returns the earliest arrival of what was queued.
    fn enqueue(port: &Port, skb: Skb, now: Instant) -> Option<Instant> {
        let mut guard = port.dir.lock();
        let d = &mut *guard;
        if !skb.is_gso() {
            return Self::enqueue_frame(d, skb, now);
        }
        let whole = skb.gso_type == GsoType::TcpV4
            && d.filter.is_none()
            && d.netem.is_clean()
            && port
                .endpoint
                .get()
                .is_some_and(|e| e.accepts_coalesced(skb.len().saturating_sub(ETH_HLEN)));
        if whole {
            let (frames, bytes) = wire_frames(&skb);
            d.stats.sent += frames;
            d.stats.sent_bytes += bytes;
            if d.queue.len() >= d.netem.limit {
                d.stats.dropped_limit += frames;
                return None;
            }
            d.insert(InFlight {
                tts: now,
                skb,
                frames,
                bytes,
            });
            return Some(now);
        }
        let mut cut = std::mem::take(&mut d.cut);
        if segment(skb, true, &mut cut).is_err() {
            d.stats.sent += 1;
            d.stats.malformed += 1;
        }
        let mut earliest: Option<Instant> = None;
        for f in cut.drain(..) {
            if let Some(at) = Self::enqueue_frame(d, f, now) {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        d.cut = cut;
        earliest
    }

    /// Apply the direction's impairments to one frame and queue it; returns its
    /// arrival time if it was queued.
    fn enqueue_frame(d: &mut Direction, skb: Skb, now: Instant) -> Option<Instant> {
        d.stats.sent += 1;
        d.stats.sent_bytes += skb.len() as u64;
        if d.filter.as_ref().is_some_and(|f| f(&skb)) {
            d.stats.lost += 1;
            return None;
        }
        let cfg = d.netem;
        if cfg.is_clean() && d.queue.is_empty() {
            d.queue.push_back(InFlight::frame(now, skb));
            return Some(now);
        }
        let v = d.state.decide(&cfg);
        if v.copies == 0 {
            d.stats.lost += 1;
            return None;
        }
        let mut skb = skb;
        let dup = if v.copies > 1 {
            d.stats.duplicated += 1;
            Some(skb.clone_shared())
        } else {
            None
        };
        if v.corrupt {
            d.stats.corrupted += 1;
            skb = corrupt(skb, &mut d.state.rng);
        }
        let mut earliest: Option<Instant> = None;
        for (i, s) in std::iter::once(skb).chain(dup).enumerate() {
            if d.queue.len() >= cfg.limit {
                d.stats.dropped_limit += 1;
                continue;
            }
            let tts = if v.reorder && i == 0 {
                d.stats.reordered += 1;
                now
            } else {
                let len = s.len();
                d.state.time_to_send(&cfg, len, now)
            };
            d.insert(InFlight::frame(tts, s));
            earliest = Some(earliest.map_or(tts, |e| e.min(tts)));
        }
        earliest
    }

    /// Take every frame that has arrived at `port` by `now` (the NIC's receive side),
    /// handing each to `f` with the frames it stands for and their bytes (a TSO train
    /// that crossed whole is one GSO skb of many frames). Returns when the next one arrives, if any wait.
    pub fn pull(
        &self,
        port: PortId,
        now: Instant,
        mut f: impl FnMut(Skb, u64, u64),
    ) -> Option<Instant> {
        let p = self.inner.ports.get(port)?;
        let mut d = p.dir.lock();
        let (mut n, mut bytes) = (0u64, 0u64);
        while d.queue.front().is_some_and(|e| e.tts <= now) {
            if let Some(e) = d.queue.pop_front() {
                n += e.frames;
                bytes += e.bytes;
                f(e.skb, e.frames, e.bytes);
            }
        }
        d.stats.delivered += n;
        d.stats.delivered_bytes += bytes;
        d.queue.front().map(|e| e.tts)
    }
}

/// Flip one random bit of a private copy of the frame, after finishing any offloaded
/// checksum so the receiver can tell.
fn corrupt(mut skb: Skb, rng: &mut crate::rng::Rng) -> Skb {
    if skb.ip_summed == IpSummed::Partial {
        skb_checksum_help(&mut skb);
    }
    let mut c = skb.copy_linear(skb.headroom());
    let len = c.len();
    if len > 0 {
        let byte = rng.below(len as u32) as usize;
        let bit = rng.below(8);
        c.data_mut()[byte] ^= 1 << bit;
    }
    c
}

#[cfg(test)]
mod tests;
