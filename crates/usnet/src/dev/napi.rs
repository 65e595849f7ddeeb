//! NAPI (Linux's `struct napi_struct`, `napi_schedule`, `napi_complete_done`) and
//! `net_rx_action`, the NET_RX softirq that polls scheduled devices within a budget.
//!
//! A driver's interrupt handler masks its interrupt and calls [`napi_schedule`]; the
//! softirq later calls the driver's [`NapiPoll::poll`] with a weight (64). A poll that
//! uses its whole weight stays scheduled and goes to the back of the list; one that
//! finishes early calls [`napi_complete_done`] and unmasks its interrupt.
//! `net_rx_action` polls each scheduled NAPI once per run; one that used its whole
//! weight is polled again in the next run (NET_RX is re-raised). A run stops early
//! after `netdev_budget` packets (300) or `netdev_budget_usecs` and counts a
//! `time_squeeze`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::softnet::{Softnet, NET_RX};
use crate::Stack;

const SCHED: u8 = 1 << 0;
const MISSED: u8 = 1 << 1;
const DISABLED: u8 = 1 << 2;
/// Completed while MISSED was set: `net_rx_action` must poll it again.
const REPOLL: u8 = 1 << 3;

/// The NAPI context of one interrupt vector.
#[derive(Debug)]
pub struct Napi {
    state: AtomicU8,
    /// Packets per poll (`dev_weight`, 64).
    pub weight: usize,
    /// GRO state (packets being merged until the end of the poll).
    pub gro: parking_lot::Mutex<super::gro::GroList>,
}

impl Napi {
    /// A NAPI context with `weight` (`netif_napi_add`).
    pub fn new(weight: usize) -> Napi {
        Napi {
            state: AtomicU8::new(0),
            weight,
            gro: parking_lot::Mutex::new(super::gro::GroList::default()),
        }
    }

    /// Whether it is scheduled (on a poll list or being polled).
    pub fn is_scheduled(&self) -> bool {
        self.state.load(Ordering::Acquire) & SCHED != 0
    }

    /// `napi_disable`: no further scheduling.
    pub fn disable(&self) {
        self.state.fetch_or(DISABLED, Ordering::AcqRel);
    }

    /// `napi_enable`.
    pub fn enable(&self) {
        self.state
            .fetch_and(!(DISABLED | SCHED | MISSED), Ordering::AcqRel);
    }
}

/// A driver's poll routine (the `poll` argument of `netif_napi_add`, e.g. `igb_poll`).
pub trait NapiPoll: Send + Sync {
    /// The NAPI context.
    fn napi(&self) -> &Napi;
    /// Process up to `budget` received packets (and clean transmit completions). Return
    /// the number of packets processed; return `budget` to stay scheduled.
    fn poll(&self, stack: &Stack, budget: usize) -> usize;
}

/// `napi_schedule`: put `n` on the poll list and raise NET_RX, unless it already is
/// scheduled (then remember the event as MISSED so the poller looks again).
pub fn napi_schedule(softnet: &Softnet, n: &Arc<dyn NapiPoll>) -> bool {
    let napi = n.napi();
    let mut cur = napi.state.load(Ordering::Acquire);
    loop {
        if cur & DISABLED != 0 {
            return false;
        }
        let new = if cur & SCHED != 0 {
            cur | MISSED
        } else {
            cur | SCHED
        };
        match napi
            .state
            .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
    if cur & SCHED != 0 {
        return false;
    }
    softnet.poll_list.lock().push_back(n.clone());
    softnet.raise(NET_RX);
    true
}

/// `napi_complete_done`: the driver finished early with `work` packets. Flushes GRO and
/// clears SCHED. Returns false if an event came in meanwhile (MISSED): then the NAPI
/// stays scheduled and is polled again, and the driver must keep its interrupt masked.
pub fn napi_complete_done(stack: &Stack, napi: &Napi, _work: usize) -> bool {
    super::gro::napi_gro_flush(stack, napi);
    let mut cur = napi.state.load(Ordering::Acquire);
    loop {
        let new = if cur & MISSED != 0 {
            (cur & !MISSED) | REPOLL
        } else {
            cur & !SCHED
        };
        match napi
            .state
            .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return cur & MISSED == 0,
            Err(c) => cur = c,
        }
    }
}

/// `net_rx_action`: poll scheduled NAPI contexts until the list is empty, the budget of
/// `netdev_budget` packets is spent, or `netdev_budget_usecs` pass (real time; the
/// deterministic scheduler counts packets only).
pub fn net_rx_action(stack: &Stack) {
    let softnet = &stack.softnet;
    let mut budget = stack.sysctl.netdev_budget().max(1) as isize;
    let deadline = (!stack.clock.is_virtual()).then(|| {
        std::time::Instant::now()
            + Duration::from_micros(stack.sysctl.netdev_budget_usecs().max(1) as u64)
    });
    // Swap the poll list out for a spare buffer (no allocation in steady state).
    let mut list = softnet.spare_napi.lock().pop().unwrap_or_default();
    std::mem::swap(&mut list, &mut *softnet.poll_list.lock());
    let mut repoll = softnet.spare_napi.lock().pop().unwrap_or_default();
    let mut squeezed = false;
    while let Some(n) = list.pop_front() {
        let w = n.napi().weight.max(1);
        let work = n.poll(stack, w);
        softnet
            .stats
            .processed
            .fetch_add(work as u64, Ordering::Relaxed);
        if work >= w {
            // Used its whole weight: still scheduled; flush old GRO packets and move it
            // to the tail (napi_poll's repoll list).
            super::gro::napi_gro_flush(stack, n.napi());
            repoll.push_back(n);
        } else if n.napi().take_repoll() {
            // The driver completed but an event was MISSED meanwhile: poll again.
            repoll.push_back(n);
        }
        // A poll that used its weight waits on the repoll list for the next run, as in
        // Linux; out of budget or time, the rest waits too and the run counts a squeeze.
        budget -= work as isize;
        if budget <= 0 || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            squeezed = true;
            break;
        }
    }
    let mut pl = softnet.poll_list.lock();
    // Order as Linux: unprocessed entries, then ones scheduled meanwhile, then repoll.
    list.extend(pl.drain(..));
    list.append(&mut repoll);
    std::mem::swap(&mut list, &mut *pl);
    let again = !pl.is_empty();
    drop(pl);
    {
        let mut spare = softnet.spare_napi.lock();
        spare.push(list);
        spare.push(repoll);
    }
    if squeezed {
        softnet.stats.time_squeeze.fetch_add(1, Ordering::Relaxed);
    }
    if again {
        softnet.raise(NET_RX);
    }
}

impl Napi {
    fn take_repoll(&self) -> bool {
        self.state.fetch_and(!REPOLL, Ordering::AcqRel) & REPOLL != 0
    }
}
