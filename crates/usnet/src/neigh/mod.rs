//! The neighbour subsystem (Linux's `net/core/neighbour.c`): the table that maps a next
//! hop's IPv4 address to its link-layer address, with the NUD state machine, timers,
//! the per-entry `arp_queue` of packets waiting for resolution, and the cached hardware
//! header used once the neighbour is connected (seed 000 §五, seed 002 §3).
//!
//! The path, as `ip_finish_output2` takes it:
//!
//! * [`NeighTable::lookup`] (`__ipv4_neigh_lookup_noref`) or [`NeighTable::create`]
//!   (`__neigh_create`, with garbage collection when the table passes its thresholds);
//! * [`neigh_output`]: a connected neighbour with a cached header goes through
//!   [`neigh_hh_output`] (copy the 14-byte header, read under a seqlock so a concurrent
//!   MAC change never tears it); otherwise [`neigh_resolve_output`];
//! * [`neigh_resolve_output`] → [`neigh_event_send`]: an unresolved neighbour becomes
//!   INCOMPLETE, the packet waits on `arp_queue` (bounded in bytes, oldest dropped),
//!   and `neigh_probe` sends an ARP request (`arp_solicit`); a STALE one becomes DELAY
//!   and the packet goes out with the old address;
//! * the timer ([`neigh_timer_handler`]) walks REACHABLE → DELAY/STALE, DELAY →
//!   REACHABLE/PROBE, and re-probes INCOMPLETE/PROBE entries every `retrans_time` until
//!   `neigh_max_probes`, then FAILED: queued packets are reported back to their senders
//!   (`arp_error_report` → ICMP host unreachable → `EHOSTUNREACH` on the socket);
//! * [`neigh_update`] applies ARP input (a reply makes it REACHABLE, anything else
//!   STALE; a changed address only with override) and flushes `arp_queue` in order once
//!   the entry becomes valid.
//!
//! States and timers are Linux's defaults: `retrans_time` 1 s, `base_reachable_time` 30 s
//! randomised to 15–45 s, `delay_first_probe_time` 5 s, 3 unicast and 3 multicast probes,
//! `gc_stale_time` 60 s, `gc_thresh1/2/3` 128/512/1024, `unres_qlen_bytes` 212992.

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use usnet_wire::EthernetAddress;

use crate::dev::xmit::dev_queue_xmit;
use crate::dev::{NetDevice, NetXmit};
use crate::skb::Skb;
use crate::time::Instant;
use crate::timer::Timer;
use crate::trace::Stage;
use crate::Stack;

/// NUD state bits (Linux's `NUD_*`).
pub mod nud {
    /// Resolution in progress.
    pub const INCOMPLETE: u8 = 0x01;
    /// Confirmed recently.
    pub const REACHABLE: u8 = 0x02;
    /// Valid but unconfirmed.
    pub const STALE: u8 = 0x04;
    /// Used while stale: waiting for upper-layer confirmation before probing.
    pub const DELAY: u8 = 0x08;
    /// Probing with unicast ARP requests.
    pub const PROBE: u8 = 0x10;
    /// Resolution failed.
    pub const FAILED: u8 = 0x20;
    /// No resolution needed (point-to-point, loopback).
    pub const NOARP: u8 = 0x40;
    /// Static entry.
    pub const PERMANENT: u8 = 0x80;
    /// Freshly created.
    pub const NONE: u8 = 0x00;
    /// States with a running timer.
    pub const IN_TIMER: u8 = INCOMPLETE | REACHABLE | DELAY | PROBE;
    /// States with a usable address.
    pub const VALID: u8 = PERMANENT | NOARP | REACHABLE | PROBE | STALE | DELAY;
    /// States where packets go out without checks.
    pub const CONNECTED: u8 = PERMANENT | NOARP | REACHABLE;

    /// The name `ip neigh` prints.
    pub fn name(state: u8) -> &'static str {
        match state {
            INCOMPLETE => "INCOMPLETE",
            REACHABLE => "REACHABLE",
            STALE => "STALE",
            DELAY => "DELAY",
            PROBE => "PROBE",
            FAILED => "FAILED",
            NOARP => "NOARP",
            PERMANENT => "PERMANENT",
            _ => "NONE",
        }
    }
}

/// Per-table parameters (Linux's `struct neigh_parms`, `net.ipv4.neigh.default.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighParms {
    /// Base of the randomised reachable time (30 s).
    pub base_reachable_time: Duration,
    /// Interval between probes (1 s).
    pub retrans_time: Duration,
    /// Time in DELAY before probing (5 s).
    pub delay_probe_time: Duration,
    /// Unused entries older than this are collected (60 s).
    pub gc_stale_time: Duration,
    /// Unicast probes in PROBE (3).
    pub ucast_probes: u32,
    /// Broadcast probes in INCOMPLETE (3).
    pub mcast_probes: u32,
    /// Probes via a user-space daemon (0).
    pub app_probes: u32,
    /// Broadcast re-probes in PROBE (0).
    pub mcast_reprobes: u32,
    /// Bytes that may wait on one entry's `arp_queue` (`unres_qlen_bytes`, 212992).
    pub unres_qlen_bytes: usize,
    /// A second ARP reply within this time does not override the first (1 s).
    pub locktime: Duration,
}

impl Default for NeighParms {
    fn default() -> Self {
        NeighParms {
            base_reachable_time: Duration::from_secs(30),
            retrans_time: Duration::from_secs(1),
            delay_probe_time: Duration::from_secs(5),
            gc_stale_time: Duration::from_secs(60),
            ucast_probes: 3,
            mcast_probes: 3,
            app_probes: 0,
            mcast_reprobes: 0,
            unres_qlen_bytes: 212_992,
            locktime: Duration::from_secs(1),
        }
    }
}

/// Table counters (`/proc/net/stat/arp_cache`, `ip -s ntable`).
#[derive(Debug, Default)]
pub struct NeighStats {
    /// Entries created.
    pub allocs: AtomicU64,
    /// Entries destroyed.
    pub destroys: AtomicU64,
    /// Lookups.
    pub lookups: AtomicU64,
    /// Lookups that found an entry.
    pub hits: AtomicU64,
    /// Resolutions that failed.
    pub res_failed: AtomicU64,
    /// Periodic garbage collections.
    pub periodic_gc_runs: AtomicU64,
    /// Forced garbage collections (table over `gc_thresh2/3`).
    pub forced_gc_runs: AtomicU64,
    /// Packets dropped from a full `arp_queue`.
    pub unresolved_discards: AtomicU64,
    /// Creations refused because the table was full.
    pub table_fulls: AtomicU64,
    /// Broadcast ARP requests received.
    pub rcv_probes_mcast: AtomicU64,
    /// Unicast ARP requests received.
    pub rcv_probes_ucast: AtomicU64,
}

impl NeighStats {
    /// Every counter by Linux's name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("allocs", l(&self.allocs)),
            ("destroys", l(&self.destroys)),
            ("lookups", l(&self.lookups)),
            ("hits", l(&self.hits)),
            ("res_failed", l(&self.res_failed)),
            ("periodic_gc_runs", l(&self.periodic_gc_runs)),
            ("forced_gc_runs", l(&self.forced_gc_runs)),
            ("unresolved_discards", l(&self.unresolved_discards)),
            ("table_fulls", l(&self.table_fulls)),
            ("rcv_probes_mcast", l(&self.rcv_probes_mcast)),
            ("rcv_probes_ucast", l(&self.rcv_probes_ucast)),
        ]
    }
}

/// The cached hardware header (Linux's `struct hh_cache`), read under a seqlock so a
/// reader never sees half of an old and half of a new MAC.
#[derive(Default)]
struct HhCache {
    seq: AtomicU32,
    words: [AtomicU64; 2],
    valid: AtomicU8,
}

impl HhCache {
    fn write(&self, hdr: &[u8; 14]) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        std::sync::atomic::fence(Ordering::Release);
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&hdr[0..8]);
        b[..6].copy_from_slice(&hdr[8..14]);
        self.words[0].store(u64::from_le_bytes(a), Ordering::Relaxed);
        self.words[1].store(u64::from_le_bytes(b), Ordering::Relaxed);
        self.valid.store(1, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release);
    }

    fn read(&self) -> Option<[u8; 14]> {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let valid = self.valid.load(Ordering::Relaxed);
            let a = self.words[0].load(Ordering::Relaxed).to_le_bytes();
            let b = self.words[1].load(Ordering::Relaxed).to_le_bytes();
            std::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            if valid == 0 {
                return None;
            }
            let mut h = [0u8; 14];
            h[..8].copy_from_slice(&a);
            h[8..].copy_from_slice(&b[..6]);
            return Some(h);
        }
    }
}

struct NeighState {
    nud: u8,
    ha: EthernetAddress,
    probes: u32,
    queue: VecDeque<Skb>,
    queue_bytes: usize,
    updated: Instant,
    dead: bool,
}

/// One neighbour entry (Linux's `struct neighbour`).
pub struct Neighbour {
    /// The next hop's IPv4 address.
    pub key: Ipv4Addr,
    /// The device it is reached through.
    pub dev: Arc<NetDevice>,
    st: Mutex<NeighState>,
    /// Lock-free mirror of the NUD state for the output fast path.
    nud_fast: AtomicU8,
    hh: HhCache,
    /// Last use (ns), for the REACHABLE → DELAY decision and GC.
    used: AtomicU64,
    /// Last confirmation of reachability (ns): ARP reply or upper-layer hint.
    confirmed: AtomicU64,
    timer: OnceLock<Timer>,
}

impl fmt::Debug for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.st.lock();
        f.debug_struct("Neighbour")
            .field("key", &self.key)
            .field("dev", &self.dev.name())
            .field("state", &nud::name(st.nud))
            .field("ha", &st.ha)
            .field("queued", &st.queue.len())
            .finish()
    }
}

/// A snapshot of an entry, as `ip -s neigh` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighInfo {
    /// Address.
    pub addr: Ipv4Addr,
    /// Device name.
    pub dev: String,
    /// Link-layer address, when valid.
    pub lladdr: Option<EthernetAddress>,
    /// NUD state bits.
    pub state: u8,
    /// Probes sent in the current round.
    pub probes: u32,
    /// Seconds since last use, confirmation and update.
    pub used_confirmed_updated: (u64, u64, u64),
    /// Packets waiting for resolution.
    pub queued: usize,
}

impl fmt::Display for NeighInfo {
    /// `ip -s neigh` format: `10.0.0.2 dev eth0 lladdr 02:00:00:00:00:02 used 0/0/0
    /// probes 1 REACHABLE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.addr, self.dev)?;
        if let Some(ll) = self.lladdr {
            write!(f, " lladdr {ll}")?;
        }
        let (u, c, up) = self.used_confirmed_updated;
        write!(
            f,
            " used {u}/{c}/{up} probes {} {}",
            self.probes,
            nud::name(self.state)
        )
    }
}

impl Neighbour {
    /// The NUD state.
    pub fn state(&self) -> u8 {
        self.nud_fast.load(Ordering::Acquire)
    }

    /// The link-layer address (meaningful when the state is valid).
    pub fn ha(&self) -> EthernetAddress {
        self.st.lock().ha
    }

    /// Packets waiting on `arp_queue`.
    pub fn queued(&self) -> usize {
        self.st.lock().queue.len()
    }

    /// `neigh_confirm`: an upper layer saw forward progress (a TCP ACK for new data), so
    /// the neighbour is reachable without probing.
    pub fn confirm(&self, now: Instant) {
        self.confirmed.store(now.as_nanos(), Ordering::Relaxed);
    }

    pub(crate) fn updated_at(&self) -> Instant {
        self.st.lock().updated
    }

    fn set_nud(&self, st: &mut NeighState, nud: u8) {
        st.nud = nud;
        self.nud_fast.store(nud, Ordering::Release);
    }

    fn info(&self, now: Instant) -> NeighInfo {
        let st = self.st.lock();
        let secs = |t: u64| now.as_nanos().saturating_sub(t) / 1_000_000_000;
        NeighInfo {
            addr: self.key,
            dev: self.dev.name().to_string(),
            lladdr: (st.nud & nud::VALID != 0).then_some(st.ha),
            state: st.nud,
            probes: st.probes,
            used_confirmed_updated: (
                secs(self.used.load(Ordering::Relaxed)),
                secs(self.confirmed.load(Ordering::Relaxed)),
                secs(st.updated.as_nanos()),
            ),
            queued: st.queue.len(),
        }
    }

    fn arm(&self, stack: &Stack, at: Instant) {
        if let Some(t) = self.timer.get() {
            stack.timers.mod_timer(t, at);
        }
    }

    fn disarm(&self) {
        if let Some(t) = self.timer.get() {
            t.del();
        }
    }

    fn update_hh(&self, ha: EthernetAddress) {
        let mut h = [0u8; 14];
        h[0..6].copy_from_slice(&ha.0);
        h[6..12].copy_from_slice(&self.dev.mac().0);
        h[12..14].copy_from_slice(&crate::dev::rx::ETH_P_IP.to_be_bytes());
        self.hh.write(&h);
    }
}

/// The neighbour table (Linux's `struct neigh_table`, here `arp_tbl`).
pub struct NeighTable {
    /// Parameters.
    pub parms: RwLock<NeighParms>,
    entries: RwLock<HashMap<(u32, Ipv4Addr), Arc<Neighbour>>>,
    /// Counters.
    pub stats: NeighStats,
    /// Below this many entries no periodic GC runs (128).
    pub gc_thresh1: usize,
    /// Above this many, forced GC when the last was over 5 s ago (512).
    pub gc_thresh2: usize,
    /// Hard limit (1024).
    pub gc_thresh3: usize,
    last_flush: Mutex<Instant>,
    /// Current randomised reachable time (ns).
    reachable_time: AtomicU64,
    last_rand: Mutex<Instant>,
    gc_timer: OnceLock<Timer>,
}

impl Default for NeighTable {
    fn default() -> Self {
        NeighTable::new(NeighParms::default())
    }
}

impl fmt::Debug for NeighTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeighTable")
            .field("entries", &self.entries.read().len())
            .finish()
    }
}

/// Linux's `neigh_rand_reach_time`: uniform in `[base/2, 3*base/2)`.
pub fn rand_reach_time(stack: &Stack, base: Duration) -> Duration {
    let b = base.as_nanos() as u64;
    if b == 0 {
        return Duration::ZERO;
    }
    let r = stack.rng.lock().next_u64() % b;
    Duration::from_nanos(b / 2 + r)
}

impl NeighTable {
    /// A table with `parms`.
    pub fn new(parms: NeighParms) -> NeighTable {
        let rt = parms.base_reachable_time.as_nanos() as u64;
        NeighTable {
            parms: RwLock::new(parms),
            entries: RwLock::new(HashMap::default()),
            stats: NeighStats::default(),
            gc_thresh1: 128,
            gc_thresh2: 512,
            gc_thresh3: 1024,
            last_flush: Mutex::new(Instant::ZERO),
            reachable_time: AtomicU64::new(rt),
            last_rand: Mutex::new(Instant::ZERO),
            gc_timer: OnceLock::new(),
        }
    }

    /// The current (randomised) reachable time.
    pub fn reachable_time(&self) -> Duration {
        Duration::from_nanos(self.reachable_time.load(Ordering::Relaxed))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `__ipv4_neigh_lookup_noref`.
    pub fn lookup(&self, dev: &NetDevice, key: Ipv4Addr) -> Option<Arc<Neighbour>> {
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        let n = self.entries.read().get(&(dev.ifindex, key)).cloned();
        if n.is_some() {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
        }
        n
    }

    /// `__neigh_create`: a new NONE entry (or the existing one). Runs forced GC when the
    /// table is over `gc_thresh3`, or over `gc_thresh2` and the last flush was over 5 s
    /// ago; fails (`table_fulls`) if it is still over `gc_thresh3`.
    pub fn create(
        &self,
        stack: &Stack,
        dev: &Arc<NetDevice>,
        key: Ipv4Addr,
    ) -> Option<Arc<Neighbour>> {
        if let Some(n) = self.lookup(dev, key) {
            return Some(n);
        }
        let now = stack.now();
        let len = self.len();
        if len >= self.gc_thresh3
            || (len >= self.gc_thresh2 && now > *self.last_flush.lock() + Duration::from_secs(5))
        {
            self.forced_gc(now);
            if self.len() >= self.gc_thresh3 {
                self.stats.table_fulls.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let n =
            Arc::new_cyclic(|me: &Weak<Neighbour>| {
                let weak = me.clone();
                let timer = Timer::new(move |stack, now| {
                    if let Some(n) = weak.upgrade() {
                        neigh_timer_handler(stack, &n, now);
                    }
                });
                let t = OnceLock::new();
                let _ = t.set(timer);
                Neighbour {
                    key,
                    dev: dev.clone(),
                    st: Mutex::new(NeighState {
                        nud: nud::NONE,
                        ha: EthernetAddress([0; 6]),
                        probes: 0,
                        queue: VecDeque::new(),
                        queue_bytes: 0,
                        updated: now,
                        dead: false,
                    }),
                    nud_fast: AtomicU8::new(nud::NONE),
                    hh: HhCache::default(),
                    used: AtomicU64::new(now.as_nanos()),
                    confirmed: AtomicU64::new(now.as_nanos().saturating_sub(
                        2 * self.parms.read().base_reachable_time.as_nanos() as u64,
                    )),
                    timer: t,
                }
            });
        let mut e = self.entries.write();
        let entry = e.entry((dev.ifindex, key)).or_insert_with(|| {
            self.stats.allocs.fetch_add(1, Ordering::Relaxed);
            n
        });
        let n = entry.clone();
        drop(e);
        self.ensure_gc_timer(stack);
        Some(n)
    }

    /// Add or replace a static entry (`ip neigh replace ... lladdr ... nud permanent`).
    pub fn add_permanent(
        &self,
        stack: &Stack,
        dev: &Arc<NetDevice>,
        key: Ipv4Addr,
        ha: EthernetAddress,
    ) -> Option<Arc<Neighbour>> {
        let n = self.create(stack, dev, key)?;
        neigh_update(
            stack,
            &n,
            Some(ha),
            nud::PERMANENT,
            UpdateFlags::ADMIN_OVERRIDE,
        );
        Some(n)
    }

    /// Remove an entry (`ip neigh del`). Packets waiting on it are dropped.
    pub fn delete(&self, dev: &NetDevice, key: Ipv4Addr) -> bool {
        let n = self.entries.write().remove(&(dev.ifindex, key));
        match n {
            Some(n) => {
                self.kill(&n);
                true
            }
            None => false,
        }
    }

    fn kill(&self, n: &Neighbour) {
        let mut st = n.st.lock();
        st.dead = true;
        st.queue.clear();
        st.queue_bytes = 0;
        drop(st);
        n.disarm();
        self.stats.destroys.fetch_add(1, Ordering::Relaxed);
    }

    /// Every entry, as `ip -s neigh` shows them.
    pub fn dump(&self, now: Instant) -> Vec<NeighInfo> {
        let mut v: Vec<NeighInfo> = self.entries.read().values().map(|n| n.info(now)).collect();
        v.sort_by(|a, b| (a.dev.as_str(), a.addr).cmp(&(b.dev.as_str(), b.addr)));
        v
    }

    /// `neigh_forced_gc`: drop unreferenced, non-permanent entries that failed or were
    /// not updated in the last 5 s.
    fn forced_gc(&self, now: Instant) {
        self.stats.forced_gc_runs.fetch_add(1, Ordering::Relaxed);
        let tref = now - Duration::from_secs(5);
        let mut e = self.entries.write();
        let victims: Vec<(u32, Ipv4Addr)> = e
            .iter()
            .filter(|(_, n)| {
                let st = n.st.lock();
                Arc::strong_count(n) == 1
                    && st.nud & nud::PERMANENT == 0
                    && (st.nud == nud::FAILED || st.updated < tref)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in victims {
            if let Some(n) = e.remove(&k) {
                self.kill(&n);
            }
        }
        *self.last_flush.lock() = now;
    }

    fn ensure_gc_timer(&self, stack: &Stack) {
        let t = self.gc_timer.get_or_init(|| {
            Timer::new(move |stack, now| {
                stack.ipv4.arp.periodic_gc(stack, now);
            })
        });
        if !t.pending() {
            let half = self.parms.read().base_reachable_time / 2;
            stack
                .timers
                .mod_timer(t, stack.now() + half.max(Duration::from_secs(1)));
        }
    }

    /// `neigh_periodic_work`: re-randomise the reachable time every 300 s, and collect
    /// unreferenced entries that failed or went unused for `gc_stale_time`. Runs every
    /// `base_reachable_time / 2` while the table has entries.
    pub fn periodic_gc(&self, stack: &Stack, now: Instant) {
        self.stats.periodic_gc_runs.fetch_add(1, Ordering::Relaxed);
        let parms = self.parms.read().clone();
        {
            let mut lr = self.last_rand.lock();
            if now > *lr + Duration::from_secs(300) || *lr == Instant::ZERO {
                *lr = now;
                let rt = rand_reach_time(stack, parms.base_reachable_time);
                self.reachable_time
                    .store(rt.as_nanos() as u64, Ordering::Relaxed);
            }
        }
        // As neigh_periodic_work: nothing is reclaimed below gc_thresh1.
        if self.len() >= self.gc_thresh1 {
            let mut e = self.entries.write();
            let stale = parms.gc_stale_time.as_nanos() as u64;
            let victims: Vec<(u32, Ipv4Addr)> = e
                .iter()
                .filter(|(_, n)| {
                    let st = n.st.lock();
                    if st.nud & (nud::PERMANENT | nud::IN_TIMER) != 0 {
                        return false;
                    }
                    let used = n
                        .used
                        .load(Ordering::Relaxed)
                        .max(n.confirmed.load(Ordering::Relaxed));
                    Arc::strong_count(n) == 1
                        && (st.nud == nud::FAILED || now.as_nanos() > used + stale)
                })
                .map(|(k, _)| *k)
                .collect();
            for k in victims {
                if let Some(n) = e.remove(&k) {
                    self.kill(&n);
                }
            }
        }
        if !self.is_empty() {
            if let Some(t) = self.gc_timer.get() {
                let half = parms.base_reachable_time / 2;
                stack
                    .timers
                    .mod_timer(t, now + half.max(Duration::from_secs(1)));
            }
        }
    }

    /// Drop every entry on a device (`neigh_ifdown`, when it goes down).
    pub fn ifdown(&self, dev: &NetDevice) {
        let mut e = self.entries.write();
        let victims: Vec<_> = e.keys().filter(|k| k.0 == dev.ifindex).copied().collect();
        for k in victims {
            if let Some(n) = e.remove(&k) {
                self.kill(&n);
            }
        }
    }
}

/// Flags of [`neigh_update`] (Linux's `NEIGH_UPDATE_F_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateFlags(u8);

impl UpdateFlags {
    /// No flags: a different address does not replace a valid one.
    pub const NONE: UpdateFlags = UpdateFlags(0);
    /// A different address replaces the cached one.
    pub const OVERRIDE: UpdateFlags = UpdateFlags(1);
    /// Administrative change (`ip neigh`): override and allow any state.
    pub const ADMIN_OVERRIDE: UpdateFlags = UpdateFlags(3);

    fn has(self, f: UpdateFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

/// `neigh_update`: apply new information about a neighbour. See the module docs.
pub fn neigh_update(
    stack: &Stack,
    n: &Arc<Neighbour>,
    lladdr: Option<EthernetAddress>,
    new: u8,
    flags: UpdateFlags,
) {
    let now = stack.now();
    let table = &stack.ipv4.arp;
    let mut st = n.st.lock();
    if st.dead {
        return;
    }
    let old = st.nud;
    if old & (nud::NOARP | nud::PERMANENT) != 0 && !flags.has(UpdateFlags::ADMIN_OVERRIDE) {
        return;
    }
    if new & nud::VALID == 0 {
        n.disarm();
        n.set_nud(&mut st, new);
        if old & (nud::INCOMPLETE | nud::PROBE) != 0 && new & nud::FAILED != 0 {
            invalidate(stack, n, st);
        }
        return;
    }
    // Which address to use.
    let lladdr = match lladdr {
        Some(a) => a,
        None if old & nud::VALID != 0 => st.ha,
        None => return,
    };
    let mut new = new;
    if new & nud::CONNECTED != 0 {
        n.confirmed.store(now.as_nanos(), Ordering::Relaxed);
    }
    if old & nud::VALID != 0 {
        if lladdr != st.ha && !flags.has(UpdateFlags::OVERRIDE) {
            return;
        }
        if lladdr == st.ha && new == nud::STALE && !flags.has(UpdateFlags::ADMIN_OVERRIDE) {
            new = old;
        }
    }
    if new != old || lladdr != st.ha {
        st.updated = now;
    }
    if new != old {
        n.disarm();
        if new & nud::PROBE != 0 {
            st.probes = 0;
        }
        if new & nud::IN_TIMER != 0 {
            let after = if new & nud::REACHABLE != 0 {
                table.reachable_time()
            } else {
                Duration::ZERO
            };
            n.arm(stack, now + after);
        }
        n.set_nud(&mut st, new);
    }
    if lladdr != st.ha || old & nud::VALID == 0 {
        st.ha = lladdr;
        n.update_hh(lladdr);
        if new & nud::CONNECTED == 0 {
            let back = 2 * table.parms.read().base_reachable_time.as_nanos() as u64;
            n.confirmed
                .store(now.as_nanos().saturating_sub(back), Ordering::Relaxed);
        }
    }
    if new == old {
        return;
    }
    if old & nud::VALID == 0 {
        // Resolved: send what waited, in order.
        let queued: Vec<Skb> = st.queue.drain(..).collect();
        st.queue_bytes = 0;
        drop(st);
        for skb in queued {
            if n.state() & nud::VALID == 0 {
                break;
            }
            let _ = neigh_resolve_output(stack, n, skb);
        }
    }
}

/// Resolution failed: report every queued packet to its sender (`neigh_invalidate` →
/// `arp_error_report`).
fn invalidate(stack: &Stack, n: &Arc<Neighbour>, mut st: parking_lot::MutexGuard<'_, NeighState>) {
    stack
        .ipv4
        .arp
        .stats
        .res_failed
        .fetch_add(1, Ordering::Relaxed);
    let queued: Vec<Skb> = st.queue.drain(..).collect();
    st.queue_bytes = 0;
    drop(st);
    for skb in queued {
        crate::ipv4::arp::arp_error_report(stack, n, skb);
    }
}

/// Linux's `neigh_max_probes`.
fn max_probes(p: &NeighParms, state: u8) -> u32 {
    p.ucast_probes
        + p.app_probes
        + if state & nud::PROBE != 0 {
            p.mcast_reprobes
        } else {
            p.mcast_probes
        }
}

/// `neigh_timer_handler`: the NUD state machine's clock.
pub fn neigh_timer_handler(stack: &Stack, n: &Arc<Neighbour>, now: Instant) {
    let table = &stack.ipv4.arp;
    let parms = table.parms.read().clone();
    let mut st = n.st.lock();
    if st.dead {
        return;
    }
    let state = st.nud;
    if state & nud::IN_TIMER == 0 {
        return;
    }
    let confirmed = Instant::from_nanos(n.confirmed.load(Ordering::Relaxed));
    let used = Instant::from_nanos(n.used.load(Ordering::Relaxed));
    let reach = table.reachable_time();
    let mut next = now + parms.retrans_time;
    if state & nud::REACHABLE != 0 {
        if now <= confirmed + reach {
            next = confirmed + reach;
        } else if now <= used + parms.delay_probe_time {
            n.set_nud(&mut st, nud::DELAY);
            st.updated = now;
            next = now + parms.delay_probe_time;
        } else {
            n.set_nud(&mut st, nud::STALE);
            st.updated = now;
        }
    } else if state & nud::DELAY != 0 {
        if now <= confirmed + parms.delay_probe_time {
            n.set_nud(&mut st, nud::REACHABLE);
            st.updated = now;
            next = confirmed + reach;
        } else {
            n.set_nud(&mut st, nud::PROBE);
            st.updated = now;
            st.probes = 0;
            next = now + parms.retrans_time;
        }
    }
    if st.nud & (nud::INCOMPLETE | nud::PROBE) != 0 && st.probes >= max_probes(&parms, st.nud) {
        n.set_nud(&mut st, nud::FAILED);
        st.updated = now;
        invalidate(stack, n, st);
        return;
    }
    if st.nud & nud::IN_TIMER != 0 {
        n.arm(stack, next.max(now + Duration::from_millis(1)));
    }
    if st.nud & (nud::INCOMPLETE | nud::PROBE) != 0 {
        let probes = st.probes;
        st.probes += 1;
        let ha = st.ha;
        let state = st.nud;
        let first = st.queue.back().map(|s| s.clone_shared());
        drop(st);
        crate::ipv4::arp::arp_solicit(stack, n, probes, state, ha, first.as_ref(), &parms);
    }
}

/// `neigh_event_send`: make sure the neighbour can be used for `skb`. Returns the skb
/// back when it may be sent now; otherwise the skb waits on `arp_queue` (or was dropped)
/// and resolution is under way.
pub fn neigh_event_send(stack: &Stack, n: &Arc<Neighbour>, skb: Skb) -> Option<Skb> {
    let now = stack.now();
    n.used.store(now.as_nanos(), Ordering::Relaxed);
    if n.state() & (nud::CONNECTED | nud::DELAY | nud::PROBE) != 0 {
        return Some(skb);
    }
    let table = &stack.ipv4.arp;
    let parms = table.parms.read().clone();
    let mut st = n.st.lock();
    if st.dead {
        return None;
    }
    if st.nud & (nud::CONNECTED | nud::DELAY | nud::PROBE) != 0 {
        return Some(skb);
    }
    let mut immediate_probe = false;
    if st.nud & (nud::STALE | nud::INCOMPLETE) == 0 {
        if parms.mcast_probes + parms.app_probes > 0 {
            st.probes = parms.ucast_probes;
            n.set_nud(&mut st, nud::INCOMPLETE);
            st.updated = now;
            let next = now + parms.retrans_time.max(Duration::from_millis(10));
            n.arm(stack, next);
            immediate_probe = true;
        } else {
            n.set_nud(&mut st, nud::FAILED);
            st.updated = now;
            drop(st);
            drop(skb);
            return None;
        }
    } else if st.nud & nud::STALE != 0 {
        n.set_nud(&mut st, nud::DELAY);
        st.updated = now;
        n.arm(stack, now + parms.delay_probe_time);
        return Some(skb);
    }
    // INCOMPLETE: queue (bounded in bytes; the oldest go first).
    let size = skb.truesize() as usize;
    while st.queue_bytes + size > parms.unres_qlen_bytes {
        match st.queue.pop_front() {
            Some(old) => {
                st.queue_bytes -= old.truesize() as usize;
                table
                    .stats
                    .unresolved_discards
                    .fetch_add(1, Ordering::Relaxed);
            }
            None => break,
        }
    }
    if st.queue_bytes + size <= parms.unres_qlen_bytes {
        st.queue_bytes += size;
        st.queue.push_back(skb);
    } else {
        table
            .stats
            .unresolved_discards
            .fetch_add(1, Ordering::Relaxed);
    }
    if immediate_probe {
        let probes = st.probes;
        st.probes += 1;
        let (ha, state) = (st.ha, st.nud);
        let first = st.queue.back().map(|s| s.clone_shared());
        drop(st);
        crate::ipv4::arp::arp_solicit(stack, n, probes, state, ha, first.as_ref(), &parms);
    }
    None
}

/// `neigh_output`: the cached-header fast path for a connected neighbour, else
/// `neigh_resolve_output`. `skb.data()` starts at the IP header.
pub fn neigh_output(stack: &Stack, n: &Arc<Neighbour>, skb: Skb) -> NetXmit {
    if n.state() & nud::CONNECTED != 0 {
        if let Some(hh) = n.hh.read() {
            return neigh_hh_output(stack, n, &hh, skb);
        }
    }
    neigh_resolve_output(stack, n, skb)
}

/// `neigh_hh_output`: prepend the cached hardware header and transmit.
pub fn neigh_hh_output(stack: &Stack, n: &Neighbour, hh: &[u8; 14], mut skb: Skb) -> NetXmit {
    stack
        .trace
        .hit(Stage::NeighHhOutput, skb.trace_id, skb.len(), stack.now());
    skb.push(14).copy_from_slice(hh);
    skb.reset_mac_header();
    skb.protocol = crate::dev::rx::ETH_P_IP;
    dev_queue_xmit(stack, &n.dev, skb)
}

/// `neigh_resolve_output`: resolve if needed (the packet may wait on `arp_queue`), then
/// build the Ethernet header from the neighbour's address and transmit.
pub fn neigh_resolve_output(stack: &Stack, n: &Arc<Neighbour>, skb: Skb) -> NetXmit {
    stack.trace.hit(
        Stage::NeighResolveOutput,
        skb.trace_id,
        skb.len(),
        stack.now(),
    );
    let Some(mut skb) = neigh_event_send(stack, n, skb) else {
        return NetXmit::Success;
    };
    let ha = n.st.lock().ha;
    let h = skb.push(14);
    h[0..6].copy_from_slice(&ha.0);
    h[6..12].copy_from_slice(&n.dev.mac().0);
    h[12..14].copy_from_slice(&crate::dev::rx::ETH_P_IP.to_be_bytes());
    skb.reset_mac_header();
    skb.protocol = crate::dev::rx::ETH_P_IP;
    dev_queue_xmit(stack, &n.dev, skb)
}

#[cfg(test)]
mod tests;
