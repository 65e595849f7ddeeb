//! CUBIC (RFC 9438; Linux's `net/ipv4/tcp_cubic.c`), the default congestion control.
//!
//! After a loss at window `W_max` the window is cut to `β·W_max` (β = 717/1024 ≈ 0.7) and
//! then follows `W(t) = C·(t − K)³ + W_max` with `K = ∛(W_max·(1−β)/C)`, so it climbs
//! quickly back towards `W_max`, plateaus there, and probes beyond it. In Linux's fixed
//! point: time in 1/1024 s, `C` = 41/1024·10 (`bic_scale`), the per-ACK increment
//! expressed as `cnt` (ACKs per one-packet increase), never faster than 1.5× per RTT, and
//! never slower than Reno would grow ("TCP friendliness"). Fast convergence lowers
//! `W_max` further when a loss comes before the window regained its last maximum.
//!
//! Slow start ends early through HyStart: an ACK train stretching past half the minimum
//! RTT, or the RTT of a round rising by a threshold (RTT/8 clamped to 4–16 ms) over the
//! minimum, sets ssthresh to cwnd (`TCPHystartTrainDetect`, `TCPHystartDelayDetect`).

use super::{cong_avoid_ai, slow_start, AckSample, CaEvent, CcCtx, CongestionOps};
use crate::tcp::{after, CaState};
use crate::time::Instant;

/// `BICTCP_BETA_SCALE`.
pub const BETA_SCALE: u64 = 1024;
/// β × 1024 (`beta`, 717).
pub const BETA: u64 = 717;
/// `bic_scale` (C × 1024 / 10).
pub const BIC_SCALE: u64 = 41;
/// Time resolution: 1/1024 s (`BICTCP_HZ` = 10).
const BICTCP_HZ: u32 = 10;
const CUBE_RTT_SCALE: u64 = BIC_SCALE * 10;
/// `cube_factor` = 2^(10+3·BICTCP_HZ) / cube_rtt_scale.
const CUBE_FACTOR: u64 = (1u64 << (10 + 3 * BICTCP_HZ)) / CUBE_RTT_SCALE;
/// `beta_scale` for TCP friendliness: 8·(1024+β)/3/(1024−β).
const FRIENDLY_SCALE: u64 = 8 * (BETA_SCALE + BETA) / 3 / (BETA_SCALE - BETA);
/// HyStart starts looking at this cwnd (`hystart_low_window`).
pub const HYSTART_LOW_WINDOW: u32 = 16;
/// ACKs closer than this belong to one train (`hystart_ack_delta_us`).
const HYSTART_ACK_DELTA_US: u64 = 2000;
const HYSTART_MIN_SAMPLES: u32 = 8;
const HYSTART_DELAY_MIN_US: u32 = 4000;
const HYSTART_DELAY_MAX_US: u32 = 16000;

/// Integer cube root (floor).
pub fn cubic_root(a: u64) -> u64 {
    if a == 0 {
        return 0;
    }
    let mut x = (a as f64).cbrt() as u64;
    while x.saturating_mul(x).saturating_mul(x) > a {
        x -= 1;
    }
    while (x + 1).saturating_mul(x + 1).saturating_mul(x + 1) <= a {
        x += 1;
    }
    x
}

/// CUBIC state (Linux's `struct bictcp`).
#[derive(Clone, Debug, Default)]
pub struct Cubic {
    /// ACKs per one-packet increase.
    pub cnt: u32,
    /// `W_max`.
    pub last_max_cwnd: u32,
    last_cwnd: u32,
    last_time_ms: u64,
    /// The plateau the curve is built around.
    pub origin_point: u32,
    /// `K` in 1/1024 s.
    pub k: u64,
    /// Smallest RTT seen (µs).
    pub delay_min: u32,
    /// Start of the current epoch (ms; 0: none).
    epoch_start_ms: u64,
    ack_cnt: u32,
    /// The window Reno would have (TCP friendliness).
    pub tcp_cwnd: u32,
    // HyStart
    sample_cnt: u32,
    /// Whether HyStart ended slow start.
    pub found: bool,
    round_start_us: u64,
    end_seq: u32,
    last_ack_us: u64,
    curr_rtt: u32,
    /// How HyStart ended slow start: 1 ACK train, 2 delay.
    pub found_by: u8,
    /// `found_by`, until reported for the counters.
    exit_pending: u8,
}

fn ms(now: Instant) -> u64 {
    now.as_millis().max(1)
}

impl Cubic {
    fn reset(&mut self) {
        let d = self.delay_min;
        *self = Cubic::default();
        self.delay_min = d;
    }

    fn hystart_reset(&mut self, ctx: &CcCtx<'_>) {
        let now = ctx.now.as_micros();
        self.round_start_us = now;
        self.last_ack_us = now;
        self.end_seq = ctx.snd_nxt;
        self.curr_rtt = u32::MAX;
        self.sample_cnt = 0;
    }

    /// `bictcp_update`: compute `cnt` from the cubic curve at the current time.
    fn update(&mut self, cwnd: u32, acked: u32, now: Instant) {
        self.ack_cnt += acked;
        let now_ms = ms(now);
        if self.last_cwnd == cwnd && now_ms.saturating_sub(self.last_time_ms) <= 1000 / 32 {
            return;
        }
        if !(self.epoch_start_ms != 0 && now_ms == self.last_time_ms) {
            self.last_cwnd = cwnd;
            self.last_time_ms = now_ms;
            if self.epoch_start_ms == 0 {
                self.epoch_start_ms = now_ms;
                self.ack_cnt = acked;
                self.tcp_cwnd = cwnd;
                if self.last_max_cwnd <= cwnd {
                    self.k = 0;
                    self.origin_point = cwnd;
                } else {
                    self.k = cubic_root(CUBE_FACTOR * u64::from(self.last_max_cwnd - cwnd));
                    self.origin_point = self.last_max_cwnd;
                }
            }
            // t = time since the epoch plus the minimum delay, in 1/1024 s.
            let t_ms = now_ms - self.epoch_start_ms + u64::from(self.delay_min) / 1000;
            let t = (t_ms << BICTCP_HZ) / 1000;
            let offs = t.abs_diff(self.k);
            let delta = (CUBE_RTT_SCALE * offs * offs * offs) >> (10 + 3 * BICTCP_HZ);
            let target = if t < self.k {
                u64::from(self.origin_point).saturating_sub(delta)
            } else {
                u64::from(self.origin_point) + delta
            };
            self.cnt = if target > u64::from(cwnd) {
                (u64::from(cwnd) / (target - u64::from(cwnd))) as u32
            } else {
                100 * cwnd
            };
            if self.last_max_cwnd == 0 && self.cnt > 20 {
                self.cnt = 20; // 5% per RTT while the bandwidth is unknown
            }
        }
        // TCP friendliness: never grow slower than Reno would.
        let delta = ((u64::from(cwnd) * FRIENDLY_SCALE) >> 3).max(1);
        while u64::from(self.ack_cnt) > delta {
            self.ack_cnt -= delta as u32;
            self.tcp_cwnd += 1;
        }
        if self.tcp_cwnd > cwnd {
            let d = self.tcp_cwnd - cwnd;
            let max_cnt = cwnd / d;
            if self.cnt > max_cnt {
                self.cnt = max_cnt;
            }
        }
        self.cnt = self.cnt.max(2);
    }

    /// The window the cubic curve gives `t` seconds into the epoch (for tests and
    /// plots): `C·(t−K)³ + W_max` in packets.
    pub fn w_cubic(&self, t_secs: f64) -> f64 {
        let c = CUBE_RTT_SCALE as f64 / (1u64 << (10 + 3 * BICTCP_HZ)) as f64
            * (1u64 << (3 * BICTCP_HZ)) as f64;
        let k = self.k as f64 / 1024.0;
        c * (t_secs - k).powi(3) + f64::from(self.origin_point)
    }

    fn hystart_update(&mut self, ctx: &mut CcCtx<'_>, delay: u32) {
        let now = ctx.now.as_micros();
        // ACK train.
        if now.saturating_sub(self.last_ack_us) <= HYSTART_ACK_DELTA_US {
            self.last_ack_us = now;
            let threshold = u64::from(self.delay_min) >> 1;
            if now.saturating_sub(self.round_start_us) > threshold {
                self.found = true;
                self.found_by = 1;
                self.exit_pending = 1;
                *ctx.ssthresh = *ctx.cwnd;
            }
        }
        // Delay increase.
        if self.curr_rtt > delay {
            self.curr_rtt = delay;
        }
        if self.sample_cnt < HYSTART_MIN_SAMPLES {
            self.sample_cnt += 1;
        } else {
            let thresh = (self.delay_min >> 3).clamp(HYSTART_DELAY_MIN_US, HYSTART_DELAY_MAX_US);
            if self.curr_rtt > self.delay_min + thresh {
                self.found = true;
                self.found_by = 2;
                self.exit_pending = 2;
                *ctx.ssthresh = *ctx.cwnd;
            }
        }
    }
}

impl CongestionOps for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn init(&mut self, ctx: &mut CcCtx<'_>) {
        self.reset();
        self.hystart_reset(ctx);
    }

    /// `cubictcp_recalc_ssthresh`.
    fn ssthresh(&mut self, ctx: &mut CcCtx<'_>) -> u32 {
        let cwnd = *ctx.cwnd;
        self.epoch_start_ms = 0;
        self.last_max_cwnd = if cwnd < self.last_max_cwnd {
            ((u64::from(cwnd) * (BETA_SCALE + BETA)) / (2 * BETA_SCALE)) as u32
        } else {
            cwnd
        };
        ((u64::from(cwnd) * BETA / BETA_SCALE) as u32).max(2)
    }

    /// `cubictcp_cong_avoid`.
    fn cong_avoid(&mut self, ctx: &mut CcCtx<'_>, ack: u32, acked: u32) {
        if !ctx.is_cwnd_limited {
            return;
        }
        let mut acked = acked;
        if ctx.in_slow_start() {
            if after(ack, self.end_seq) {
                self.hystart_reset(ctx);
            }
            acked = slow_start(ctx, acked);
            if acked == 0 {
                return;
            }
        }
        self.update(*ctx.cwnd, acked, ctx.now);
        let cnt = self.cnt;
        cong_avoid_ai(ctx, cnt, acked);
    }

    fn set_state(&mut self, ctx: &mut CcCtx<'_>, new: CaState) {
        if new == CaState::Loss {
            self.reset();
            self.hystart_reset(ctx);
        }
    }

    /// `cubictcp_cwnd_event`: restarting after idle shifts the epoch by the idle time
    /// (since the last send), so the curve does not jump.
    fn cwnd_event(&mut self, ctx: &mut CcCtx<'_>, ev: CaEvent) {
        if ev == CaEvent::TxStart && self.epoch_start_ms != 0 {
            let now = ms(ctx.now);
            let delta = now.saturating_sub(ms(ctx.lsndtime));
            if delta > 0 {
                self.epoch_start_ms = (self.epoch_start_ms + delta).min(now);
            }
        }
    }

    /// `cubictcp_acked`: track the minimum delay and run HyStart.
    fn pkts_acked(&mut self, ctx: &mut CcCtx<'_>, s: &AckSample) {
        if s.rtt_us < 0 {
            return;
        }
        if self.epoch_start_ms != 0 && ms(ctx.now).saturating_sub(self.epoch_start_ms) < 1000 {
            return;
        }
        let delay = (s.rtt_us as u64).clamp(1, u64::from(u32::MAX)) as u32;
        if self.delay_min == 0 || self.delay_min > delay {
            self.delay_min = delay;
        }
        if !self.found && ctx.in_slow_start() && *ctx.cwnd >= HYSTART_LOW_WINDOW {
            self.hystart_update(ctx, delay);
        }
    }

    fn take_hystart_exit(&mut self) -> u8 {
        std::mem::take(&mut self.exit_pending)
    }

    fn info(&self) -> Vec<(&'static str, String)> {
        vec![
            ("wmax", self.last_max_cwnd.to_string()),
            ("k_ms", (self.k * 1000 / 1024).to_string()),
            ("cnt", self.cnt.to_string()),
            // When the current growth epoch began, on the stack's clock (0: none).
            ("epoch_start_ms", self.epoch_start_ms.to_string()),
        ]
    }
}
