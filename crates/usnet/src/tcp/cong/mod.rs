//! Congestion control (Linux's `tcp_congestion_ops`): a trait with the same hooks,
//! called from the same places — `cong_avoid` on every ACK that advances, `ssthresh` on
//! loss, `set_state` on state changes, `cwnd_event` on transmit start and idle restart,
//! `pkts_acked` with RTT samples, `undo_cwnd` when a reduction proves spurious.
//!
//! [`reno`] is RFC 5681 as `tcp_reno_cong_avoid`; [`cubic`] is RFC 9438 with HyStart as
//! Linux's default; [`bbr`] is BBR v1 (`tcp_bbr.c`), which replaces `cong_avoid` and PRR
//! with its own `cong_control` driven by delivery-rate samples ([`super::rate`]).

pub mod bbr;
pub mod cubic;
pub mod reno;

use super::rate::RateSample;
use super::{CaState, Tcb};
use crate::time::Instant;

/// What a congestion control sees and changes of the socket.
pub struct CcCtx<'a> {
    /// Congestion window (packets).
    pub cwnd: &'a mut u32,
    /// Congestion-avoidance counter.
    pub cwnd_cnt: &'a mut u32,
    /// Slow-start threshold.
    pub ssthresh: &'a mut u32,
    /// Upper bound of cwnd.
    pub clamp: u32,
    /// cwnd before the last reduction.
    pub prior_cwnd: u32,
    /// Smoothed RTT × 8 in µs (0: no sample yet).
    pub srtt_us: u32,
    /// Smallest RTT seen (µs).
    pub min_rtt_us: u32,
    /// Now.
    pub now: Instant,
    /// Sender MSS.
    pub mss: u32,
    /// Whether the sender was cwnd-limited.
    pub is_cwnd_limited: bool,
    /// Packets in flight.
    pub in_flight: u32,
    /// `snd_nxt`.
    pub snd_nxt: u32,
    /// `snd_una`.
    pub snd_una: u32,
    /// `sk_pacing_rate` in bytes per second (0: not set).
    pub pacing_rate: &'a mut u64,
    /// `SO_MAX_PACING_RATE` (`u64::MAX`: none).
    pub max_pacing_rate: u64,
    /// Packets delivered so far (`tp->delivered`).
    pub delivered: u32,
    /// When the last packet was delivered (`tp->delivered_mstamp`).
    pub delivered_mstamp: Instant,
    /// Packets marked lost over the connection's life (`tp->lost`).
    pub lost: u32,
    /// When data was last sent (`tp->lsndtime`).
    pub lsndtime: Instant,
    /// Application-limited marker of rate sampling (`tp->app_limited`).
    pub app_limited: &'a mut u32,
    /// The congestion state.
    pub ca_state: CaState,
    /// Earliest departure time of the next packet (`tcp_wstamp_ns`).
    pub wstamp: Instant,
}

impl CcCtx<'_> {
    /// A context over `t` (for calls that need no simultaneous access to `t.cc`).
    pub fn of(t: &mut Tcb, now: Instant) -> CcCtx<'_> {
        let in_flight = t.packets_in_flight();
        let is_cwnd_limited = t.tcp_is_cwnd_limited();
        CcCtx {
            cwnd: &mut t.snd_cwnd,
            cwnd_cnt: &mut t.snd_cwnd_cnt,
            ssthresh: &mut t.snd_ssthresh,
            clamp: t.snd_cwnd_clamp,
            prior_cwnd: t.prior_cwnd,
            srtt_us: t.srtt_us,
            min_rtt_us: t.min_rtt_us,
            now,
            mss: t.mss_cache,
            is_cwnd_limited,
            in_flight,
            snd_nxt: t.snd_nxt,
            snd_una: t.snd_una,
            pacing_rate: &mut t.pacing_rate,
            max_pacing_rate: t.max_pacing_rate,
            delivered: t.stats.delivered,
            delivered_mstamp: t.rate.delivered_mstamp,
            lost: t.rate.lost,
            lsndtime: t.lsndtime,
            app_limited: &mut t.rate.app_limited,
            ca_state: t.ca_state,
            wstamp: t.wstamp,
        }
    }

    /// `tcp_in_slow_start`.
    pub fn in_slow_start(&self) -> bool {
        *self.cwnd < *self.ssthresh
    }
}

/// Call into the socket's congestion control with a context over the rest of `t`.
pub fn with_cc<R>(
    t: &mut Tcb,
    now: Instant,
    f: impl FnOnce(&mut dyn CongestionOps, &mut CcCtx<'_>) -> R,
) -> R {
    let in_flight = t.packets_in_flight();
    let Tcb {
        cc,
        snd_cwnd,
        snd_cwnd_cnt,
        snd_ssthresh,
        snd_cwnd_clamp,
        prior_cwnd,
        srtt_us,
        min_rtt_us,
        mss_cache,
        is_cwnd_limited,
        snd_nxt,
        snd_una,
        pacing_rate,
        max_pacing_rate,
        stats,
        lsndtime,
        rate,
        ca_state,
        wstamp,
        ..
    } = t;
    let mut ctx = CcCtx {
        cwnd: snd_cwnd,
        cwnd_cnt: snd_cwnd_cnt,
        ssthresh: snd_ssthresh,
        clamp: *snd_cwnd_clamp,
        prior_cwnd: *prior_cwnd,
        srtt_us: *srtt_us,
        min_rtt_us: *min_rtt_us,
        now,
        mss: *mss_cache,
        is_cwnd_limited: *is_cwnd_limited,
        in_flight,
        snd_nxt: *snd_nxt,
        snd_una: *snd_una,
        pacing_rate,
        max_pacing_rate: *max_pacing_rate,
        delivered: stats.delivered,
        delivered_mstamp: rate.delivered_mstamp,
        lost: rate.lost,
        lsndtime: *lsndtime,
        app_limited: &mut rate.app_limited,
        ca_state: *ca_state,
        wstamp: *wstamp,
    };
    f(cc.as_mut(), &mut ctx)
}

/// Events a congestion control hears (Linux's `tcp_ca_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaEvent {
    /// First transmit when nothing was in flight.
    TxStart,
    /// Restarting after idle.
    CwndRestart,
    /// Fast recovery finished.
    CompleteCwr,
    /// RTO fired.
    Loss,
}

/// An ACK's sample (Linux's `ack_sample`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckSample {
    /// Packets newly acknowledged.
    pub pkts_acked: u32,
    /// RTT sample in µs (negative: none).
    pub rtt_us: i64,
    /// Packets in flight before the ACK.
    pub in_flight: u32,
}

/// A congestion control algorithm (Linux's `struct tcp_congestion_ops`).
pub trait CongestionOps: Send + Sync {
    /// Its name (`TCP_CONGESTION`, `ss -i`).
    fn name(&self) -> &'static str;
    /// Connection start.
    fn init(&mut self, _ctx: &mut CcCtx<'_>) {}
    /// The slow-start threshold after a loss.
    fn ssthresh(&mut self, ctx: &mut CcCtx<'_>) -> u32;
    /// Grow cwnd for `acked` packets newly acknowledged.
    fn cong_avoid(&mut self, ctx: &mut CcCtx<'_>, ack: u32, acked: u32);
    /// The congestion state changed.
    fn set_state(&mut self, _ctx: &mut CcCtx<'_>, _new: CaState) {}
    /// Something happened.
    fn cwnd_event(&mut self, _ctx: &mut CcCtx<'_>, _ev: CaEvent) {}
    /// An ACK acknowledged packets (RTT sample).
    fn pkts_acked(&mut self, _ctx: &mut CcCtx<'_>, _s: &AckSample) {}
    /// cwnd after an undo.
    fn undo_cwnd(&mut self, ctx: &mut CcCtx<'_>) -> u32 {
        (*ctx.cwnd).max(ctx.prior_cwnd)
    }
    /// Algorithm state for `ss -i` (name, value pairs).
    fn info(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Whether the algorithm runs its own control loop on every ACK
    /// ([`CongestionOps::cong_control`], as BBR): then TCP neither grows cwnd with
    /// `cong_avoid` nor reduces it with PRR, and leaves the pacing rate to it.
    fn has_cong_control(&self) -> bool {
        false
    }
    /// Linux's `cong_control`: set cwnd and the pacing rate from an ACK's delivery-rate
    /// sample (called after loss recovery updated the congestion state). Only called
    /// when [`CongestionOps::has_cong_control`] says so.
    fn cong_control(&mut self, _ctx: &mut CcCtx<'_>, _rs: &RateSample) {}
    /// Whether the algorithm needs its packets paced (`SK_PACING_NEEDED` set in its
    /// `init`): without the fq qdisc, TCP then paces with its own timer.
    fn wants_pacing(&self) -> bool {
        false
    }
    /// Whether slow start was just ended by HyStart, and how (1: ACK train, 2: delay),
    /// to count `TCPHystart*`; reading it clears it.
    fn take_hystart_exit(&mut self) -> u8 {
        0
    }
    /// `min_tso_segs`: the fewest segments TSO autosizing puts in an skb at
    /// `pacing_rate` bytes per second (`None`: `net.ipv4.tcp_min_tso_segs`).
    fn min_tso_segs(&self, _pacing_rate: u64) -> Option<u32> {
        None
    }
}

/// `tcp_slow_start`: grow by one per packet acknowledged, up to ssthresh. Returns the
/// acks left over for congestion avoidance.
pub fn slow_start(ctx: &mut CcCtx<'_>, acked: u32) -> u32 {
    let cwnd = (*ctx.cwnd + acked).min(*ctx.ssthresh);
    let left = acked - (cwnd - *ctx.cwnd).min(acked);
    *ctx.cwnd = cwnd.min(ctx.clamp);
    left
}

/// `tcp_cong_avoid_ai`: additive increase of one packet per `w` acknowledged.
pub fn cong_avoid_ai(ctx: &mut CcCtx<'_>, w: u32, acked: u32) {
    let w = w.max(1);
    if *ctx.cwnd_cnt >= w {
        *ctx.cwnd_cnt = 0;
        *ctx.cwnd += 1;
    }
    *ctx.cwnd_cnt += acked;
    if *ctx.cwnd_cnt >= w {
        let delta = *ctx.cwnd_cnt / w;
        *ctx.cwnd_cnt -= delta * w;
        *ctx.cwnd += delta;
    }
    *ctx.cwnd = (*ctx.cwnd).min(ctx.clamp);
}

/// Names of the available algorithms (`tcp_available_congestion_control`).
pub const AVAILABLE: &[&str] = &["cubic", "reno", "bbr"];

/// An algorithm by name.
pub fn by_name(name: &str) -> Option<Box<dyn CongestionOps>> {
    match name {
        "reno" => Some(Box::new(reno::Reno)),
        "cubic" => Some(Box::new(cubic::Cubic::default())),
        "bbr" => Some(Box::new(bbr::Bbr::default())),
        _ => None,
    }
}

/// Linux's default (`cubic`).
pub fn default_cc() -> Box<dyn CongestionOps> {
    Box::new(cubic::Cubic::default())
}
