//! The receiving half of TCP input (Linux's `tcp_input.c` receiver side): in-order data
//! to the receive queue and out-of-order data to a bounded queue with SACK and DSACK
//! blocks (`tcp_data_queue`, `tcp_data_queue_ofo`, `tcp_ofo_queue`), the FIN
//! (`tcp_fin`), the peer's segment size and the window we may offer
//! (`tcp_measure_rcv_mss`, `tcp_grow_window`), the receiver's RTT for autotuning
//! (`tcp_rcv_rtt_*`), and when to ACK (`tcp_event_data_recv`'s ATO, quick-ack mode,
//! `__tcp_ack_snd_check`).

use super::*;
/// `tcp_incr_quickack`.
fn incr_quickack(t: &mut Tcb, max: u32) {
    let mut q = t.rcv_wnd / (2 * t.ack.rcv_mss.max(1));
    if q == 0 {
        q = 2;
    }
    q = q.min(max);
    if q > t.ack.quick {
        t.ack.quick = q;
    }
}

/// `tcp_enter_quickack_mode`.
pub fn enter_quickack_mode(t: &mut Tcb, max: u32) {
    incr_quickack(t, max);
    t.ack.exit_pingpong_mode();
    t.ack.ato = TCP_ATO_MIN;
}

fn in_quickack_mode(stack: &Stack, t: &Tcb) -> bool {
    t.ack.quick > 0 && !t.ack.in_pingpong_mode(crate::tcp::pingpong_thresh(stack))
}

/// `tcp_measure_rcv_mss`: estimate the peer's segment size from `len` (one segment's
/// payload; for a GRO skb its `gso_size`). A segment at least as large as the estimate
/// raises it (up to our advmss); two equal smaller full-looking segments in a row lower
/// it; a short or "remnant" segment (FIN, SYN, URG or PSH, as a sender's tail) instead
/// marks the ACK as pushed, so it goes out promptly.
fn tcp_measure_rcv_mss(t: &mut Tcb, len: u32, flags: u8) {
    const REMNANT: u8 = 0x01 | 0x02 | 0x08 | 0x20;
    let lss = std::mem::take(&mut t.ack.last_seg_size);
    if len >= t.ack.rcv_mss {
        t.ack.rcv_mss = len.min(t.advmss);
        return;
    }
    if len >= TCP_MSS_DEFAULT || (len >= crate::tcp::TCP_MIN_MSS && flags & REMNANT == 0) {
        t.ack.last_seg_size = len;
        if len == lss {
            t.ack.rcv_mss = len;
            return;
        }
    }
    if t.ack.pending & ack::PUSHED != 0 {
        t.ack.pending |= ack::PUSHED2;
    }
    t.ack.pending |= ack::PUSHED;
}

/// `tcp_initialize_rcv_mss`: the first estimate of the peer's segment size, at most
/// TCP_MSS_DEFAULT (536) and half the receive window, at least TCP_MIN_MSS.
pub(crate) fn tcp_initialize_rcv_mss(t: &mut Tcb) {
    t.ack.rcv_mss = t
        .advmss
        .min(t.mss_cache)
        .min(t.rcv_wnd / 2)
        .clamp(crate::tcp::TCP_MIN_MSS, TCP_MSS_DEFAULT);
}

/// `tcp_event_data_recv`: ATO estimation, quick-ack, receive MSS (from one segment's
/// length `len`) and window growth (from the whole skb's, `skb_len`).
fn event_data_recv(stack: &Stack, t: &mut Tcb, len: u32, skb_len: u32, flags: u8) {
    let now = stack.now();
    t.ack.pending |= ack::SCHED;
    tcp_measure_rcv_mss(t, len, flags);
    if t.ack.ato.is_zero() || t.ack.lrcvtime == Instant::ZERO {
        incr_quickack(t, TCP_MAX_QUICKACKS);
        t.ack.ato = TCP_ATO_MIN;
    } else {
        let m = now.saturating_duration_since(t.ack.lrcvtime);
        if m <= TCP_ATO_MIN / 2 {
            t.ack.ato = t.ack.ato / 2 + TCP_ATO_MIN / 2;
        } else if m < t.ack.ato {
            t.ack.ato = (t.ack.ato / 2 + m).min(t.rto);
        } else if m > t.rto {
            incr_quickack(t, TCP_MAX_QUICKACKS);
        }
    }
    t.ack.lrcvtime = now;
    rcv_rtt_measure(t, now);
    tcp_grow_window(stack, t, skb_len);
}

/// `tcp_rcv_rtt_update`: fold a receiver RTT sample (µs) into `rcv_rtt_us` (× 8). A
/// timestamp sample is smoothed (7/8 old, 1/8 new); a window-timing sample
/// (`win_dep`) can only lower the estimate, since a window may take longer than an RTT
/// to arrive when the sender is held back.
fn rcv_rtt_update(t: &mut Tcb, sample_us: u32, win_dep: bool) {
    let old = t.rcv_rtt_us;
    let m = u64::from(sample_us);
    let new = if old == 0 {
        m << 3
    } else if !win_dep {
        (u64::from(old) + m).saturating_sub(u64::from(old >> 3))
    } else {
        u64::from(old).min(m << 3)
    };
    t.rcv_rtt_us = new.clamp(1, u64::from(u32::MAX)) as u32;
}

/// `tcp_rcv_rtt_measure`: time how long a window of data takes to arrive — from when
/// `rcv_nxt + rcv_wnd` was noted until `rcv_nxt` passes it.
fn rcv_rtt_measure(t: &mut Tcb, now: Instant) {
    if t.rcv_rtt_time != Instant::MAX {
        if before(t.rcv_nxt, t.rcv_rtt_seq) {
            return;
        }
        let us = now.saturating_duration_since(t.rcv_rtt_time).as_micros();
        rcv_rtt_update(t, us.clamp(1, u128::from(u32::MAX)) as u32, true);
    }
    t.rcv_rtt_seq = t.rcv_nxt.wrapping_add(t.rcv_wnd);
    t.rcv_rtt_time = now;
}

/// `tcp_rcv_rtt_measure_ts`: a full-sized segment echoing a new timestamp gives an
/// RTT sample (our clock now minus the echo, in ms; a zero-ms echo says nothing).
pub(super) fn rcv_rtt_measure_ts(t: &mut Tcb, seg: &Seg, now: Instant) {
    let (true, Some((_, ecr))) = (t.tstamp_ok, seg.ts) else {
        return;
    };
    if ecr == t.rcv_rtt_last_tsecr {
        return;
    }
    t.rcv_rtt_last_tsecr = ecr;
    if seg.end_seq.wrapping_sub(seg.seq) >= t.ack.rcv_mss {
        let delta_ms = output::tcp_time_stamp(t, now).wrapping_sub(ecr);
        if delta_ms > 0 && delta_ms < i32::MAX as u32 / 1000 {
            rcv_rtt_update(t, delta_ms * 1000, false);
        }
    }
}

/// `tcp_grow_window`: open `rcv_ssthresh` (the window we may advertise) as data
/// arrives, by at least twice the skb's length — a GRO skb of many segments opens it
/// as much as its segments would one by one — up to what the buffer and the window
/// clamp allow. Tiny segments (whose overhead would not fit the buffer) do not grow it.
fn tcp_grow_window(stack: &Stack, t: &mut Tcb, len: u32) {
    let space = output::win_from_space(stack, t.rcvbuf.saturating_sub(t.rmem_alloc));
    let room = t.window_clamp.min(space).saturating_sub(t.rcv_ssthresh);
    if room == 0 || len < 128 {
        return;
    }
    let incr = (2 * t.advmss).max(2 * len);
    t.rcv_ssthresh += room.min(incr);
    // Announce the opened window at once (`icsk_ack.quick |= 1`).
    t.ack.quick |= 1;
}

/// Queue a DSACK for `[seq, end)` (`tcp_dsack_set`).
pub(super) fn dsack_set(stack: &Stack, t: &mut Tcb, seq: u32, end: u32) {
    if t.sack_ok && stack.sysctl.tcp_dsack() != 0 {
        t.dsack = Some((seq, end));
    }
}

/// Merge a received out-of-order block into the SACK list, most recent first
/// (`tcp_sack_new_ofo_skb`).
fn sack_add(t: &mut Tcb, seq: u32, end: u32) {
    if !t.sack_ok {
        return;
    }
    let (mut s, mut e) = (seq, end);
    t.sack_blocks.retain(|&(l, r)| {
        if !after(l, e) && !before(r, s) {
            s = crate::tcp::seq::seq_min(s, l);
            e = crate::tcp::seq::seq_max(e, r);
            false
        } else {
            true
        }
    });
    t.sack_blocks.insert(0, (s, e));
    t.sack_blocks.truncate(4);
}

/// Drop SACK blocks now covered by `rcv_nxt`.
fn sack_remove(t: &mut Tcb) {
    let r = t.rcv_nxt;
    t.sack_blocks.retain(|&(_, e)| after(e, r));
}

/// `tcp_data_queue`.
pub(super) fn tcp_data_queue(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    seg: &Seg,
    mut skb: Skb,
) {
    let fin = seg.has(tcphdr::FIN);
    if seg.len == 0 && !fin {
        return;
    }
    // Entirely old: a retransmission we already have (DSACK, quick ACK).
    if !after(seg.end_seq, t.rcv_nxt) {
        stack.tcp.mib.inc(TcpExt::DelayedACKLost);
        dsack_set(stack, t, seg.seq, seg.end_seq);
        enter_quickack_mode(t, TCP_MAX_QUICKACKS);
        output::tcp_send_ack(stack, sk, t);
        return;
    }
    // Beyond the window: drop (an ACK tells the peer).
    if !before(
        seg.seq,
        t.rcv_nxt.wrapping_add(output::tcp_receive_window(t)),
    ) {
        stack.tcp.mib.inc(TcpExt::TCPZeroWindowDrop);
        output::tcp_send_ack(stack, sk, t);
        return;
    }
    if after(seg.seq, t.rcv_nxt) {
        // Out of order: keep it (bounded by the receive buffer).
        tcp_data_queue_ofo(stack, sk, t, seg, skb);
        return;
    }
    // In order (possibly overlapping the front): trim what we have.
    if before(seg.seq, t.rcv_nxt) {
        let dup = t.rcv_nxt.wrapping_sub(seg.seq) as usize;
        dsack_set(stack, t, seg.seq, t.rcv_nxt);
        let dup = dup.min(skb.len());
        output::trim_head(&mut skb, dup);
    }
    if t.rmem_alloc + skb.len() > t.rcvbuf && !skb.is_empty() && t.rx_readable() > 0 {
        // No room: drop; the window was overrun.
        stack.tcp.mib.inc(TcpExt::TCPRcvQDrop);
        output::tcp_send_ack(stack, sk, t);
        return;
    }
    let len = skb.len() as u32;
    if len > 0 {
        // tcp_measure_rcv_mss looks at one segment: a GRO skb's gso_size.
        let seg_len = if skb.gso_size > 0 {
            u32::from(skb.gso_size)
        } else {
            seg.len
        };
        event_data_recv(stack, t, seg_len, len, seg.flags);
        tcp_queue_rcv(t, skb);
    }
    if fin {
        tcp_fin(stack, sk, t);
    }
    // Anything from the out-of-order queue that now fits.
    if !t.ofo_queue.is_empty() {
        ofo_queue_pull(stack, sk, t);
        // Filled a hole: ACK at once.
        t.ack.pending |= ack::NOW;
    }
    sack_remove(t);
    // Readers are woken by the caller (tcp_v4_do_rcv's tcp_data_ready rule, or the
    // child's unconditional wake), once per segment.
}

/// `tcp_queue_rcv`: append in-order data at `rcv_nxt` to the receive queue, charged to
/// the receive buffer.
fn tcp_queue_rcv(t: &mut Tcb, mut skb: Skb) {
    let len = skb.len() as u32;
    skb.cb.tcp.seq = t.rcv_nxt;
    t.rmem_alloc += skb.len();
    t.rcv_nxt = t.rcv_nxt.wrapping_add(len);
    t.stats.bytes_received += u64::from(len);
    t.rx_queue.push_back(skb);
}

/// `tcp_data_queue_ofo`: insert in sequence order; duplicates are DSACKed.
fn tcp_data_queue_ofo(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg, mut skb: Skb) {
    stack.tcp.mib.inc(TcpExt::TCPOFOQueue);
    if t.rmem_alloc + skb.len() > t.rcvbuf {
        stack.tcp.mib.inc(TcpExt::TCPOFODrop);
        output::tcp_send_ack(stack, sk, t);
        return;
    }
    let seq = seg.seq;
    let end = seg.seq.wrapping_add(seg.len);
    skb.cb.tcp.seq = seq;
    skb.cb.tcp.end_seq = end;
    if seg.has(tcphdr::FIN) {
        skb.cb.tcp.tcp_flags |= tcphdr::FIN;
    }
    // Fully covered by an existing segment: duplicate.
    if t.ofo_queue
        .iter()
        .any(|o| !after(o.cb.tcp.seq, seq) && !before(o.cb.tcp.end_seq, end))
    {
        stack.tcp.mib.inc(TcpExt::TCPOFOMerge);
        dsack_set(stack, t, seq, end);
        output::tcp_send_ack(stack, sk, t);
        return;
    }
    let pos = t
        .ofo_queue
        .iter()
        .position(|o| after(o.cb.tcp.seq, seq))
        .unwrap_or(t.ofo_queue.len());
    let len = skb.len() as u32;
    t.rmem_alloc += skb.len();
    t.ofo_queue.insert(pos, skb);
    sack_add(t, seq, end);
    // Data behind a hole opens the window too (with SACK; without, the window stays
    // put so the duplicate ACKs that signal the loss keep coming).
    if t.sack_ok {
        tcp_grow_window(stack, t, len);
    }
    // Out-of-order data: ACK at once (with SACK), and go into quick-ack mode.
    enter_quickack_mode(t, TCP_MAX_QUICKACKS);
    output::tcp_send_ack(stack, sk, t);
}

/// `tcp_ofo_queue`: move segments that became in-order to the receive queue.
fn ofo_queue_pull(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    while let Some(o) = t.ofo_queue.front() {
        if after(o.cb.tcp.seq, t.rcv_nxt) {
            break;
        }
        let Some(mut skb) = t.ofo_queue.pop_front() else {
            break;
        };
        t.rmem_alloc = t.rmem_alloc.saturating_sub(skb.len());
        let end = skb.cb.tcp.end_seq;
        let fin = skb.cb.tcp.tcp_flags & tcphdr::FIN != 0;
        if !after(end, t.rcv_nxt) && (!fin || end != t.rcv_nxt) {
            continue;
        }
        let overlap = (t.rcv_nxt.wrapping_sub(skb.cb.tcp.seq) as usize).min(skb.len());
        if overlap > 0 {
            output::trim_head(&mut skb, overlap);
        }
        if !skb.is_empty() {
            tcp_queue_rcv(t, skb);
        }
        if fin {
            tcp_fin(stack, sk, t);
            break;
        }
    }
}

/// `tcp_fin`: the peer finished sending.
fn tcp_fin(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    t.rcv_nxt = t.rcv_nxt.wrapping_add(1);
    t.shutdown |= shutdown::RCV;
    // inet_csk_schedule_ack: in CLOSE_WAIT the ACK of the FIN is delayed (pingpong
    // mode), hoping to ride on our own FIN; the closing states answer at once.
    t.ack.pending |= ack::SCHED;
    match t.state {
        TcpState::SynRecv | TcpState::Established => {
            t.state = TcpState::CloseWait;
            t.ack
                .enter_pingpong_mode(crate::tcp::pingpong_thresh(stack));
        }
        TcpState::FinWait1 => {
            // Simultaneous close.
            output::tcp_send_ack(stack, sk, t);
            t.state = TcpState::Closing;
        }
        TcpState::FinWait2 => {
            output::tcp_send_ack(stack, sk, t);
            crate::tcp::minisocks::tcp_time_wait(stack, sk, t, TcpState::TimeWait);
            return;
        }
        _ => {}
    }
    // The out-of-order queue is useless now.
    t.ofo_queue.clear();
    t.sack_blocks.clear();
    sk.wq.wake_all();
}

/// `__tcp_ack_snd_check`: ACK now (two full segments since the last ACK, quick-ack
/// mode, or an immediate ACK was asked for) or schedule a delayed ACK.
pub(super) fn ack_snd_check(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, _ofo_possible: bool) {
    if t.ack.pending & ack::SCHED == 0 {
        return;
    }
    // More than one full frame received, and the window's right edge would move on
    // by at least what was offered (else the reader's tcp_cleanup_rbuf sends the ACK
    // with the window it frees) — or a reader waiting for SO_RCVLOWAT bytes does not
    // have them yet (the sender must hear at once to send the rest).
    let two_full = t.rcv_nxt.wrapping_sub(t.rcv_wup) > t.ack.rcv_mss
        && (t.rcv_nxt.wrapping_sub(t.copied_seq) < t.rcvlowat
            || output::select_window_raw(stack, t) >= t.rcv_wnd);
    if two_full || in_quickack_mode(stack, t) || t.ack.pending & ack::NOW != 0 {
        output::tcp_send_ack(stack, sk, t);
        return;
    }
    output::tcp_send_delayed_ack(stack, sk, t);
}
