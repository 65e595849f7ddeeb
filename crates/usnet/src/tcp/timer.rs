//! TCP timers (Linux's `net/ipv4/tcp_timer.c`): the retransmission timer (with
//! exponential backoff, `tcp_retries2` → `ETIMEDOUT`, SYN retries), the zero-window
//! probe (persist) timer, the delayed-ACK timer, keepalive, the orphaned FIN_WAIT2
//! timeout, `TCP_USER_TIMEOUT`, and the TCP-small-queues restart.
//!
//! Each fires in softirq; if an application owns the socket at that moment the work is
//! deferred to `release_sock`, as Linux's `TCP_*_DEFERRED` flags do.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::cong::{with_cc, CaEvent};
use super::output;
use super::recovery::xmit_retransmit_queue;
use super::{ack, deferred, CaState, Tcb, TcpExt, TcpSock, TcpState, TCP_RTO_MAX, TCP_RTO_MIN};
use crate::sock::errno;
use crate::time::Instant;
use crate::timer::Timer;
use crate::Stack;

/// Which transmit timer is pending (Linux's `icsk_pending`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pending {
    /// None.
    #[default]
    None,
    /// Retransmission timeout.
    Retrans,
    /// Zero-window probe.
    Probe0,
    /// Tail loss probe.
    LossProbe,
    /// RACK reorder timeout.
    ReoTimeout,
}

/// The timers of one socket.
pub struct TcpTimers {
    /// Retransmit / probe / loss-probe timer (`icsk_retransmit_timer`).
    pub xmit: Timer,
    /// Delayed ACK (`icsk_delack_timer`).
    pub delack: Timer,
    /// Keepalive, SYN-ACK retransmission for listeners, FIN_WAIT2 (`sk_timer`).
    pub keepalive: Timer,
    /// Internal pacing: the next packet's departure time (`pacing_timer`), which
    /// kicks the sender as TSQ's tasklet does (`tcp_pace_kick`). Made the first time
    /// a paced socket has to wait: most sockets never pace, and an idle socket's
    /// memory is counted.
    pace: std::sync::OnceLock<Timer>,
}

impl TcpTimers {
    pub(crate) fn new(sk: Weak<TcpSock>) -> TcpTimers {
        let (a, b, c) = (sk.clone(), sk.clone(), sk);
        TcpTimers {
            xmit: Timer::new(move |stack, _| {
                if let Some(sk) = a.upgrade() {
                    sk.bh_run(stack, deferred::WRITE_TIMER);
                }
            }),
            delack: Timer::new(move |stack, _| {
                if let Some(sk) = b.upgrade() {
                    sk.bh_run(stack, deferred::DELACK_TIMER);
                }
            }),
            keepalive: Timer::new(move |stack, _| {
                if let Some(sk) = c.upgrade() {
                    sk.bh_run(stack, deferred::KEEPALIVE);
                }
            }),
            pace: std::sync::OnceLock::new(),
        }
    }

    /// The pacing timer of socket `sk` (these timers' owner), made on first use.
    pub fn pace(&self, sk: &Arc<TcpSock>) -> &Timer {
        self.pace.get_or_init(|| {
            let sk = Arc::downgrade(sk);
            Timer::new(move |stack, _| {
                if let Some(sk) = sk.upgrade() {
                    sk.bh_run(stack, deferred::TSQ);
                }
            })
        })
    }

    /// Whether the socket ever had to wait for its pacing timer (internal pacing in
    /// use; never once the fq qdisc paces it).
    pub fn pace_used(&self) -> bool {
        self.pace.get().is_some()
    }

    /// Cancel the pacing timer, if it was ever made.
    pub fn del_pace(&self) {
        if let Some(t) = self.pace.get() {
            t.del();
        }
    }
}

/// Run timer or TSQ work on the socket (softirq, or `release_sock` for deferred work).
pub(crate) fn run_deferred(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, bits: u32) {
    let before = (t.state, t.err, t.shutdown);
    if bits & deferred::TSQ != 0 {
        tsq_write(stack, sk, t);
    }
    if bits & deferred::WRITE_TIMER != 0 {
        write_timer(stack, sk, t);
    }
    if bits & deferred::DELACK_TIMER != 0 {
        delack_timer(stack, sk, t);
    }
    if bits & deferred::MTU_REDUCED != 0 {
        super::input::mtu_reduced(stack, sk, t);
    }
    if bits & deferred::KEEPALIVE != 0 {
        keepalive_timer(stack, sk, t);
    }
    // Waiters care about a new state or error (a timer that gave up); sending more
    // (TSQ) or an ACK timer changes nothing they wait for.
    if before != (t.state, t.err, t.shutdown) {
        sk.wq.wake_all();
    }
}

/// `inet_csk_reset_xmit_timer`.
pub fn reset_xmit_timer(stack: &Stack, sk: &TcpSock, t: &mut Tcb, what: Pending, after: Duration) {
    let after = after.min(TCP_RTO_MAX);
    let at = stack.now() + after;
    t.pending_timer = what;
    t.timeout_at = Some(at);
    stack.timers.mod_timer(&sk.timers.xmit, at);
}

/// `inet_csk_clear_xmit_timer`.
pub fn clear_xmit_timer(sk: &TcpSock, t: &mut Tcb) {
    t.pending_timer = Pending::None;
    t.timeout_at = None;
    sk.timers.xmit.del();
}

/// `tcp_rearm_rto`: the retransmission timer runs while packets are in flight, one RTO
/// from now (TCP_USER_TIMEOUT may shorten it).
pub fn tcp_rearm_rto(stack: &Stack, sk: &TcpSock, t: &mut Tcb) {
    if t.packets_out == 0 {
        if t.pending_timer != Pending::Probe0 {
            clear_xmit_timer(sk, t);
        }
        return;
    }
    let mut rto = t.rto;
    if matches!(t.pending_timer, Pending::ReoTimeout | Pending::LossProbe) {
        // tcp_rto_delta_us: the RTO counts from when the oldest packet was sent, not
        // from when a probe or reorder timer is replaced.
        if let Some(head) = t.rtx_queue.front() {
            let elapsed = stack.now().saturating_duration_since(head.cb.tcp.tx_time);
            rto = t.rto.saturating_sub(elapsed).max(Duration::from_micros(1));
        }
    }
    let rto = clamp_rto_to_user_timeout(stack, t, rto);
    reset_xmit_timer(stack, sk, t, Pending::Retrans, rto);
}

/// `tcp_clamp_rto_to_user_timeout`.
fn clamp_rto_to_user_timeout(stack: &Stack, t: &Tcb, rto: Duration) -> Duration {
    match (t.user_timeout(), t.retrans_stamp) {
        (Some(ut), Some(start)) => {
            let elapsed = stack.now().saturating_duration_since(start);
            if elapsed >= ut {
                Duration::from_millis(1)
            } else {
                rto.min(ut - elapsed)
            }
        }
        _ => rto,
    }
}

/// `tcp_check_probe_timer`: data waits but nothing is in flight (the window is closed):
/// arm the zero-window probe.
pub fn tcp_check_probe_timer(stack: &Stack, sk: &TcpSock, t: &mut Tcb) {
    if t.packets_out == 0 && t.pending_timer == Pending::None {
        let base = t.rto.max(TCP_RTO_MIN);
        reset_xmit_timer(stack, sk, t, Pending::Probe0, base);
    }
}

/// Tail loss probe scheduling (`tcp_schedule_loss_probe`, RFC 8985 § 7): see
/// [`super::recovery::schedule_loss_probe`]. Returns whether a probe was armed.
pub fn tcp_schedule_loss_probe(stack: &Stack, sk: &TcpSock, t: &mut Tcb) -> bool {
    super::recovery::schedule_loss_probe(stack, sk, t)
}

/// `tcp_set_xmit_timer`: after an ACK, a loss probe if one applies, else the RTO.
pub fn tcp_set_xmit_timer(stack: &Stack, sk: &TcpSock, t: &mut Tcb) {
    if !tcp_schedule_loss_probe(stack, sk, t) {
        tcp_rearm_rto(stack, sk, t);
    }
}

/// `tcp_model_timeout`: how long `boundary` retransmissions with exponential backoff from
/// `rto_base` take (capped at `TCP_RTO_MAX` per step).
pub fn model_timeout(boundary: u32, rto_base: Duration) -> Duration {
    let base = rto_base.as_millis().max(1) as u64;
    let thresh = 63
        - (TCP_RTO_MAX.as_millis() as u64 / base)
            .max(1)
            .leading_zeros();
    let ms = if boundary <= thresh {
        ((2u64 << boundary) - 1) * base
    } else {
        ((2u64 << thresh) - 1) * base
            + u64::from(boundary - thresh) * TCP_RTO_MAX.as_millis() as u64
    };
    Duration::from_millis(ms)
}

/// `retransmits_timed_out`.
fn retransmits_timed_out(stack: &Stack, t: &Tcb, boundary: u32, user: Option<Duration>) -> bool {
    if t.retransmits == 0 {
        return false;
    }
    let Some(start) = t.retrans_stamp else {
        return false;
    };
    let timeout = user.unwrap_or_else(|| {
        let base = if matches!(t.state, TcpState::SynSent | TcpState::SynRecv) {
            super::TCP_TIMEOUT_INIT
        } else {
            TCP_RTO_MIN
        };
        model_timeout(boundary, base)
    });
    stack.now().saturating_duration_since(start) >= timeout
}

/// `tcp_write_err`: give up on the connection.
fn tcp_write_err(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    t.err = if t.err_soft != 0 {
        t.err_soft
    } else {
        errno::ETIMEDOUT
    };
    stack.tcp.mib.inc(TcpExt::TCPAbortOnTimeout);
    super::minisocks::tcp_done(stack, sk, t);
}

/// `tcp_write_timeout`: too many retransmissions?
fn write_timeout(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) -> bool {
    let expired = if matches!(t.state, TcpState::SynSent | TcpState::SynRecv) {
        let retries = t
            .syn_retries
            .map(u32::from)
            .unwrap_or(stack.sysctl.tcp_syn_retries().max(1) as u32);
        retransmits_timed_out(stack, t, retries, t.user_timeout())
    } else {
        // Black-hole detection: after tcp_retries1 timeouts, suspect the path MTU.
        if retransmits_timed_out(stack, t, stack.sysctl.tcp_retries1().max(0) as u32, None) {
            super::mtup::tcp_mtu_probing(stack, t);
        }
        retransmits_timed_out(
            stack,
            t,
            stack.sysctl.tcp_retries2().max(0) as u32,
            t.user_timeout(),
        )
    };
    if expired {
        tcp_write_err(stack, sk, t);
    }
    expired
}

/// `tcp_enter_loss`: RTO recovery — every unacknowledged packet is lost, cwnd 1.
pub fn tcp_enter_loss(stack: &Stack, t: &mut Tcb) {
    let now = stack.now();
    if matches!(t.ca_state, CaState::Open | CaState::Disorder)
        || !super::seq::after(t.high_seq, t.snd_una)
        || (t.ca_state == CaState::Loss && t.retransmits == 0)
    {
        t.prior_ssthresh = t.snd_ssthresh;
        t.prior_cwnd = t.snd_cwnd;
        t.snd_ssthresh = with_cc(t, now, |cc, ctx| cc.ssthresh(ctx));
        with_cc(t, now, |cc, ctx| cc.cwnd_event(ctx, CaEvent::Loss));
        t.undo_marker = t.snd_una;
        t.undo_retrans = 0;
    }
    super::recovery::timeout_mark_lost(stack, t);
    t.snd_cwnd = t.packets_in_flight() + 1;
    t.snd_cwnd_cnt = 0;
    t.snd_cwnd_stamp = now;
    t.ca_state = CaState::Loss;
    with_cc(t, now, |cc, ctx| cc.set_state(ctx, CaState::Loss));
    t.high_seq = t.snd_nxt;
}

/// `tcp_retransmit_timer`.
fn retransmit_timer(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if t.packets_out == 0 || t.rtx_queue.is_empty() {
        return;
    }
    if t.snd_wnd == 0 && !matches!(t.state, TcpState::SynSent | TcpState::SynRecv) {
        // The receiver shrank the window: our retransmissions are zero-window probes.
        if stack.now().saturating_duration_since(t.rcv_tstamp) > TCP_RTO_MAX {
            tcp_write_err(stack, sk, t);
            return;
        }
        tcp_enter_loss(stack, t);
        output::tcp_retransmit_skb(stack, sk, t, 0, 1);
        t.rto = (t.rto * 2).min(TCP_RTO_MAX);
        let rto = t.rto;
        reset_xmit_timer(stack, sk, t, Pending::Retrans, rto);
        return;
    }
    stack.tcp.mib.inc(TcpExt::TCPTimeouts);
    if write_timeout(stack, sk, t) {
        return;
    }
    // Counted for SYNs actually resent (__tcp_retransmit_skb).
    if matches!(t.state, TcpState::SynSent | TcpState::SynRecv) {
        stack.tcp.mib.inc(TcpExt::TCPSynRetrans);
    }
    tcp_enter_loss(stack, t);
    t.retransmits += 1;
    if !output::tcp_retransmit_skb(stack, sk, t, 0, 1) {
        // Local congestion: probe again soon.
        reset_xmit_timer(stack, sk, t, Pending::Retrans, Duration::from_millis(500));
        return;
    }
    t.backoff += 1;
    t.rto = (t.rto * 2).min(TCP_RTO_MAX);
    let rto = clamp_rto_to_user_timeout(stack, t, t.rto);
    reset_xmit_timer(stack, sk, t, Pending::Retrans, rto);
    // After tcp_retries1 retransmissions, drop the cached route (it may be dead).
    if retransmits_timed_out(
        stack,
        t,
        stack.sysctl.tcp_retries1().max(0) as u32 + 1,
        None,
    ) {
        t.dst = None;
    }
    let _ = xmit_retransmit_queue;
}

/// `tcp_probe_timer`: zero-window probing.
fn probe_timer(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if t.packets_out > 0 || !output::write_queue_has_data(t) {
        t.probes_out = 0;
        return;
    }
    let max_probes = stack.sysctl.tcp_retries2().max(0) as u32;
    if let (Some(ut), Some(start)) = (t.user_timeout(), t.retrans_stamp) {
        if t.probes_out > 0 && stack.now().saturating_duration_since(start) >= ut {
            tcp_write_err(stack, sk, t);
            return;
        }
    }
    if t.probes_out >= max_probes {
        tcp_write_err(stack, sk, t);
        return;
    }
    // tcp_send_probe0.
    output::tcp_write_wakeup(stack, sk, t, TcpExt::TCPWinProbe);
    if t.packets_out > 0 || !output::write_queue_has_data(t) {
        t.probes_out = 0;
        t.backoff = 0;
        return;
    }
    t.probes_out += 1;
    if t.retrans_stamp.is_none() {
        t.retrans_stamp = Some(stack.now());
    }
    if t.backoff < max_probes {
        t.backoff += 1;
    }
    let when = (t.rto.max(TCP_RTO_MIN) * (1u32 << t.backoff.min(20))).min(TCP_RTO_MAX);
    reset_xmit_timer(stack, sk, t, Pending::Probe0, when);
}

/// `tcp_write_timer_handler`.
fn write_timer(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if matches!(t.state, TcpState::Close | TcpState::Listen) || t.pending_timer == Pending::None {
        return;
    }
    let now = stack.now();
    if let Some(at) = t.timeout_at {
        if at > now {
            stack.timers.mod_timer(&sk.timers.xmit, at);
            return;
        }
    }
    let what = t.pending_timer;
    t.pending_timer = Pending::None;
    t.timeout_at = None;
    match what {
        Pending::Retrans => retransmit_timer(stack, sk, t),
        Pending::LossProbe => super::recovery::send_loss_probe(stack, sk, t),
        Pending::ReoTimeout => super::recovery::reo_timeout(stack, sk, t),
        Pending::Probe0 => probe_timer(stack, sk, t),
        Pending::None => {}
    }
}

/// `tcp_delack_timer_handler`.
fn delack_timer(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if matches!(t.state, TcpState::Close | TcpState::Listen) || t.ack.pending & ack::TIMER == 0 {
        return;
    }
    let now = stack.now();
    if t.ack.timeout > now {
        stack.timers.mod_timer(&sk.timers.delack, t.ack.timeout);
        return;
    }
    t.ack.pending &= !ack::TIMER;
    if t.ack.pending & ack::SCHED != 0 {
        if !t.ack.in_pingpong_mode(super::pingpong_thresh(stack)) {
            t.ack.ato = (t.ack.ato * 2).min(t.rto);
        } else {
            // Delayed ACK missed: leave interactive mode.
            t.ack.exit_pingpong_mode();
            t.ack.ato = super::TCP_ATO_MIN;
        }
        output::tcp_send_ack(stack, sk, t);
        stack.tcp.mib.inc(TcpExt::DelayedACKs);
    }
}

fn keepalive_time(stack: &Stack, t: &Tcb) -> Duration {
    t.keepalive_time
        .unwrap_or_else(|| Duration::from_secs(stack.sysctl.tcp_keepalive_time().max(1) as u64))
}

/// Arm (or disarm) the keepalive timer for an established connection.
pub fn reset_keepalive(stack: &Stack, sk: &TcpSock, t: &mut Tcb) {
    if t.keepalive && matches!(t.state, TcpState::Established | TcpState::CloseWait) {
        let at = stack.now() + keepalive_time(stack, t);
        stack.timers.mod_timer(&sk.timers.keepalive, at);
    } else if t.state != TcpState::Listen && t.state != TcpState::FinWait2 {
        sk.timers.keepalive.del();
    }
}

/// `tcp_keepalive_timer`: keepalive probes, and the orphaned FIN_WAIT2 timeout.
fn keepalive_timer(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let now = stack.now();
    match t.state {
        TcpState::Listen => {
            super::minisocks::synack_timer(stack, sk, t);
            return;
        }
        TcpState::FinWait2 if t.shutdown == super::shutdown::RCV | super::shutdown::SEND => {
            // Orphaned FIN_WAIT2 lasted tcp_fin_timeout: done.
            super::minisocks::tcp_done(stack, sk, t);
            return;
        }
        TcpState::Established | TcpState::CloseWait => {}
        _ => return,
    }
    if !t.keepalive {
        return;
    }
    if t.packets_out > 0 || output::write_queue_has_data(t) {
        // The retransmission or probe timer is in charge.
        let at = now + keepalive_time(stack, t);
        stack.timers.mod_timer(&sk.timers.keepalive, at);
        return;
    }
    let idle = now.saturating_duration_since(t.rcv_tstamp.max(t.ack.lrcvtime));
    let ktime = keepalive_time(stack, t);
    let intvl = t
        .keepalive_intvl
        .unwrap_or_else(|| Duration::from_secs(stack.sysctl.tcp_keepalive_intvl().max(1) as u64));
    let probes = t
        .keepalive_probes
        .map(u32::from)
        .unwrap_or(stack.sysctl.tcp_keepalive_probes().max(1) as u32);
    let next = if idle >= ktime {
        let user_expired = t
            .user_timeout()
            .is_some_and(|ut| idle >= ut && t.probes_out > 0);
        if user_expired || t.probes_out >= probes {
            output::tcp_send_active_reset(stack, sk, t);
            tcp_write_err(stack, sk, t);
            return;
        }
        // A keepalive probe: an ACK with an old sequence number.
        output::tcp_write_wakeup(stack, sk, t, TcpExt::TCPKeepAlive);
        t.probes_out += 1;
        intvl
    } else {
        ktime - idle
    };
    stack.timers.mod_timer(&sk.timers.keepalive, now + next);
}

/// After `close()`: an orphaned FIN_WAIT2 gets `tcp_fin_timeout`.
pub fn orphan_timers(stack: &Stack, sk: &TcpSock, t: &mut Tcb) {
    if t.state == TcpState::FinWait2 && t.shutdown == super::shutdown::RCV | super::shutdown::SEND {
        let at = stack.now() + Duration::from_secs(stack.sysctl.tcp_fin_timeout().max(1) as u64);
        stack.timers.mod_timer(&sk.timers.keepalive, at);
    }
}

/// TCP small queues: TX completion freed room for a throttled socket; run it from
/// softirq (Linux's TSQ tasklet).
pub fn tsq_schedule(sk: &Arc<TcpSock>) {
    if sk.tsq_pending.swap(0, Ordering::AcqRel) == 0 {
        return;
    }
    let Ok(stack) = sk.stack() else {
        return;
    };
    stack.tcp.tsq_list.lock().push(sk.clone());
    stack.softnet.raise(crate::dev::softnet::TASKLET);
}

/// Run the sockets TSQ scheduled (from `do_softirq`).
pub fn tsq_run(stack: &Stack) {
    let mut list = std::mem::take(&mut *stack.tcp.tsq_list.lock());
    for sk in list.drain(..) {
        sk.bh_run(stack, deferred::TSQ);
    }
    // Give the list's capacity back (nothing allocates for the next round).
    let mut l = stack.tcp.tsq_list.lock();
    if l.is_empty() && l.capacity() < list.capacity() {
        *l = list;
    }
}

/// `tcp_tsq_write`.
fn tsq_write(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    t.tsq_throttled = false;
    if matches!(
        t.state,
        TcpState::Established
            | TcpState::FinWait1
            | TcpState::Closing
            | TcpState::CloseWait
            | TcpState::LastAck
    ) {
        if t.lost_out > t.retrans_out && t.snd_cwnd > t.packets_in_flight() {
            xmit_retransmit_queue(stack, sk, t);
        }
        let mss = output::tcp_current_mss(stack, t);
        let nonagle = t.nonagle;
        output::tcp_write_xmit(stack, sk, t, mss, nonagle, 0);
    }
}

/// When the keepalive timer is next due (for tests).
pub fn keepalive_expires(sk: &TcpSock) -> Option<Instant> {
    sk.timers.keepalive.expires()
}
