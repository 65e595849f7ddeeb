//! TCP Reno / NewReno congestion control (RFC 5681; Linux's `tcp_reno_*`): slow start
//! up to ssthresh, then one packet per cwnd acknowledged; ssthresh = cwnd/2 on loss.

use super::{cong_avoid_ai, slow_start, CcCtx, CongestionOps};

/// Reno.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reno;

impl CongestionOps for Reno {
    fn name(&self) -> &'static str {
        "reno"
    }

    /// `tcp_reno_ssthresh`: half the window, at least 2.
    fn ssthresh(&mut self, ctx: &mut CcCtx<'_>) -> u32 {
        (*ctx.cwnd >> 1).max(2)
    }

    /// `tcp_reno_cong_avoid`.
    fn cong_avoid(&mut self, ctx: &mut CcCtx<'_>, _ack: u32, acked: u32) {
        if !ctx.is_cwnd_limited {
            return;
        }
        let mut acked = acked;
        if ctx.in_slow_start() {
            acked = slow_start(ctx, acked);
            if acked == 0 {
                return;
            }
        }
        let w = *ctx.cwnd;
        cong_avoid_ai(ctx, w, acked);
    }
}
