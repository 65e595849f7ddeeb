//! [`Stack`]: one network stack instance — one host — with its devices, softirq state,
//! timers, sysctls and protocol handlers (Linux's `struct net` plus the per-CPU
//! `softnet_data`). Several stacks live in one process: the simulator connects them
//! over emulated wires.
//!
//! ```
//! use usnet::Stack;
//! let host = Stack::builder().name("a").build();
//! assert_eq!(host.name(), "a");
//! assert_eq!(host.sysctl.get("net.core.dev_weight"), Some(64));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::dev::napi::net_rx_action;
use crate::dev::rx::PacketHandler;
use crate::dev::sched::net_tx_action;
use crate::dev::softnet::{NET_RX, NET_TX};
use crate::dev::{DevRegistry, Softnet};
use crate::rng::Rng;
use crate::sysctl::Sysctl;
use crate::time::{Clock, Instant, RealClock};
use crate::timer::TimerBase;
use crate::trace::Tracer;

/// How many times `do_softirq` restarts before leaving work to the next call (Linux's
/// `MAX_SOFTIRQ_RESTART`).
pub const MAX_SOFTIRQ_RESTART: usize = 10;

/// Protocol handlers a stack can hold (Linux's `ptype_base` hash, here a small
/// lock-free table: lookups on the receive path take no lock).
pub const PTYPE_SLOTS: usize = 8;

#[derive(Default)]
struct PtypeSlot {
    /// 0 when free, else `0x1_0000 | ethertype`, published after `handler` is set.
    proto: std::sync::atomic::AtomicU32,
    handler: std::sync::OnceLock<Arc<dyn PacketHandler>>,
}

/// The state of one stack. [`Stack`] dereferences to it.
pub struct StackInner {
    name: String,
    /// The clock every timer and timestamp reads.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub sysctl: Sysctl,
    /// Softirq state.
    pub softnet: Arc<Softnet>,
    /// Timers.
    pub timers: TimerBase,
    /// Devices.
    pub devs: DevRegistry,
    /// Seeded randomness (ISNs, ports, neighbour timer jitter).
    pub rng: Mutex<Rng>,
    /// Trace points.
    pub trace: Arc<Tracer>,
    /// The input backlog (`netif_rx`).
    pub backlog: Arc<crate::dev::backlog::Backlog>,
    /// IPv4.
    pub ipv4: crate::ipv4::Ipv4,
    /// TCP.
    pub tcp: crate::tcp::TcpTables,
    /// The file descriptor table of the socket layer.
    pub fds: crate::socket::FdTable,
    ptypes: [PtypeSlot; PTYPE_SLOTS],
    ptype_lock: Mutex<()>,
    ksoftirqd: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopping: AtomicBool,
}

/// A handle to a network stack; clones share it.
#[derive(Clone)]
pub struct Stack {
    inner: Arc<StackInner>,
}

/// A weak handle (for drivers and timers, which must not keep a stack alive).
#[derive(Clone)]
pub struct WeakStack {
    inner: Weak<StackInner>,
}

impl WeakStack {
    /// The stack, if it still exists.
    pub fn upgrade(&self) -> Option<Stack> {
        self.inner.upgrade().map(|inner| Stack { inner })
    }

    /// Whether both refer to the same stack.
    pub fn ptr_eq(&self, other: &WeakStack) -> bool {
        self.inner.ptr_eq(&other.inner)
    }
}

impl std::ops::Deref for Stack {
    type Target = StackInner;
    fn deref(&self) -> &StackInner {
        &self.inner
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("name", &self.name)
            .field("devs", &self.devs)
            .finish()
    }
}

/// Builds a [`Stack`].
pub struct StackBuilder {
    name: String,
    clock: Option<Arc<dyn Clock>>,
    seed: Option<u64>,
}

impl StackBuilder {
    /// The host's name (shown in traces and views).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The clock (default: the real monotonic clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seed for the stack's randomness (default: from the OS).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Build the stack.
    pub fn build(self) -> Stack {
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| RealClock::new());
        let mut rng = match self.seed {
            Some(s) => Rng::new(s),
            None => Rng::from_entropy(),
        };
        let ident_key = rng.next_u64();
        let tcp_secret = [rng.next_u64(), rng.next_u64()];
        let softnet = Arc::new(Softnet::default());
        let timers = TimerBase::new();
        let waker = softnet.clone();
        timers.set_waker(Box::new(move || waker.wake()));
        let stack = Stack {
            inner: Arc::new(StackInner {
                name: self.name,
                clock,
                sysctl: Sysctl::default(),
                softnet,
                timers,
                devs: DevRegistry::default(),
                rng: Mutex::new(rng),
                trace: Arc::new(Tracer::default()),
                backlog: crate::dev::backlog::Backlog::new(64),
                ipv4: crate::ipv4::Ipv4::new(ident_key),
                tcp: crate::tcp::TcpTables::new(tcp_secret),
                fds: crate::socket::FdTable::default(),
                ptypes: std::array::from_fn(|_| PtypeSlot::default()),
                ptype_lock: Mutex::new(()),
                ksoftirqd: Mutex::new(None),
                stopping: AtomicBool::new(false),
            }),
        };
        stack.softnet.set_owner(stack.downgrade());
        crate::ipv4::init(&stack);
        crate::tcp::init(&stack);
        stack
    }
}

impl Stack {
    /// Start building a stack.
    pub fn builder() -> StackBuilder {
        StackBuilder {
            name: "host".to_string(),
            clock: None,
            seed: None,
        }
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stack's current time.
    /// Inside a [`crate::time::TimeScope`] on this thread this is the scope's
    /// reading (one clock read per packet or per transmit burst, not per timestamp).
    #[inline]
    pub fn now(&self) -> Instant {
        crate::time::now(&self.clock)
    }

    /// Open a [`crate::time::TimeScope`] over this stack's clock: until it drops,
    /// [`Stack::now`] on this thread returns one reading taken here.
    #[inline]
    pub fn time_scope(&self) -> crate::time::TimeScope {
        crate::time::TimeScope::enter(&self.clock)
    }

    /// Read the clock afresh, updating an open scope's reading (`tcp_mstamp_refresh`).
    #[inline]
    pub fn refresh_now(&self) -> Instant {
        crate::time::refresh(&self.clock)
    }

    /// A weak handle.
    pub fn downgrade(&self) -> WeakStack {
        WeakStack {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Whether two handles are the same stack.
    pub fn ptr_eq(&self, other: &Stack) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// `dev_add_pack`: handle received packets of EtherType `protocol`. Each
    /// EtherType has one handler, registered once; `AlreadyExists` otherwise, and
    /// `OutOfMemory` past [`PTYPE_SLOTS`] protocols.
    pub fn dev_add_pack(
        &self,
        protocol: u16,
        handler: Arc<dyn PacketHandler>,
    ) -> std::io::Result<()> {
        let key = 0x1_0000 | u32::from(protocol);
        let _guard = self.ptype_lock.lock();
        if self
            .ptypes
            .iter()
            .any(|s| s.proto.load(Ordering::Acquire) == key)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("a handler for EtherType {protocol:#06x} is registered"),
            ));
        }
        for slot in &self.ptypes {
            if slot.proto.load(Ordering::Acquire) == 0 && slot.handler.set(handler.clone()).is_ok()
            {
                slot.proto.store(key, Ordering::Release);
                return Ok(());
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            "no free protocol handler slot",
        ))
    }

    /// The handler for EtherType `protocol` (lock-free).
    #[inline]
    pub fn ptype_handler(&self, protocol: u16) -> Option<&Arc<dyn PacketHandler>> {
        let key = 0x1_0000 | u32::from(protocol);
        self.ptypes
            .iter()
            .find(|s| s.proto.load(Ordering::Acquire) == key)
            .and_then(|s| s.handler.get())
    }

    /// Whether softirq work is waiting now: raised softirqs or a due timer.
    pub fn softirq_pending(&self) -> bool {
        self.softnet.pending() != 0 || self.timers.next_expiry().is_some_and(|t| t <= self.now())
    }

    /// When this stack next has something to do: now if softirqs are pending, else its
    /// earliest timer.
    pub fn next_event(&self) -> Option<Instant> {
        if self.softnet.pending() != 0 {
            return Some(self.now());
        }
        self.timers.next_expiry()
    }

    /// `do_softirq`: run expired timers, NET_TX and NET_RX until nothing is pending (at
    /// most [`MAX_SOFTIRQ_RESTART`] passes). Returns whether any work was done.
    pub fn do_softirq(&self) -> bool {
        let mut did = false;
        for _ in 0..MAX_SOFTIRQ_RESTART {
            if !self.do_softirq_once() {
                break;
            }
            did = true;
        }
        did
    }

    /// One pass of `do_softirq` without restarts: due timers, then NET_TX, then NET_RX.
    /// The simulator runs hosts a pass at a time so that hosts, which would run in
    /// parallel on their own CPUs, interleave finely. Returns whether work was done.
    pub fn do_softirq_once(&self) -> bool {
        let _time = self.time_scope();
        let now = self.now();
        let fired = if self.timers.next_expiry().is_some_and(|t| t <= now) {
            self.timers.run(self, now)
        } else {
            0
        };
        let pending = self.softnet.take_pending();
        if pending == 0 && fired == 0 {
            return false;
        }
        self.softnet
            .stats
            .softirq_runs
            .fetch_add(1, Ordering::Relaxed);
        if pending & NET_TX != 0 {
            net_tx_action(self);
        }
        if pending & NET_RX != 0 {
            net_rx_action(self);
        }
        if pending & crate::dev::softnet::TASKLET != 0 {
            crate::tcp::timer::tsq_run(self);
        }
        true
    }

    /// Start this stack's softirq thread (ksoftirqd) for real-time use: it sleeps until
    /// a softirq is raised or a timer is due, then runs [`Stack::do_softirq`]. Stopped by
    /// [`Stack::stop`] (or when the last handle is dropped).
    pub fn start(&self) {
        let mut k = self.ksoftirqd.lock();
        if k.is_some() {
            return;
        }
        self.stopping.store(false, Ordering::Release);
        let weak = self.downgrade();
        let name = format!("ksoftirqd/{}", self.name);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || loop {
                let Some(stack) = weak.upgrade() else {
                    return;
                };
                if stack.stopping.load(Ordering::Acquire) {
                    return;
                }
                stack.do_softirq();
                let timeout = match stack.timers.next_expiry() {
                    Some(t) => t.saturating_duration_since(stack.now()),
                    None => Duration::from_millis(100),
                };
                let softnet = stack.softnet.clone();
                drop(stack);
                if !timeout.is_zero() {
                    softnet.wait(Some(timeout.min(Duration::from_millis(100))));
                }
            })
            .ok();
        *k = handle;
    }

    /// Stop the softirq thread started by [`Stack::start`] and wait for it.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.softnet.wake();
        let h = self.ksoftirqd.lock().take();
        if let Some(h) = h {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}
