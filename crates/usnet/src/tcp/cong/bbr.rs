//! BBR v1 congestion control (Linux's `net/ipv4/tcp_bbr.c`; Cardwell et al., "BBR:
//! Congestion-Based Congestion Control", ACM Queue 2016; draft-cardwell-iccrg-bbr).
//!
//! BBR models the path by two numbers: the bottleneck bandwidth — a windowed maximum
//! of the delivery rate ([`super::super::rate`]) over the last 10 round trips — and the
//! round-trip propagation delay — a windowed minimum of RTT over 10 seconds. It paces
//! at `pacing_gain × bw` and caps inflight at `cwnd_gain × bw × min_rtt` (plus room for
//! TSO skbs and ACK aggregation), instead of reacting to loss:
//!
//! * **STARTUP**: gains 2/ln 2 ≈ 2.885, so the sending rate doubles every round, until
//!   three rounds in a row (not application-limited) raise the bandwidth estimate by
//!   less than 25 %: the pipe is full;
//! * **DRAIN**: pacing gain 1/2.885 empties the queue STARTUP built, until what is in
//!   the network is one BDP;
//! * **PROBE_BW**: the steady state, cycling the pacing gain through
//!   `[1.25, 0.75, 1, 1, 1, 1, 1, 1]` (one phase per min_rtt) with cwnd gain 2: probe for
//!   more bandwidth, drain what the probe queued, then cruise;
//! * **PROBE_RTT**: when min_rtt was not refreshed for 10 s, cwnd drops to 4 packets
//!   for at least 200 ms and a round trip, so the queue drains and the true propagation
//!   delay shows; then back to PROBE_BW (or STARTUP).
//!
//! On entering fast recovery BBR conserves packets for one round (send one per one
//! delivered) and restores the cwnd it had on leaving recovery. Losses themselves do
//! not reduce the model — that is why BBR keeps its rate on a randomly lossy path.
//!
//! **Token-bucket policers** (`bbr_lt_bw_sampling`): after a loss BBR measures the
//! delivery rate over intervals of 4–16 round trips that end in a loss; two intervals
//! in a row with at least 20 % loss and rates within 1/8 (or 4 kbit/s) of each other
//! say a policer is dropping what exceeds its rate. BBR then sends at their average
//! (`lt_bw`) with pacing gain 1 instead of probing, for 48 round trips, and starts
//! over.
//!
//! **Restart from idle** (`CA_EVENT_TX_START` while application-limited): pace at the
//! estimated bandwidth with gain 1 rather than the cycle's probing gain, and hold off
//! PROBE_RTT until the restart's data is ACKed.

use super::{CaEvent, CaState, CcCtx, CongestionOps};
use crate::tcp::rate::RateSample;
use crate::time::Instant;
use std::time::Duration;

/// Bandwidth unit: packets per µs, scaled by 2^24 (`BW_SCALE`).
const BW_SCALE: u32 = 24;
const BW_UNIT: u64 = 1 << BW_SCALE;
/// Gain unit: 1.0 = 256 (`BBR_SCALE`).
const BBR_SCALE: u32 = 8;
const BBR_UNIT: u32 = 1 << BBR_SCALE;
/// STARTUP gain 2/ln 2, rounded up (`bbr_high_gain`).
const HIGH_GAIN: u32 = BBR_UNIT * 2885 / 1000 + 1;
/// DRAIN pacing gain, the inverse of the STARTUP gain (`bbr_drain_gain`).
const DRAIN_GAIN: u32 = BBR_UNIT * 1000 / 2885;
/// PROBE_BW cwnd gain (`bbr_cwnd_gain`).
const CWND_GAIN: u32 = BBR_UNIT * 2;
/// PROBE_BW pacing gain cycle (`bbr_pacing_gain`).
const PACING_GAIN: [u32; CYCLE_LEN] = [
    BBR_UNIT * 5 / 4,
    BBR_UNIT * 3 / 4,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
];
const CYCLE_LEN: usize = 8;
/// PROBE_BW starts in a random phase other than the draining one (`bbr_cycle_rand`).
const CYCLE_RAND: u32 = 7;
/// Window of the max-bandwidth filter in round trips (`bbr_bw_rtts`).
const BW_RTTS: u32 = CYCLE_LEN as u32 + 2;
/// Window of the min-RTT filter (`bbr_min_rtt_win_sec`).
const MIN_RTT_WIN: Duration = Duration::from_secs(10);
/// Time spent at minimal inflight in PROBE_RTT (`bbr_probe_rtt_mode_ms`).
const PROBE_RTT_MODE: Duration = Duration::from_millis(200);
/// The smallest cwnd BBR uses, and PROBE_RTT's (`bbr_cwnd_min_target`).
const CWND_MIN_TARGET: u32 = 4;
/// Bandwidth must grow by 25 % a round to count as growth (`bbr_full_bw_thresh`).
const FULL_BW_THRESH: u32 = BBR_UNIT * 5 / 4;
/// Rounds without growth before the pipe counts as full (`bbr_full_bw_cnt`).
const FULL_BW_CNT: u32 = 3;
/// Pace 1 % below the estimate so queues drain (`bbr_pacing_margin_percent`).
const PACING_MARGIN_PERCENT: u64 = 1;
/// Below this rate (bits/s) TSO goals are one packet (`bbr_min_tso_rate`).
const MIN_TSO_RATE: u64 = 1_200_000;
/// ACK aggregation window in round trips (`bbr_extra_acked_win_rtts`).
const EXTRA_ACKED_WIN_RTTS: u32 = 5;
/// Most aggregation allowance, in time at the estimated rate (`bbr_extra_acked_max_us`).
const EXTRA_ACKED_MAX_US: u64 = 100_000;
/// Reset the aggregation epoch past this many packets (`bbr_ack_epoch_acked_reset_thresh`).
const ACK_EPOCH_ACKED_RESET: u32 = 1 << 20;
/// `TCP_INFINITE_SSTHRESH`.
const INFINITE_SSTHRESH: u32 = u32::MAX >> 1;
/// Round trips a long-term sampling interval lasts at least (`bbr_lt_intvl_min_rtts`;
/// at most four times as many).
const LT_INTVL_MIN_RTTS: u32 = 4;
/// Loss rate that ends an interval as policed: lost/delivered ≥ 50/256 ≈ 20 %
/// (`bbr_lt_loss_thresh`).
const LT_LOSS_THRESH: u32 = 50;
/// Two intervals' rates agree within 1/8 (`bbr_lt_bw_ratio`)…
const LT_BW_RATIO: u32 = BBR_UNIT / 8;
/// …or within 4 kbit/s, in bytes per second (`bbr_lt_bw_diff`).
const LT_BW_DIFF: u64 = 4000 / 8;
/// Round trips BBR keeps the policed rate before probing again (`bbr_lt_bw_max_rtts`).
const LT_BW_MAX_RTTS: u32 = 48;

/// BBR's state machine (`enum bbr_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Ramp up to fill the pipe.
    #[default]
    Startup,
    /// Drain the queue STARTUP created.
    Drain,
    /// Steady state: cycle the pacing gain around the estimated bandwidth.
    ProbeBw,
    /// Cut inflight to measure the propagation delay.
    ProbeRtt,
}

impl Mode {
    /// The name `ss` and traces use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Startup => "STARTUP",
            Mode::Drain => "DRAIN",
            Mode::ProbeBw => "PROBE_BW",
            Mode::ProbeRtt => "PROBE_RTT",
        }
    }
}

/// Kathleen Nichols' windowed running maximum over three samples (`lib/win_minmax.c`):
/// the best, second-best and third-best values of disjoint sub-windows, so the maximum
/// of the last `win` time units is known in O(1).
#[derive(Clone, Copy, Debug, Default)]
struct MaxFilter {
    s: [(u32, u32); 3],
}

impl MaxFilter {
    fn get(&self) -> u32 {
        self.s[0].1
    }

    fn reset(&mut self, t: u32, v: u32) {
        self.s = [(t, v); 3];
    }

    /// `minmax_running_max`: add `v` measured at time `t`, with window `win`.
    fn update(&mut self, win: u32, t: u32, v: u32) {
        let val = (t, v);
        if v >= self.s[0].1 || t.wrapping_sub(self.s[2].0) > win {
            self.reset(t, v);
            return;
        }
        if v >= self.s[1].1 {
            self.s[1] = val;
            self.s[2] = val;
        } else if v >= self.s[2].1 {
            self.s[2] = val;
        }
        // minmax_subwin_update: age the sub-windows.
        let dt = t.wrapping_sub(self.s[0].0);
        if dt > win {
            self.s = [self.s[1], self.s[2], val];
            if t.wrapping_sub(self.s[0].0) > win {
                self.s = [self.s[1], self.s[2], val];
            }
        } else if self.s[1].0 == self.s[0].0 && dt > win / 4 {
            self.s[1] = val;
            self.s[2] = val;
        } else if self.s[2].0 == self.s[1].0 && dt > win / 2 {
            self.s[2] = val;
        }
    }
}

/// Congestion states ordered as Linux's `tcp_ca_state` numbers.
fn rank(s: CaState) -> u8 {
    match s {
        CaState::Open => 0,
        CaState::Disorder => 1,
        CaState::Cwr => 2,
        CaState::Recovery => 3,
        CaState::Loss => 4,
    }
}

/// BBR v1 (Linux's `struct bbr`).
#[derive(Clone, Debug, Default)]
pub struct Bbr {
    mode: Mode,
    /// Max filter of the delivery rate, packets/µs << 24, over `BW_RTTS` rounds.
    bw: MaxFilter,
    /// Round trips so far (`rtt_cnt`).
    rtt_cnt: u32,
    /// `delivered` at which the next round starts.
    next_rtt_delivered: u32,
    /// When the current PROBE_BW phase began.
    cycle_mstamp: Instant,
    /// Min RTT over `MIN_RTT_WIN` (µs; `u32::MAX`: none).
    min_rtt_us: u32,
    /// When `min_rtt_us` was taken.
    min_rtt_stamp: Instant,
    /// When PROBE_RTT may end (once inflight got down to 4).
    probe_rtt_done_stamp: Option<Instant>,
    /// Last known good cwnd, restored after recovery and PROBE_RTT.
    prior_cwnd: u32,
    prev_ca_state: CaState,
    packet_conservation: bool,
    round_start: bool,
    idle_restart: bool,
    probe_rtt_round_done: bool,
    has_seen_rtt: bool,
    full_bw_reached: bool,
    /// Bandwidth at the last round with 25 % growth, and rounds since.
    full_bw: u32,
    full_bw_cnt: u32,
    cycle_idx: usize,
    pacing_gain: u32,
    cwnd_gain: u32,
    /// ACK aggregation: the two windows' max extra packets, and the current epoch.
    extra_acked: [u32; 2],
    extra_acked_win_rtts: u32,
    extra_acked_win_idx: usize,
    ack_epoch_mstamp: Instant,
    ack_epoch_acked: u32,
    /// Long-term (policed) bandwidth, packets/µs << 24 (0: none).
    lt_bw: u32,
    /// Sending at `lt_bw`: a policer was detected.
    lt_use_bw: bool,
    /// A long-term interval is being measured (it starts at a loss).
    lt_is_sampling: bool,
    /// Round trips in the interval (or, while `lt_use_bw`, since it was set).
    lt_rtt_cnt: u32,
    /// The interval's start: `delivered_mstamp` in ms, `delivered` and `lost`.
    lt_last_stamp: u32,
    lt_last_delivered: u32,
    lt_last_lost: u32,
    /// xorshift state for the PROBE_BW start phase (seeded from the ISN, so runs on
    /// the virtual clock repeat).
    rng: u32,
}

impl Bbr {
    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The bandwidth estimate in bytes per second.
    pub fn bw_bytes_per_sec(&self, mss: u32) -> u64 {
        ((u128::from(self.bw()) * u128::from(mss) * 1_000_000) >> BW_SCALE) as u64
    }

    fn rand(&mut self, n: u32) -> u32 {
        let mut x = self.rng.max(1);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x % n.max(1)
    }

    fn max_bw(&self) -> u32 {
        self.bw.get()
    }

    /// `bbr_bw`: the rate BBR sends at — the policed rate when one was detected.
    fn bw(&self) -> u32 {
        if self.lt_use_bw {
            self.lt_bw
        } else {
            self.max_bw()
        }
    }

    /// `bbr_reset_lt_bw_sampling_interval`: start an interval now.
    fn reset_lt_bw_sampling_interval(&mut self, ctx: &CcCtx<'_>) {
        self.lt_last_stamp = ctx.delivered_mstamp.as_millis() as u32;
        self.lt_last_delivered = ctx.delivered;
        self.lt_last_lost = ctx.lost;
        self.lt_rtt_cnt = 0;
    }

    /// `bbr_reset_lt_bw_sampling`: forget the policer estimate.
    fn reset_lt_bw_sampling(&mut self, ctx: &CcCtx<'_>) {
        self.lt_bw = 0;
        self.lt_use_bw = false;
        self.lt_is_sampling = false;
        self.reset_lt_bw_sampling_interval(ctx);
    }

    /// `bbr_lt_bw_interval_done`: an interval measured `bw`; policed if it agrees
    /// with the interval before.
    fn lt_bw_interval_done(&mut self, ctx: &CcCtx<'_>, bw: u32) {
        if self.lt_bw != 0 {
            let diff = bw.abs_diff(self.lt_bw);
            let close = u64::from(diff) * u64::from(BBR_UNIT)
                <= u64::from(LT_BW_RATIO) * u64::from(self.lt_bw)
                || self.pacing_rate_unclamped(ctx, diff, BBR_UNIT) <= LT_BW_DIFF;
            if close {
                self.lt_bw = ((u64::from(bw) + u64::from(self.lt_bw)) >> 1) as u32;
                self.lt_use_bw = true;
                self.pacing_gain = BBR_UNIT;
                self.lt_rtt_cnt = 0;
                return;
            }
        }
        self.lt_bw = bw;
        self.reset_lt_bw_sampling_interval(ctx);
    }

    /// `bbr_lt_bw_sampling`: measure the delivery rate over intervals that start and
    /// end with a loss, and decide whether a policer caps it.
    fn lt_bw_sampling(&mut self, ctx: &CcCtx<'_>, rs: &RateSample) {
        if self.lt_use_bw {
            if self.mode == Mode::ProbeBw && self.round_start {
                self.lt_rtt_cnt += 1;
                if self.lt_rtt_cnt >= LT_BW_MAX_RTTS {
                    // Probe again: the policer may be gone.
                    self.reset_lt_bw_sampling(ctx);
                    self.reset_probe_bw_mode(ctx);
                }
            }
            return;
        }
        // Wait for a first loss: the policer's bucket is then empty, and what gets
        // through is its rate, not a burst.
        if !self.lt_is_sampling {
            if rs.losses == 0 {
                return;
            }
            self.reset_lt_bw_sampling_interval(ctx);
            self.lt_is_sampling = true;
        }
        // Running out of data would underestimate the rate.
        if rs.is_app_limited {
            self.reset_lt_bw_sampling(ctx);
            return;
        }
        if self.round_start {
            self.lt_rtt_cnt += 1;
        }
        if self.lt_rtt_cnt < LT_INTVL_MIN_RTTS {
            return;
        }
        if self.lt_rtt_cnt > 4 * LT_INTVL_MIN_RTTS {
            self.reset_lt_bw_sampling(ctx);
            return;
        }
        // The interval ends at a loss: the bucket is empty again.
        if rs.losses == 0 {
            return;
        }
        let lost = ctx.lost.wrapping_sub(self.lt_last_lost);
        let delivered = ctx.delivered.wrapping_sub(self.lt_last_delivered);
        if delivered == 0
            || u64::from(lost) << BBR_SCALE < u64::from(LT_LOSS_THRESH) * u64::from(delivered)
        {
            return;
        }
        let t = (ctx.delivered_mstamp.as_millis() as u32).wrapping_sub(self.lt_last_stamp);
        if (t as i32) < 1 {
            return;
        }
        if t >= u32::MAX / 1000 {
            self.reset_lt_bw_sampling(ctx);
            return;
        }
        let bw = u64::from(delivered) * BW_UNIT / (u64::from(t) * 1000);
        self.lt_bw_interval_done(ctx, bw.min(u64::from(u32::MAX)) as u32);
    }

    /// `bbr_rate_bytes_per_sec`: bw × gain less the 1 % margin, in bytes per second.
    fn pacing_rate_unclamped(&self, ctx: &CcCtx<'_>, bw: u32, gain: u32) -> u64 {
        let mut rate = u128::from(bw) * u128::from(ctx.mss);
        rate = (rate * u128::from(gain)) >> BBR_SCALE;
        rate *= u128::from(1_000_000 / 100 * (100 - PACING_MARGIN_PERCENT));
        (rate >> BW_SCALE).min(u128::from(u64::MAX >> 1)) as u64
    }

    /// [`Self::pacing_rate_unclamped`] capped by `SO_MAX_PACING_RATE`
    /// (`bbr_bw_to_pacing_rate`).
    fn pacing_rate_for(&self, ctx: &CcCtx<'_>, bw: u32, gain: u32) -> u64 {
        self.pacing_rate_unclamped(ctx, bw, gain)
            .min(ctx.max_pacing_rate)
    }

    /// `bbr_init_pacing_rate_from_rtt`: high_gain × cwnd / RTT (1 ms without an RTT).
    fn init_pacing_rate_from_rtt(&mut self, ctx: &mut CcCtx<'_>) {
        let rtt_us = if ctx.srtt_us != 0 {
            self.has_seen_rtt = true;
            (ctx.srtt_us >> 3).max(1)
        } else {
            1000
        };
        let bw = u64::from(*ctx.cwnd) * BW_UNIT / u64::from(rtt_us);
        *ctx.pacing_rate = self.pacing_rate_for(ctx, bw.min(u64::from(u32::MAX)) as u32, HIGH_GAIN);
    }

    /// `bbr_set_pacing_rate`: never slow down before the pipe is known full.
    fn set_pacing_rate(&mut self, ctx: &mut CcCtx<'_>, bw: u32, gain: u32) {
        let rate = self.pacing_rate_for(ctx, bw, gain);
        if !self.has_seen_rtt && ctx.srtt_us != 0 {
            self.init_pacing_rate_from_rtt(ctx);
        }
        if self.full_bw_reached || rate > *ctx.pacing_rate {
            *ctx.pacing_rate = rate;
        }
    }

    /// `bbr_tso_segs_goal`: about 1 ms of the pacing rate, in packets.
    fn tso_segs_goal(&self, ctx: &CcCtx<'_>) -> u32 {
        let bytes = (*ctx.pacing_rate >> 10).min(65536 - 1 - 160) as u32;
        let min = self.min_tso_segs(*ctx.pacing_rate).unwrap_or(2);
        (bytes / ctx.mss.max(1)).max(min).min(0x7f)
    }

    fn save_cwnd(&mut self, ctx: &CcCtx<'_>) {
        if rank(self.prev_ca_state) < rank(CaState::Recovery) && self.mode != Mode::ProbeRtt {
            self.prior_cwnd = *ctx.cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(*ctx.cwnd);
        }
    }

    /// `bbr_bdp`: ⌈bw × min_rtt × gain⌉ packets (the initial window without an RTT).
    fn bdp(&self, bw: u32, gain: u32) -> u32 {
        if self.min_rtt_us == u32::MAX {
            return crate::tcp::TCP_INIT_CWND;
        }
        let w = u128::from(bw) * u128::from(self.min_rtt_us);
        let bdp = ((w * u128::from(gain)) >> BBR_SCALE).div_ceil(u128::from(BW_UNIT));
        bdp.min(u128::from(u32::MAX >> 1)) as u32
    }

    /// `bbr_quantization_budget`: room for TSO skbs at both ends, an even cwnd, and
    /// two more packets in the probing phase so it can rise above a small BDP.
    fn quantization_budget(&self, ctx: &CcCtx<'_>, cwnd: u32) -> u32 {
        let mut cwnd = cwnd.saturating_add(3 * self.tso_segs_goal(ctx));
        cwnd = cwnd.saturating_add(1) & !1;
        if self.mode == Mode::ProbeBw && self.cycle_idx == 0 {
            cwnd = cwnd.saturating_add(2);
        }
        cwnd
    }

    /// `bbr_inflight`: the inflight target for a bandwidth and gain.
    fn inflight(&self, ctx: &CcCtx<'_>, bw: u32, gain: u32) -> u32 {
        self.quantization_budget(ctx, self.bdp(bw, gain))
    }

    /// `bbr_packets_in_net_at_edt`: what will be in the network when the next paced
    /// packet leaves (inflight less what the path delivers until then).
    fn packets_in_net_at_edt(&self, ctx: &CcCtx<'_>, inflight_now: u32) -> u32 {
        let edt = ctx.wstamp.max(ctx.now);
        let interval_us = edt.saturating_duration_since(ctx.now).as_micros() as u64;
        let delivered = (u64::from(self.max_bw()) * interval_us) >> BW_SCALE;
        let mut at_edt = inflight_now;
        if self.pacing_gain > BBR_UNIT {
            at_edt += self.tso_segs_goal(ctx);
        }
        u64::from(at_edt).saturating_sub(delivered) as u32
    }

    /// `bbr_ack_aggregation_cwnd`: extra cwnd for ACKs that arrive in bursts.
    fn ack_aggregation_cwnd(&self) -> u32 {
        if !self.full_bw_reached {
            return 0;
        }
        let max_aggr = u64::from(self.max_bw()) * EXTRA_ACKED_MAX_US / BW_UNIT;
        u64::from(self.extra_acked[0].max(self.extra_acked[1])).min(max_aggr) as u32
    }

    /// `bbr_set_cwnd_to_recover_or_restore`: packet conservation for the first round of
    /// recovery, the saved cwnd back when recovery ends. Returns the cwnd to use when
    /// conserving.
    fn recover_or_restore(&mut self, ctx: &CcCtx<'_>, rs: &RateSample, acked: u32) -> (u32, bool) {
        let state = ctx.ca_state;
        let mut cwnd = *ctx.cwnd;
        if rs.losses > 0 {
            cwnd = cwnd.saturating_sub(rs.losses).max(1);
        }
        if state == CaState::Recovery && self.prev_ca_state != CaState::Recovery {
            self.packet_conservation = true;
            self.next_rtt_delivered = ctx.delivered;
            cwnd = ctx.in_flight + acked;
        } else if rank(self.prev_ca_state) >= rank(CaState::Recovery)
            && rank(state) < rank(CaState::Recovery)
        {
            cwnd = cwnd.max(self.prior_cwnd);
            self.packet_conservation = false;
        }
        self.prev_ca_state = state;
        if self.packet_conservation {
            return (cwnd.max(ctx.in_flight + acked), true);
        }
        (cwnd, false)
    }

    /// `bbr_set_cwnd`: slow-start toward the target (bw × min_rtt × cwnd_gain plus
    /// allowances), or snap down to it once the pipe was found full.
    fn set_cwnd(&mut self, ctx: &mut CcCtx<'_>, rs: &RateSample, acked: u32, bw: u32, gain: u32) {
        let mut cwnd = *ctx.cwnd;
        if acked > 0 {
            let (c, conserving) = self.recover_or_restore(ctx, rs, acked);
            cwnd = c;
            if !conserving {
                let target = self.bdp(bw, gain) + self.ack_aggregation_cwnd();
                let target = self.quantization_budget(ctx, target);
                if self.full_bw_reached {
                    cwnd = (cwnd + acked).min(target);
                } else if cwnd < target || ctx.delivered < crate::tcp::TCP_INIT_CWND {
                    cwnd += acked;
                }
                cwnd = cwnd.max(CWND_MIN_TARGET);
            }
        }
        *ctx.cwnd = cwnd.min(ctx.clamp);
        if self.mode == Mode::ProbeRtt {
            *ctx.cwnd = (*ctx.cwnd).min(CWND_MIN_TARGET);
        }
    }

    /// `bbr_is_next_cycle_phase`: a phase lasts a min_rtt; the probing one longer
    /// until inflight reached 1.25 × BDP (or a loss says it will not fit), the draining
    /// one shorter if inflight fell to the BDP.
    fn is_next_cycle_phase(&self, ctx: &CcCtx<'_>, rs: &RateSample) -> bool {
        let full_length = ctx
            .delivered_mstamp
            .saturating_duration_since(self.cycle_mstamp)
            .as_micros()
            > u128::from(self.min_rtt_us);
        if self.pacing_gain == BBR_UNIT {
            return full_length;
        }
        let inflight = self.packets_in_net_at_edt(ctx, rs.prior_in_flight);
        let bw = self.max_bw();
        if self.pacing_gain > BBR_UNIT {
            return full_length
                && (rs.losses > 0 || inflight >= self.inflight(ctx, bw, self.pacing_gain));
        }
        full_length || inflight <= self.inflight(ctx, bw, BBR_UNIT)
    }

    fn advance_cycle_phase(&mut self, ctx: &CcCtx<'_>) {
        self.cycle_idx = (self.cycle_idx + 1) % CYCLE_LEN;
        self.cycle_mstamp = ctx.delivered_mstamp;
    }

    fn reset_probe_bw_mode(&mut self, ctx: &CcCtx<'_>) {
        self.mode = Mode::ProbeBw;
        self.cycle_idx = CYCLE_LEN - 1 - self.rand(CYCLE_RAND) as usize;
        self.advance_cycle_phase(ctx);
    }

    fn reset_mode(&mut self, ctx: &CcCtx<'_>) {
        if self.full_bw_reached {
            self.reset_probe_bw_mode(ctx);
        } else {
            self.mode = Mode::Startup;
        }
    }

    /// `bbr_update_bw`: count rounds by delivered packets and feed the max filter.
    fn update_bw(&mut self, ctx: &CcCtx<'_>, rs: &RateSample) {
        self.round_start = false;
        if !rs.is_valid() {
            return;
        }
        if !crate::tcp::before(rs.prior_delivered, self.next_rtt_delivered) {
            self.next_rtt_delivered = ctx.delivered;
            self.rtt_cnt = self.rtt_cnt.wrapping_add(1);
            self.round_start = true;
            self.packet_conservation = false;
        }
        self.lt_bw_sampling(ctx, rs);
        let bw = (u64::from(rs.delivered as u32) * BW_UNIT / rs.interval_us as u64)
            .min(u64::from(u32::MAX)) as u32;
        // An application-limited sample can only underestimate: it counts only if it
        // is a new maximum.
        if !rs.is_app_limited || bw >= self.max_bw() {
            self.bw.update(BW_RTTS, self.rtt_cnt, bw);
        }
    }

    /// `bbr_update_ack_aggregation`: how many more packets than the bandwidth
    /// explains were ACKed in the current epoch, as a max over recent rounds.
    fn update_ack_aggregation(&mut self, ctx: &CcCtx<'_>, rs: &RateSample) {
        if rs.acked_sacked == 0 || !rs.is_valid() {
            return;
        }
        if self.round_start {
            self.extra_acked_win_rtts = (self.extra_acked_win_rtts + 1).min(0x1f);
            if self.extra_acked_win_rtts >= EXTRA_ACKED_WIN_RTTS {
                self.extra_acked_win_rtts = 0;
                self.extra_acked_win_idx ^= 1;
                self.extra_acked[self.extra_acked_win_idx] = 0;
            }
        }
        let epoch_us = ctx
            .delivered_mstamp
            .saturating_duration_since(self.ack_epoch_mstamp)
            .as_micros() as u64;
        let mut expected = (u64::from(self.bw()) * epoch_us / BW_UNIT) as u32;
        if self.ack_epoch_acked <= expected
            || self.ack_epoch_acked + rs.acked_sacked >= ACK_EPOCH_ACKED_RESET
        {
            self.ack_epoch_acked = 0;
            self.ack_epoch_mstamp = ctx.delivered_mstamp;
            expected = 0;
        }
        self.ack_epoch_acked = (self.ack_epoch_acked + rs.acked_sacked).min(0xfffff);
        let extra = (self.ack_epoch_acked - expected.min(self.ack_epoch_acked)).min(*ctx.cwnd);
        let slot = &mut self.extra_acked[self.extra_acked_win_idx];
        *slot = (*slot).max(extra);
    }

    /// `bbr_check_full_bw_reached`: three rounds without 25 % growth.
    fn check_full_bw_reached(&mut self, rs: &RateSample) {
        if self.full_bw_reached || !self.round_start || rs.is_app_limited {
            return;
        }
        let thresh = ((u64::from(self.full_bw) * u64::from(FULL_BW_THRESH)) >> BBR_SCALE) as u32;
        if self.max_bw() >= thresh {
            self.full_bw = self.max_bw();
            self.full_bw_cnt = 0;
            return;
        }
        self.full_bw_cnt += 1;
        self.full_bw_reached = self.full_bw_cnt >= FULL_BW_CNT;
    }

    /// `bbr_check_drain`: STARTUP → DRAIN once full; DRAIN → PROBE_BW once what is in
    /// the network is down to one BDP.
    fn check_drain(&mut self, ctx: &mut CcCtx<'_>) {
        if self.mode == Mode::Startup && self.full_bw_reached {
            self.mode = Mode::Drain;
            *ctx.ssthresh = self.inflight(ctx, self.max_bw(), BBR_UNIT);
        }
        if self.mode == Mode::Drain
            && self.packets_in_net_at_edt(ctx, ctx.in_flight)
                <= self.inflight(ctx, self.max_bw(), BBR_UNIT)
        {
            self.reset_probe_bw_mode(ctx);
        }
    }

    /// `bbr_check_probe_rtt_done`.
    fn check_probe_rtt_done(&mut self, ctx: &mut CcCtx<'_>) {
        match self.probe_rtt_done_stamp {
            Some(done) if ctx.now > done => {}
            _ => return,
        }
        self.min_rtt_stamp = ctx.now;
        *ctx.cwnd = (*ctx.cwnd).max(self.prior_cwnd);
        self.reset_mode(ctx);
    }

    /// `bbr_update_min_rtt`: the 10 s min-RTT filter and PROBE_RTT.
    fn update_min_rtt(&mut self, ctx: &mut CcCtx<'_>, rs: &RateSample) {
        let expired = ctx.now > self.min_rtt_stamp + MIN_RTT_WIN;
        // A sample from an ACK that may have been delayed does not replace an expired
        // minimum (it may be inflated by the receiver's delayed-ACK timer).
        if rs.rtt_us >= 0
            && (rs.rtt_us < i64::from(self.min_rtt_us) || (expired && !rs.is_ack_delayed))
        {
            self.min_rtt_us = rs.rtt_us.min(i64::from(u32::MAX - 1)) as u32;
            self.min_rtt_stamp = ctx.now;
        }
        if expired && !self.idle_restart && self.mode != Mode::ProbeRtt {
            self.mode = Mode::ProbeRtt;
            self.save_cwnd(ctx);
            self.probe_rtt_done_stamp = None;
        }
        if self.mode == Mode::ProbeRtt {
            // Samples at minimal inflight say nothing about the bandwidth.
            *ctx.app_limited = ctx.delivered.wrapping_add(ctx.in_flight).max(1);
            if self.probe_rtt_done_stamp.is_none() && ctx.in_flight <= CWND_MIN_TARGET {
                self.probe_rtt_done_stamp = Some(ctx.now + PROBE_RTT_MODE);
                self.probe_rtt_round_done = false;
                self.next_rtt_delivered = ctx.delivered;
            } else if self.probe_rtt_done_stamp.is_some() {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done {
                    self.check_probe_rtt_done(ctx);
                }
            }
        }
        if rs.delivered > 0 {
            self.idle_restart = false;
        }
    }

    /// `bbr_update_gains`.
    fn update_gains(&mut self) {
        (self.pacing_gain, self.cwnd_gain) = match self.mode {
            Mode::Startup => (HIGH_GAIN, HIGH_GAIN),
            Mode::Drain => (DRAIN_GAIN, HIGH_GAIN),
            Mode::ProbeBw if self.lt_use_bw => (BBR_UNIT, CWND_GAIN),
            Mode::ProbeBw => (PACING_GAIN[self.cycle_idx], CWND_GAIN),
            Mode::ProbeRtt => (BBR_UNIT, BBR_UNIT),
        };
    }
}

fn gain_str(g: u32) -> String {
    let s = format!("{:.3}", f64::from(g) / f64::from(BBR_UNIT));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl CongestionOps for Bbr {
    /// `bbr_min_tso_segs`: one segment per skb below 1.2 Mbit/s, else two.
    fn min_tso_segs(&self, pacing_rate: u64) -> Option<u32> {
        Some(if pacing_rate < MIN_TSO_RATE >> 3 {
            1
        } else {
            2
        })
    }

    fn name(&self) -> &'static str {
        "bbr"
    }

    fn init(&mut self, ctx: &mut CcCtx<'_>) {
        *self = Bbr {
            rng: ctx.snd_nxt ^ 0x9e37_79b9,
            min_rtt_us: ctx.min_rtt_us,
            min_rtt_stamp: ctx.now,
            cycle_mstamp: ctx.now,
            ack_epoch_mstamp: ctx.now,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: HIGH_GAIN,
            ..Bbr::default()
        };
        *ctx.ssthresh = INFINITE_SSTHRESH;
        self.bw.reset(0, 0);
        self.reset_lt_bw_sampling(ctx);
        self.init_pacing_rate_from_rtt(ctx);
    }

    fn ssthresh(&mut self, ctx: &mut CcCtx<'_>) -> u32 {
        self.save_cwnd(ctx);
        *ctx.ssthresh
    }

    fn cong_avoid(&mut self, _ctx: &mut CcCtx<'_>, _ack: u32, _acked: u32) {}

    fn set_state(&mut self, ctx: &mut CcCtx<'_>, new: CaState) {
        if new == CaState::Loss {
            // An RTO ends the round (and counts as a loss for the policer check);
            // the pipe must be found full again.
            self.prev_ca_state = CaState::Loss;
            self.full_bw = 0;
            self.round_start = true;
            let mut rs = RateSample::new(ctx.in_flight);
            rs.losses = 1;
            self.lt_bw_sampling(ctx, &rs);
        }
    }

    /// `bbr_cwnd_event`: restarting from idle while application-limited, BBR paces at
    /// the estimated bandwidth (gain 1: no need to probe for more) and will not enter
    /// PROBE_RTT before the restart's data is ACKed; a PROBE_RTT that lasted long
    /// enough ends.
    fn cwnd_event(&mut self, ctx: &mut CcCtx<'_>, ev: CaEvent) {
        if ev != CaEvent::TxStart || *ctx.app_limited == 0 {
            return;
        }
        self.idle_restart = true;
        self.ack_epoch_mstamp = ctx.now;
        self.ack_epoch_acked = 0;
        match self.mode {
            Mode::ProbeBw => self.set_pacing_rate(ctx, self.bw(), BBR_UNIT),
            Mode::ProbeRtt => self.check_probe_rtt_done(ctx),
            _ => {}
        }
    }

    fn undo_cwnd(&mut self, ctx: &mut CcCtx<'_>) -> u32 {
        // A spurious slow-down: look for the full pipe again, and the losses that
        // suggested a policer were not losses.
        self.full_bw = 0;
        self.full_bw_cnt = 0;
        self.reset_lt_bw_sampling(ctx);
        *ctx.cwnd
    }

    fn has_cong_control(&self) -> bool {
        true
    }

    /// `bbr_main`.
    fn cong_control(&mut self, ctx: &mut CcCtx<'_>, rs: &RateSample) {
        self.update_bw(ctx, rs);
        self.update_ack_aggregation(ctx, rs);
        if self.mode == Mode::ProbeBw && self.is_next_cycle_phase(ctx, rs) {
            self.advance_cycle_phase(ctx);
        }
        self.check_full_bw_reached(rs);
        self.check_drain(ctx);
        self.update_min_rtt(ctx, rs);
        self.update_gains();
        let bw = self.bw();
        self.set_pacing_rate(ctx, bw, self.pacing_gain);
        self.set_cwnd(ctx, rs, rs.acked_sacked, bw, self.cwnd_gain);
    }

    fn wants_pacing(&self) -> bool {
        true
    }

    /// `bbr_get_info`, as `ss -i` prints it (`bbr:(bw:…,mrtt:…,pacing_gain:…,
    /// cwnd_gain:…)`), then BBR's mode, cycle phase and round count.
    fn info(&self) -> Vec<(&'static str, String)> {
        let mrtt = if self.min_rtt_us == u32::MAX {
            0
        } else {
            self.min_rtt_us
        };
        vec![
            ("bw_pkts_per_sec", {
                let pps = (u128::from(self.bw()) * 1_000_000) >> BW_SCALE;
                pps.to_string()
            }),
            ("mrtt", format!("{:.3}", f64::from(mrtt) / 1000.0)),
            ("pacing_gain", gain_str(self.pacing_gain)),
            ("cwnd_gain", gain_str(self.cwnd_gain)),
            ("mode", self.mode.name().to_string()),
            ("cycle_idx", self.cycle_idx.to_string()),
            ("rounds", self.rtt_cnt.to_string()),
            ("full_bw_cnt", self.full_bw_cnt.to_string()),
            ("policed", self.lt_use_bw.to_string()),
            ("idle_restart", self.idle_restart.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_filter_keeps_the_window_maximum_and_forgets_old_ones() {
        let mut f = MaxFilter::default();
        f.reset(0, 0);
        f.update(10, 1, 100);
        f.update(10, 2, 50);
        f.update(10, 5, 70);
        assert_eq!(f.get(), 100);
        // Past the window the best value ages out; the next best (70) remains.
        f.update(10, 12, 60);
        assert_eq!(f.get(), 70);
        f.update(10, 30, 10);
        assert_eq!(f.get(), 10);
    }

    /// `bbr_update_min_rtt` renews the 10 s filter only on a strictly smaller sample
    /// (`rs->rtt_us < bbr->min_rtt_us`): a sample equal to the minimum five seconds in
    /// does not postpone PROBE_RTT past ten.
    #[test]
    fn an_equal_rtt_sample_does_not_renew_the_min_rtt_filter() {
        let (mut cwnd, mut cnt, mut ssthresh, mut pacing, mut app) = (10, 0, u32::MAX, 0, 0);
        let mut run = |bbr: &mut Bbr, at_ms: u64, rtt_us: i64| {
            let mut ctx = CcCtx {
                cwnd: &mut cwnd,
                cwnd_cnt: &mut cnt,
                ssthresh: &mut ssthresh,
                clamp: u32::MAX,
                prior_cwnd: 10,
                srtt_us: 8 * 10_000,
                min_rtt_us: 10_000,
                now: Instant::from_millis(at_ms),
                mss: 1448,
                is_cwnd_limited: true,
                in_flight: 10,
                snd_nxt: 0,
                snd_una: 0,
                pacing_rate: &mut pacing,
                max_pacing_rate: u64::MAX,
                delivered: 100,
                delivered_mstamp: Instant::from_millis(at_ms),
                lost: 0,
                lsndtime: Instant::from_millis(at_ms),
                app_limited: &mut app,
                ca_state: CaState::Open,
                wstamp: Instant::from_millis(at_ms),
            };
            let mut rs = RateSample::new(10);
            rs.rtt_us = rtt_us;
            bbr.update_min_rtt(&mut ctx, &rs);
        };
        let mut bbr = Bbr {
            mode: Mode::ProbeBw,
            min_rtt_us: u32::MAX,
            ..Bbr::default()
        };
        run(&mut bbr, 1_000, 10_000);
        assert_eq!(bbr.min_rtt_us, 10_000);
        run(&mut bbr, 6_000, 10_000);
        assert_eq!(
            bbr.min_rtt_stamp,
            Instant::from_millis(1_000),
            "not renewed"
        );
        run(&mut bbr, 11_001, 12_000);
        assert_eq!(
            bbr.mode,
            Mode::ProbeRtt,
            "10 s after the minimum was measured"
        );
        assert_eq!(
            bbr.min_rtt_us, 12_000,
            "the expired filter takes the new sample"
        );
    }

    #[test]
    fn gains_match_linux_constants() {
        assert_eq!(HIGH_GAIN, 739);
        assert_eq!(DRAIN_GAIN, 88);
        assert_eq!(PACING_GAIN[0], 320);
        assert_eq!(PACING_GAIN[1], 192);
        assert_eq!(gain_str(CWND_GAIN), "2");
        assert_eq!(gain_str(HIGH_GAIN), "2.887");
    }
}
