//! Time as the stack sees it: an injected [`Clock`] and a nanosecond [`Instant`].
//!
//! Every timer and timestamp in usnet reads a clock handed to the [`Stack`](crate::Stack)
//! rather than the operating system's. [`RealClock`] follows `CLOCK_MONOTONIC`;
//! [`VirtualClock`] only moves when the deterministic scheduler ([`crate::sim::Sim`])
//! advances it, so a simulated ten-second transfer runs as fast as the CPU allows and
//! repeats exactly for the same seed.
//!
//! ```
//! use std::time::Duration;
//! use usnet::time::{Clock, Instant, VirtualClock};
//! let clock = VirtualClock::new();
//! assert_eq!(clock.now(), Instant::ZERO);
//! clock.advance_to(Instant::ZERO + Duration::from_millis(5));
//! assert_eq!(clock.now().as_nanos(), 5_000_000);
//! ```

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A point in time, in nanoseconds since the clock's epoch (the stack's boot).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The farthest representable point in time ("never").
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis * 1_000_000)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// Milliseconds since the epoch (a "jiffy" count at HZ=1000).
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(d)))
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_nanos(rhs)))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A source of time for one or more stacks.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Instant;
    /// Whether time only moves when a scheduler advances it (tests, `--sim`).
    fn is_virtual(&self) -> bool {
        false
    }
}

/// The operating system's monotonic clock, with its epoch at creation.
#[derive(Debug)]
pub struct RealClock {
    base: std::time::Instant,
}

impl RealClock {
    /// A clock whose epoch is now.
    pub fn new() -> Arc<RealClock> {
        Arc::new(RealClock {
            base: std::time::Instant::now(),
        })
    }
}

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant(duration_nanos(self.base.elapsed()))
    }
}

/// A clock that only moves when told to: the deterministic scheduler's time.
#[derive(Debug, Default)]
pub struct VirtualClock {
    nanos: AtomicU64,
}

impl VirtualClock {
    /// A virtual clock at [`Instant::ZERO`].
    pub fn new() -> Arc<VirtualClock> {
        Arc::new(VirtualClock::default())
    }

    /// Move time forward to `t` (never backwards).
    pub fn advance_to(&self, t: Instant) {
        self.nanos.fetch_max(t.0, Ordering::AcqRel);
    }

    /// Move time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.nanos.fetch_add(duration_nanos(d), Ordering::AcqRel);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        Instant(self.nanos.load(Ordering::Acquire))
    }
    fn is_virtual(&self) -> bool {
        true
    }
}

/// Which clock a thread's cached reading came from (its address), the reading, and
/// how many [`TimeScope`]s are open.
#[derive(Clone, Copy)]
struct Cached {
    clock: usize,
    nanos: u64,
    depth: u32,
}

thread_local! {
    static CACHED: std::cell::Cell<Cached> = const {
        std::cell::Cell::new(Cached { clock: 0, nanos: 0, depth: 0 })
    };
}

fn clock_key(clock: &Arc<dyn Clock>) -> usize {
    Arc::as_ptr(clock) as *const () as usize
}

/// A stretch of work that reads the time once and uses that reading throughout, as
/// Linux's TCP uses `tp->tcp_mstamp`, refreshed by `tcp_mstamp_refresh` once per
/// `tcp_write_xmit` and per received segment rather than at every timestamp: while a
/// scope is open on this thread, [`now`] for the same clock returns the cached
/// reading. Opening a scope inside another refreshes the reading. Scopes are only
/// taken over real clocks and never across a sleep (a wait refreshes with [`refresh`]
/// when it returns); a virtual clock is read directly, since reading it is free.
#[must_use = "the scope ends when the guard drops"]
pub struct TimeScope {
    active: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TimeScope {
    /// Open a scope over `clock` (reading it once).
    pub fn enter(clock: &Arc<dyn Clock>) -> TimeScope {
        let inactive = TimeScope {
            active: false,
            _not_send: std::marker::PhantomData,
        };
        if clock.is_virtual() {
            return inactive;
        }
        let key = clock_key(clock);
        let c = CACHED.with(|c| c.get());
        if c.depth > 0 && c.clock != key {
            // Inside another clock's scope (stacks on different clocks): read directly.
            return inactive;
        }
        let nanos = clock.now().0;
        CACHED.with(|cell| {
            cell.set(Cached {
                clock: key,
                nanos,
                depth: c.depth + 1,
            })
        });
        TimeScope {
            active: true,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for TimeScope {
    fn drop(&mut self) {
        if self.active {
            CACHED.with(|cell| {
                let mut c = cell.get();
                c.depth -= 1;
                cell.set(c);
            });
        }
    }
}

/// The time on `clock`: the open scope's reading, or a fresh one outside scopes.
#[inline]
pub fn now(clock: &Arc<dyn Clock>) -> Instant {
    let c = CACHED.with(|c| c.get());
    if c.depth > 0 && c.clock == clock_key(clock) {
        return Instant(c.nanos);
    }
    clock.now()
}

/// Read `clock` afresh and, inside a scope over it, make that the scope's reading
/// (after a sleep, or per received packet).
pub fn refresh(clock: &Arc<dyn Clock>) -> Instant {
    let t = clock.now();
    CACHED.with(|cell| {
        let mut c = cell.get();
        if c.depth > 0 && c.clock == clock_key(clock) {
            c.nanos = c.nanos.max(t.0);
            cell.set(c);
        }
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_millis(10);
        assert_eq!(t - Instant::from_millis(20), Duration::ZERO);
        assert_eq!((t + Duration::from_millis(5)).as_millis(), 15);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
    }

    #[test]
    fn virtual_clock_never_goes_back() {
        let c = VirtualClock::new();
        c.advance_to(Instant::from_millis(10));
        c.advance_to(Instant::from_millis(5));
        assert_eq!(c.now(), Instant::from_millis(10));
        c.advance(Duration::from_millis(1));
        assert_eq!(c.now(), Instant::from_millis(11));
    }

    #[test]
    fn real_clock_moves_forward() {
        let c = RealClock::new();
        let a = c.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.now() > a);
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    /// A real (non-virtual) clock that moves 1 µs at every read and counts reads.
    #[derive(Debug, Default)]
    struct Counting {
        reads: AtomicU64,
    }

    impl Clock for Counting {
        fn now(&self) -> Instant {
            Instant::from_nanos((self.reads.fetch_add(1, Ordering::Relaxed) + 1) * 1_000)
        }
    }

    fn counting() -> (Arc<Counting>, Arc<dyn Clock>) {
        let c = Arc::new(Counting::default());
        let d: Arc<dyn Clock> = c.clone();
        (c, d)
    }

    #[test]
    fn a_scope_reads_the_clock_once_and_refreshes_on_request() {
        let (c, clock) = counting();
        assert_ne!(now(&clock), now(&clock), "outside a scope every call reads");
        assert_eq!(c.reads.load(Ordering::Relaxed), 2);
        {
            let _s = TimeScope::enter(&clock);
            let t = now(&clock);
            for _ in 0..10 {
                assert_eq!(now(&clock), t);
            }
            assert_eq!(c.reads.load(Ordering::Relaxed), 3, "one read for the scope");
            let r = refresh(&clock);
            assert!(r > t);
            assert_eq!(now(&clock), r, "refresh updates the scope's reading");
            {
                let _inner = TimeScope::enter(&clock);
                let u = now(&clock);
                assert!(u > r, "a nested scope takes a fresh reading");
            }
            assert!(now(&clock) > r, "and the outer scope keeps the newer one");
        }
        let before = c.reads.load(Ordering::Relaxed);
        let _ = now(&clock);
        assert_eq!(c.reads.load(Ordering::Relaxed), before + 1, "scope closed");
    }

    #[test]
    fn other_clocks_and_virtual_clocks_are_read_directly() {
        let (_, a) = counting();
        let (b_count, b) = counting();
        let _s = TimeScope::enter(&a);
        let _t = TimeScope::enter(&b);
        assert_ne!(now(&b), now(&b), "b is not a's scope");
        assert_eq!(b_count.reads.load(Ordering::Relaxed), 2);
        let v = VirtualClock::new();
        let vd: Arc<dyn Clock> = v.clone();
        drop(_t);
        drop(_s);
        let _vs = TimeScope::enter(&vd);
        v.advance(Duration::from_millis(1));
        assert_eq!(
            now(&vd),
            Instant::from_millis(1),
            "virtual time is never cached"
        );
    }

    #[test]
    fn scopes_are_per_thread() {
        let (_, clock) = counting();
        let _s = TimeScope::enter(&clock);
        let t = now(&clock);
        let c2 = clock.clone();
        let other = std::thread::spawn(move || now(&c2)).join().unwrap();
        assert!(other > t, "another thread reads the clock itself");
    }
}
