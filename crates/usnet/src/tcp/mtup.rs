//! Packetization-layer path MTU discovery (RFC 4821), as Linux's `tcp_mtu_probing`:
//! for paths that drop large packets without an ICMP "fragmentation needed" (black
//! holes), TCP finds the MTU itself.
//!
//! * `net.ipv4.tcp_mtu_probing` = 0: off; 1: off until a black hole is suspected (the
//!   RTO fired `tcp_retries1` times: [`tcp_mtu_probing`]), then on; 2: always on.
//! * While on, the MSS is at most what `search_low` allows (it starts at
//!   `tcp_base_mss`, 1024), and [`tcp_mtu_probe`] now and then sends one segment of the
//!   midpoint size between `search_low` and `search_high` (the route's MTU), with enough
//!   data behind it that its loss shows by SACK rather than a timeout.
//! * The probe ACKed ([`probe_success`]): `search_low` rises to it, the MSS with it, and
//!   cwnd is scaled to keep the same bytes in flight. Lost ([`probe_failed`], from the
//!   recovery state machine while still in Open/Disorder): `search_high` drops below
//!   it, cwnd is not reduced, and what no longer fits the MSS is resent
//!   (`tcp_simple_retransmit`).
//! * Probing stops when the interval is under `tcp_probe_threshold` (8 bytes), and
//!   starts over after `tcp_probe_interval` (600 s).

use std::sync::Arc;
use std::time::Duration;

use super::input::sacked;
use super::output::{self, tcp_sync_mss};
use super::recovery::xmit_retransmit_queue;
use super::seq::after;
use super::{CaState, Tcb, TcpExt, TcpSock};
use crate::stack::Stack;
use crate::time::Instant;

/// IPv4 + TCP headers without options (`tcp_mss_to_mtu`'s addition).
const HDRS: u32 = 40;

/// Per-connection probing state (`icsk_mtup` + `tp->mtu_probe`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mtup {
    /// Probing on.
    pub enabled: bool,
    /// Smallest MTU known not to work (exclusive bound from above, as an MTU).
    pub search_high: u32,
    /// Largest MTU known to work.
    pub search_low: u32,
    /// MTU of the probe in flight (0: none).
    pub probe_size: u32,
    /// When probing last started over.
    pub probe_timestamp: Instant,
    /// The probe's sequence range.
    pub probe_seq_start: u32,
    /// End of the probe's sequence range.
    pub probe_seq_end: u32,
}

/// `tcp_mtu_to_mss`: the MSS for `mtu` (headers, the peer's clamp and the timestamp
/// option off).
pub fn mtu_to_mss(t: &Tcb, mtu: u32) -> u32 {
    let mut mss = mtu.saturating_sub(HDRS).max(48).min(t.mss_clamp);
    if let Some(u) = t.user_mss {
        mss = mss.min(u);
    }
    let ts = if t.tstamp_ok { 12 } else { 0 };
    mss.saturating_sub(ts).max(48)
}

/// `tcp_mss_to_mtu`.
pub fn mss_to_mtu(t: &Tcb, mss: u32) -> u32 {
    mss + HDRS + if t.tstamp_ok { 12 } else { 0 }
}

/// `tcp_mtup_init`, at connection set-up.
pub fn tcp_mtup_init(stack: &Stack, t: &mut Tcb) {
    let base = stack.sysctl.tcp_base_mss().max(48) as u32;
    t.mtup = Mtup {
        enabled: stack.sysctl.tcp_mtu_probing() > 1,
        search_high: t.mss_clamp + HDRS,
        search_low: base + HDRS,
        probe_size: 0,
        probe_timestamp: stack.now(),
        probe_seq_start: 0,
        probe_seq_end: 0,
    };
}

/// `tcp_mtu_probing` (RTO black-hole detection): turn probing on, or — already on —
/// halve the floor towards `tcp_base_mss`.
pub fn tcp_mtu_probing(stack: &Stack, t: &mut Tcb) {
    if stack.sysctl.tcp_mtu_probing() == 0 {
        return;
    }
    if !t.mtup.enabled {
        t.mtup.enabled = true;
        t.mtup.probe_timestamp = stack.now();
    } else {
        let base = stack.sysctl.tcp_base_mss().max(48) as u32;
        let floor = stack.sysctl.tcp_mtu_probe_floor().max(48) as u32;
        let mss = (mtu_to_mss(t, t.mtup.search_low) >> 1).min(base).max(floor);
        t.mtup.search_low = mss_to_mtu(t, mss);
    }
    let pmtu = t.pmtu_cookie;
    tcp_sync_mss(t, pmtu);
}

/// What [`tcp_mtu_probe`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Not now: send as usual.
    Skip,
    /// Wait (for cwnd room or window) before sending anything.
    Wait,
    /// A probe went out.
    Sent,
}

/// `tcp_mtu_check_reprobe`: after `tcp_probe_interval`, search again from the route's
/// MTU.
fn check_reprobe(stack: &Stack, t: &mut Tcb) {
    let interval = Duration::from_secs(stack.sysctl.tcp_probe_interval().max(1) as u64);
    let now = stack.now();
    if now.saturating_duration_since(t.mtup.probe_timestamp) >= interval {
        t.mtup.search_high = t.mss_clamp.min(t.pmtu_cookie.saturating_sub(HDRS)) + HDRS;
        t.mtup.probe_timestamp = now;
    }
}

/// `tcp_mtu_probe`: send one segment of the midpoint size if the time is right —
/// probing on, no probe in flight, Open state, cwnd of at least 11, no SACK blocks to
/// report, and data enough behind the probe to detect its loss by SACK.
pub fn tcp_mtu_probe(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) -> Probe {
    if !t.mtup.enabled
        || t.mtup.probe_size != 0
        || t.ca_state != CaState::Open
        || t.snd_cwnd < 11
        || !t.sack_blocks.is_empty()
        || t.dsack.is_some()
    {
        return Probe::Skip;
    }
    let mss_now = output::tcp_current_mss(stack, t);
    let probe_size = mtu_to_mss(t, (t.mtup.search_high + t.mtup.search_low) >> 1);
    let size_needed = probe_size + (t.reordering + 1) * t.mss_cache;
    let interval = t.mtup.search_high.saturating_sub(t.mtup.search_low);
    if probe_size > mtu_to_mss(t, t.mtup.search_high)
        || interval < stack.sysctl.tcp_probe_threshold().max(0) as u32
        || probe_size <= mss_now
    {
        check_reprobe(stack, t);
        return Probe::Skip;
    }
    // Enough data queued, and window for it?
    if t.write_seq.wrapping_sub(t.snd_nxt) < size_needed || t.snd_wnd < size_needed {
        return Probe::Skip;
    }
    if after(t.snd_nxt.wrapping_add(size_needed), t.wnd_end()) {
        return Probe::Wait;
    }
    // Room for the probe and one more in cwnd (none in flight: do not stall).
    if t.packets_in_flight() + 2 > t.snd_cwnd {
        return if t.packets_in_flight() == 0 {
            Probe::Skip
        } else {
            Probe::Wait
        };
    }
    // The probe is cut from the head of the send queue (Linux copies it from several
    // skbs; here the head must hold it, which TSO-sized skbs do).
    let head_len = t.write_queue.front().map_or(0, |s| s.len() as u32);
    if head_len < probe_size {
        return Probe::Skip;
    }
    if head_len > probe_size && !output::tso_fragment(t, 0, probe_size) {
        return Probe::Skip;
    }
    if !output::send_head_as(stack, sk, t, probe_size) {
        return Probe::Skip;
    }
    t.snd_cwnd -= 1;
    let Some(probe) = t.rtx_queue.back() else {
        return Probe::Sent;
    };
    t.mtup.probe_size = mss_to_mtu(t, probe.len() as u32);
    t.mtup.probe_seq_start = probe.cb.tcp.seq;
    t.mtup.probe_seq_end = probe.cb.tcp.end_seq;
    Probe::Sent
}

/// `tcp_mtup_probe_success`: the probe's size works; raise the floor and the MSS, and
/// keep the bytes in flight by scaling cwnd.
pub fn probe_success(stack: &Stack, t: &mut Tcb) {
    let old_mtu = mss_to_mtu(t, t.mss_cache);
    let probe = t.mtup.probe_size.max(1);
    t.prior_ssthresh = t.snd_ssthresh;
    t.snd_cwnd = ((u64::from(t.snd_cwnd) * u64::from(old_mtu) / u64::from(probe)) as u32).max(1);
    t.snd_cwnd_cnt = 0;
    t.snd_cwnd_stamp = stack.now();
    t.mtup.search_low = t.mtup.probe_size;
    t.mtup.probe_size = 0;
    let pmtu = t.pmtu_cookie;
    tcp_sync_mss(t, pmtu);
    stack.tcp.mib.inc(TcpExt::TCPMTUPSuccess);
}

/// `tcp_mtup_probe_failed`: nothing from the probe's size up works.
pub fn probe_failed(stack: &Stack, t: &mut Tcb) {
    t.mtup.search_high = t.mtup.probe_size.saturating_sub(1);
    t.mtup.probe_size = 0;
    stack.tcp.mib.inc(TcpExt::TCPMTUPFail);
}

/// The recovery state machine saw a loss: if it is the probe, while still in
/// Open/Disorder, handle it as a failed probe rather than congestion (cwnd restored,
/// the oversized segment resent at the MSS). Returns whether it was.
pub fn lost_probe(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) -> bool {
    if !matches!(t.ca_state, CaState::Open | CaState::Disorder)
        || t.mtup.probe_size == 0
        || t.snd_una != t.mtup.probe_seq_start
    {
        return false;
    }
    probe_failed(stack, t);
    t.snd_cwnd += 1;
    // (simple_retransmit resends it; the probe is already accounted for.)
    simple_retransmit(stack, sk, t);
    true
}

/// `tcp_simple_retransmit`: every unacknowledged segment longer than the MSS is lost;
/// resend them (cut to the MSS).
pub fn simple_retransmit(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let mss = output::tcp_current_mss(stack, t);
    for skb in t.rtx_queue.iter_mut() {
        // tcp_skb_seglen: the size its segments were sent at.
        let seglen = (skb.len() as u32).div_ceil(u32::from(skb.gso_segs.max(1)));
        if seglen > mss && skb.cb.tcp.sacked & sacked::ACKED == 0 {
            skb.cb.tcp.sacked |= sacked::LOST;
        }
    }
    t.lost_out = t
        .rtx_queue
        .iter()
        .filter(|s| s.cb.tcp.sacked & sacked::LOST != 0)
        .map(|s| u32::from(s.gso_segs.max(1)))
        .sum();
    xmit_retransmit_queue(stack, sk, t);
}
