//! The socket lock (Linux's `lock_sock` / `release_sock` and `bh_lock_sock` with the
//! backlog, `net/core/sock.c`): a process owns the socket while it works on it;
//! softirq queues what arrives meanwhile on the backlog (bounded as
//! `tcp_add_backlog`), and the owner processes it, in order, when it releases.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::MutexGuard;

use super::*;
use crate::skb::Skb;

/// The process-context lock on a socket (`lock_sock`). Dereferences to the control
/// block. Dropping it is `release_sock`: segments that arrived meanwhile are processed
/// in order, and deferred timer work runs.
pub struct SockGuard<'a> {
    sk: &'a Arc<TcpSock>,
    stack: Stack,
    tcb: Option<MutexGuard<'a, Tcb>>,
    /// One clock reading for the call (refreshed by each transmit burst and after a
    /// wait), dropped before the softirqs `_bh` runs.
    _time: crate::time::TimeScope,
    /// Process context: NET_RX this call raises on a sleeping stack runs here once the
    /// socket is released (dropped after `tcb`).
    _bh: crate::dev::softnet::BhSection,
}

impl std::ops::Deref for SockGuard<'_> {
    type Target = Tcb;
    fn deref(&self) -> &Tcb {
        match &self.tcb {
            Some(t) => t,
            None => unreachable!("sock guard used after release"),
        }
    }
}

impl std::ops::DerefMut for SockGuard<'_> {
    fn deref_mut(&mut self) -> &mut Tcb {
        match &mut self.tcb {
            Some(t) => t,
            None => unreachable!("sock guard used after release"),
        }
    }
}

impl SockGuard<'_> {
    /// The stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Give up the lock to sleep until `ready` holds or `timeout` passes
    /// (`sk_wait_event`), then take it back. Backlog is processed on the way out.
    pub fn wait(&mut self, timeout: Option<Duration>, mut ready: impl FnMut(&Tcb) -> bool) -> bool {
        let sk = self.sk;
        self.release_inner();
        crate::dev::softnet::local_bh_flush();
        // sk_busy_loop: with SO_BUSY_POLL / net.core.busy_read, run the stack's softirq
        // from this thread for a while instead of sleeping at once (no wake-ups on the
        // way: the reply is picked off the NIC by the thread that wants it).
        let busy = match sk.busy_poll_us.load(Ordering::Relaxed) {
            0 => self.stack.sysctl.busy_read().max(0) as u64,
            us => u64::from(us),
        };
        if busy > 0 && timeout != Some(Duration::ZERO) && !self.stack.clock.is_virtual() {
            let until = std::time::Instant::now() + Duration::from_micros(busy);
            let softnet = self.stack.softnet.clone();
            softnet.busy_poll_begin();
            let mut got = false;
            // Readiness is re-checked (under the control block's lock) only when the
            // wait queue was woken, raised softirqs are run as they appear, and the
            // clock (and due timers) are looked at every few spins: the loop itself
            // touches only a few shared atomics (sk_busy_loop_end reads the receive
            // queue locklessly too).
            let mut seen = !sk.wq.seq();
            let mut spins = 0u32;
            loop {
                if softnet.pending() != 0 {
                    self.stack.do_softirq();
                }
                let seq = sk.wq.seq();
                if seq != seen {
                    seen = seq;
                    if ready(&sk.tcb.lock()) {
                        got = true;
                        break;
                    }
                }
                spins = spins.wrapping_add(1);
                if spins % 64 == 0 {
                    if std::time::Instant::now() >= until {
                        break;
                    }
                    self.stack.do_softirq();
                }
                std::hint::spin_loop();
            }
            softnet.busy_poll_end();
            if got {
                self.tcb = Some(sk.lock_owned());
                self.stack.refresh_now();
                return true;
            }
        }
        let ok = sk.wq.wait_until(timeout, || {
            let t = sk.tcb.lock();
            ready(&t)
        });
        self.tcb = Some(sk.lock_owned());
        // Time passed while waiting.
        self.stack.refresh_now();
        ok
    }

    fn release_inner(&mut self) {
        let sk = self.sk;
        let mut tcb = self.tcb.take();
        // Segments on a listener's backlog that belong to a connection an earlier
        // segment of the same backlog just created: delivered to it once the listener
        // is released (Linux's lookup would have found the new socket first).
        let mut redirect: Vec<(Arc<TcpSock>, Skb)> = Vec::new();
        loop {
            let (skbs, deferred) = {
                let mut s = sk.slock.lock();
                if s.backlog.is_empty() && s.deferred == 0 {
                    if let Some(t) = &tcb {
                        s.backlog_limit = backlog_limit(t);
                    }
                    drop(tcb.take());
                    s.owned = false;
                    drop(s);
                    sk.owner_cv.notify_one();
                    for (child, skb) in redirect {
                        child.rcv_or_backlog(&self.stack, skb);
                    }
                    return;
                }
                s.backlog_bytes = 0;
                (
                    std::mem::take(&mut s.backlog),
                    std::mem::take(&mut s.deferred),
                )
            };
            let t = tcb.get_or_insert_with(|| sk.tcb.lock());
            for skb in skbs {
                if t.state == TcpState::Listen {
                    if let Some(child) = input::established_for(&self.stack, &skb) {
                        redirect.push((child, skb));
                        continue;
                    }
                }
                input::tcp_v4_do_rcv(&self.stack, sk, t, skb);
            }
            if deferred != 0 {
                timer::run_deferred(&self.stack, sk, t, deferred);
            }
        }
    }
}

impl Drop for SockGuard<'_> {
    fn drop(&mut self) {
        if self.tcb.is_some() {
            self.release_inner();
        }
    }
}

impl TcpSock {
    /// Take ownership as a process (`lock_sock`): wait for another owner, then hold the
    /// control block.
    fn lock_owned(&self) -> MutexGuard<'_, Tcb> {
        let mut s = self.slock.lock();
        if s.owned {
            drop(s);
            crate::dev::softnet::local_bh_flush();
            s = self.slock.lock();
        }
        while s.owned {
            self.owner_cv.wait(&mut s);
        }
        s.owned = true;
        drop(s);
        self.tcb.lock()
    }

    /// `lock_sock`. Like the kernel's, the lock is for short stretches of protocol
    /// work: on a real clock the guard also holds one time reading for the call
    /// ([`crate::time::TimeScope`], refreshed by each transmit burst and after a wait),
    /// so holding it across unrelated long work would date what follows.
    pub fn lock_sock<'a>(self: &'a Arc<Self>) -> io::Result<SockGuard<'a>> {
        let stack = self.stack()?;
        let bh = crate::dev::softnet::local_bh_disable();
        let tcb = Some(self.lock_owned());
        let time = stack.time_scope();
        Ok(SockGuard {
            sk: self,
            stack,
            tcb,
            _time: time,
            _bh: bh,
        })
    }

    /// Softirq's view (`bh_lock_sock` + `sock_owned_by_user`): run `f` on the control
    /// block now if no process owns the socket, else queue `skb` on the backlog (bounded
    /// by the buffers, as `sk_add_backlog`; beyond that it is dropped and counted).
    pub(crate) fn rcv_or_backlog(self: &Arc<Self>, stack: &Stack, skb: Skb) {
        let mut s = self.slock.lock();
        if s.owned {
            if s.backlog_bytes + skb.truesize() as usize > s.backlog_limit {
                stack.tcp.mib.inc(TcpExt::TCPBacklogDrop);
                return;
            }
            s.backlog_bytes += skb.truesize() as usize;
            s.backlog.push_back(skb);
            return;
        }
        let mut t = self.tcb.lock();
        input::tcp_v4_do_rcv(stack, self, &mut t, skb);
    }

    /// Softirq work other than a segment (timers, TSQ): run now, or defer to the owner.
    pub(crate) fn bh_run(self: &Arc<Self>, stack: &Stack, bit: u32) {
        let mut s = self.slock.lock();
        if s.owned {
            s.deferred |= bit;
            return;
        }
        let mut t = self.tcb.lock();
        timer::run_deferred(stack, self, &mut t, bit);
    }
}
