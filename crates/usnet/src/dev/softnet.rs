//! Per-stack softirq state (Linux's per-CPU `struct softnet_data`): the pending softirq
//! bits, the NAPI poll list, the output queue of qdiscs waiting for NET_TX, and the
//! completion queue of skbs freed from interrupt context.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::napi::NapiPoll;
use super::sched::QdiscSlot;
use crate::skb::Skb;
use crate::stack::WeakStack;

/// `NET_TX_SOFTIRQ`.
pub const NET_TX: u32 = 1 << 0;
/// `NET_RX_SOFTIRQ`.
pub const NET_RX: u32 = 1 << 1;
/// `TIMER_SOFTIRQ` (raised when a timer may be due).
pub const TIMER: u32 = 1 << 2;
/// `TASKLET_SOFTIRQ` (TCP small queues restarts).
pub const TASKLET: u32 = 1 << 3;

/// Counters of `/proc/net/softnet_stat`.
#[derive(Debug, Default)]
pub struct SoftnetStats {
    /// Packets processed by `net_rx_action` (column 1).
    pub processed: AtomicU64,
    /// Packets dropped for a full input backlog (column 2).
    pub dropped: AtomicU64,
    /// Times `net_rx_action` stopped with work left, out of budget or time (column 3).
    pub time_squeeze: AtomicU64,
    /// `net_tx_action` runs.
    pub tx_action: AtomicU64,
    /// Times a qdisc was put on the output queue (`__netif_schedule`).
    pub netif_schedule: AtomicU64,
    /// Softirq passes (`do_softirq` loop iterations).
    pub softirq_runs: AtomicU64,
    /// NET_RX raised from a process-context section and run by that thread when the
    /// section ended (`local_bh_enable` → `do_softirq`), instead of waking ksoftirqd.
    pub inline_runs: AtomicU64,
    /// Times the sleeping softirq thread was woken.
    pub wakeups: AtomicU64,
}

/// Softirq state of one stack.
pub struct Softnet {
    pending: AtomicU32,
    pub(crate) poll_list: Mutex<VecDeque<Arc<dyn NapiPoll>>>,
    pub(crate) output_queue: Mutex<VecDeque<Arc<QdiscSlot>>>,
    pub(crate) completion_queue: Mutex<Vec<Skb>>,
    /// Spare list buffers, swapped in and out so the softirq allocates nothing.
    pub(crate) spare_napi: Mutex<Vec<VecDeque<Arc<dyn NapiPoll>>>>,
    pub(crate) spare_qdisc: Mutex<Vec<VecDeque<Arc<QdiscSlot>>>>,
    pub(crate) spare_skbs: Mutex<Vec<Vec<Skb>>>,
    /// Counters.
    pub stats: SoftnetStats,
    wake_lock: Mutex<bool>,
    wake_cv: Condvar,
    sleeping: std::sync::atomic::AtomicBool,
    /// Threads busy-polling this stack (`sk_busy_loop`): while any spins, raised work
    /// is theirs and ksoftirqd is not woken (as busy polling defers the NIC's IRQ).
    busy_pollers: AtomicU32,
    /// A wake-up of ksoftirqd was held back for a busy poller; the last poller to stop
    /// delivers it.
    wake_held: std::sync::atomic::AtomicBool,
    /// The stack this softirq state belongs to (for running it inline).
    owner: OnceLock<WeakStack>,
}

impl std::fmt::Debug for Softnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Softnet")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Softnet {
    fn default() -> Self {
        Softnet {
            pending: AtomicU32::new(0),
            poll_list: Mutex::new(VecDeque::new()),
            output_queue: Mutex::new(VecDeque::new()),
            completion_queue: Mutex::new(Vec::new()),
            spare_napi: Mutex::new(Vec::new()),
            spare_qdisc: Mutex::new(Vec::new()),
            spare_skbs: Mutex::new(Vec::new()),
            stats: SoftnetStats::default(),
            wake_lock: Mutex::new(false),
            wake_cv: Condvar::new(),
            sleeping: std::sync::atomic::AtomicBool::new(false),
            busy_pollers: AtomicU32::new(0),
            wake_held: std::sync::atomic::AtomicBool::new(false),
            owner: OnceLock::new(),
        }
    }
}

impl Softnet {
    /// `raise_softirq`: mark `bits` pending and wake the softirq thread if it sleeps —
    /// unless NET_RX is raised inside a process-context section ([`local_bh_disable`]),
    /// which then runs the softirq itself when it ends, as Linux runs a softirq raised
    /// by `veth_xmit` at the sender's `local_bh_enable` rather than in ksoftirqd.
    #[inline]
    pub fn raise(&self, bits: u32) {
        let old = self.pending.fetch_or(bits, Ordering::AcqRel);
        if old & bits != bits {
            if bits & NET_RX != 0 && self.defer_to_section() {
                return;
            }
            self.wake();
        }
    }

    pub(crate) fn set_owner(&self, owner: WeakStack) {
        let _ = self.owner.set(owner);
    }

    /// Leave the softirq to the current thread's bh-disabled section, if it is in one
    /// and ksoftirqd sleeps (a running ksoftirqd sees the bits anyway).
    fn defer_to_section(&self) -> bool {
        if !self.sleeping.load(Ordering::Acquire) {
            return false;
        }
        let Some(owner) = self.owner.get() else {
            return false;
        };
        BH.try_with(|bh| {
            let mut bh = bh.borrow_mut();
            if bh.depth == 0 {
                return false;
            }
            if !bh.deferred.iter().any(|w| w.ptr_eq(owner)) {
                bh.deferred.push(owner.clone());
            }
            true
        })
        .unwrap_or(false)
    }

    /// Take the pending bits (`local_softirq_pending` + clear).
    pub(crate) fn take_pending(&self) -> u32 {
        self.pending.swap(0, Ordering::AcqRel)
    }

    /// Whether any softirq is pending.
    #[inline]
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }

    /// Wake the softirq thread (ksoftirqd), e.g. after arming an earlier timer. Free
    /// when no thread sleeps (the simulator's case).
    #[inline]
    pub fn wake(&self) {
        if !self.sleeping.load(Ordering::Acquire) {
            return;
        }
        if self.busy_pollers.load(Ordering::SeqCst) > 0 {
            // Held for the poller; if it stopped in between, wake after all.
            self.wake_held.store(true, Ordering::SeqCst);
            if self.busy_pollers.load(Ordering::SeqCst) > 0 {
                return;
            }
        }
        self.wake_thread();
    }

    fn wake_thread(&self) {
        let mut w = self.wake_lock.lock();
        *w = true;
        self.stats.wakeups.fetch_add(1, Ordering::Relaxed);
        self.wake_cv.notify_one();
    }

    /// A thread starts busy-polling: raised softirqs are left to it.
    pub fn busy_poll_begin(&self) {
        self.busy_pollers.fetch_add(1, Ordering::AcqRel);
    }

    /// The busy-polling thread stops: anything raised meanwhile goes to ksoftirqd —
    /// woken only if a wake-up was held back (work raised, or a timer armed earlier
    /// than it sleeps for), not after every poll: a request/response flow busy-polls
    /// once per transaction.
    pub fn busy_poll_end(&self) {
        if self.busy_pollers.fetch_sub(1, Ordering::SeqCst) == 1
            && (self.wake_held.swap(false, Ordering::SeqCst) || self.pending() != 0)
        {
            self.wake();
        }
    }

    /// Sleep until woken or `timeout` passes (the softirq thread's idle wait).
    pub fn wait(&self, timeout: Option<Duration>) {
        let mut w = self.wake_lock.lock();
        self.sleeping.store(true, Ordering::SeqCst);
        if !*w && self.pending() == 0 {
            match timeout {
                Some(t) => {
                    self.wake_cv.wait_for(&mut w, t);
                }
                None => self.wake_cv.wait(&mut w),
            }
        }
        *w = false;
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// `dev_kfree_skb_irq`: free an skb from interrupt context by putting it on the
    /// completion queue; `net_tx_action` frees it.
    pub fn kfree_skb_irq(&self, skb: Skb) {
        self.completion_queue.lock().push(skb);
        self.raise(NET_TX);
    }

    /// Number of NAPI instances waiting to be polled.
    pub fn poll_list_len(&self) -> usize {
        self.poll_list.lock().len()
    }

    /// `/proc/net/softnet_stat`-style line: processed, dropped, time_squeeze.
    pub fn softnet_stat(&self) -> [u64; 3] {
        [
            self.stats.processed.load(Ordering::Relaxed),
            self.stats.dropped.load(Ordering::Relaxed),
            self.stats.time_squeeze.load(Ordering::Relaxed),
        ]
    }
}

/// A thread's bh-disabled sections and the stacks whose NET_RX they deferred.
#[derive(Default)]
struct BhState {
    depth: u32,
    deferred: Vec<WeakStack>,
    spare: Vec<WeakStack>,
}

thread_local! {
    static BH: RefCell<BhState> = RefCell::new(BhState::default());
}

/// Rounds of deferred softirqs a section's end runs before handing the rest to
/// ksoftirqd (each round may raise NET_RX on the peer again: the ACK coming back).
const MAX_INLINE_ROUNDS: usize = 4;

/// A process-context section (`local_bh_disable`): NET_RX raised on a stack whose
/// softirq thread sleeps is run by this thread when the outermost section ends.
#[must_use = "the section ends when the guard drops"]
pub struct BhSection {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Enter a process-context section; see [`BhSection`].
pub fn local_bh_disable() -> BhSection {
    let _ = BH.try_with(|bh| bh.borrow_mut().depth += 1);
    BhSection {
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for BhSection {
    fn drop(&mut self) {
        let last = BH
            .try_with(|bh| {
                let mut bh = bh.borrow_mut();
                bh.depth -= 1;
                bh.depth == 0 && !bh.deferred.is_empty()
            })
            .unwrap_or(false);
        if last {
            run_deferred();
        }
    }
}

/// Run what the current sections deferred now, before the thread sleeps (as
/// `release_sock`'s `spin_unlock_bh` runs pending softirqs before `sk_wait_event`
/// sleeps): a sleeping thread must not sit on a softirq another stack waits for.
pub fn local_bh_flush() {
    let any = BH
        .try_with(|bh| !bh.borrow().deferred.is_empty())
        .unwrap_or(false);
    if any {
        run_deferred();
    }
}

/// `local_bh_enable` → `do_softirq`: run the deferred stacks' softirqs here, a few
/// rounds (still inside a section, so what they raise on each other is run too), then
/// wake the softirq threads of whatever is left.
fn run_deferred() {
    for _ in 0..MAX_INLINE_ROUNDS {
        let Ok(mut list) = BH.try_with(|bh| {
            let mut bh = bh.borrow_mut();
            let spare = std::mem::take(&mut bh.spare);
            bh.depth += 1;
            std::mem::replace(&mut bh.deferred, spare)
        }) else {
            return;
        };
        for w in list.drain(..) {
            if let Some(stack) = w.upgrade() {
                stack
                    .softnet
                    .stats
                    .inline_runs
                    .fetch_add(1, Ordering::Relaxed);
                stack.do_softirq();
            }
        }
        let more = BH
            .try_with(|bh| {
                let mut bh = bh.borrow_mut();
                bh.depth -= 1;
                bh.spare = list;
                !bh.deferred.is_empty()
            })
            .unwrap_or(false);
        if !more {
            return;
        }
    }
    let left = BH
        .try_with(|bh| std::mem::take(&mut bh.borrow_mut().deferred))
        .unwrap_or_default();
    for w in left {
        if let Some(stack) = w.upgrade() {
            stack.softnet.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wakeups(s: &Softnet) -> u64 {
        s.stats.wakeups.load(Ordering::Relaxed)
    }

    #[test]
    fn a_busy_poller_holds_wakeups_and_delivers_them_when_it_stops() {
        let s = Softnet::default();
        s.sleeping.store(true, Ordering::SeqCst);
        // A poll during which nothing needed ksoftirqd: it stays asleep.
        s.busy_poll_begin();
        s.busy_poll_end();
        assert_eq!(wakeups(&s), 0);
        // A wake-up (an earlier timer armed) while a thread polls is held for it...
        s.busy_poll_begin();
        s.wake();
        assert_eq!(wakeups(&s), 0);
        // ...and delivered when the last poller stops.
        s.busy_poll_begin();
        s.busy_poll_end();
        assert_eq!(wakeups(&s), 0, "another poller still spins");
        s.busy_poll_end();
        assert_eq!(wakeups(&s), 1);
        // Delivered once.
        s.busy_poll_begin();
        s.busy_poll_end();
        assert_eq!(wakeups(&s), 1);
        // Without pollers a wake-up goes straight through.
        s.wake();
        assert_eq!(wakeups(&s), 2);
    }
}
