//! Timers: a hierarchical timing wheel for jiffy timers (Linux's `timer_list`, 1 ms
//! ticks) and a heap for high-resolution timers (Linux's `hrtimer`: pacing, the tbf
//! watchdog, the emulated NIC's wire clock).
//!
//! A [`Timer`] belongs to an object (a neighbour entry, a TCP socket) and is armed with
//! [`TimerBase::mod_timer`] and disarmed with [`Timer::del`]. Re-arming a timer to a
//! *later* time costs nothing (the queued entry stays and, when it comes due, finds the
//! new expiry and re-queues itself), which is what TCP's retransmit timer does on every
//! ACK. Timers never fire early; wheel timers fire on the first tick at or after their
//! expiry (rounded up to a millisecond, as jiffies).
//!
//! The wheel cascades (Varghese & Lauck): six levels of 64 slots, level `k` slots being
//! `64^k` ticks wide; an entry drops to a finer level when its slot comes round, so
//! expiry is exact to the tick. [`TimerBase::next_expiry`] is exact too, which lets the
//! deterministic scheduler jump straight to the next event.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::time::Instant;

const TICK_NS: u64 = 1_000_000;
const SLOTS: usize = 64;
const SHIFT: u32 = 6;
const LEVELS: usize = 6;

/// What a timer runs when it fires. It gets the stack's context and the firing time.
pub type TimerFn = dyn Fn(&crate::Stack, Instant) + Send + Sync;

struct TimerState {
    /// When the owner wants it to fire (None: disarmed).
    expires: Option<Instant>,
    /// The time of the one entry that is authoritative in the base (None: not queued).
    queued_at: Option<Instant>,
}

/// A timer's state and its callback, in one allocation (the callback, usually a weak
/// reference to its owner, is stored inline: `TimerShared<dyn TimerFn>`).
struct TimerShared<F: ?Sized = TimerFn> {
    state: Mutex<TimerState>,
    hr: bool,
    func: F,
}

/// A timer owned by some object. Cloning gives another handle to the same timer.
#[derive(Clone)]
pub struct Timer {
    shared: Arc<TimerShared>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.state.lock();
        f.debug_struct("Timer")
            .field("expires", &s.expires)
            .field("hr", &self.shared.hr)
            .finish()
    }
}

impl Timer {
    /// A jiffy timer (1 ms resolution) running `func` when it fires (`timer_setup`).
    pub fn new(func: impl Fn(&crate::Stack, Instant) + Send + Sync + 'static) -> Timer {
        Timer::build(false, func)
    }

    /// A high-resolution timer (nanosecond resolution, `hrtimer_init`).
    pub fn new_hr(func: impl Fn(&crate::Stack, Instant) + Send + Sync + 'static) -> Timer {
        Timer::build(true, func)
    }

    fn build(hr: bool, func: impl Fn(&crate::Stack, Instant) + Send + Sync + 'static) -> Timer {
        let shared: Arc<TimerShared> = Arc::new(TimerShared {
            state: Mutex::new(TimerState {
                expires: None,
                queued_at: None,
            }),
            hr,
            func,
        });
        Timer { shared }
    }

    /// Disarm (`del_timer`). Returns whether it was armed.
    pub fn del(&self) -> bool {
        self.shared.state.lock().expires.take().is_some()
    }

    /// Whether it is armed (`timer_pending`).
    pub fn pending(&self) -> bool {
        self.shared.state.lock().expires.is_some()
    }

    /// When it will fire, if armed.
    pub fn expires(&self) -> Option<Instant> {
        self.shared.state.lock().expires
    }
}

struct Entry {
    at: Instant,
    tick: u64,
    timer: Arc<TimerShared>,
}

/// The hierarchical wheel of jiffy timers.
struct Wheel {
    /// The last tick processed.
    now_tick: u64,
    levels: Vec<[Vec<Entry>; SLOTS]>,
    occupied: [u64; LEVELS],
    /// Entries already due at insertion (expiry at or before `now_tick`).
    due: Vec<Entry>,
    count: usize,
    /// What a cascade moves out of a slot, kept between cascades (slots keep their
    /// capacity too, so a steady timer load allocates nothing).
    spare: Vec<Entry>,
    /// The earliest tick holding an entry, while known (Linux's `base->next_expiry`,
    /// recomputed only after entries left the wheel: `next_expiry_recalc`). An insert
    /// can only lower it.
    next: Option<Option<u64>>,
}

fn level_width(level: usize) -> u64 {
    1u64 << (SHIFT as usize * level)
}

impl Wheel {
    fn new() -> Wheel {
        Wheel {
            now_tick: 0,
            // Room for a couple of timers in every slot from the start (18 KiB), so a
            // steady load does not allocate the first time it reaches a slot.
            levels: (0..LEVELS)
                .map(|_| std::array::from_fn(|_| Vec::with_capacity(2)))
                .collect(),
            occupied: [0; LEVELS],
            due: Vec::new(),
            count: 0,
            spare: Vec::new(),
            next: Some(None),
        }
    }

    fn insert(&mut self, e: Entry) {
        self.count += 1;
        if let Some(next) = self.next {
            let t = e.tick.max(self.now_tick);
            self.next = Some(Some(next.map_or(t, |n| n.min(t))));
        }
        if e.tick <= self.now_tick {
            self.due.push(e);
            return;
        }
        let delta = e.tick - self.now_tick;
        let mut level = 0;
        while level + 1 < LEVELS && delta >= level_width(level + 1) {
            level += 1;
        }
        // A timer beyond the wheel's range waits in the last level and is re-filed
        // each time that slot comes round.
        let max = self.now_tick + level_width(LEVELS - 1) * (SLOTS as u64 - 1);
        let tick = e.tick.min(max);
        let slot = ((tick >> (SHIFT as usize * level)) & (SLOTS as u64 - 1)) as usize;
        self.levels[level][slot].push(e);
        self.occupied[level] |= 1 << slot;
    }

    /// The next tick at which something happens: a level-0 slot comes due or a higher
    /// level's slot cascades.
    fn next_visit(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        for level in 0..LEVELS {
            let occ = self.occupied[level];
            if occ == 0 {
                continue;
            }
            let shift = SHIFT as usize * level;
            let cur = ((self.now_tick >> shift) & (SLOTS as u64 - 1)) as u32;
            let units = 1 + u64::from(occ.rotate_right((cur + 1) % SLOTS as u32).trailing_zeros());
            let t = ((self.now_tick >> shift) + units) << shift;
            best = Some(best.map_or(t, |b| b.min(t)));
        }
        best
    }

    /// Move every entry due at or before `to_tick` into `out`.
    fn advance(&mut self, to_tick: u64, out: &mut Vec<Entry>) {
        let before = out.len();
        self.advance_inner(to_tick, out);
        if out.len() > before {
            // Entries left: the earliest must be found again (a cascade only moves
            // entries between levels, their ticks stay).
            self.next = None;
        }
    }

    fn advance_inner(&mut self, to_tick: u64, out: &mut Vec<Entry>) {
        loop {
            let n = self.due.len();
            self.count -= n;
            out.append(&mut self.due);
            let next = match self.next_visit() {
                Some(t) if t <= to_tick => t,
                _ => {
                    self.now_tick = self.now_tick.max(to_tick);
                    return;
                }
            };
            self.now_tick = next;
            if next & (SLOTS as u64 - 1) == 0 {
                self.cascade(1);
            }
            let slot = (next & (SLOTS as u64 - 1)) as usize;
            if self.occupied[0] & (1 << slot) != 0 {
                self.occupied[0] &= !(1 << slot);
                let v = &mut self.levels[0][slot];
                self.count -= v.len();
                out.append(v);
            }
        }
    }

    /// At a boundary of `level - 1`, pull the current slot of `level` (and of every
    /// coarser level whose boundary this also is) down to finer levels.
    fn cascade(&mut self, level: usize) {
        if level >= LEVELS {
            return;
        }
        let shift = SHIFT as usize * level;
        if self.now_tick & (level_width(level) - 1) != 0 {
            return;
        }
        let slot = ((self.now_tick >> shift) & (SLOTS as u64 - 1)) as usize;
        if slot == 0 {
            self.cascade(level + 1);
        }
        if self.occupied[level] & (1 << slot) == 0 {
            return;
        }
        self.occupied[level] &= !(1 << slot);
        let mut entries = std::mem::take(&mut self.spare);
        entries.append(&mut self.levels[level][slot]);
        self.count -= entries.len();
        for e in entries.drain(..) {
            self.insert(e);
        }
        self.spare = entries;
    }

    /// The exact earliest tick holding an entry.
    fn next_tick(&mut self) -> Option<u64> {
        if let Some(n) = self.next {
            return n;
        }
        let n = self.scan_next_tick();
        self.next = Some(n);
        n
    }

    fn scan_next_tick(&self) -> Option<u64> {
        if !self.due.is_empty() {
            return Some(self.now_tick);
        }
        let mut best: Option<u64> = None;
        for level in 0..LEVELS {
            let occ = self.occupied[level];
            if occ == 0 {
                continue;
            }
            let cur = ((self.now_tick >> (SHIFT as usize * level)) & (SLOTS as u64 - 1)) as u32;
            let off = occ.rotate_right((cur + 1) % SLOTS as u32).trailing_zeros();
            let slot = ((cur + 1 + off) % SLOTS as u32) as usize;
            if let Some(m) = self.levels[level][slot].iter().map(|e| e.tick).min() {
                best = Some(best.map_or(m, |b| b.min(m)));
            }
        }
        best
    }
}

/// A stack's timer base: the wheel plus the high-resolution heap.
pub struct TimerBase {
    inner: Mutex<BaseInner>,
    /// Earliest queued time (nanoseconds), to wake a sleeping softirq thread only when
    /// a new timer is earlier than what it sleeps for.
    earliest: std::sync::atomic::AtomicU64,
    waker: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

struct BaseInner {
    wheel: Wheel,
    hr: BinaryHeap<Reverse<HrEntry>>,
    seq: u64,
    scratch: Vec<Entry>,
}

struct HrEntry {
    at: Instant,
    seq: u64,
    timer: Arc<TimerShared>,
}

impl PartialEq for HrEntry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for HrEntry {}
impl PartialOrd for HrEntry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for HrEntry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl Default for TimerBase {
    fn default() -> Self {
        TimerBase::new()
    }
}

impl fmt::Debug for TimerBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.inner.lock();
        f.debug_struct("TimerBase")
            .field("wheel", &i.wheel.count)
            .field("hr", &i.hr.len())
            .finish()
    }
}

fn tick_of(t: Instant) -> u64 {
    t.as_nanos().div_ceil(TICK_NS)
}

/// When a timer armed for `when` actually comes due: exactly then for hrtimers, at the
/// next tick boundary for wheel timers.
fn due_ns(t: &TimerShared, when: Instant) -> u64 {
    if t.hr {
        when.as_nanos()
    } else {
        tick_of(when).saturating_mul(TICK_NS)
    }
}

impl TimerBase {
    /// An empty base.
    pub fn new() -> TimerBase {
        TimerBase {
            inner: Mutex::new(BaseInner {
                wheel: Wheel::new(),
                hr: BinaryHeap::new(),
                seq: 0,
                scratch: Vec::new(),
            }),
            earliest: std::sync::atomic::AtomicU64::new(u64::MAX),
            waker: std::sync::OnceLock::new(),
        }
    }

    /// Set what to call when a timer is queued earlier than any before it (the stack
    /// wakes its softirq thread).
    pub fn set_waker(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.waker.set(f);
    }

    /// Arm `timer` for `when` unless it is already armed for that time or earlier.
    pub fn arm_earliest(&self, timer: &Timer, when: Instant) {
        if timer.expires().is_some_and(|e| e <= when) {
            return;
        }
        self.mod_timer(timer, when);
    }

    /// Arm `timer` to fire at `when` (`mod_timer` / `hrtimer_start`), replacing any
    /// earlier arming.
    pub fn mod_timer(&self, timer: &Timer, when: Instant) {
        let mut st = timer.shared.state.lock();
        st.expires = Some(when);
        if st.queued_at.is_some_and(|q| q <= when) {
            return; // the queued entry fires first and re-queues itself
        }
        st.queued_at = Some(when);
        drop(st);
        self.queue(&timer.shared, when);
    }

    fn queue(&self, shared: &Arc<TimerShared>, when: Instant) {
        let mut b = self.inner.lock();
        let due = if shared.hr {
            b.seq += 1;
            let seq = b.seq;
            b.hr.push(Reverse(HrEntry {
                at: when,
                seq,
                timer: shared.clone(),
            }));
            when.as_nanos()
        } else {
            let tick = tick_of(when);
            b.wheel.insert(Entry {
                at: when,
                tick,
                timer: shared.clone(),
            });
            tick.saturating_mul(TICK_NS)
        };
        let prev = self
            .earliest
            .fetch_min(due, std::sync::atomic::Ordering::AcqRel);
        drop(b);
        if due < prev {
            if let Some(w) = self.waker.get() {
                w();
            }
        }
    }

    /// When the earliest queued entry comes due (it may turn out to be a re-armed or
    /// deleted timer, which is harmless).
    pub fn next_expiry(&self) -> Option<Instant> {
        let mut b = self.inner.lock();
        let w = b
            .wheel
            .next_tick()
            .map(|t| Instant::from_nanos(t.saturating_mul(TICK_NS)));
        let h = b.hr.peek().map(|Reverse(e)| e.at);
        match (w, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of queued entries (including stale ones).
    pub fn queued(&self) -> usize {
        let b = self.inner.lock();
        b.wheel.count + b.hr.len()
    }

    /// Run every timer due at `now` (`run_timer_softirq` / `hrtimer_interrupt`). Returns
    /// how many fired.
    pub fn run(&self, stack: &crate::Stack, now: Instant) -> usize {
        let mut fired = 0;
        loop {
            let mut batch = {
                let mut b = self.inner.lock();
                let mut batch = std::mem::take(&mut b.scratch);
                let to = (now.as_nanos() / TICK_NS).max(b.wheel.now_tick);
                b.wheel.advance(to, &mut batch);
                while b.hr.peek().is_some_and(|Reverse(e)| e.at <= now) {
                    if let Some(Reverse(e)) = b.hr.pop() {
                        batch.push(Entry {
                            at: e.at,
                            tick: 0,
                            timer: e.timer,
                        });
                    }
                }
                batch
            };
            if batch.is_empty() {
                let mut b = self.inner.lock();
                b.scratch = batch;
                let next = b
                    .wheel
                    .next_tick()
                    .map(|t| t.saturating_mul(TICK_NS))
                    .into_iter()
                    .chain(b.hr.peek().map(|Reverse(e)| e.at.as_nanos()))
                    .min()
                    .unwrap_or(u64::MAX);
                self.earliest
                    .store(next, std::sync::atomic::Ordering::Release);
                return fired;
            }
            for e in batch.drain(..) {
                if self.expire(stack, e, now) {
                    fired += 1;
                }
            }
            let mut b = self.inner.lock();
            if b.scratch.capacity() < batch.capacity() {
                b.scratch = batch;
            }
        }
    }

    /// One queued entry came due: fire it, re-queue it, or drop it as stale.
    fn expire(&self, stack: &crate::Stack, e: Entry, now: Instant) -> bool {
        let mut st = e.timer.state.lock();
        if st.queued_at != Some(e.at) {
            return false; // superseded by an earlier arming that already fired
        }
        st.queued_at = None;
        match st.expires {
            None => false,
            Some(when) if due_ns(&e.timer, when) > now.as_nanos() => {
                st.queued_at = Some(when);
                drop(st);
                self.queue(&e.timer, when);
                false
            }
            Some(_) => {
                st.expires = None;
                drop(st);
                (e.timer.func)(stack, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
