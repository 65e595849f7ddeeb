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
