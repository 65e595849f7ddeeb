//! SACK-based loss recovery, as Linux does it by default: the SACK scoreboard
//! (`tcp_sacktag_write_queue`, RFC 2018, with DSACK of RFC 2883), RACK time-based loss
//! detection (`net/ipv4/tcp_recovery.c`, RFC 8985) with its reordering window and
//! reorder timer, and tail loss probes (`tcp_schedule_loss_probe`,
//! `tcp_send_loss_probe`, `tcp_process_tlp_ack`).
//!
//! The scoreboard lives in each retransmit-queue skb's `cb.tcp.sacked` bits; the
//! counters `sacked_out`, `lost_out` and `retrans_out` sum them, and
//! `packets_in_flight` (RFC 6675's "pipe") is derived from them. NewReno (no SACK)
//! stays in `input.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::cong::{with_cc, CaEvent};
use super::input::sacked;
use super::output;
use super::seq::{after, before};
use super::timer::{self, Pending};
use super::{CaState, Tcb, TcpExt, TcpSock, TCP_RTO_MIN};
use crate::time::Instant;
use crate::Stack;

/// `net.ipv4.tcp_recovery` bit: RACK loss detection.
const TCP_RACK_LOSS_DETECTION: i64 = 0x1;
/// `net.ipv4.tcp_recovery` bit: keep the reordering window at min_rtt/4 always.
const TCP_RACK_STATIC_REO_WND: i64 = 0x2;
/// `net.ipv4.tcp_recovery` bit: no DUPACK-threshold shortcut.
const TCP_RACK_NO_DUPTHRESH: i64 = 0x4;
/// Recoveries a widened reordering window persists for (`TCP_RACK_RECOVERY_THRESH`).
const TCP_RACK_RECOVERY_THRESH: u8 = 16;
/// Extra wait in a loss probe timeout with several packets out (`TCP_TIMEOUT_MIN_US`).
const TCP_TIMEOUT_MIN: Duration = Duration::from_millis(2);
/// Most a measured reordering degree may raise `tp->reordering`
/// (`net.ipv4.tcp_max_reordering`).
const TCP_MAX_REORDERING: u32 = 300;

/// RACK state (Linux's `tp->rack`): the most recently sent skb known delivered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rack {
    /// Send time of that skb.
    pub mstamp: Instant,
    /// Its end sequence.
    pub end_seq: u32,
    /// Its transmission order (breaks ties between skbs sent at the same instant).
    pub tx_order: u32,
    /// Its RTT in µs.
    pub rtt_us: u32,
    /// The reordering window, in steps of min_rtt/4.
    pub reo_wnd_steps: u8,
    /// Recoveries left before the window falls back to one step.
    pub reo_wnd_persist: u8,
    /// A DSACK arrived since the window was last adjusted.
    pub dsack_seen: bool,
    /// `delivered` when the window was last adjusted.
    pub last_delivered: u32,
    /// Whether `mstamp` moved since loss detection last ran.
    pub advanced: bool,
}

/// What the SACK blocks of one ACK did.
#[derive(Clone, Copy, Debug, Default)]
pub struct SackOutcome {
    /// Packets newly SACKed.
    pub newly_sacked: u32,
    /// The first block was a DSACK.
    pub dsack: bool,
    /// A never-retransmitted packet below the highest SACK was SACKed: reordering.
    pub reordered: bool,
    /// The delivery-rate sample the newly SACKed packets started.
    pub rate: super::rate::RateSample,
}

/// Whether RACK drives loss detection (`tcp_is_rack`).
pub fn rack_enabled(stack: &Stack) -> bool {
    stack.sysctl.tcp_recovery() & TCP_RACK_LOSS_DETECTION != 0
}

/// `tcp_rack_sent_after`: was `a` sent after `b`? Linux compares nanosecond stamps and
/// breaks ties (the pieces of one TSO skb) by sequence. Under the virtual clock many
/// sends share an instant (a retransmission right after new data), so the socket's
/// transmission order comes between the two.
pub(crate) fn sent_after(a: (Instant, u32, u32), b: (Instant, u32, u32)) -> bool {
    let ((t1, o1, s1), (t2, o2, s2)) = (a, b);
    t1 > t2 || (t1 == t2 && ((o1.wrapping_sub(o2) as i32) > 0 || (o1 == o2 && after(s1, s2))))
}

/// `tcp_rack_advance`: a packet sent at `xmit` (ending at `end_seq`) was delivered;
/// remember it if it was sent later than what RACK knows. A retransmitted packet whose
/// RTT is below min_rtt was probably delivered by its original transmission: it says
/// nothing about when the retransmission arrived, so it is skipped.
pub fn rack_advance(t: &mut Tcb, now: Instant, cb: &crate::skb::TcpSkbCb) {
    let (sacked_bits, end_seq, xmit) = (cb.sacked, cb.end_seq, cb.tx_time);
    let rtt_us = now.saturating_duration_since(xmit).as_micros() as u32;
    if sacked_bits & sacked::EVER_RETRANS != 0 && rtt_us < t.min_rtt_us {
        return;
    }
    t.rack.advanced = true;
    t.rack.rtt_us = rtt_us;
    if sent_after(
        (xmit, cb.tx_order, end_seq),
        (t.rack.mstamp, t.rack.tx_order, t.rack.end_seq),
    ) {
        t.rack.mstamp = xmit;
        t.rack.end_seq = end_seq;
        t.rack.tx_order = cb.tx_order;
    }
}

/// `tcp_rack_reo_wnd`: how long after the RACK time a packet may still be reordered
/// rather than lost. Zero while reordering was never seen and recovery is under way (or
/// as many packets as the DUPACK threshold are SACKed); otherwise min_rtt/4 per step,
/// at most srtt.
fn reo_wnd_us(stack: &Stack, t: &Tcb) -> u32 {
    if t.reord_seen == 0 {
        if matches!(t.ca_state, CaState::Recovery | CaState::Loss) {
            return 0;
        }
        if t.sacked_out >= t.reordering && stack.sysctl.tcp_recovery() & TCP_RACK_NO_DUPTHRESH == 0
        {
            return 0;
        }
    }
    let min_rtt = if t.min_rtt_us == u32::MAX {
        0
    } else {
        t.min_rtt_us
    };
    ((min_rtt >> 2) * u32::from(t.reo_wnd_steps_or_one())).min(t.srtt_us >> 3)
}

impl Tcb {
    fn reo_wnd_steps_or_one(&self) -> u8 {
        self.rack.reo_wnd_steps.max(1)
    }
}

/// `tcp_mark_skb_lost`: mark rtx-queue entry `idx` lost. A retransmission of a packet
/// already lost is lost again: it leaves flight (its SACKED_RETRANS bit goes) and is
/// counted as TCPLostRetransmit, and will be resent.
fn mark_skb_lost(stack: &Stack, t: &mut Tcb, idx: usize) {
    let Some(skb) = t.rtx_queue.get_mut(idx) else {
        return;
    };
    let pc = u32::from(skb.gso_segs.max(1));
    let s = &mut skb.cb.tcp.sacked;
    if *s & sacked::ACKED != 0 {
        return;
    }
    if *s & sacked::LOST != 0 {
        if *s & sacked::RETRANS != 0 {
            // A retransmission lost again.
            *s &= !sacked::RETRANS;
            t.retrans_out = t.retrans_out.saturating_sub(pc);
            stack.tcp.mib.add(TcpExt::TCPLostRetransmit, u64::from(pc));
            t.rate.lost = t.rate.lost.wrapping_add(pc);
        }
    } else {
        *s |= sacked::LOST;
        t.lost_out += pc;
        t.rate.lost = t.rate.lost.wrapping_add(pc);
    }
}

/// `tcp_rack_detect_loss`: mark every unSACKed packet sent before the RACK packet, and
/// older than its RTT plus the reordering window, lost. Returns how long until the
/// next such packet would time out, if one is waiting (the reorder timer).
fn rack_detect_loss(stack: &Stack, t: &mut Tcb, now: Instant) -> Option<Duration> {
    // Walks the retransmit queue from its head, stopping at the first original
    // transmission sent after RACK's reference: a few entries per ACK in steady state,
    // not the whole window.
    let reo_wnd = i64::from(reo_wnd_us(stack, t));
    let mut wait: Option<i64> = None;
    for idx in 0..t.rtx_queue.len() {
        let cb = t.rtx_queue[idx].cb.tcp;
        if cb.sacked & sacked::ACKED != 0 {
            continue;
        }
        if cb.sacked & sacked::LOST != 0 && cb.sacked & sacked::RETRANS == 0 {
            // Already lost and waiting to be resent.
            continue;
        }
        let rack = (t.rack.mstamp, t.rack.tx_order, t.rack.end_seq);
        if !sent_after(rack, (cb.tx_time, cb.tx_order, cb.end_seq)) {
            if cb.sacked & sacked::EVER_RETRANS == 0 {
                // Sent (for the first time) after the most recently delivered packet:
                // so was everything above it — originals go out in sequence order, and
                // a retransmission comes after its original. Linux stops here too,
                // walking its send-time-ordered list (tsorted_sent_queue).
                break;
            }
            // A retransmission too recent to judge; older packets may follow.
            continue;
        }
        let age = now.saturating_duration_since(cb.tx_time).as_micros() as i64;
        let remaining = i64::from(t.rack.rtt_us) + reo_wnd - age;
        if remaining <= 0 {
            mark_skb_lost(stack, t, idx);
        } else {
            wait = Some(wait.map_or(remaining, |w: i64| w.max(remaining)));
        }
    }
    wait.map(|us| Duration::from_micros(us as u64))
}

/// `tcp_rack_mark_lost`: run RACK if it learned something; arm the reorder timer for
/// packets not yet old enough. Returns whether packets were newly marked lost.
pub fn rack_mark_lost(stack: &Stack, sk: &TcpSock, t: &mut Tcb) -> bool {
    if !t.rack.advanced {
        return false;
    }
    t.rack.advanced = false;
    let prior_lost = t.lost_out;
    let now = stack.now();
    if let Some(wait) = rack_detect_loss(stack, t, now) {
        // One tick of slack, as Linux's timer granularity allows.
        let at = wait + Duration::from_millis(1);
        let rto = t.rto;
        timer::reset_xmit_timer(stack, sk, t, Pending::ReoTimeout, at.min(rto));
    }
    t.lost_out > prior_lost
}

/// `tcp_rack_update_reo_wnd`: widen the reordering window by one step after a DSACK
/// (at most once a round trip); it shrinks back after `TCP_RACK_RECOVERY_THRESH`
/// recoveries without one.
pub fn rack_update_reo_wnd(stack: &Stack, t: &mut Tcb, prior_delivered: u32) {
    if stack.sysctl.tcp_recovery() & TCP_RACK_STATIC_REO_WND != 0 {
        return;
    }
    if before(prior_delivered, t.rack.last_delivered) {
        t.rack.dsack_seen = false;
    }
    if t.rack.dsack_seen {
        t.rack.reo_wnd_steps = t.rack.reo_wnd_steps.saturating_add(1).max(2);
        t.rack.dsack_seen = false;
        t.rack.last_delivered = t.stats.delivered;
        t.rack.reo_wnd_persist = TCP_RACK_RECOVERY_THRESH;
    } else if t.rack.reo_wnd_persist == 0 {
        t.rack.reo_wnd_steps = 1;
    }
}

/// Recovery ended: one fewer recovery for a widened reordering window to persist.
pub fn rack_recovery_done(t: &mut Tcb) {
    t.rack.reo_wnd_persist = t.rack.reo_wnd_persist.saturating_sub(1);
}

/// `tcp_sacktag_one`: rtx-queue entry `idx` lies inside a SACK block.
fn sacktag_one(stack: &Stack, t: &mut Tcb, idx: usize, out: &mut SackOutcome, highest: u32) {
    let now = stack.now();
    let skb = &t.rtx_queue[idx];
    let cb = skb.cb.tcp;
    let pc = u32::from(skb.gso_segs.max(1));
    if cb.sacked & sacked::ACKED != 0 {
        return;
    }
    rack_advance(t, now, &cb);
    let mut s = cb.sacked;
    if s & sacked::RETRANS != 0 {
        // The retransmission arrived (or the original did): neither lost nor in flight.
        s &= !sacked::RETRANS;
        t.retrans_out = t.retrans_out.saturating_sub(pc);
    } else if s & sacked::EVER_RETRANS == 0 && before(cb.seq, highest) {
        // Never retransmitted, and something sent after it was SACKed first.
        out.reordered = true;
    }
    if s & sacked::LOST != 0 {
        s &= !sacked::LOST;
        t.lost_out = t.lost_out.saturating_sub(pc);
    }
    s |= sacked::ACKED;
    t.rtx_queue[idx].cb.tcp.sacked = s;
    if t.sacked_out == 0 || after(cb.end_seq, t.highest_sack) {
        t.highest_sack = cb.end_seq;
    }
    t.sacked_out += pc;
    t.stats.delivered += pc;
    stack.tcp.mib.add(TcpExt::TCPDelivered, u64::from(pc));
    out.newly_sacked += pc;
    super::rate::skb_delivered(&mut t.rate, &mut t.rtx_queue[idx].cb.tcp, &mut out.rate);
}

/// The highest sequence SACKed so far (`tcp_highest_sack_seq`), kept as SACKs arrive
/// rather than found by walking the queue.
fn highest_sacked(t: &Tcb) -> u32 {
    if t.sacked_out > 0 && after(t.highest_sack, t.snd_una) {
        t.highest_sack
    } else {
        t.snd_una
    }
}

/// `tcp_check_dsack`: is the first block a DSACK (below the cumulative ACK, or inside
/// the second block)? A DSACK for a retransmission proves it unnecessary
/// (`undo_retrans` counts down toward a full undo).
fn check_dsack(
    stack: &Stack,
    t: &mut Tcb,
    blocks: &[(u32, u32)],
    ack: u32,
    prior_snd_una: u32,
) -> bool {
    let Some(&(s0, e0)) = blocks.first() else {
        return false;
    };
    let dup = if before(s0, ack) {
        stack.tcp.mib.inc(TcpExt::TCPDSACKRecv);
        true
    } else if let Some(&(s1, e1)) = blocks.get(1) {
        let inside = !after(e0, e1) && !before(s0, s1);
        if inside {
            stack.tcp.mib.inc(TcpExt::TCPDSACKOfoRecv);
        }
        inside
    } else {
        false
    };
    if !dup {
        return false;
    }
    t.rack.dsack_seen = true;
    // The duplicate was data we had retransmitted: one retransmission was spurious.
    if t.undo_marker != 0 && t.undo_retrans > 0 {
        let covers_rtx = !after(e0, prior_snd_una) && after(e0, t.undo_marker);
        let covers_queued = t.rtx_queue.iter().any(|s| {
            s.cb.tcp.sacked & sacked::EVER_RETRANS != 0
                && !before(s.cb.tcp.seq, s0)
                && !after(s.cb.tcp.end_seq, e0)
        });
        if covers_rtx || covers_queued {
            t.undo_retrans -= 1;
        }
    }
    true
}

/// `tcp_sacktag_write_queue`: apply the SACK blocks of an ACK to the scoreboard,
/// splitting skbs at block edges (on MSS boundaries) so that exactly the SACKed
/// segments are tagged.
pub fn sacktag_write_queue(
    stack: &Stack,
    t: &mut Tcb,
    sacks: &[Option<(u32, u32)>; 4],
    ack: u32,
    prior_snd_una: u32,
) -> SackOutcome {
    let mut out = SackOutcome::default();
    let mut blocks = [(0u32, 0u32); 4];
    let mut n = 0;
    for &(l, r) in sacks.iter().flatten() {
        blocks[n] = (l, r);
        n += 1;
    }
    if n == 0 {
        return out;
    }
    out.dsack = check_dsack(stack, t, &blocks[..n], ack, prior_snd_una);
    let mss = t.mss_cache.max(1);
    let highest = highest_sacked(t);
    let first = usize::from(out.dsack);
    let mut valid = [(0u32, 0u32); 4];
    let mut m = 0;
    for &(l, r) in &blocks[first..n] {
        // tcp_is_sackblock_valid: inside what was sent and not yet cumulatively acked.
        if !after(r, l) || after(r, t.snd_nxt) || before(l, ack) {
            if !out.dsack || m > 0 {
                stack.tcp.mib.inc(TcpExt::TCPSACKDiscard);
            }
            continue;
        }
        valid[m] = (l, r);
        m += 1;
    }
    let valid = &mut valid[..m];
    valid.sort_unstable_by(|a, b| {
        if before(a.0, b.0) {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
    let mut idx = 0;
    for &(l, r) in valid.iter() {
        while idx < t.rtx_queue.len() {
            let cb = t.rtx_queue[idx].cb.tcp;
            if !after(cb.end_seq, l) {
                idx += 1;
                continue;
            }
            if !before(cb.seq, r) {
                break;
            }
            if cb.sacked & sacked::ACKED != 0 {
                idx += 1;
                continue;
            }
            // tcp_match_skb_to_sack: cut the skb so a piece lies wholly in the block.
            if before(cb.seq, l) {
                let cut = l.wrapping_sub(cb.seq).div_ceil(mss) * mss;
                if cut > 0 && before(cb.seq.wrapping_add(cut), cb.end_seq) {
                    output::tcp_fragment_rtx(t, idx, cut, mss);
                }
                idx += 1;
                continue;
            }
            if after(cb.end_seq, r) {
                let cut = r.wrapping_sub(cb.seq) / mss * mss;
                if cut == 0 || !output::tcp_fragment_rtx(t, idx, cut, mss) {
                    break;
                }
            }
            sacktag_one(stack, t, idx, &mut out, highest);
            idx += 1;
        }
    }
    if out.reordered {
        // The degree is how far below the highest SACK the late packet was.
        let una = t.snd_una;
        check_sack_reordering(stack, t, una, highest);
    }
    out
}

/// A cumulatively acknowledged packet leaves the scoreboard (its part of
/// `tcp_clean_rtx_queue`). Returns whether it counts as newly delivered (it was not
/// SACKed before).
pub fn cum_acked(t: &mut Tcb, now: Instant, cb: &crate::skb::TcpSkbCb, pc: u32) -> bool {
    if cb.sacked & sacked::ACKED != 0 {
        t.sacked_out = t.sacked_out.saturating_sub(pc);
        return false;
    }
    rack_advance(t, now, cb);
    true
}

/// `tcp_timeout_mark_lost`: the RTO fired. Everything unSACKed is lost — except, with
/// RACK, packets sent less than an RTT ago (other than the head), which may still be
/// on their way. If the head itself was SACKed, the receiver reneged: the scoreboard
/// is forgotten.
pub fn timeout_mark_lost(stack: &Stack, t: &mut Tcb) {
    let now = stack.now();
    let reneg = t
        .rtx_queue
        .front()
        .is_some_and(|s| s.cb.tcp.sacked & sacked::ACKED != 0);
    if reneg {
        stack.tcp.mib.inc(TcpExt::TCPSACKReneging);
        t.sacked_out = 0;
        t.highest_sack = t.snd_una;
    } else if !t.sack_ok {
        t.sacked_out = 0;
    }
    let rack = rack_enabled(stack) && t.sack_ok;
    for idx in 0..t.rtx_queue.len() {
        let cb = &mut t.rtx_queue[idx].cb.tcp;
        if reneg {
            cb.sacked &= !sacked::ACKED;
        }
        if rack && idx > 0 {
            let age = now.saturating_duration_since(cb.tx_time).as_micros() as u64;
            if u64::from(t.rack.rtt_us) > age {
                continue;
            }
        }
        mark_skb_lost(stack, t, idx);
    }
}

/// `tcp_rack_reo_timeout`: the reorder timer fired. Mark what is now old enough lost,
/// start recovery if needed, and retransmit.
pub fn reo_timeout(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let prior_lost = t.lost_out;
    let now = stack.now();
    t.pending_timer = Pending::None;
    t.timeout_at = None;
    if let Some(wait) = rack_detect_loss(stack, t, now) {
        let at = wait + Duration::from_millis(1);
        let rto = t.rto;
        timer::reset_xmit_timer(stack, sk, t, Pending::ReoTimeout, at.min(rto));
    }
    if t.lost_out > prior_lost {
        if !matches!(t.ca_state, CaState::Recovery | CaState::Loss) {
            enter_recovery(stack, t);
            cwnd_reduction(t, 1, 0);
        }
        xmit_retransmit_queue(stack, sk, t);
    }
    if t.pending_timer == Pending::None {
        timer::tcp_rearm_rto(stack, sk, t);
    }
}

/// `tcp_schedule_loss_probe`: with SACK, in the Open state and packets out, arm a
/// probe timeout (PTO) of two smoothed RTTs — plus TCP_RTO_MIN when only one packet is
/// out, as the peer may delay its ACK — but never later than the RTO would fire.
pub fn schedule_loss_probe(stack: &Stack, sk: &TcpSock, t: &mut Tcb) -> bool {
    let early = stack.sysctl.tcp_early_retrans();
    if !(3..=4).contains(&early)
        || t.packets_out == 0
        || !t.sack_ok
        || !matches!(t.ca_state, CaState::Open | CaState::Cwr)
        || t.tlp_high_seq != 0
        || matches!(t.pending_timer, Pending::Probe0 | Pending::ReoTimeout)
    {
        return false;
    }
    let mut pto = if t.srtt_us != 0 {
        let two_srtt = Duration::from_micros(u64::from(t.srtt_us >> 2));
        two_srtt
            + if t.packets_out == 1 {
                TCP_RTO_MIN
            } else {
                TCP_TIMEOUT_MIN
            }
    } else {
        super::TCP_TIMEOUT_INIT
    };
    // tcp_rto_delta_us: no later than the RTO of the oldest packet.
    if let Some(head) = t.rtx_queue.front() {
        let elapsed = stack.now().saturating_duration_since(head.cb.tcp.tx_time);
        let left = t.rto.saturating_sub(elapsed);
        if !left.is_zero() {
            pto = pto.min(left);
        }
    }
    timer::reset_xmit_timer(stack, sk, t, Pending::LossProbe, pto);
    true
}

/// `tcp_send_loss_probe`: the PTO fired. Send one new segment if the window allows,
/// otherwise retransmit the last one (cut to one MSS); then rearm the RTO.
pub fn send_loss_probe(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    t.pending_timer = Pending::None;
    t.timeout_at = None;
    let mss = output::tcp_current_mss(stack, t);
    let mut sent = false;
    if t.tlp_high_seq == 0 {
        let prior_nxt = t.snd_nxt;
        if output::write_queue_has_data(t) {
            output::tcp_write_xmit(stack, sk, t, mss, super::nagle::OFF, 2);
            sent = after(t.snd_nxt, prior_nxt);
            if sent {
                t.tlp_retrans = false;
            }
        }
        if !sent && !t.rtx_queue.is_empty() {
            let last = t.rtx_queue.len() - 1;
            let len = t.rtx_queue[last].len() as u32;
            if len > mss {
                // Probe with the last MSS only.
                let cut = (len - 1) / mss * mss;
                output::tcp_fragment_rtx(t, last, cut, mss);
            }
            let last = t.rtx_queue.len() - 1;
            let bits = t.rtx_queue[last].cb.tcp.sacked;
            if bits & sacked::ACKED == 0 && output::tcp_retransmit_skb(stack, sk, t, last, 1) {
                sent = true;
                t.tlp_retrans = true;
            }
        }
        if sent {
            t.tlp_high_seq = t.snd_nxt;
            stack.tcp.mib.inc(TcpExt::TCPLossProbes);
        }
    }
    if t.pending_timer == Pending::None {
        timer::tcp_rearm_rto(stack, sk, t);
    }
}

/// `tcp_check_sack_reordering`: a packet from below the highest SACK (`fack`)
/// arrived late; the reordering degree grows to the distance in packets (at most
/// `TCP_MAX_REORDERING`), and the event is counted.
pub(crate) fn check_sack_reordering(stack: &Stack, t: &mut Tcb, low_seq: u32, fack: u32) {
    if !before(low_seq, fack) {
        return;
    }
    let mss = t.mss_cache.max(1);
    let metric = fack.wrapping_sub(low_seq);
    if metric > t.reordering * mss {
        t.reordering = metric.div_ceil(mss).min(TCP_MAX_REORDERING);
    }
    t.reord_seen = t.reord_seen.saturating_add(1);
    stack.tcp.mib.inc(TcpExt::TCPSACKReorder);
}

/// `tcp_process_tlp_ack`: did the ACK settle an outstanding loss probe? A probe of new
/// data tells nothing. For a retransmitted probe: a DSACK, or a pure duplicate ACK,
/// means the original and the probe both arrived (no loss); an ACK beyond the probe
/// without one means the probe repaired a tail loss, and cwnd is reduced once, as for
/// any loss (`tcp_init_cwnd_reduction` + `tcp_end_cwnd_reduction`), staying Open.
pub fn process_tlp_ack(stack: &Stack, t: &mut Tcb, ack: u32, dsack: bool, pure_dupack: bool) {
    if t.tlp_high_seq == 0 || before(ack, t.tlp_high_seq) {
        return;
    }
    if !t.tlp_retrans || dsack {
        t.tlp_high_seq = 0;
    } else if after(ack, t.tlp_high_seq) {
        t.tlp_high_seq = 0;
        let now = stack.now();
        t.undo_marker = 0;
        t.prior_cwnd = t.snd_cwnd;
        t.snd_ssthresh = super::cong::with_cc(t, now, |cc, ctx| cc.ssthresh(ctx));
        t.snd_cwnd = t.snd_ssthresh.max(1);
        t.snd_cwnd_stamp = now;
        stack.tcp.mib.inc(TcpExt::TCPLossProbeRecovery);
    } else if pure_dupack {
        t.tlp_high_seq = 0;
    }
}

// ---------------------------------------------------------------------------------
// The recovery state machine (tcp_fastretrans_alert and friends in tcp_input.c).
// ---------------------------------------------------------------------------------

/// `tcp_mark_head_lost` (NewReno): the first unacknowledged skb is lost.
fn mark_head_lost(stack: &Stack, t: &mut Tcb) {
    // Only the first segment is presumed lost (tcp_newreno_mark_lost): split a
    // multi-segment head so exactly one MSS is retransmitted.
    let mss = output::tcp_current_mss(stack, t);
    let split = t.rtx_queue.front().is_some_and(|s| {
        s.gso_segs > 1 && s.len() as u32 > mss && s.cb.tcp.sacked & sacked::LOST == 0
    });
    if split {
        output::tcp_fragment_rtx(t, 0, mss, mss);
    }
    if let Some(skb) = t.rtx_queue.front_mut() {
        if skb.cb.tcp.sacked & (sacked::LOST | sacked::ACKED) == 0 {
            skb.cb.tcp.sacked |= sacked::LOST;
            t.lost_out += u32::from(skb.gso_segs.max(1));
            t.rate.lost = t.rate.lost.wrapping_add(u32::from(skb.gso_segs.max(1)));
        }
    }
}

/// `tcp_xmit_retransmit_queue`: retransmit lost skbs while cwnd allows.
pub fn xmit_retransmit_queue(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let mut idx = 0;
    while idx < t.rtx_queue.len() {
        if t.packets_in_flight() >= t.snd_cwnd {
            break;
        }
        let s = t.rtx_queue[idx].cb.tcp.sacked;
        if s & sacked::LOST != 0 && s & (sacked::RETRANS | sacked::ACKED) == 0 {
            let segs = t.snd_cwnd - t.packets_in_flight();
            if !output::tcp_retransmit_skb(stack, sk, t, idx, segs) {
                break;
            }
            if t.ca_state == CaState::Recovery {
                stack.tcp.mib.inc(TcpExt::TCPFastRetrans);
            } else if t.ca_state == CaState::Loss {
                stack.tcp.mib.inc(TcpExt::TCPSlowStartRetrans);
            }
        }
        idx += 1;
    }
}

/// `tcp_enter_recovery`.
pub(crate) fn enter_recovery(stack: &Stack, t: &mut Tcb) {
    let now = stack.now();
    stack.tcp.mib.inc(if t.sack_ok {
        TcpExt::TCPSackRecovery
    } else {
        TcpExt::TCPRenoRecovery
    });
    t.prior_ssthresh = 0;
    t.undo_marker = t.snd_una;
    t.undo_retrans = 0;
    if !matches!(t.ca_state, CaState::Cwr) {
        // tcp_init_cwnd_reduction: one reduction for this loss episode — a loss probe
        // in flight is settled by it (no second reduction when its ACK comes).
        t.prior_cwnd = t.snd_cwnd;
        t.snd_ssthresh = with_cc(t, now, |cc, ctx| cc.ssthresh(ctx));
        t.tlp_high_seq = 0;
        t.snd_cwnd_cnt = 0;
    }
    t.prr_delivered = 0;
    t.prr_out = 0;
    t.high_seq = t.snd_nxt;
    set_ca_state(t, now, CaState::Recovery);
}

/// `tcp_cwnd_reduction` (PRR, RFC 6937, as Linux).
pub(crate) fn cwnd_reduction(t: &mut Tcb, newly_acked_sacked: u32, fl: u32) {
    // An algorithm with its own `cong_control` (BBR) sets cwnd in recovery too.
    if newly_acked_sacked == 0 || t.prior_cwnd == 0 || t.cc.has_cong_control() {
        return;
    }
    let in_flight = t.packets_in_flight() as i64;
    let delta = i64::from(t.snd_ssthresh) - in_flight;
    t.prr_delivered += newly_acked_sacked;
    let mut sndcnt: i64 = if delta < 0 {
        let dividend =
            u64::from(t.snd_ssthresh) * u64::from(t.prr_delivered) + u64::from(t.prior_cwnd) - 1;
        (dividend / u64::from(t.prior_cwnd)) as i64 - i64::from(t.prr_out)
    } else {
        // PRR-SSRB: the credit not yet used (or what this ACK delivered), one more on
        // an ACK that advanced snd_una, never beyond ssthresh.
        let credit = (i64::from(t.prr_delivered) - i64::from(t.prr_out))
            .max(i64::from(newly_acked_sacked))
            + i64::from(fl & super::input::flag::SND_UNA_ADVANCED != 0);
        delta.min(credit)
    };
    sndcnt = sndcnt.max(if t.prr_out > 0 { 0 } else { 1 });
    t.snd_cwnd = (in_flight + sndcnt).max(1) as u32;
}

/// `tcp_end_cwnd_reduction`.
fn end_cwnd_reduction(stack: &Stack, t: &mut Tcb) {
    // An algorithm with its own `cong_control` restores cwnd itself.
    if t.snd_ssthresh < u32::MAX >> 1 && !t.cc.has_cong_control() {
        t.snd_cwnd = t.snd_ssthresh.max(1);
        t.snd_cwnd_stamp = stack.now();
    }
}

/// `tcp_try_undo_recovery` / `tcp_try_undo_loss`: if every retransmission proved
/// unnecessary (DSACKs, timestamps), restore cwnd.
fn try_undo(stack: &Stack, t: &mut Tcb) -> bool {
    if t.undo_marker != 0 && t.undo_retrans == 0 && t.prior_cwnd > 0 {
        let now = stack.now();
        let c = with_cc(t, now, |cc, ctx| cc.undo_cwnd(ctx));
        t.snd_cwnd = c;
        if t.prior_ssthresh > t.snd_ssthresh {
            t.snd_ssthresh = t.prior_ssthresh;
        }
        t.undo_marker = 0;
        stack.tcp.mib.inc(if t.ca_state == CaState::Loss {
            TcpExt::TCPLossUndo
        } else {
            TcpExt::TCPFullUndo
        });
        return true;
    }
    false
}

/// `tcp_set_ca_state`: the congestion state, and the algorithm told.
fn set_ca_state(t: &mut Tcb, now: Instant, state: CaState) {
    t.ca_state = state;
    with_cc(t, now, |cc, ctx| cc.set_state(ctx, state));
}

/// An ACK in CWR: reduce cwnd (PRR) until `high_seq` is acknowledged, then end the
/// reduction and return to Open. Returns whether the socket is still in CWR.
fn cwr_step(stack: &Stack, t: &mut Tcb, delivered: u32, fl: u32) -> bool {
    if before(t.snd_una, t.high_seq) {
        cwnd_reduction(t, delivered, fl);
        return true;
    }
    end_cwnd_reduction(stack, t);
    set_ca_state(t, stack.now(), CaState::Open);
    false
}

/// `tcp_fastretrans_alert` + `tcp_cong_control`: the loss-recovery state machine and
/// window growth, for NewReno (duplicate ACKs count as "sacked" packets, RFC 6582).
pub(crate) fn fastretrans_alert(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    fl: u32,
    is_dupack: bool,
    newly_acked: u32,
    prior_in_flight: u32,
) {
    let now = stack.now();
    if is_dupack {
        // tcp_add_reno_sack.
        t.sacked_out = (t.sacked_out + 1).min(t.packets_out.saturating_sub(1));
        t.stats.dup_segs_in += 0;
    }
    let acked = fl & super::input::flag::SND_UNA_ADVANCED != 0;
    match t.ca_state {
        CaState::Recovery => {
            if !before(t.snd_una, t.high_seq) {
                // Recovery complete.
                if !try_undo(stack, t) {
                    end_cwnd_reduction(stack, t);
                }
                t.ca_state = CaState::Open;
                t.sacked_out = 0;
                with_cc(t, now, |cc, ctx| cc.set_state(ctx, CaState::Open));
                with_cc(t, now, |cc, ctx| cc.cwnd_event(ctx, CaEvent::CompleteCwr));
            } else {
                if acked {
                    // Partial ACK (NewReno): the next hole is lost too; dupacks reset.
                    t.sacked_out = 0;
                    mark_head_lost(stack, t);
                }
                let delivered = newly_acked + u32::from(is_dupack);
                cwnd_reduction(t, delivered, fl);
                xmit_retransmit_queue(stack, sk, t);
                return;
            }
        }
        CaState::Loss => {
            if !before(t.snd_una, t.high_seq) {
                if !try_undo(stack, t) {
                    // Stay in slow start from the reduced window.
                }
                t.ca_state = CaState::Open;
                t.sacked_out = 0;
                with_cc(t, now, |cc, ctx| cc.set_state(ctx, CaState::Open));
            } else {
                if acked {
                    mark_head_lost(stack, t);
                }
                cong_avoid(stack, t, fl, newly_acked, prior_in_flight);
                xmit_retransmit_queue(stack, sk, t);
                return;
            }
        }
        CaState::Cwr => {
            if cwr_step(stack, t, newly_acked + u32::from(is_dupack), fl) {
                return;
            }
        }
        CaState::Open | CaState::Disorder => {}
    }
    // Open / Disorder: enter recovery after `reordering` duplicate ACKs.
    if t.sacked_out >= t.reordering && t.packets_out > 0 {
        enter_recovery(stack, t);
        mark_head_lost(stack, t);
        cwnd_reduction(t, 1, fl);
        xmit_retransmit_queue(stack, sk, t);
        return;
    }
    if t.sacked_out > 0 {
        if t.ca_state == CaState::Open {
            set_ca_state(t, now, CaState::Disorder);
        }
        // Limited transmit (RFC 3042): new data on the first two dupacks.
        return;
    }
    if t.ca_state == CaState::Disorder && acked {
        set_ca_state(t, now, CaState::Open);
    }
    cong_avoid(stack, t, fl, newly_acked, prior_in_flight);
}

/// `tcp_fastretrans_alert` + `tcp_cong_control` with SACK: RACK (or, with RACK off, the
/// DUPACK threshold over SACKed packets, RFC 6675) marks packets lost; any lost packet
/// starts fast recovery, during which PRR (RFC 6937) paces retransmissions and new data
/// by what the ACKs report delivered; recovery ends when `high_seq` is acknowledged.
pub(crate) fn fastretrans_alert_sack(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    fl: u32,
    delivered: u32,
    prior_in_flight: u32,
) {
    let now = stack.now();
    let acked = fl & super::input::flag::SND_UNA_ADVANCED != 0;
    let rack = rack_enabled(stack);
    match t.ca_state {
        CaState::Recovery => {
            if !before(t.snd_una, t.high_seq) {
                if !try_undo(stack, t) {
                    end_cwnd_reduction(stack, t);
                }
                rack_recovery_done(t);
                set_ca_state(t, now, CaState::Open);
                with_cc(t, now, |cc, ctx| cc.cwnd_event(ctx, CaEvent::CompleteCwr));
            } else {
                identify_packet_loss(stack, sk, t, rack);
                cwnd_reduction(t, delivered, fl);
                xmit_retransmit_queue(stack, sk, t);
                return;
            }
        }
        CaState::Loss => {
            if !before(t.snd_una, t.high_seq) {
                try_undo(stack, t);
                set_ca_state(t, now, CaState::Open);
            } else {
                identify_packet_loss(stack, sk, t, rack);
                cong_avoid(stack, t, fl, delivered, prior_in_flight);
                xmit_retransmit_queue(stack, sk, t);
                return;
            }
        }
        CaState::Cwr => {
            if cwr_step(stack, t, delivered, fl) {
                return;
            }
        }
        CaState::Open | CaState::Disorder => {}
    }
    // Open / Disorder: is it time to recover (tcp_time_to_recover)?
    identify_packet_loss(stack, sk, t, rack);
    let dupthresh = !rack && t.sacked_out >= t.reordering;
    if (t.lost_out > 0 || dupthresh) && t.packets_out > 0 {
        // A lost MTU probe is not congestion.
        if super::mtup::lost_probe(stack, sk, t) {
            return;
        }
        enter_recovery(stack, t);
        if dupthresh && t.lost_out == 0 {
            mark_head_lost(stack, t);
        }
        cwnd_reduction(t, delivered.max(1), fl);
        xmit_retransmit_queue(stack, sk, t);
        return;
    }
    if t.sacked_out > 0 || t.retrans_out > 0 {
        if t.ca_state == CaState::Open {
            set_ca_state(t, now, CaState::Disorder);
        }
    } else if t.ca_state == CaState::Disorder {
        set_ca_state(t, now, CaState::Open);
    }
    if acked {
        cong_avoid(stack, t, fl, delivered, prior_in_flight);
    }
}

/// `tcp_identify_packet_loss`: RACK marks what is lost by time; without RACK, once
/// `reordering` packets are SACKed, the unSACKed packets below the highest SACK are
/// lost (RFC 6675's IsLost, Linux's `tcp_mark_head_lost` over `sacked_out`).
fn identify_packet_loss(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, rack: bool) {
    if rack {
        rack_mark_lost(stack, sk, t);
    } else if t.sacked_out >= t.reordering {
        mark_lost_below_sacks(t);
    }
}

/// Mark lost every unSACKed packet with at least `reordering` SACKed packets above it
/// (RFC 6675's IsLost).
fn mark_lost_below_sacks(t: &mut Tcb) {
    let Some(hi) = t
        .rtx_queue
        .iter()
        .rposition(|s| s.cb.tcp.sacked & sacked::ACKED != 0)
    else {
        return;
    };
    let mut sacked_above = 0;
    for idx in (0..=hi).rev() {
        let s = &mut t.rtx_queue[idx];
        let pc = u32::from(s.gso_segs.max(1));
        let bits = &mut s.cb.tcp.sacked;
        if *bits & sacked::ACKED != 0 {
            sacked_above += pc;
        } else if sacked_above >= t.reordering && *bits & (sacked::LOST | sacked::RETRANS) == 0 {
            *bits |= sacked::LOST;
            t.lost_out += pc;
            t.rate.lost = t.rate.lost.wrapping_add(pc);
        }
    }
}

/// `tcp_cong_avoid` on an ACK that advanced, when not reducing cwnd.
fn cong_avoid(stack: &Stack, t: &mut Tcb, fl: u32, acked: u32, _prior_in_flight: u32) {
    if fl & super::input::flag::ACKED == 0 || acked == 0 || t.cc.has_cong_control() {
        return;
    }
    let now = stack.now();
    let ackn = t.snd_una;
    with_cc(t, now, |cc, ctx| cc.cong_avoid(ctx, ackn, acked));
    t.snd_cwnd_stamp = now;
    t.snd_cwnd = t.snd_cwnd.clamp(1, t.snd_cwnd_clamp);
}
