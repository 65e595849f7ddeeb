//! The deterministic scheduler: several stacks on one virtual clock, stepped on one
//! thread. Each step runs every host's due softirq work (timers, NET_TX, NET_RX) in a
//! fixed order until none is left, then jumps the clock to the next event. Time only
//! moves when nothing is left to do now, so a simulated ten-second transfer runs as fast
//! as the CPU allows, and the same seed gives the same run, packet for packet.
//!
//! ```
//! use std::time::Duration;
//! use usnet::sim::Sim;
//! let mut sim = Sim::new(7);
//! let a = sim.add_host("a");
//! assert_eq!(a.name(), "a");
//! sim.run_for(Duration::from_millis(10));
//! assert_eq!(sim.now().as_millis(), 10);
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::link::Wire;
use crate::rng::Rng;
use crate::time::{Clock, Instant, VirtualClock};
use crate::Stack;

/// Stacks on a shared virtual clock.
pub struct Sim {
    clock: Arc<VirtualClock>,
    hosts: Vec<Stack>,
    rng: Rng,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now())
            .field("hosts", &self.hosts.len())
            .finish()
    }
}

/// Upper bound on softirq passes at one instant before time is forced forward (a
/// livelock guard; never reached by a correct stack).
const MAX_PASSES_PER_INSTANT: usize = 10_000_000;

impl Sim {
    /// A simulation whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> Sim {
        Sim {
            clock: VirtualClock::new(),
            hosts: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// The virtual clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Add a host (a stack on the virtual clock with a seed drawn from the
    /// simulation's).
    pub fn add_host(&mut self, name: &str) -> Stack {
        let s = Stack::builder()
            .name(name)
            .clock(self.clock.clone())
            .seed(self.rng.next_u64())
            .build();
        self.hosts.push(s.clone());
        s
    }

    /// A new wire on the virtual clock, its impairments seeded from the simulation.
    pub fn wire(&mut self) -> Wire {
        Wire::new(self.clock.clone(), self.rng.next_u64())
    }

    /// The hosts, in the order they run.
    pub fn hosts(&self) -> &[Stack] {
        &self.hosts
    }

    /// Run every host's due work until none is left at the current time. Returns
    /// whether anything ran.
    pub fn run_pending(&self) -> bool {
        let mut any = false;
        for _ in 0..MAX_PASSES_PER_INSTANT {
            let mut did = false;
            for h in &self.hosts {
                if h.softirq_pending() {
                    did |= h.do_softirq_once();
                }
            }
            if !did {
                break;
            }
            any = true;
        }
        any
    }

    /// The earliest next event over all hosts.
    pub fn next_event(&self) -> Option<Instant> {
        self.hosts.iter().filter_map(|h| h.next_event()).min()
    }

    /// Run what is due now; if nothing was, advance to the next event (not past
    /// `limit`). Returns false when there is nothing left to do before `limit`.
    pub fn step_until(&self, limit: Instant) -> bool {
        if self.run_pending() {
            return true;
        }
        match self.next_event() {
            Some(t) if t <= limit => {
                self.clock.advance_to(t.max(self.now()));
                self.run_pending();
                true
            }
            _ => false,
        }
    }

    /// One step with no limit.
    pub fn step(&self) -> bool {
        self.step_until(Instant::MAX)
    }

    /// Run every event up to `t`, then set the clock to `t`.
    pub fn run_until(&self, t: Instant) {
        while self.step_until(t) {}
        self.clock.advance_to(t);
        self.run_pending();
    }

    /// Run for `d` of virtual time.
    pub fn run_for(&self, d: Duration) {
        self.run_until(self.now() + d);
    }

    /// Step while `busy()` holds, for at most `limit` of virtual time. `busy` is called
    /// between steps (an application's loop goes there). Returns whether it finished
    /// (`busy` became false) within the limit.
    pub fn run_while(&self, mut busy: impl FnMut() -> bool, limit: Duration) -> bool {
        let end = self.now() + limit;
        loop {
            if !busy() {
                return true;
            }
            if !self.step_until(end) {
                if !busy() {
                    return true;
                }
                if self.now() >= end {
                    return false;
                }
                // Nothing scheduled but the application still wants time to pass.
                self.clock.advance_to(end);
            }
        }
    }
}
