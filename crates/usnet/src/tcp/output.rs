//! TCP output (Linux's `net/ipv4/tcp.c` `tcp_sendmsg_locked` and `tcp_output.c`), in
//! the seeds' order:
//!
//! * [`tcp_sendmsg`](super::sendmsg::tcp_sendmsg): `tcp_send_mss` gives the MSS and `size_goal` (many MSS per skb
//!   when the device does TSO); data goes into the tail skb while it has room, else a new
//!   skb is allocated and `skb_entail`ed; bytes are copied once, into page fragments;
//!   `write_seq` and `end_seq` advance; at the send buffer the caller waits (or gets
//!   `EAGAIN`); `forced_push` past half the peer's largest window; `tcp_push_one` for the
//!   first skb; `tcp_push` at the end with PSH, `MSG_MORE`/`TCP_CORK` corking and
//!   autocorking while earlier data still sits in the qdisc or driver.
//! * [`tcp_write_xmit`]: for each skb at the send head — `tcp_cwnd_test`,
//!   `tcp_snd_wnd_test`, Nagle (`tcp_nagle_test` with Minshall's variant) or
//!   `tcp_tso_should_defer`, `tcp_mss_split_point` / `tso_fragment`,
//!   `tcp_small_queue_check` (TSQ), then `tcp_transmit_skb` and
//!   `tcp_event_new_data_sent`.
//! * [`tcp_transmit_skb`]: clone (the original stays queued for retransmission), header
//!   fields as seed 003 lists them, options, window from `tcp_select_window`, checksum
//!   offload, then `ip_queue_xmit`; a local drop enters CWR (`tcp_enter_cwr`).

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use usnet_wire::{TcpFlags, TcpPacket, TcpRepr, TcpSeqNumber};

mod window;

pub use window::{
    select_initial_window, select_window_raw, space_from_win, tcp_receive_window,
    tcp_select_window, win_from_space,
};

use super::cong::{with_cc, CaEvent};
use super::sendmsg::{commit_frag, skb_entail, tcp_push_pending_frames_nagle};
use super::seq::{after, before};
use super::timer::{self, Pending};
use super::{
    ack, nagle, shutdown, CaState, Tcb, Tcp, TcpExt, TcpSock, TcpState, MAX_TCP_HEADER,
    TCP_MIN_MSS, TCP_MSS_DEFAULT,
};
use crate::dev::Features;
use crate::ipv4::output::ip_queue_xmit;
use crate::ipv4::route::Flowi4;
use crate::skb::{GsoType, Skb};
use crate::sock::{errno, PacingStatus};
use crate::time::Instant;
use crate::trace::Stage;
use crate::Stack;

/// TCP header flag bits in `cb.tcp.tcp_flags`.
pub mod tcphdr {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Size of the page fragment `tcp_sendmsg` copies into (Linux's `SKB_FRAG_PAGE_ORDER`
/// page: 32 KiB).
pub const PAGE_FRAG_SIZE: usize = 32 * 1024;

/// Per-skb memory overhead charged to the send queue on top of its payload.
pub(crate) const SKB_TRUESIZE_BASE: usize = crate::skb::SKB_OVERHEAD as usize + 256;

/// Our timestamp clock (ms, with the connection's random offset).
pub fn tcp_time_stamp(t: &Tcb, now: Instant) -> u32 {
    (now.as_millis() as u32).wrapping_add(t.tsoffset)
}

/// Bytes of TCP options on established segments (`tcp_established_options`).
fn established_options_len(t: &Tcb) -> usize {
    let mut n = 0;
    if t.tstamp_ok {
        n += 12;
    }
    let blocks = t.dsack.iter().count() + t.sack_blocks.len();
    if t.sack_ok && blocks > 0 {
        let room = 40 - n;
        let fit = ((room - 4) / 8).min(blocks).min(4);
        if fit > 0 {
            n += 4 + 8 * fit;
        }
    }
    n
}

/// `tcp_current_mss` / `tcp_sync_mss`: the MSS for the current path MTU, minus the
/// options every segment carries.
pub fn tcp_current_mss(stack: &Stack, t: &mut Tcb) -> u32 {
    let now = stack.now();
    let mtu = t.dst.as_ref().map(|d| d.mtu(now)).unwrap_or(1500);
    if mtu != t.pmtu_cookie || t.mss_with_ts != t.tstamp_ok {
        tcp_sync_mss(t, mtu);
    }
    // Options beyond the fixed header (SACK blocks) shrink the payload further
    // (`tcp_current_mss`: header_len - tcp_header_len).
    let opts = established_options_len(t) - if t.tstamp_ok { 12 } else { 0 };
    t.mss_cache
        .saturating_sub(opts as u32)
        .max(TCP_MIN_MSS - 40)
        .max(8)
}

/// `tcp_sync_mss`: recompute the MSS for `pmtu` (IP + TCP headers off, clamped to the
/// peer's MSS and `TCP_MAXSEG`).
pub fn tcp_sync_mss(t: &mut Tcb, pmtu: u32) -> u32 {
    // __tcp_mtu_to_mss: IP and TCP headers off, clamped to the peer's MSS (and
    // TCP_MAXSEG); then tcp_mtu_to_mss takes the timestamp option off.
    let mut mss = pmtu.saturating_sub(40).max(48);
    mss = mss.min(t.mss_clamp);
    if let Some(u) = t.user_mss {
        mss = mss.min(u);
    }
    let ts = if t.tstamp_ok { 12 } else { 0 };
    mss = mss.saturating_sub(ts).max(48);
    t.mss_with_ts = t.tstamp_ok;
    // Never more than half the largest window the peer offered, once known.
    if t.max_window > 0 && mss > t.max_window / 2 && t.max_window / 2 >= 68 {
        mss = t.max_window / 2;
    }
    // MTU probing: no probe above the path MTU, and segments no larger than the
    // size known to get through.
    if t.mtup.search_high > pmtu {
        t.mtup.search_high = pmtu;
    }
    if t.mtup.enabled {
        mss = mss.min(super::mtup::mtu_to_mss(t, t.mtup.search_low));
    }
    t.mss_cache = mss.max(TCP_MIN_MSS - 40);
    t.pmtu_cookie = pmtu;
    t.mss_cache
}

/// `tcp_send_mss`: the MSS now and `size_goal`, the bytes one skb should carry
/// (`tcp_xmit_size_goal`: many MSS up to half the peer's window and 64 KiB when the
/// device segments for us).
pub fn tcp_send_mss(stack: &Stack, t: &mut Tcb) -> (u32, u32) {
    let mss = tcp_current_mss(stack, t);
    let gso = t.dst.as_ref().is_some_and(|d| {
        d.dev.features().contains(Features::GSO) || d.dev.features().contains(Features::TSO)
    });
    if !gso {
        return (mss, mss);
    }
    let gso_max = sk_gso_max_size(t);
    // tcp_bound_to_half_wnd
    let bound = if t.max_window > TCP_MSS_DEFAULT {
        gso_max.min(t.max_window / 2)
    } else {
        gso_max
    };
    let segs = (bound / mss).max(1);
    (mss, (segs * mss).max(mss))
}

/// `sk_gso_max_size` (`sk_dst_gso_max_size`): the most bytes of payload one TSO/GSO
/// skb may carry on the route's device — its `gso_ipv4_max_size` less the headroom of
/// the headers (`MAX_TCP_HEADER + 1`). Above 64 KiB only when the device has BIG TCP
/// turned on. Linux caches it in the socket when the route is set up; usnet reads it
/// as each packet is sized, so a changed device setting applies at once.
pub(crate) fn sk_gso_max_size(t: &Tcb) -> u32 {
    let dev = t.dst.as_ref().map_or(crate::dev::GSO_LEGACY_MAX_SIZE, |d| {
        d.dev.gso_ipv4_max_size()
    });
    dev.saturating_sub(MAX_TCP_HEADER as u32 + 1)
}

/// Segments the skb needs at `mss` (`tcp_init_tso_segs`).
pub(crate) fn tso_segs(skb: &Skb, mss: u32) -> u32 {
    let len = skb.len() as u32;
    if len <= mss || mss == 0 {
        1
    } else {
        len.div_ceil(mss)
    }
}

/// `tcp_cwnd_test`: how many more packets cwnd allows (at most half the window per
/// burst, so at least two GSO skbs are in flight).
fn cwnd_test(t: &Tcb) -> u32 {
    let in_flight = t.packets_in_flight();
    let cwnd = t.snd_cwnd;
    if in_flight >= cwnd {
        return 0;
    }
    let half = (cwnd >> 1).max(1);
    half.min(cwnd - in_flight)
}

/// `tcp_snd_wnd_test`: the first MSS of the skb fits in the peer's window.
fn snd_wnd_test(t: &Tcb, skb: &Skb, mss: u32) -> bool {
    let mut end = skb.cb.tcp.end_seq;
    if skb.len() as u32 > mss {
        end = skb.cb.tcp.seq.wrapping_add(mss);
    }
    !after(end, t.wnd_end())
}

/// `tcp_minshall_check`: a small segment is still unacknowledged.
fn minshall_check(t: &Tcb) -> bool {
    after(t.snd_sml, t.snd_una) && !after(t.snd_sml, t.snd_nxt)
}

/// `tcp_nagle_check`: whether Nagle (or cork) holds a partial segment back.
fn nagle_check(partial: bool, t: &Tcb, nonagle: u8) -> bool {
    partial
        && (nonagle & nagle::CORK != 0 || (nonagle == 0 && t.packets_out > 0 && minshall_check(t)))
}

/// `tcp_nagle_test`: true if the skb may go now.
fn nagle_test(t: &Tcb, skb: &Skb, mss: u32, nonagle: u8) -> bool {
    if nonagle & nagle::PUSH != 0 {
        return true;
    }
    if skb.cb.tcp.tcp_flags & tcphdr::FIN != 0 {
        return true;
    }
    !nagle_check((skb.len() as u32) < mss, t, nonagle)
}

/// Pacing rate bytes per millisecond for TSO sizing and TSQ (`sk_pacing_rate >>
/// sk_pacing_shift`).
fn pacing_bytes_per_ms(t: &Tcb) -> u64 {
    if t.pacing_rate == 0 {
        u64::MAX
    } else {
        t.pacing_rate >> 10
    }
}

/// `tcp_tso_autosize` / `tcp_tso_segs`: segments per TSO skb — about 1 ms of the pacing
/// rate, at least `tcp_min_tso_segs`, at most what the device takes.
pub fn tcp_tso_segs(stack: &Stack, t: &Tcb, mss: u32) -> u32 {
    let gso_max = sk_gso_max_size(t);
    let mut bytes = pacing_bytes_per_ms(t);
    // Short paths get bigger skbs: gso_max >> (min_rtt / 2^tcp_tso_rtt_log µs).
    let shift = u64::from(t.min_rtt_us) >> stack.sysctl.tcp_tso_rtt_log().clamp(0, 32);
    if t.min_rtt_us != u32::MAX && shift < 32 {
        bytes = bytes.saturating_add(u64::from(gso_max) >> shift);
    }
    let bytes = bytes.min(u64::from(gso_max)) as u32;
    let min_segs =
        t.cc.min_tso_segs(t.pacing_rate)
            .unwrap_or_else(|| stack.sysctl.tcp_min_tso_segs().max(1) as u32);
    (bytes / mss.max(1)).max(min_segs)
}

/// `tcp_update_pacing_rate`: the rate TSO autosizing and TCP small queues work from
/// (`sk_pacing_rate`): cwnd·mss/srtt, ×2 in slow start (below half ssthresh), ×1.2
/// after (`tcp_pacing_ss_ratio`, `tcp_pacing_ca_ratio`). Bytes per second; 0 until
/// an RTT is known.
pub fn tcp_update_pacing_rate(stack: &Stack, t: &mut Tcb) {
    // An algorithm with its own `cong_control` (BBR) sets the pacing rate itself.
    if t.srtt_us == 0 || t.cc.has_cong_control() {
        return;
    }
    let ratio = if t.snd_cwnd < t.snd_ssthresh / 2 {
        stack.sysctl.tcp_pacing_ss_ratio()
    } else {
        stack.sysctl.tcp_pacing_ca_ratio()
    }
    .max(0) as u128;
    // srtt_us holds 8·srtt: rate = mss·cwnd·ratio/100 / (srtt_us/8 µs) per second.
    let rate =
        u128::from(t.mss_cache) * u128::from(t.snd_cwnd.max(t.packets_out)) * ratio * 8 * 10_000
            / u128::from(t.srtt_us);
    t.pacing_rate = (rate.min(u128::from(u64::MAX >> 1)) as u64).min(t.max_pacing_rate);
}

/// `tcp_update_skb_after_send`: when someone paces (TCP's timer or the fq qdisc), the
/// next packet may leave `len / pacing_rate` after this one (less up to half of it as
/// credit for time the sender was idle); the first 10 packets go unpaced, as the fq
/// qdisc lets them. `prior` is the departure time before this packet was stamped.
fn pacing_after_send(t: &mut Tcb, status: PacingStatus, prior: Instant, len: usize) {
    if status == PacingStatus::None || t.pacing_rate == 0 || t.stats.data_segs_out < 10 {
        return;
    }
    let len_ns = (len as u128 * 1_000_000_000 / u128::from(t.pacing_rate)) as u64;
    let credit = t.wstamp.as_nanos().saturating_sub(prior.as_nanos());
    let len_ns = len_ns - (len_ns / 2).min(credit);
    t.wstamp = t.wstamp.saturating_add(Duration::from_nanos(len_ns));
}

/// `tcp_pacing_check`: with internal pacing, is it too early for the next packet? If
/// so the pacing timer is armed for its departure time. Once the fq qdisc paces the
/// socket (`tcp_needs_internal_pacing` false), TCP only stamps departure times.
fn pacing_check(stack: &Stack, sk: &Arc<TcpSock>, t: &Tcb) -> bool {
    if !sk.wmem.pacing.needs_internal_pacing() || t.wstamp <= stack.now() {
        return false;
    }
    stack.timers.arm_earliest(sk.timers.pace(sk), t.wstamp);
    true
}

/// `tcp_tso_should_defer`: wait for more ACKs so a bigger TSO skb can go.
fn tso_should_defer(
    stack: &Stack,
    t: &Tcb,
    skb: &Skb,
    is_last: bool,
    max_segs: u32,
    cwnd_limited: &mut bool,
    rwnd_limited: &mut bool,
) -> bool {
    if matches!(t.ca_state, CaState::Recovery | CaState::Loss) {
        return false;
    }
    let now = stack.now();
    // Only defer when the last transmit was recent.
    if now.saturating_duration_since(t.lsndtime) > Duration::from_millis(1) {
        return false;
    }
    let in_flight = t.packets_in_flight();
    if t.snd_cwnd <= in_flight {
        return false;
    }
    let mss = t.mss_cache;
    let send_win = t.wnd_end().wrapping_sub(skb.cb.tcp.seq);
    let cong_win = (t.snd_cwnd - in_flight) * mss;
    let limit = send_win.min(cong_win);
    if limit >= max_segs * mss {
        return false;
    }
    if !is_last && limit as usize >= skb.len() {
        return false;
    }
    let div = stack.sysctl.tcp_tso_win_divisor().max(0) as u32;
    if let Some(chunk) = t.snd_wnd.min(t.snd_cwnd * mss).checked_div(div) {
        if limit >= chunk {
            return false;
        }
    } else if limit > 3 * mss {
        return false;
    }
    let Some(head) = t.rtx_queue.front() else {
        return false;
    };
    // If the next ACK likely comes later than half an RTT, do not defer.
    let age = now.saturating_duration_since(head.cb.tcp.tx_time);
    if age < Duration::from_micros(u64::from(t.srtt_us >> 4)) {
        return false;
    }
    if cong_win < send_win {
        if cong_win as usize <= skb.len() {
            *cwnd_limited = true;
            return true;
        }
    } else if send_win as usize <= skb.len() {
        *rwnd_limited = true;
        return true;
    }
    if skb.cb.tcp.tcp_flags & tcphdr::FIN != 0 || skb.cb.tcp.eor {
        return false;
    }
    true
}

/// `tcp_mss_split_point`: how much of a TSO skb to send now — full segments up to the
/// window and cwnd quota; a partial last segment only if Nagle allows it.
fn mss_split_point(t: &Tcb, skb: &Skb, is_last: bool, mss: u32, max_segs: u32, nonagle: u8) -> u32 {
    let window = t.wnd_end().wrapping_sub(skb.cb.tcp.seq);
    let max_len = mss * max_segs;
    if max_len <= window && !is_last {
        return max_len;
    }
    let needed = (skb.len() as u32).min(window);
    if max_len <= needed {
        return max_len;
    }
    let partial = needed % mss;
    if nagle_check(partial != 0, t, nonagle) {
        return needed - partial;
    }
    needed
}

/// `tso_fragment`: split the unsent skb at the head of the write queue after `len`
/// bytes; the remainder (with FIN and PSH) becomes the next skb. Payload pages are
/// shared, not copied.
pub fn tso_fragment(t: &mut Tcb, idx: usize, len: u32) -> bool {
    let Some(skb) = t.write_queue.get_mut(idx) else {
        return false;
    };
    let Some(rest) = split_off(skb, len) else {
        return false;
    };
    t.wmem_queued += SKB_TRUESIZE_BASE;
    t.write_queue.insert(idx + 1, rest);
    true
}

/// `tcp_fragment` on the retransmit queue: split the sent skb at `idx` after `len`
/// bytes (as when only its first MSS is marked lost), recounting its segments and the
/// connection's packet counts (`tcp_adjust_pcount`).
pub fn tcp_fragment_rtx(t: &mut Tcb, idx: usize, len: u32, mss: u32) -> bool {
    let Some(skb) = t.rtx_queue.get_mut(idx) else {
        return false;
    };
    let old_pc = u32::from(skb.gso_segs.max(1));
    let Some(mut rest) = split_off(skb, len) else {
        return false;
    };
    let pc1 = tso_segs(skb, mss);
    let pc2 = tso_segs(&rest, mss);
    skb.gso_segs = pc1 as u16;
    rest.gso_segs = pc2 as u16;
    let sacked = skb.cb.tcp.sacked;
    let grow = (pc1 + pc2).saturating_sub(old_pc);
    t.packets_out += grow;
    if sacked & super::input::sacked::LOST != 0 {
        t.lost_out += grow;
    }
    if sacked & super::input::sacked::RETRANS != 0 {
        t.retrans_out += grow;
    }
    t.wmem_queued += SKB_TRUESIZE_BASE;
    t.rtx_queue.insert(idx + 1, rest);
    true
}

/// `tcp_set_skb_tso_segs` + `tcp_adjust_pcount`: recount a retransmit-queue skb at
/// `mss` and move the in-flight counters by the difference.
fn adjust_pcount(t: &mut Tcb, idx: usize, mss: u32) {
    let Some(skb) = t.rtx_queue.get_mut(idx) else {
        return;
    };
    let old = u32::from(skb.gso_segs.max(1));
    let new = tso_segs(skb, mss);
    if old == new {
        return;
    }
    skb.gso_segs = new as u16;
    let sacked = skb.cb.tcp.sacked;
    let fix = |v: &mut u32| *v = (*v + new).saturating_sub(old);
    fix(&mut t.packets_out);
    if sacked & super::input::sacked::LOST != 0 {
        fix(&mut t.lost_out);
    }
    if sacked & super::input::sacked::RETRANS != 0 {
        fix(&mut t.retrans_out);
    }
    if sacked & super::input::sacked::ACKED != 0 {
        fix(&mut t.sacked_out);
    }
}

/// Split `skb` after `len` bytes; the remainder (with FIN and PSH, and the same
/// control block otherwise) is returned. Payload pages are shared, not copied.
fn split_off(skb: &mut Skb, len: u32) -> Option<Skb> {
    let total = skb.len() as u32;
    if len == 0 || len >= total {
        return None;
    }
    let head = skb.headlen() as u32;
    let mut rest = Skb::alloc(0, MAX_TCP_HEADER);
    if len >= head {
        let mut frags = crate::skb::take_frag_scratch();
        skb.split_frags_at((len - head) as usize, &mut frags);
        for f in frags.drain(..) {
            if let Err(f) = rest.push_frag(f) {
                rest.linearize();
                rest.put_slice(&f);
            }
        }
        crate::skb::put_frag_scratch(frags);
    } else {
        // Linear payload (rare: only when frags ran out): copy the tail.
        let mut tail = vec![0u8; (total - len) as usize];
        skb.copy_bits(len as usize, &mut tail);
        skb.trim(len as usize);
        rest.put_slice(&tail);
    }
    let flags = skb.cb.tcp.tcp_flags;
    rest.cb.tcp = skb.cb.tcp;
    rest.cb.tcp.seq = skb.cb.tcp.seq.wrapping_add(len);
    skb.cb.tcp.end_seq = rest.cb.tcp.seq;
    skb.cb.tcp.tcp_flags = flags & !(tcphdr::FIN | tcphdr::PSH);
    rest.cb.tcp.tcp_flags = flags;
    // The traced id stays with the head; the remainder is a new, untraced skb.
    Some(rest)
}

/// `tcp_small_queue_check`: TCP small queues. Stop when more than ~1 ms of the pacing
/// rate (at least two skbs, at most `tcp_limit_output_bytes`) sits below TCP in qdiscs
/// and driver rings; TX completion restarts the flow.
fn small_queue_check(stack: &Stack, sk: &TcpSock, t: &mut Tcb, truesize: u32, len: usize) -> bool {
    let mut limit =
        (2 * u64::from(truesize) + 2 * len as u64).max(pacing_bytes_per_ms(t).min(1 << 40));
    limit = limit.min(stack.sysctl.tcp_limit_output_bytes().max(0) as u64);
    let alloc = sk.wmem.alloc.load(Ordering::Acquire) as u64;
    if alloc > limit {
        if t.rtx_queue.len() <= 1 {
            return false;
        }
        sk.tsq_pending.fetch_or(1, Ordering::AcqRel);
        t.tsq_throttled = true;
        if sk.wmem.alloc.load(Ordering::Acquire) as u64 > limit {
            return true;
        }
    }
    false
}

/// `tcp_write_xmit`. Returns true when data waits but nothing is in flight (the caller
/// arms the zero-window probe timer).
pub fn tcp_write_xmit(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    mss_now: u32,
    nonagle: u8,
    push_one: u8,
) -> bool {
    // tcp_mstamp_refresh: one reading for the burst.
    let now = stack.refresh_now();
    let mut sent_pkts = 0u32;
    if push_one == 0 {
        match super::mtup::tcp_mtu_probe(stack, sk, t) {
            super::mtup::Probe::Wait => return false,
            super::mtup::Probe::Sent => sent_pkts = 1,
            super::mtup::Probe::Skip => {}
        }
    }
    let max_segs = tcp_tso_segs(stack, t, mss_now);
    let mut cwnd_limited = false;
    let mut rwnd_limited = false;
    while !t.write_queue.is_empty() {
        if pacing_check(stack, sk, t) {
            break;
        }
        let skb = t.write_queue.front().expect("head");
        stack
            .trace
            .hit(Stage::TcpWriteXmit, skb.trace_id, skb.len(), now);
        let segs = tso_segs(skb, mss_now);
        let is_last = t.write_queue.len() == 1;
        let mut quota = cwnd_test(t);
        if quota == 0 {
            if push_one == 2 {
                quota = 1;
            } else {
                cwnd_limited = true;
                break;
            }
        }
        let skb = t.write_queue.front().expect("head");
        if !snd_wnd_test(t, skb, mss_now) {
            rwnd_limited = true;
            break;
        }
        if segs == 1 {
            let n = if is_last { nonagle } else { nagle::PUSH };
            if !nagle_test(t, skb, mss_now, n) {
                break;
            }
        } else if push_one == 0
            && tso_should_defer(
                stack,
                t,
                skb,
                is_last,
                max_segs,
                &mut cwnd_limited,
                &mut rwnd_limited,
            )
        {
            break;
        }
        let mut limit = mss_now;
        if segs > 1 {
            limit = mss_split_point(t, skb, is_last, mss_now, quota.min(max_segs), nonagle);
        }
        if skb.len() as u32 > limit && !tso_fragment(t, 0, limit) {
            break;
        }
        let (ts, len, empty) = {
            let h = t.write_queue.front().expect("head");
            (h.truesize(), h.len(), h.cb.tcp.end_seq == h.cb.tcp.seq)
        };
        if small_queue_check(stack, sk, t, ts, len) {
            break;
        }
        if empty {
            break;
        }
        let Some(mut skb) = t.write_queue.pop_front() else {
            break;
        };
        skb.cb.tcp.tx_time = now;
        skb.cb.tcp.tx_order = t.next_tx_order();
        super::rate::skb_sent(t, &mut skb.cb.tcp, now);
        if tcp_transmit_skb(stack, sk, t, &skb, mss_now).is_err() {
            t.write_queue.push_front(skb);
            break;
        }
        let pc = tso_segs(&skb, mss_now);
        // tcp_minshall_update
        if (skb.len() as u32) < pc * mss_now {
            t.snd_sml = skb.cb.tcp.end_seq;
        }
        tcp_event_new_data_sent(stack, sk, t, skb, pc);
        sent_pkts += pc;
        if push_one != 0 {
            break;
        }
    }
    if rwnd_limited {
        t.stats.rwnd_limited += 1;
    }
    cwnd_limited |= t.packets_in_flight() >= t.snd_cwnd;
    if sent_pkts > 0 || cwnd_limited {
        tcp_cwnd_validate(stack, t, cwnd_limited);
    }
    if sent_pkts > 0 {
        if matches!(t.ca_state, CaState::Recovery | CaState::Cwr) {
            t.prr_out += sent_pkts;
        }
        if push_one != 2 {
            timer::tcp_schedule_loss_probe(stack, sk, t);
        }
        return false;
    }
    t.packets_out == 0 && !t.write_queue.is_empty()
}

/// Send the head of the write queue as one segment of its own size (an MTU probe:
/// larger than the MSS, so no segmentation), as `tcp_mtu_probe` transmits `nskb`.
pub(crate) fn send_head_as(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, len: u32) -> bool {
    let Some(mut skb) = t.write_queue.pop_front() else {
        return false;
    };
    skb.cb.tcp.tx_time = stack.now();
    skb.cb.tcp.tx_order = t.next_tx_order();
    super::rate::skb_sent(t, &mut skb.cb.tcp, stack.now());
    if tcp_transmit_skb(stack, sk, t, &skb, len.max(skb.len() as u32)).is_err() {
        t.write_queue.push_front(skb);
        return false;
    }
    tcp_event_new_data_sent(stack, sk, t, skb, 1);
    true
}

/// `tcp_cwnd_validate` (RFC 7661): track the most packets outstanding in each window
/// and whether cwnd limited sending; a window left unused for an RTO shrinks
/// (`tcp_cwnd_application_limited`).
fn tcp_cwnd_validate(stack: &Stack, t: &mut Tcb, cwnd_limited: bool) {
    let now = stack.now();
    if !before(t.snd_una, t.cwnd_usage_seq)
        || cwnd_limited
        || (!t.is_cwnd_limited && t.packets_out > t.max_packets_out)
    {
        t.is_cwnd_limited = cwnd_limited;
        t.max_packets_out = t.packets_out;
        t.cwnd_usage_seq = t.snd_nxt;
    }
    if t.tcp_is_cwnd_limited() {
        // The network is fed fully.
        t.snd_cwnd_used = 0;
        t.snd_cwnd_stamp = now;
        return;
    }
    // The network starves: by the application or the receive window.
    t.snd_cwnd_used = t.snd_cwnd_used.max(t.packets_out);
    if stack.sysctl.tcp_slow_start_after_idle() != 0
        && now.saturating_duration_since(t.snd_cwnd_stamp) >= t.rto
    {
        if t.ca_state == CaState::Open {
            let win_used = t.snd_cwnd_used.max(super::TCP_INIT_CWND);
            if win_used < t.snd_cwnd {
                t.snd_ssthresh = t.snd_ssthresh.max((t.snd_cwnd >> 1) + (t.snd_cwnd >> 2));
                t.snd_cwnd = (t.snd_cwnd + win_used) >> 1;
            }
            t.snd_cwnd_used = 0;
        }
        t.snd_cwnd_stamp = now;
    }
}

/// `tcp_event_new_data_sent`: the skb moves to the retransmit queue; `snd_nxt` and
/// `packets_out` advance; the RTO is armed if this is the first packet in flight.
fn tcp_event_new_data_sent(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    mut skb: Skb,
    pcount: u32,
) {
    let prior = t.packets_out;
    t.snd_nxt = skb.cb.tcp.end_seq;
    skb.gso_segs = pcount as u16;
    t.packets_out += pcount;
    stack
        .tcp
        .mib
        .add(TcpExt::TCPOrigDataSent, u64::from(pcount));
    t.rtx_queue.push_back(skb);
    if prior == 0 || t.pending_timer == Pending::LossProbe {
        timer::tcp_rearm_rto(stack, sk, t);
    }
}

/// Options for a segment (`tcp_established_options` / `tcp_syn_options`).
fn fill_options(stack: &Stack, t: &mut Tcb, repr: &mut TcpRepr, flags: u8) {
    let now = stack.now();
    if flags & tcphdr::SYN != 0 {
        repr.max_seg_size = Some(t.advmss.min(65535) as u16);
        if stack.sysctl.tcp_window_scaling() != 0 && (t.state == TcpState::SynSent || t.wscale_ok) {
            repr.window_scale = Some(t.rcv_wscale);
        }
        if stack.sysctl.tcp_sack() != 0 && (t.state == TcpState::SynSent || t.sack_ok) {
            repr.sack_permitted = true;
        }
        if stack.sysctl.tcp_timestamps() != 0 && (t.state == TcpState::SynSent || t.tstamp_ok) {
            let ecr = if t.state == TcpState::SynSent {
                0
            } else {
                t.ts_recent
            };
            repr.timestamp = Some((tcp_time_stamp(t, now), ecr));
        }
        return;
    }
    if t.tstamp_ok {
        repr.timestamp = Some((tcp_time_stamp(t, now), t.ts_recent));
    }
    if t.sack_ok {
        let room = 40 - if t.tstamp_ok { 12 } else { 0 };
        let max = ((room - 4) / 8).min(4);
        let mut i = 0;
        if let Some(d) = t.dsack.take() {
            repr.sack_ranges[i] = Some(d);
            i += 1;
        }
        for &b in t.sack_blocks.iter() {
            if i >= max {
                break;
            }
            repr.sack_ranges[i] = Some(b);
            i += 1;
        }
    }
}

/// `tcp_transmit_skb`: send a clone of `orig` (which stays queued for retransmission)
/// with a TCP header. `mss` is the segment size for TSO.
pub fn tcp_transmit_skb(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    orig: &Skb,
    mss: u32,
) -> std::io::Result<()> {
    let now = stack.now();
    // Always a clone: data segments stay on the retransmit queue, and the clone of a
    // one-shot control segment costs a refcount.
    let mut skb = orig.clone_shared();
    let cb = orig.cb.tcp;
    let flags = cb.tcp_flags;
    stack
        .trace
        .hit(Stage::TcpTransmitSkb, orig.trace_id, orig.len(), now);
    let payload = skb.len();
    let window = if flags & tcphdr::SYN != 0 {
        t.rcv_wnd.min(65535) as u16
    } else {
        tcp_select_window(stack, t)
    };
    let mut repr = TcpRepr {
        src_port: t.local.port(),
        dst_port: t.remote.port(),
        seq_number: TcpSeqNumber(cb.seq),
        ack_number: (flags & tcphdr::ACK != 0).then_some(TcpSeqNumber(t.rcv_nxt)),
        flags: TcpFlags::from_bits_truncate(u16::from(flags & !tcphdr::ACK)),
        window_len: window,
        urgent_ptr: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_ranges: [None; 4],
        timestamp: None,
        payload_len: payload,
    };
    fill_options(stack, t, &mut repr, flags);
    let hlen = repr.header_len();
    {
        let h = skb.push(hlen);
        let (src, dst) = (*t.local.ip(), *t.remote.ip());
        repr.emit(&mut TcpPacket::new_unchecked(&mut h[..]), &src, &dst, false);
    }
    skb.reset_transport_header();
    // Checksum: offloaded when the route's device can, else in software.
    let (src, dst) = (*t.local.ip(), *t.remote.ip());
    let l4_len = skb.len();
    crate::dev::gso::set_partial_csum(&mut skb, 0, 6, src, dst, l4_len);
    let pcount = tso_segs(orig, mss.max(1));
    if pcount > 1 {
        skb.gso_size = mss as u16;
        skb.gso_segs = pcount as u16;
        skb.gso_type = GsoType::TcpV4;
    }
    let hw_csum = t
        .dst
        .as_ref()
        .is_some_and(|d| d.dev.features().contains(Features::IP_CSUM));
    if !hw_csum && pcount <= 1 {
        crate::dev::gso::skb_checksum_help(&mut skb);
    }
    // EDT: the skb leaves no earlier than the flow's departure time (`tcp_wstamp_ns`),
    // which the fq qdisc enforces; the pacing rate goes where fq can read it.
    let prior_wstamp = t.wstamp;
    t.wstamp = t.wstamp.max(now);
    skb.tstamp = t.wstamp;
    let rate = if t.pacing_rate == 0 {
        u64::MAX
    } else {
        t.pacing_rate
    };
    sk.wmem.pacing.set_rate(rate.min(t.max_pacing_rate));
    // TSQ: charge what goes below TCP until TX completion frees it.
    skb.set_owner(sk.wmem.clone());
    sk.wmem
        .alloc
        .fetch_add(skb.truesize() as usize, Ordering::AcqRel);
    if flags & tcphdr::ACK != 0 {
        tcp_event_ack_sent(stack, sk, t);
    }
    if payload > 0 {
        t.stats.data_segs_out += u64::from(pcount);
        t.stats.bytes_sent += payload as u64;
        // tcp_event_data_sent. Sending into an empty pipe (after idle, or the first
        // data): the congestion control hears CA_EVENT_TX_START before lsndtime moves.
        if t.packets_in_flight() == 0 {
            with_cc(t, now, |cc, ctx| cc.cwnd_event(ctx, CaEvent::TxStart));
        }
        t.lsndtime = now;
        // Data sent within the ATO of received data is a reply; enough of them make
        // the connection interactive (pingpong), whose ACKs then wait to ride on the
        // replies. (Current Linux has no "first reply since the data" condition: the
        // jiffy-based `before(lsndtime, lrcvtime)` kept same-tick replies out and was
        // reverted, 4d8f24eeedc5.)
        if now.saturating_duration_since(t.ack.lrcvtime) < t.ack.ato {
            t.ack.inc_pingpong_cnt();
        }
        pacing_after_send(t, sk.wmem.pacing.status(), prior_wstamp, payload);
    }
    if after(cb.end_seq, t.snd_nxt) || cb.seq == cb.end_seq {
        stack.tcp.snmp.add(Tcp::OutSegs, u64::from(pcount));
    }
    t.stats.segs_out += u64::from(pcount);
    let fl = Flowi4 {
        daddr: Some(dst),
        saddr: Some(src),
        tos: t.ip_opts.tos,
        mark: t.ip_opts.mark,
        oif: None,
    };
    let opts = t.ip_opts.clone();
    let r = ip_queue_xmit(stack, &mut t.dst, &fl, skb, 6, &opts);
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(errno::ENOBUFS) => {
            tcp_enter_cwr(stack, t);
            Err(e)
        }
        Err(e) => {
            t.err_soft = e.raw_os_error().unwrap_or(errno::EHOSTUNREACH);
            Err(e)
        }
    }
}

/// `tcp_event_ack_sent`: an ACK went out, so no delayed ACK is owed.
fn tcp_event_ack_sent(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if t.ack.quick > 0 {
        t.ack.quick -= 1;
    }
    t.ack.pending = 0;
    sk.timers.delack.del();
    let _ = stack;
}

/// `tcp_enter_cwr`: a local congestion signal (the qdisc dropped our packet): reduce
/// cwnd once per window, without retransmitting.
pub fn tcp_enter_cwr(stack: &Stack, t: &mut Tcb) {
    if t.ca_state != CaState::Open && t.ca_state != CaState::Disorder {
        return;
    }
    t.undo_marker = 0;
    // tcp_init_cwnd_reduction: this reduction settles any loss probe in flight.
    t.prior_cwnd = t.snd_cwnd;
    t.high_seq = t.snd_nxt;
    t.tlp_high_seq = 0;
    t.snd_cwnd_cnt = 0;
    let now = stack.now();
    t.snd_ssthresh = with_cc(t, now, |cc, ctx| cc.ssthresh(ctx));
    t.prr_delivered = 0;
    t.prr_out = 0;
    t.ca_state = CaState::Cwr;
    with_cc(t, now, |cc, ctx| cc.set_state(ctx, CaState::Cwr));
}

/// Build and send a segment with no data (SYN, SYN-ACK, FIN-less ACK, RST) from the
/// socket (`tcp_send_ack`, `tcp_send_active_reset`).
fn send_control(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seq: u32, flags: u8) {
    let mut skb = Skb::alloc(0, MAX_TCP_HEADER);
    skb.cb.tcp.seq = seq;
    skb.cb.tcp.end_seq = seq;
    skb.cb.tcp.tcp_flags = flags;
    skb.priority = t.ip_opts.priority;
    let _ = tcp_transmit_skb(stack, sk, t, &skb, 0);
}

/// `tcp_send_ack`: an ACK now.
pub fn tcp_send_ack(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if t.state == TcpState::Close || t.state == TcpState::Listen {
        return;
    }
    let seq = t.snd_nxt;
    send_control(stack, sk, t, seq, tcphdr::ACK);
}

/// `tcp_send_delayed_ack`: schedule an ACK after the ATO (40–200 ms, longer in
/// interactive mode).
pub fn tcp_send_delayed_ack(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let now = stack.now();
    let mut ato = t.ack.ato;
    let max_ato = if t.ack.in_pingpong_mode(super::pingpong_thresh(stack))
        || t.ack.pending & ack::PUSHED != 0
    {
        super::TCP_DELACK_MAX
    } else {
        Duration::from_millis(500).min(super::TCP_DELACK_MAX)
    };
    let max_ato = if t.srtt_us > 0 {
        max_ato.min(Duration::from_micros(u64::from(t.srtt_us >> 3)).max(super::TCP_DELACK_MIN))
    } else {
        max_ato
    };
    ato = ato.min(max_ato).max(super::TCP_DELACK_MIN);
    let mut timeout = now + ato;
    if t.ack.pending & ack::TIMER != 0 {
        // Use the earlier deadline; if it has already passed, ACK now.
        if t.ack.timeout <= now + (ato / 4) {
            tcp_send_ack(stack, sk, t);
            return;
        }
        if t.ack.timeout < timeout {
            timeout = t.ack.timeout;
        }
    }
    t.ack.pending |= ack::SCHED | ack::TIMER;
    t.ack.timeout = timeout;
    stack.timers.mod_timer(&sk.timers.delack, timeout);
}

/// `tcp_connect`: initialise the connection and send the SYN.
pub fn tcp_connect(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let now = stack.now();
    let mtu = t.dst.as_ref().map(|d| d.mtu(now)).unwrap_or(1500);
    t.advmss = mtu
        .saturating_sub(40)
        .min(t.user_mss.unwrap_or(u32::MAX))
        .max(TCP_MIN_MSS);
    tcp_sync_mss(t, mtu);
    t.mss_clamp = t.user_mss.unwrap_or(65535);
    t.ack.rcv_mss = t.advmss.min(TCP_MSS_DEFAULT.max(t.advmss / 2));
    select_initial_window(stack, t, stack.sysctl.tcp_window_scaling() != 0);
    let iss = super::minisocks::secure_seq(stack, t.local, t.remote, now);
    t.tsoffset = super::minisocks::ts_offset(stack, t.local, t.remote);
    t.iss = iss;
    t.snd_una = iss;
    t.snd_nxt = iss;
    t.write_seq = iss;
    t.pushed_seq = iss;
    t.snd_sml = iss;
    t.rcv_nxt = 0;
    t.rcv_wup = 0;
    t.copied_seq = 0;
    t.snd_wnd = 0;
    t.state = TcpState::SynSent;
    t.rto = super::TCP_TIMEOUT_INIT;
    t.retransmits = 0;
    with_cc(t, now, |cc, ctx| cc.init(ctx));
    if t.cc.wants_pacing() {
        sk.wmem.pacing.request_internal();
    }
    let mut syn = Skb::alloc(0, MAX_TCP_HEADER);
    syn.cb.tcp.seq = iss;
    syn.cb.tcp.end_seq = iss.wrapping_add(1);
    syn.cb.tcp.tcp_flags = tcphdr::SYN;
    syn.cb.tcp.tx_time = now;
    t.write_seq = iss.wrapping_add(1);
    let _ = tcp_transmit_skb(stack, sk, t, &syn, 0);
    t.snd_nxt = iss.wrapping_add(1);
    t.packets_out += 1;
    t.retrans_stamp = Some(now);
    t.rtx_queue.push_back(syn);
    timer::tcp_rearm_rto(stack, sk, t);
}

/// Send a SYN-ACK for a request socket (`tcp_make_synack` + `ip_build_and_send_pkt`).
#[allow(clippy::too_many_arguments)]
pub fn send_synack(
    stack: &Stack,
    local: std::net::SocketAddrV4,
    remote: std::net::SocketAddrV4,
    iss: u32,
    rcv_nxt: u32,
    mss: u16,
    wscale: Option<u8>,
    sack: bool,
    ts: Option<(u32, u32)>,
    window: u16,
) {
    let repr = TcpRepr {
        src_port: local.port(),
        dst_port: remote.port(),
        seq_number: TcpSeqNumber(iss),
        ack_number: Some(TcpSeqNumber(rcv_nxt)),
        flags: TcpFlags::SYN,
        window_len: window,
        urgent_ptr: 0,
        max_seg_size: Some(mss),
        window_scale: wscale,
        sack_permitted: sack,
        sack_ranges: [None; 4],
        timestamp: ts,
        payload_len: 0,
    };
    send_raw(stack, local, remote, &repr);
}

/// Send a bare segment not tied to a full socket (SYN-ACKs, RSTs, TIME_WAIT ACKs):
/// `ip_send_unicast_reply`.
pub fn send_raw(
    stack: &Stack,
    local: std::net::SocketAddrV4,
    remote: std::net::SocketAddrV4,
    repr: &TcpRepr,
) {
    let mut skb = Skb::alloc(repr.header_len(), MAX_TCP_HEADER);
    {
        let h = skb.put(repr.header_len());
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut h[..]),
            local.ip(),
            remote.ip(),
            true,
        );
    }
    let Ok(dst) = stack.ipv4.fib.route_output(
        stack,
        &Flowi4 {
            daddr: Some(*remote.ip()),
            saddr: Some(*local.ip()),
            ..Flowi4::default()
        },
    ) else {
        return;
    };
    if repr.flags.contains(TcpFlags::RST) {
        stack.tcp.snmp.inc(Tcp::OutRsts);
    }
    stack.tcp.snmp.inc(Tcp::OutSegs);
    let opts = crate::ipv4::output::IpSockOpts::default();
    crate::ipv4::output::ip_push_header(stack, &dst, &mut skb, *local.ip(), *remote.ip(), 6, &opts);
    let _ = crate::ipv4::output::ip_local_out(stack, &dst, skb);
}

/// `tcp_v4_send_reset`: answer `skb` (data at the TCP header; network header set) with a
/// RST as RFC 9293 § 3.10.7.1 says: if it had an ACK, seq = its ack; else seq 0 and
/// ack = its seq + its length.
pub fn tcp_v4_send_reset(stack: &Stack, skb: &Skb, saddr: Ipv4Addr, daddr: Ipv4Addr) {
    let d = skb.data();
    if d.len() < 20 {
        return;
    }
    let Ok(pkt) = TcpPacket::new_checked(d) else {
        return;
    };
    let fl = pkt.flags();
    if fl.contains(TcpFlags::RST) {
        return;
    }
    if daddr.is_broadcast() || daddr.is_multicast() {
        return;
    }
    let seg_len = pkt.payload_len() as u32
        + u32::from(fl.contains(TcpFlags::SYN))
        + u32::from(fl.contains(TcpFlags::FIN));
    let (seq, ack) = if fl.contains(TcpFlags::ACK) {
        (pkt.ack_number().0, None)
    } else {
        (
            0,
            Some(TcpSeqNumber(pkt.seq_number().0.wrapping_add(seg_len))),
        )
    };
    let repr = TcpRepr {
        src_port: pkt.dst_port(),
        dst_port: pkt.src_port(),
        seq_number: TcpSeqNumber(seq),
        ack_number: ack,
        flags: TcpFlags::RST,
        window_len: 0,
        urgent_ptr: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_ranges: [None; 4],
        timestamp: None,
        payload_len: 0,
    };
    send_raw(
        stack,
        std::net::SocketAddrV4::new(daddr, pkt.dst_port()),
        std::net::SocketAddrV4::new(saddr, pkt.src_port()),
        &repr,
    );
}

/// Answer a segment given from its IP header with a RST (netfilter's `REJECT
/// --reject-with tcp-reset`).
pub fn tcp_v4_send_reset_to(stack: &Stack, ip_skb: &Skb) {
    let d = ip_skb.data();
    if d.len() < 40 {
        return;
    }
    let ihl = usize::from(d[0] & 0x0f) * 4;
    let saddr = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let daddr = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let t = Skb::from_slice(&d[ihl.min(d.len())..], 0);
    tcp_v4_send_reset(stack, &t, saddr, daddr);
}

/// `tcp_send_active_reset`: abort with a RST from the socket.
pub fn tcp_send_active_reset(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let seq = t.snd_nxt;
    send_control(stack, sk, t, seq, tcphdr::RST | tcphdr::ACK);
    stack.tcp.snmp.inc(Tcp::OutRsts);
}

/// `tcp_send_fin`: FIN on the last unsent skb, or a new skb for it.
pub fn tcp_send_fin(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    commit_frag(t);
    match t.write_queue.back_mut() {
        Some(tail) => {
            tail.cb.tcp.tcp_flags |= tcphdr::FIN;
            tail.cb.tcp.end_seq = tail.cb.tcp.end_seq.wrapping_add(1);
        }
        None => {
            let mut skb = Skb::alloc(0, MAX_TCP_HEADER);
            skb.cb.tcp.seq = t.write_seq;
            skb.cb.tcp.end_seq = t.write_seq.wrapping_add(1);
            skb.cb.tcp.tcp_flags = tcphdr::FIN | tcphdr::ACK;
            skb_entail(t, skb);
        }
    }
    t.write_seq = t.write_seq.wrapping_add(1);
    tcp_push_pending_frames_nagle(stack, sk, t, nagle::OFF);
}

/// `shutdown(SHUT_WR)` (`tcp_shutdown`): move to FIN_WAIT1 / LAST_ACK and send FIN.
pub fn tcp_shutdown_send(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let next = match t.state {
        TcpState::Established | TcpState::SynRecv => TcpState::FinWait1,
        TcpState::CloseWait => TcpState::LastAck,
        _ => return,
    };
    t.state = next;
    tcp_send_fin(stack, sk, t);
}

/// `tcp_close`.
pub fn tcp_close(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    t.shutdown = shutdown::RCV | shutdown::SEND;
    match t.state {
        TcpState::Listen => {
            // Reset every connection still waiting for accept.
            t.listen = None;
            t.state = TcpState::Close;
            super::minisocks::unhash(stack, sk, t);
            let pending: Vec<_> = sk.accept_q.lock().drain(..).collect();
            for child in pending {
                child.abort(stack, errno::ECONNRESET, true);
            }
            return;
        }
        TcpState::Close => {
            super::minisocks::unhash(stack, sk, t);
            return;
        }
        TcpState::SynSent => {
            super::minisocks::tcp_done(stack, sk, t);
            return;
        }
        _ => {}
    }
    // Unread data: reset (RFC 2525 § 2.17), as Linux.
    let unread = t.rx_readable() > 0;
    if unread {
        stack.tcp.mib.inc(TcpExt::TCPAbortOnClose);
        tcp_send_active_reset(stack, sk, t);
        super::minisocks::tcp_done(stack, sk, t);
        return;
    }
    if t.linger == Some(Duration::ZERO) {
        stack.tcp.mib.inc(TcpExt::TCPAbortOnData);
        tcp_send_active_reset(stack, sk, t);
        super::minisocks::tcp_done(stack, sk, t);
        return;
    }
    match t.state {
        TcpState::Established | TcpState::SynRecv => {
            t.state = TcpState::FinWait1;
            tcp_send_fin(stack, sk, t);
        }
        TcpState::CloseWait => {
            t.state = TcpState::LastAck;
            tcp_send_fin(stack, sk, t);
        }
        _ => {}
    }
    // Orphaned FIN_WAIT2 lingers for tcp_fin_timeout.
    timer::orphan_timers(stack, sk, t);
}

impl TcpSock {
    /// Abort the connection with `err` (optionally sending RST).
    pub(crate) fn abort(self: &Arc<Self>, stack: &Stack, err: i32, rst: bool) {
        let mut s = self.slock.lock();
        // Abort is rare; take ownership briefly the simple way.
        while s.owned {
            self.owner_cv.wait(&mut s);
        }
        let mut t = self.tcb.lock();
        if rst
            && !matches!(
                t.state,
                TcpState::Close | TcpState::Listen | TcpState::SynSent
            )
        {
            tcp_send_active_reset(stack, self, &mut t);
        }
        t.err = err;
        super::minisocks::tcp_done(stack, self, &mut t);
        drop(t);
        drop(s);
        self.wq.wake_all();
    }
}

/// `tcp_retransmit_skb`: resend the skb at `idx` of the retransmit queue (splitting it
/// to one MSS-multiple that fits the window).
pub fn tcp_retransmit_skb(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    idx: usize,
    segs: u32,
) -> bool {
    // Any retransmission makes an MTU probe in flight inconclusive: its ACK may
    // acknowledge the retransmission instead.
    t.mtup.probe_size = 0;
    let mss = tcp_current_mss(stack, t);
    let now = stack.now();
    let Some(skb) = t.rtx_queue.get(idx) else {
        return false;
    };
    // Already acked in part? (snd_una inside it: trim the front.)
    if before(skb.cb.tcp.seq, t.snd_una) && after(skb.cb.tcp.end_seq, t.snd_una) {
        let cut = t.snd_una.wrapping_sub(skb.cb.tcp.seq) as usize;
        let skb = t.rtx_queue.get_mut(idx).expect("idx");
        trim_head(skb, cut);
    }
    let skb = t.rtx_queue.get(idx).expect("idx");
    // Do not send beyond the peer's window (except a single MSS probe), nor more than
    // `segs` segments: a TSO skb is cut to what the caller's cwnd room allows.
    let seq = skb.cb.tcp.seq;
    let avail = if before(seq, t.wnd_end()) {
        t.wnd_end().wrapping_sub(seq)
    } else if seq == t.snd_una {
        mss
    } else {
        return false;
    };
    let mut len = mss.saturating_mul(segs.max(1));
    if len > avail {
        len = avail / mss * mss;
        if len == 0 {
            len = avail;
        }
    }
    if skb.len() as u32 > len {
        tcp_fragment_rtx(t, idx, len, mss);
    }
    // The MSS may have changed since it was sent (a path MTU change, an MTU probe
    // resent at the MSS): count it as the segments it is now (tcp_adjust_pcount).
    adjust_pcount(t, idx, mss);
    let skb = t.rtx_queue.get(idx).expect("idx");
    let was_retrans = skb.cb.tcp.sacked & super::input::sacked::RETRANS != 0;
    let pc = tso_segs(skb, mss);
    let trace = skb.trace_id;
    let skb_clone = skb.clone_shared();
    if tcp_transmit_skb(stack, sk, t, &skb_clone, mss).is_err() {
        return false;
    }
    stack
        .trace
        .hit(Stage::TcpTransmitSkb, trace, skb_clone.len(), now);
    let order = t.next_tx_order();
    let skb = t.rtx_queue.get_mut(idx).expect("idx");
    skb.cb.tcp.sacked |= super::input::sacked::RETRANS | super::input::sacked::EVER_RETRANS;
    skb.cb.tcp.tx_order = order;
    // __tcp_transmit_skb restamps the skb before cloning, so retrans_stamp — taken
    // from the skb below — is the time of the first retransmission, and
    // TCP_USER_TIMEOUT / tcp_retries2 count from there (as Linux).
    skb.cb.tcp.tx_time = now;
    let mut cb = skb.cb.tcp;
    super::rate::skb_sent(t, &mut cb, now);
    if let Some(skb) = t.rtx_queue.get_mut(idx) {
        skb.cb.tcp = cb;
    }
    if !was_retrans {
        t.retrans_out += pc;
    }
    t.stats.total_retrans += pc;
    t.stats.bytes_retrans += skb_clone.len() as u64;
    stack.tcp.snmp.add(Tcp::RetransSegs, u64::from(pc));
    if t.retrans_stamp.is_none() {
        t.retrans_stamp = Some(now);
    }
    if t.undo_retrans < 0 {
        t.undo_retrans = 0;
    }
    t.undo_retrans += pc as i32;
    true
}

/// Remove `n` acknowledged bytes from the front of an skb's payload (`tcp_trim_head`).
pub fn trim_head(skb: &mut Skb, n: usize) {
    let head = skb.headlen();
    if n <= head {
        skb.pull(n);
    } else {
        skb.pull(head);
        let mut rest = crate::skb::take_frag_scratch();
        skb.split_frags_at(n - head, &mut rest);
        let _ = skb.take_frags().count();
        for f in rest.drain(..) {
            let _ = skb.push_frag(f);
        }
        crate::skb::put_frag_scratch(rest);
    }
    skb.cb.tcp.seq = skb.cb.tcp.seq.wrapping_add(n as u32);
}

/// `tcp_send_probe0` / `tcp_write_wakeup`: probe a zero window with one byte of new
/// data if any fits, else a segment with an old sequence number.
pub fn tcp_write_wakeup(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, mib: TcpExt) -> bool {
    if t.state == TcpState::Close {
        return false;
    }
    commit_frag(t);
    if let Some((seq, len)) = t.write_queue.front().map(|s| (s.cb.tcp.seq, s.len())) {
        if before(seq, t.wnd_end()) {
            let mss = tcp_current_mss(stack, t);
            let seg_size = t.wnd_end().wrapping_sub(seq).min(mss);
            if (len as u32) > seg_size {
                tso_fragment(t, 0, seg_size);
            }
            let now = stack.now();
            let Some(mut skb) = t.write_queue.pop_front() else {
                return false;
            };
            skb.cb.tcp.tcp_flags |= tcphdr::PSH;
            skb.cb.tcp.tx_time = now;
            skb.cb.tcp.tx_order = t.next_tx_order();
            super::rate::skb_sent(t, &mut skb.cb.tcp, now);
            if tcp_transmit_skb(stack, sk, t, &skb, mss).is_ok() {
                let pc = tso_segs(&skb, mss);
                tcp_event_new_data_sent(stack, sk, t, skb, pc);
                return true;
            }
            t.write_queue.push_front(skb);
            return false;
        }
    }
    // Window probe: an ACK with an old sequence (snd_una - 1) elicits the peer's ACK.
    let seq = t.snd_una.wrapping_sub(1);
    send_control(stack, sk, t, seq, tcphdr::ACK);
    // tcp_xmit_probe_skb counts the caller's MIB: TCPWinProbe or TCPKeepAlive.
    stack.tcp.mib.inc(mib);
    true
}

/// Whether `skb` is the write queue's head.
pub fn write_queue_has_data(t: &Tcb) -> bool {
    !t.write_queue.is_empty() || t.frag_pending > 0
}

#[cfg(test)]
mod tests;
