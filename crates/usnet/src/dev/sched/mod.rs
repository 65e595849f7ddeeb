//! The qdisc layer (Linux's `net/sched/sch_generic.c`, `sch_api.c`): queueing
//! disciplines on each transmit queue and the machinery that runs them.
//!
//! The path, as seed 000 §五 and seed 004 §3.6 walk it:
//!
//! * `__dev_xmit_skb` ([`dev_xmit_skb`]): if the qdisc may be bypassed, is empty and no
//!   one is running it, send straight to the driver (`sch_direct_xmit`); otherwise
//!   enqueue, and if no one is running the qdisc, run it now in the caller's context.
//! * `__qdisc_run` ([`qdisc_run`]): `qdisc_restart` repeatedly, until the qdisc is empty,
//!   the driver pushes back, or the `dev_tx_weight` quota (64 packets) is used up — then
//!   `__netif_schedule` puts the qdisc on the NET_TX softirq's output queue and the
//!   caller returns to its process.
//! * `qdisc_restart` → `dequeue_skb` (a requeued skb first; bulk dequeue up to what BQL
//!   allows) → `sch_direct_xmit` → `validate_xmit_skb` → `dev_hard_start_xmit`; a BUSY
//!   driver means `dev_requeue_skb` and a reschedule.
//! * `net_tx_action` ([`net_tx_action`]): frees the completion queue and runs every
//!   rescheduled qdisc.
//!
//! Only one context runs a qdisc at a time (`qdisc_run_begin`). As Linux does for its
//! lockless qdiscs (`TCQ_F_NOLOCK`), `running` is an atomic flag paired with `MISSED`:
//! a context that enqueues while another runs the qdisc sets `MISSED`; the runner, on
//! finding the queue empty, clears `MISSED` and looks once more, and when it stops it
//! reschedules the qdisc if `MISSED` is set. So no packet is ever left behind
//! unscheduled, and the bypass path takes the queue lock only once.

pub mod fq;
pub mod pfifo_fast;
pub mod tbf;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::softnet::{Softnet, NET_TX};
use super::xmit::{dev_hard_start_xmit, validate_xmit_skb};
use super::{NetDevice, NetXmit, NetdevQueue};
use crate::skb::{Skb, SkbQueue};
use crate::time::Instant;
use crate::timer::Timer;
use crate::trace::Stage;
use crate::Stack;

/// What a qdisc's dequeue gives.
#[derive(Debug)]
pub enum Dequeue {
    /// A packet to send.
    Packet(Skb),
    /// Nothing queued.
    Empty,
    /// Packets wait but may not go before this time (rate limiting); the watchdog
    /// reschedules the qdisc then.
    Throttled(Instant),
}

/// A queueing discipline (Linux's `struct Qdisc_ops`).
pub trait Qdisc: Send {
    /// Its name as `tc` prints it (`pfifo_fast`, `tbf`, `fq`, `noqueue`).
    fn kind(&self) -> &'static str;
    /// Queue a packet, or hand it back to be dropped (counted by the caller).
    fn enqueue(&mut self, skb: Skb, dev: &NetDevice, now: Instant) -> Result<(), Skb>;
    /// Take the next packet to send.
    fn dequeue(&mut self, now: Instant) -> Dequeue;
    /// Packets queued.
    fn qlen(&self) -> usize;
    /// Bytes queued.
    fn backlog(&self) -> usize;
    /// Drop everything queued (`qdisc_reset`); returns how many packets.
    fn reset(&mut self) -> usize;
    /// Whether an empty, idle qdisc may be skipped (`TCQ_F_CAN_BYPASS`).
    fn can_bypass(&self) -> bool {
        false
    }
    /// Whether this is `noqueue` (no queue at all: packets go straight to the driver).
    fn is_noqueue(&self) -> bool {
        false
    }
    /// Parameters as `tc qdisc show` prints them after the kind.
    fn describe(&self) -> String;
    /// Times the qdisc held packets back for rate (`overlimits`), if it counts them.
    fn overlimits(&self) -> u64 {
        0
    }
    /// Its own counters as `tc -s qdisc` prints them below the common ones (the
    /// qdisc's xstats, e.g. fq's `flows ... gc ... throttled ...`), if it keeps any.
    fn xstats(&self) -> Option<String> {
        None
    }
}

/// Counters as `tc -s qdisc` prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QdiscStats {
    /// Bytes sent (dequeued or bypassed).
    pub bytes: u64,
    /// Packets sent (GSO skbs count their segments, as Linux's `bstats`).
    pub packets: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Times rate limiting held packets back.
    pub overlimits: u64,
    /// Packets handed back by a busy driver.
    pub requeues: u64,
    /// Bytes queued now.
    pub backlog: u64,
    /// Packets queued now.
    pub qlen: u64,
}

struct QdiscInner {
    q: Box<dyn Qdisc>,
    /// Skbs handed back by a busy driver (Linux's `q->gso_skb`), sent first.
    requeued: SkbQueue,
    requeued_bytes: usize,
    active: bool,
    stats: QdiscStats,
}

/// A transmit queue's qdisc with its lock and state (Linux's `struct Qdisc` plus its
/// root lock and `__QDISC_STATE_SCHED`).
pub struct QdiscSlot {
    inner: Mutex<QdiscInner>,
    /// `__QDISC_STATE_RUNNING` (`qdisc->seqlock` held).
    running: AtomicBool,
    /// `__QDISC_STATE_MISSED`.
    missed: AtomicBool,
    /// Packets queued (qdisc + requeued), mirrored for lock-free emptiness checks.
    qlen: std::sync::atomic::AtomicUsize,
    sched: AtomicBool,
    dev: Weak<NetDevice>,
    txq: u16,
    softnet: Arc<Softnet>,
    watchdog: Mutex<Option<Timer>>,
}

impl fmt::Debug for QdiscSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.inner.lock();
        f.debug_struct("QdiscSlot")
            .field("kind", &i.q.kind())
            .field("txq", &self.txq)
            .field("stats", &i.stats)
            .finish()
    }
}

/// The default qdisc for a queue (`dev_activate`'s choice): `pfifo_fast` with a
/// limit of `txqueuelen`, or `noqueue` when `txqueuelen` is 0.
pub fn default_qdisc(tx_queue_len: u32) -> Box<dyn Qdisc> {
    if tx_queue_len == 0 {
        Box::new(Noqueue)
    } else {
        Box::new(pfifo_fast::PfifoFast::new())
    }
}

impl QdiscSlot {
    pub(crate) fn new(
        dev: Weak<NetDevice>,
        txq: u16,
        softnet: Arc<Softnet>,
        q: Box<dyn Qdisc>,
    ) -> Arc<QdiscSlot> {
        Arc::new(QdiscSlot {
            inner: Mutex::new(QdiscInner {
                q,
                requeued: SkbQueue::new(),
                requeued_bytes: 0,
                active: false,
                stats: QdiscStats::default(),
            }),
            running: AtomicBool::new(false),
            missed: AtomicBool::new(false),
            qlen: std::sync::atomic::AtomicUsize::new(0),
            sched: AtomicBool::new(false),
            dev,
            txq,
            softnet,
            watchdog: Mutex::new(None),
        })
    }

    /// The qdisc's kind.
    pub fn kind(&self) -> &'static str {
        self.inner.lock().q.kind()
    }

    /// `tc qdisc show` parameters.
    pub fn describe(&self) -> String {
        self.inner.lock().q.describe()
    }

    /// The qdisc's own counters (`tc -s qdisc` xstats lines), if it keeps any.
    pub fn xstats(&self) -> Option<String> {
        self.inner.lock().q.xstats()
    }

    /// Counters (`tc -s qdisc`).
    pub fn stats(&self) -> QdiscStats {
        let i = self.inner.lock();
        let mut s = i.stats;
        s.qlen = (i.q.qlen() + i.requeued.len()) as u64;
        s.backlog = (i.q.backlog() + i.requeued_bytes) as u64;
        s.overlimits = i.q.overlimits();
        s
    }

    /// Whether it is on the NET_TX output queue.
    pub fn is_scheduled(&self) -> bool {
        self.sched.load(Ordering::Acquire)
    }

    /// Whether some context is running it now.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// `qdisc_run_begin`: become the one context running this qdisc, or record MISSED
    /// so the runner looks again.
    pub fn run_begin(&self) -> bool {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        if self.missed.swap(true, Ordering::AcqRel) {
            return false;
        }
        // Try again, so that either we run it or the runner sees MISSED at its end.
        self.running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `qdisc_run_end`: stop running; reschedule if someone missed us.
    pub fn run_end(self: &Arc<Self>) {
        self.running.store(false, Ordering::Release);
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.missed.load(Ordering::Acquire) {
            netif_schedule(self);
        }
    }

    fn sync_qlen(&self, g: &QdiscInner) {
        self.qlen
            .store(g.q.qlen() + g.requeued.len(), Ordering::Release);
    }

    /// `tc qdisc replace`: swap in a new qdisc. Packets in the old one are dropped and
    /// counted; the counters restart.
    pub fn replace(&self, q: Box<dyn Qdisc>) {
        let mut i = self.inner.lock();
        let dropped = i.q.reset() + i.requeued.len();
        i.requeued.clear();
        i.requeued_bytes = 0;
        i.q = q;
        i.stats = QdiscStats::default();
        self.sync_qlen(&i);
        let _ = dropped;
    }

    pub(crate) fn activate(&self) {
        self.inner.lock().active = true;
    }

    /// `dev_deactivate`: drop everything and refuse new packets.
    pub(crate) fn deactivate(&self) {
        let mut i = self.inner.lock();
        i.active = false;
        let n = i.q.reset() + i.requeued.len();
        i.requeued.clear();
        i.requeued_bytes = 0;
        i.stats.drops += n as u64;
        self.sync_qlen(&i);
    }

    fn arm_watchdog(self: &Arc<Self>, stack: &Stack, at: Instant) {
        let mut w = self.watchdog.lock();
        let t = w.get_or_insert_with(|| {
            let slot = Arc::downgrade(self);
            Timer::new_hr(move |_stack, _now| {
                if let Some(s) = slot.upgrade() {
                    netif_schedule(&s);
                }
            })
        });
        stack.timers.mod_timer(t, at);
    }
}

/// `__netif_schedule`: put the qdisc on the NET_TX output queue (once) and raise the
/// softirq.
pub fn netif_schedule(slot: &Arc<QdiscSlot>) {
    if slot.sched.swap(true, Ordering::AcqRel) {
        return;
    }
    slot.softnet
        .stats
        .netif_schedule
        .fetch_add(1, Ordering::Relaxed);
    slot.softnet.output_queue.lock().push_back(slot.clone());
    slot.softnet.raise(NET_TX);
}

thread_local! {
    /// Scratch batches for `qdisc_restart` (a small stack, so nested runs — a driver
    /// that transmits on another device — each get their own).
    static SCRATCH: std::cell::RefCell<Vec<Vec<Skb>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn scratch_take() -> Vec<Skb> {
    SCRATCH
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn scratch_put(mut v: Vec<Skb>) {
    v.clear();
    let _ = SCRATCH.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < 8 {
            s.push(v);
        }
    });
}

/// `__dev_xmit_skb`: bypass an idle empty qdisc, or enqueue and run it.
pub fn dev_xmit_skb(
    stack: &Stack,
    skb: Skb,
    slot: &Arc<QdiscSlot>,
    dev: &Arc<NetDevice>,
    txq: &NetdevQueue,
) -> NetXmit {
    let now = stack.now();
    let mut g = slot.inner.lock();
    if g.q.is_noqueue() {
        drop(g);
        return noqueue_xmit(stack, skb, slot, dev, txq);
    }
    if !g.active {
        g.stats.drops += 1;
        drop(g);
        dev.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
        return NetXmit::Drop;
    }
    if g.q.can_bypass() && g.q.qlen() == 0 && g.requeued.is_empty() && slot.run_begin() {
        // Empty and now ours: straight to the driver.
        g.stats.bytes += skb.len() as u64;
        g.stats.packets += u64::from(skb.pcount());
        drop(g);
        stack
            .trace
            .hit(Stage::QdiscBypass, skb.trace_id, skb.len(), now);
        let mut list = scratch_take();
        list.push(skb);
        let more = sch_direct_xmit(stack, &mut list, slot, dev, txq);
        scratch_put(list);
        if more && slot.qlen.load(Ordering::Acquire) > 0 {
            qdisc_run(stack, slot, dev, txq);
        } else {
            slot.run_end();
        }
        return NetXmit::Success;
    }
    stack
        .trace
        .hit(Stage::QdiscEnqueue, skb.trace_id, skb.len(), now);
    let rc = match g.q.enqueue(skb, dev, now) {
        Ok(()) => NetXmit::Success,
        Err(dropped) => {
            g.stats.drops += 1;
            drop(dropped);
            NetXmit::Drop
        }
    };
    slot.sync_qlen(&g);
    drop(g);
    if slot.run_begin() {
        qdisc_run(stack, slot, dev, txq);
    }
    rc
}

/// `dequeue_skb`: the next batch for the driver, into `out`. Requeued skbs go first,
/// one at a time, and only if the queue is not stopped; otherwise one packet from the
/// qdisc plus as many more as byte queue limits allow (`try_bulk_dequeue_skb`).
fn dequeue_skb(
    stack: &Stack,
    slot: &Arc<QdiscSlot>,
    g: &mut QdiscInner,
    txq: &NetdevQueue,
    out: &mut Vec<Skb>,
) {
    if txq.frozen_or_stopped() {
        return;
    }
    if let Some(skb) = g.requeued.pop_front() {
        g.requeued_bytes -= skb.len();
        out.push(skb);
        return;
    }
    let now = stack.now();
    let first = match g.q.dequeue(now) {
        Dequeue::Packet(s) => s,
        Dequeue::Empty => return,
        Dequeue::Throttled(at) => {
            slot.arm_watchdog(stack, at);
            return;
        }
    };
    g.stats.bytes += first.len() as u64;
    g.stats.packets += u64::from(first.pcount());
    let mut bytelimit = txq.dql.avail() - first.len() as i64;
    out.push(first);
    while bytelimit > 0 {
        match g.q.dequeue(now) {
            Dequeue::Packet(s) => {
                g.stats.bytes += s.len() as u64;
                g.stats.packets += u64::from(s.pcount());
                bytelimit -= s.len() as i64;
                out.push(s);
            }
            Dequeue::Throttled(at) => {
                slot.arm_watchdog(stack, at);
                break;
            }
            Dequeue::Empty => break,
        }
    }
}

/// `__qdisc_run`: the caller won `qdisc_run_begin`. Send until the qdisc is empty, the
/// driver or BQL stops us, or the `dev_tx_weight` quota is spent (then reschedule to
/// NET_TX). Ends with `qdisc_run_end`.
pub fn qdisc_run(stack: &Stack, slot: &Arc<QdiscSlot>, dev: &Arc<NetDevice>, txq: &NetdevQueue) {
    let mut quota = stack.sysctl.dev_tx_weight().max(1);
    loop {
        let mut batch = scratch_take();
        {
            let mut g = slot.inner.lock();
            dequeue_skb(stack, slot, &mut g, txq, &mut batch);
            slot.sync_qlen(&g);
        }
        if batch.is_empty() {
            scratch_put(batch);
            // Someone enqueued while we ran: look once more before stopping.
            if slot.missed.swap(false, Ordering::AcqRel) && !txq.frozen_or_stopped() {
                continue;
            }
            slot.run_end();
            return;
        }
        let n = batch.len() as i64;
        let now = stack.now();
        for s in &batch {
            stack
                .trace
                .hit(Stage::QdiscRestart, s.trace_id, s.len(), now);
        }
        let more = sch_direct_xmit(stack, &mut batch, slot, dev, txq);
        scratch_put(batch);
        quota -= n;
        if !more {
            slot.run_end();
            return;
        }
        if quota <= 0 {
            netif_schedule(slot);
            slot.run_end();
            return;
        }
    }
}

/// `sch_direct_xmit`: validate the batch and hand it to the driver; on BUSY requeue
/// what is left. Returns whether the caller may keep sending (`false` after a requeue or
/// when the queue stopped). `batch` is left empty.
fn sch_direct_xmit(
    stack: &Stack,
    batch: &mut Vec<Skb>,
    slot: &Arc<QdiscSlot>,
    dev: &Arc<NetDevice>,
    txq: &NetdevQueue,
) -> bool {
    validate_xmit_skb(stack, dev, batch);
    if batch.is_empty() {
        return true;
    }
    if !txq.frozen_or_stopped() {
        dev_hard_start_xmit(stack, dev, txq, batch);
    }
    if !batch.is_empty() {
        dev_requeue_skb(stack, slot, batch);
        return false;
    }
    !txq.frozen_or_stopped()
}

/// `dev_requeue_skb`: put skbs the driver refused back at the head and reschedule.
fn dev_requeue_skb(stack: &Stack, slot: &Arc<QdiscSlot>, batch: &mut Vec<Skb>) {
    let now = stack.now();
    let mut g = slot.inner.lock();
    for skb in batch.drain(..).rev() {
        stack
            .trace
            .hit(Stage::DevRequeueSkb, skb.trace_id, skb.len(), now);
        g.requeued_bytes += skb.len();
        g.stats.requeues += 1;
        g.requeued.push_front(skb);
    }
    slot.sync_qlen(&g);
    drop(g);
    netif_schedule(slot);
}

/// `net_tx_action`: free skbs on the completion queue, then run every qdisc on the
/// output queue (one that another context is running is left to it).
pub fn net_tx_action(stack: &Stack) {
    let softnet = &stack.softnet;
    softnet.stats.tx_action.fetch_add(1, Ordering::Relaxed);
    {
        let mut freed = softnet.spare_skbs.lock().pop().unwrap_or_default();
        std::mem::swap(&mut freed, &mut *softnet.completion_queue.lock());
        freed.clear();
        softnet.spare_skbs.lock().push(freed);
    }
    let mut list = softnet.spare_qdisc.lock().pop().unwrap_or_default();
    std::mem::swap(&mut list, &mut *softnet.output_queue.lock());
    while let Some(slot) = list.pop_front() {
        slot.sched.store(false, Ordering::Release);
        let Some(dev) = slot.dev.upgrade() else {
            continue;
        };
        let Some(txq) = dev.txqs.get(usize::from(slot.txq)) else {
            continue;
        };
        if !slot.inner.lock().active || !slot.run_begin() {
            continue;
        }
        qdisc_run(stack, &slot, &dev, txq);
    }
    softnet.spare_qdisc.lock().push(list);
}

/// The `noqueue` branch of `__dev_queue_xmit`: straight to the driver; a stopped or
/// busy queue drops the packet ("Virtual device asks to queue packet!").
fn noqueue_xmit(
    stack: &Stack,
    skb: Skb,
    slot: &Arc<QdiscSlot>,
    dev: &Arc<NetDevice>,
    txq: &NetdevQueue,
) -> NetXmit {
    if !dev.is_up() || txq.frozen_or_stopped() {
        slot.count_drop();
        dev.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
        return NetXmit::Drop;
    }
    slot.count_sent(&skb);
    let mut list = vec![skb];
    validate_xmit_skb(stack, dev, &mut list);
    dev_hard_start_xmit(stack, dev, txq, &mut list);
    if list.is_empty() {
        NetXmit::Success
    } else {
        let n = list.len() as u64;
        slot.inner.lock().stats.drops += n;
        dev.stats.tx_dropped.fetch_add(n, Ordering::Relaxed);
        NetXmit::Drop
    }
}

/// `noqueue`: no queue at all. `dev_queue_xmit` hands packets straight to the driver
/// and drops them if it is busy (as Linux does for virtual devices).
#[derive(Debug, Default)]
pub struct Noqueue;

impl Qdisc for Noqueue {
    fn kind(&self) -> &'static str {
        "noqueue"
    }
    fn enqueue(&mut self, skb: Skb, _dev: &NetDevice, _now: Instant) -> Result<(), Skb> {
        Err(skb)
    }
    fn dequeue(&mut self, _now: Instant) -> Dequeue {
        Dequeue::Empty
    }
    fn qlen(&self) -> usize {
        0
    }
    fn backlog(&self) -> usize {
        0
    }
    fn reset(&mut self) -> usize {
        0
    }
    fn is_noqueue(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        String::new()
    }
}

impl QdiscSlot {
    /// Whether the qdisc is `noqueue`.
    pub fn is_noqueue(&self) -> bool {
        self.inner.lock().q.is_noqueue()
    }

    pub(crate) fn count_drop(&self) {
        self.inner.lock().stats.drops += 1;
    }

    pub(crate) fn count_sent(&self, skb: &Skb) {
        let mut g = self.inner.lock();
        g.stats.bytes += skb.len() as u64;
        g.stats.packets += u64::from(skb.pcount());
    }
}

#[cfg(test)]
mod tests;
