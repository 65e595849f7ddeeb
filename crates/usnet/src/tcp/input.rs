//! TCP input (Linux's `net/ipv4/tcp_ipv4.c` `tcp_v4_rcv` and `tcp_input.c`).
//!
//! * [`tcp_v4_rcv`]: checksum, socket lookup (established, TIME_WAIT, listener), then the
//!   socket — or its backlog when an application holds it.
//! * [`tcp_v4_do_rcv`] → `tcp_rcv_state_process`: the RFC 9293 state machine with RFC
//!   5961's checks (challenge ACKs for in-window RST and SYN), PAWS (RFC 7323).
//! * `tcp_ack`: `snd_una` and window updates, freeing acknowledged skbs, RTT samples
//!   (RFC 6298, Karn's rule), congestion control, fast retransmit with NewReno (RFC 6582)
//!   and PRR (RFC 6937) cwnd reduction, undo of spurious reductions.
//! * The receiving half (`input/data.rs`): `tcp_data_queue` — in-order data to the receive
//!   queue, out-of-order data to a bounded queue with SACK blocks, duplicates answered
//!   with DSACK, FIN processing — and delayed ACKs as Linux: ACK at once every second
//!   full segment, in quick-ack mode (connection start, after reordering) and on
//!   out-of-order data; otherwise after the ATO (40 ms to 200 ms).
//! * [`super::recvmsg::tcp_recvmsg`]: copy to the application, advance `copied_seq`, open the window and
//!   ACK when reading freed a lot of space.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use usnet_wire::{TcpFlags, TcpPacket, TcpRepr};

mod data;
mod parse;

use super::cong::{with_cc, AckSample};
use super::output::{self, tcphdr};
use super::rate::RateSample;
use super::recovery;
use super::seq::{after, before};
use super::timer::{self, Pending};
use super::{
    ack, shutdown, CaState, Tcb, Tcp, TcpExt, TcpSock, TcpState, TCP_ATO_MIN, TCP_MAX_QUICKACKS,
    TCP_MSS_DEFAULT, TCP_RTO_MAX, TCP_RTO_MIN,
};
use crate::ipv4::icmp::{err_convert, IcmpError};
use crate::skb::Skb;
use crate::sock::errno;
use crate::time::Instant;
use crate::trace::Stage;
use crate::Stack;
use parse::parse;

pub use data::enter_quickack_mode;
pub(crate) use data::tcp_initialize_rcv_mss;
use data::{ack_snd_check, dsack_set, rcv_rtt_measure_ts, tcp_data_queue};

/// SACK scoreboard bits in `cb.tcp.sacked` (Linux's `TCPCB_*`).
pub mod sacked {
    /// SACKed by the peer.
    pub const ACKED: u8 = 0x01;
    /// Retransmitted, not yet acknowledged.
    pub const RETRANS: u8 = 0x02;
    /// Marked lost.
    pub const LOST: u8 = 0x04;
    /// Was retransmitted at some point.
    pub const EVER_RETRANS: u8 = 0x80;
}

/// What an ACK did (Linux's `FLAG_*`).
pub(crate) mod flag {
    pub const DATA: u32 = 0x01;
    pub const WIN_UPDATE: u32 = 0x02;
    pub const DATA_ACKED: u32 = 0x04;
    pub const RETRANS_DATA_ACKED: u32 = 0x08;
    pub const SYN_ACKED: u32 = 0x10;
    pub const DATA_SACKED: u32 = 0x20;
    pub const SND_UNA_ADVANCED: u32 = 0x400;
    pub const ACKED: u32 = DATA_ACKED | SYN_ACKED;
    pub const NOT_DUP: u32 = DATA | WIN_UPDATE | ACKED;
}

/// A parsed segment (what Linux keeps in `TCP_SKB_CB` and `tp->rx_opt` for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// Sequence number.
    pub seq: u32,
    /// seq + payload + SYN + FIN.
    pub end_seq: u32,
    /// Acknowledgment number (valid with ACK).
    pub ack_seq: u32,
    /// Flags.
    pub flags: u8,
    /// Raw window field.
    pub window: u16,
    /// Payload length.
    pub len: u32,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_perm: bool,
    /// Timestamps option.
    pub ts: Option<(u32, u32)>,
    /// SACK blocks.
    pub sacks: [Option<(u32, u32)>; 4],
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
}

impl Seg {
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// `tcp_v4_rcv`: `skb.data()` is the TCP header; the network header is set.
pub fn tcp_v4_rcv(stack: &Stack, mut skb: Skb) {
    let now = stack.now();
    stack
        .trace
        .hit(Stage::TcpV4Rcv, skb.trace_id, skb.len(), now);
    let snmp = &stack.tcp.snmp;
    snmp.inc(Tcp::InSegs);
    let (saddr, daddr) = {
        let nh = skb.network_header();
        if nh.len() < 20 {
            return;
        }
        (
            Ipv4Addr::new(nh[12], nh[13], nh[14], nh[15]),
            Ipv4Addr::new(nh[16], nh[17], nh[18], nh[19]),
        )
    };
    if !skb.may_pull(20) {
        snmp.inc(Tcp::InErrs);
        return;
    }
    let doff = usize::from(skb.data()[12] >> 4) * 4;
    if doff < 20 || !skb.may_pull(doff) {
        snmp.inc(Tcp::InErrs);
        return;
    }
    if !skb.ip_summed.is_verified() {
        let mut acc = usnet_wire::checksum::Accumulator::with_initial(
            usnet_wire::checksum::pseudo_header_v4(&saddr, &daddr, 6, skb.len() as u32),
        );
        for c in skb.chunks() {
            acc.add(c);
        }
        if acc.finish() != 0 {
            snmp.inc(Tcp::InCsumErrors);
            snmp.inc(Tcp::InErrs);
            return;
        }
    }
    let Some((seg, _)) = parse(&skb, saddr, daddr) else {
        snmp.inc(Tcp::InErrs);
        return;
    };
    skb.cb.tcp.seq = seg.seq;
    skb.cb.tcp.end_seq = seg.end_seq;
    skb.cb.tcp.tcp_flags = seg.flags;
    skb.cb.tcp.tx_time = now;
    // Established (or connecting) socket?
    let sk = stack.tcp.ehash.read().get(&(seg.dst, seg.src)).cloned();
    if let Some(sk) = sk {
        sk.rcv_or_backlog(stack, skb);
        return;
    }
    // TIME_WAIT?
    if stack.tcp.tw.contains(seg.dst, seg.src) {
        super::minisocks::tcp_timewait_state_process(stack, skb, &seg);
        return;
    }
    // A listener?
    if let Some(l) = lookup_listener(stack, seg.dst, seg.src) {
        l.rcv_or_backlog(stack, skb);
        return;
    }
    // Nobody: RST (RFC 9293 § 3.10.7.1).
    output::tcp_v4_send_reset(stack, &skb, saddr, daddr);
}

/// The ACK completing a handshake, processed on the new child socket.
pub(crate) fn tcp_v4_do_rcv_child(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    seg: &Seg,
    skb: Skb,
) {
    rcv_state_process(stack, sk, t, seg, skb);
    sk.wq.wake_all();
}

pub(crate) fn lookup_listener(
    stack: &Stack,
    local: SocketAddrV4,
    remote: SocketAddrV4,
) -> Option<Arc<TcpSock>> {
    let l = stack.tcp.lhash.read();
    let v = l.get(&local.port())?;
    // The most specific address wins; among an SO_REUSEPORT group on it, the
    // connection's addresses pick one (reuseport_select_sock), so every segment of a
    // connection finds the same listener.
    let pick = |want: &dyn Fn(&Ipv4Addr) -> bool| -> Option<Arc<TcpSock>> {
        let mut group = v.iter().filter(|e| want(&e.ip));
        let first = group.next()?;
        if !first.reuseport {
            return Some(first.sk.clone());
        }
        let members: Vec<&super::ListenEntry> = std::iter::once(first)
            .chain(group.filter(|e| e.reuseport))
            .collect();
        let h = reuseport_hash(local, remote);
        Some(
            members[((u64::from(h) * members.len() as u64) >> 32) as usize]
                .sk
                .clone(),
        )
    };
    pick(&|ip| *ip == *local.ip()).or_else(|| pick(&|ip| ip.is_unspecified()))
}

/// A hash of a connection's addresses for SO_REUSEPORT selection (as `inet_ehashfn`
/// feeds `reciprocal_scale`): FNV-1a over the four values, then a final mix.
fn reuseport_hash(local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in local
        .ip()
        .octets()
        .into_iter()
        .chain(local.port().to_be_bytes())
        .chain(remote.ip().octets())
        .chain(remote.port().to_be_bytes())
    {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^ (h >> 15)
}

/// The established (or connecting) socket a segment — not a SYN or RST — belongs
/// to, if there is one now (for segments that waited on a listener's backlog).
pub(crate) fn established_for(stack: &Stack, skb: &Skb) -> Option<Arc<TcpSock>> {
    let nh = skb.network_header();
    let th = skb.data();
    if nh.len() < 20 || th.len() < 14 {
        return None;
    }
    if th[13] & (tcphdr::SYN | tcphdr::RST) != 0 {
        return None;
    }
    let src = SocketAddrV4::new(
        Ipv4Addr::new(nh[12], nh[13], nh[14], nh[15]),
        u16::from_be_bytes([th[0], th[1]]),
    );
    let dst = SocketAddrV4::new(
        Ipv4Addr::new(nh[16], nh[17], nh[18], nh[19]),
        u16::from_be_bytes([th[2], th[3]]),
    );
    stack.tcp.ehash.read().get(&(dst, src)).cloned()
}

/// `tcp_v4_do_rcv`: a segment for this socket, with the control block held.
pub fn tcp_v4_do_rcv(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, skb: Skb) {
    let (saddr, daddr) = {
        let nh = skb.network_header();
        (
            Ipv4Addr::new(nh[12], nh[13], nh[14], nh[15]),
            Ipv4Addr::new(nh[16], nh[17], nh[18], nh[19]),
        )
    };
    let Some((seg, hlen)) = parse(&skb, saddr, daddr) else {
        return;
    };
    let mut skb = skb;
    skb.pull(hlen);
    t.stats.segs_in += 1;
    if seg.len > 0 {
        t.stats.data_segs_in += 1;
    }
    let before = (t.state, t.err, t.shutdown);
    match t.state {
        TcpState::Listen => super::minisocks::tcp_v4_conn_request(stack, sk, t, &seg, skb),
        TcpState::SynSent => rcv_synsent(stack, sk, t, &seg, skb),
        TcpState::Close => output::tcp_v4_send_reset(stack, &with_header(&seg), saddr, daddr),
        _ => rcv_state_process(stack, sk, t, &seg, skb),
    }
    // sk_data_ready / sk_state_change: data, a FIN or RST, or a new state wake the
    // socket's waiters. A pure ACK does not: the room it frees wakes writers through
    // tcp_check_space, once there is enough of it (each ACK woke a blocked writer).
    // Data wakes readers only once SO_RCVLOWAT bytes can be read (tcp_data_ready).
    if (seg.len > 0 && t.epollin_ready(t.rcvlowat))
        || seg.flags & (tcphdr::SYN | tcphdr::FIN | tcphdr::RST) != 0
        || before != (t.state, t.err, t.shutdown)
    {
        sk.wq.wake_all();
    }
}

/// A minimal skb holding just a TCP header for `seg` (to answer it with a RST).
fn with_header(seg: &Seg) -> Skb {
    let repr = TcpRepr {
        src_port: seg.src.port(),
        dst_port: seg.dst.port(),
        seq_number: usnet_wire::TcpSeqNumber(seg.seq),
        ack_number: (seg.flags & tcphdr::ACK != 0).then_some(usnet_wire::TcpSeqNumber(seg.ack_seq)),
        flags: TcpFlags::from_bits_truncate(u16::from(seg.flags & !tcphdr::ACK)),
        window_len: 0,
        urgent_ptr: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_ranges: [None; 4],
        timestamp: None,
        payload_len: 0,
    };
    let mut skb = Skb::alloc(repr.header_len() + seg.len as usize, 64);
    let h = skb.put(repr.header_len());
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut h[..]),
        seg.src.ip(),
        seg.dst.ip(),
        false,
    );
    skb.put(seg.len as usize);
    skb
}

/// Apply the options of a SYN or SYN-ACK (`tcp_parse_options` at handshake).
fn apply_syn_options(stack: &Stack, t: &mut Tcb, seg: &Seg) {
    let mss = u32::from(seg.mss.unwrap_or(TCP_MSS_DEFAULT as u16)).max(super::TCP_MIN_MSS - 40);
    t.mss_clamp = t.user_mss.map_or(mss, |u| u.min(mss));
    t.wscale_ok = seg.wscale.is_some() && stack.sysctl.tcp_window_scaling() != 0;
    if t.wscale_ok {
        t.snd_wscale = seg.wscale.unwrap_or(0).min(super::TCP_MAX_WSCALE);
    } else {
        t.snd_wscale = 0;
        t.rcv_wscale = 0;
    }
    t.sack_ok = seg.sack_perm && stack.sysctl.tcp_sack() != 0;
    t.tstamp_ok = seg.ts.is_some() && stack.sysctl.tcp_timestamps() != 0;
    if let (true, Some((val, _))) = (t.tstamp_ok, seg.ts) {
        t.ts_recent = val;
        t.ts_recent_stamp = stack.now();
    }
}

/// `tcp_rcv_synsent_state_process`.
fn rcv_synsent(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg, skb: Skb) {
    let now = stack.now();
    if seg.has(tcphdr::ACK) {
        // RFC 9293: an unacceptable ACK gets a RST (unless it is one).
        if !after(seg.ack_seq, t.iss) || after(seg.ack_seq, t.snd_nxt) {
            if !seg.has(tcphdr::RST) {
                output::tcp_v4_send_reset(stack, &with_header(seg), *seg.src.ip(), *seg.dst.ip());
            }
            return;
        }
        if seg.has(tcphdr::RST) {
            // Connection refused.
            t.err = errno::ECONNREFUSED;
            // tcp_done counts AttemptFails (leaving SYN_SENT for CLOSE).
            super::minisocks::tcp_done(stack, sk, t);
            return;
        }
        if !seg.has(tcphdr::SYN) {
            return;
        }
        // SYN-ACK: the connection is established.
        apply_syn_options(stack, t, seg);
        t.irs = seg.seq;
        t.rcv_nxt = seg.seq.wrapping_add(1);
        t.rcv_wup = t.rcv_nxt;
        t.copied_seq = t.rcv_nxt;
        t.snd_wl1 = seg.seq;
        t.snd_wnd = u32::from(seg.window); // never scaled on a SYN
        t.max_window = t.snd_wnd;
        if !t.wscale_ok {
            // We offered scaling, the peer did not: no scaling either way.
            t.rcv_wnd = t.rcv_wnd.min(65535);
            t.window_clamp = t.window_clamp.min(65535);
        }
        // The SYN's RTT (Karn: only if it was not retransmitted) sets the first RTO.
        let (_, rtt, _, _, _) =
            tcp_clean_rtx_queue_to(stack, sk, t, seg.ack_seq, now, &mut RateSample::new(0));
        if let Some(rtt) = rtt {
            tcp_rtt_estimator(t, rtt.max(1) as u32);
            tcp_set_rto(t);
        }
        // tcp_snd_una_update: the SYN counts in bytes_acked, as Linux's tcpi_bytes_acked.
        t.stats.bytes_acked += u64::from(seg.ack_seq.wrapping_sub(t.snd_una));
        t.snd_una = seg.ack_seq;
        t.retrans_stamp = None;
        finish_connect(stack, sk, t);
        // First data ACK: ACK the SYN-ACK now (Linux delays it only with defer-accept
        // tricks or quick data).
        enter_quickack_mode(t, TCP_MAX_QUICKACKS);
        output::tcp_send_ack(stack, sk, t);
        drop(skb);
        return;
    }
    if seg.has(tcphdr::RST) {
        return;
    }
    if seg.has(tcphdr::SYN) {
        // Simultaneous open: SYN_RECV, send SYN-ACK.
        apply_syn_options(stack, t, seg);
        t.irs = seg.seq;
        t.rcv_nxt = seg.seq.wrapping_add(1);
        t.rcv_wup = t.rcv_nxt;
        t.copied_seq = t.rcv_nxt;
        t.snd_wnd = u32::from(seg.window);
        t.snd_wl1 = seg.seq;
        t.max_window = t.snd_wnd;
        t.state = TcpState::SynRecv;
        let mut synack = Skb::alloc(0, super::MAX_TCP_HEADER);
        synack.cb.tcp.seq = t.iss;
        synack.cb.tcp.end_seq = t.iss.wrapping_add(1);
        synack.cb.tcp.tcp_flags = tcphdr::SYN | tcphdr::ACK;
        let _ = output::tcp_transmit_skb(stack, sk, t, &synack, 0);
    }
}

/// Common completion of an active or passive open (`tcp_finish_connect` +
/// `tcp_init_transfer`).
pub(crate) fn finish_connect(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let now = stack.now();
    t.state = TcpState::Established;
    t.lsndtime = now;
    t.rcv_tstamp = now;
    let mtu = t.dst.as_ref().map(|d| d.mtu(now)).unwrap_or(1500);
    super::mtup::tcp_mtup_init(stack, t);
    output::tcp_sync_mss(t, mtu);
    tcp_initialize_rcv_mss(t);
    t.snd_cwnd = super::TCP_INIT_CWND;
    output::tcp_update_pacing_rate(stack, t);
    t.snd_cwnd_stamp = now;
    init_buffer_space(stack, t);
    // DRS starts from an initial window's worth (tcp_init_buffer_space): a reader
    // that takes in more than that per RTT grows the buffer from the first RTT on.
    let space = t
        .rcv_ssthresh
        .min(t.rcv_wnd)
        .min(super::TCP_INIT_CWND * t.advmss);
    t.rcvq_space = (space, t.copied_seq, now);
    with_cc(t, now, |cc, ctx| cc.init(ctx));
    if t.cc.wants_pacing() {
        sk.wmem.pacing.request_internal();
    }
    timer::reset_keepalive(stack, sk, t);
    super::timer::tcp_rearm_rto(stack, sk, t);
    sk.wq.wake_all();
}

/// `tcp_init_buffer_space`: send buffer from the congestion window, window clamp from
/// the receive buffer.
fn init_buffer_space(stack: &Stack, t: &mut Tcb) {
    if !t.sndbuf_locked {
        sndbuf_expand(stack, t);
    }
    let maxwin = output::win_from_space(stack, t.rcvbuf);
    if t.window_clamp >= maxwin {
        t.window_clamp = maxwin.max(4 * t.advmss);
    }
    t.rcv_ssthresh = t.rcv_ssthresh.min(t.window_clamp);
}

/// `tcp_sndbuf_expand`: room for twice the congestion window (or the reordering
/// degree) of full-size skbs, up to `tcp_wmem[2]`.
pub(crate) fn sndbuf_expand(stack: &Stack, t: &mut Tcb) {
    let per_mss = (t.mss_cache.max(2048) as usize
        + super::MAX_TCP_HEADER
        + crate::skb::SKB_OVERHEAD as usize)
        .next_power_of_two();
    let nr = t.snd_cwnd.max(t.reordering + 1) as usize * 2;
    let want = (nr * per_mss).min(stack.sysctl.tcp_wmem_max().max(4096) as usize);
    if want > t.sndbuf {
        t.sndbuf = want;
    }
}

/// Answer an unacceptable segment with an ACK, rate limited (`tcp_send_dupack` with
/// `tcp_oow_rate_limited`, `tcp_invalid_ratelimit`).
/// `__tcp_oow_rate_limited`: at most one out-of-window ACK per `tcp_invalid_ratelimit`
/// (500 ms) per socket; a suppressed one counts `mib`.
pub(crate) fn oow_rate_limited(stack: &Stack, last: &mut Instant, mib: TcpExt) -> bool {
    let now = stack.now();
    let limit = Duration::from_millis(stack.sysctl.tcp_invalid_ratelimit().max(0) as u64);
    if *last != Instant::ZERO && now.saturating_duration_since(*last) < limit {
        stack.tcp.mib.inc(mib);
        return true;
    }
    *last = now;
    false
}

/// A duplicate ACK for an unacceptable segment (`tcp_send_dupack` behind
/// `tcp_oow_rate_limited`): segments carrying data (without SYN) are always answered,
/// since they cannot be part of an ACK loop.
fn send_oow_ack(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg, mib: TcpExt) {
    let data = seg.len > 0 && !seg.has(tcphdr::SYN);
    if !data && oow_rate_limited(stack, &mut t.last_oow_ack, mib) {
        return;
    }
    // tcp_send_dupack: old data again means our ACK was lost; say so with a DSACK.
    if seg.end_seq != seg.seq && before(seg.seq, t.rcv_nxt) {
        stack.tcp.mib.inc(TcpExt::DelayedACKLost);
        enter_quickack_mode(t, TCP_MAX_QUICKACKS);
        let end = if after(seg.end_seq, t.rcv_nxt) {
            t.rcv_nxt
        } else {
            seg.end_seq
        };
        dsack_set(stack, t, seg.seq, end);
    }
    output::tcp_send_ack(stack, sk, t);
}

/// `tcp_send_challenge_ack` (RFC 5961 § 3.2, § 4.2): at most `tcp_challenge_ack_limit`
/// per second.
fn send_challenge_ack(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    // The per-socket dupack rate limit first.
    if oow_rate_limited(stack, &mut t.last_oow_ack, TcpExt::TCPACKSkippedChallenge) {
        return;
    }
    let now_s = (stack.now().as_millis() / 1000) as u32;
    if t.challenge.1 != now_s {
        t.challenge = (0, now_s);
    }
    let limit = stack.sysctl.tcp_challenge_ack_limit().max(0) as u32;
    if t.challenge.0 >= limit {
        return;
    }
    t.challenge.0 += 1;
    stack.tcp.mib.inc(TcpExt::TCPChallengeACK);
    output::tcp_send_ack(stack, sk, t);
}

/// `tcp_sequence`: does the segment overlap the receive window?
fn sequence_ok(t: &Tcb, seg: &Seg) -> bool {
    !before(seg.end_seq, t.rcv_wup)
        && !after(
            seg.seq,
            t.rcv_nxt.wrapping_add(output::tcp_receive_window(t)),
        )
}

/// PAWS (RFC 7323 § 5): reject a segment whose TSval is older than `ts_recent`, unless
/// `ts_recent` is over 24 days old.
fn paws_reject(stack: &Stack, t: &Tcb, seg: &Seg) -> bool {
    let Some((val, _)) = seg.ts else {
        return false;
    };
    if !t.tstamp_ok || seg.has(tcphdr::RST) {
        return false;
    }
    if (t.ts_recent.wrapping_sub(val) as i32) <= 0 {
        return false;
    }
    let age = stack.now().saturating_duration_since(t.ts_recent_stamp);
    age < Duration::from_secs(24 * 24 * 3600)
}

/// `tcp_validate_incoming`: PAWS, sequence check, RST and SYN checks (RFC 5961).
/// Returns false if the segment must be dropped.
fn validate_incoming(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg) -> bool {
    if paws_reject(stack, t, seg) {
        stack.tcp.mib.inc(TcpExt::PAWSEstab);
        if !seg.has(tcphdr::RST) {
            send_oow_ack(stack, sk, t, seg, TcpExt::TCPACKSkippedPAWS);
        }
        return false;
    }
    if !sequence_ok(t, seg) {
        if !seg.has(tcphdr::RST) {
            if seg.has(tcphdr::SYN) {
                send_challenge_ack(stack, sk, t);
            } else {
                send_oow_ack(stack, sk, t, seg, TcpExt::TCPACKSkippedSeq);
            }
        }
        return false;
    }
    if seg.has(tcphdr::RST) {
        // RFC 5961 § 3.2 as tcp_reset_check: reset only if seq is exactly rcv_nxt (or
        // rcv_nxt - 1, the peer's FIN, once we have received it); in-window → challenge.
        let fin_seen = matches!(
            t.state,
            TcpState::CloseWait | TcpState::LastAck | TcpState::Closing
        );
        if seg.seq == t.rcv_nxt || (fin_seen && seg.seq == t.rcv_nxt.wrapping_sub(1)) {
            tcp_reset(stack, sk, t);
        } else {
            send_challenge_ack(stack, sk, t);
        }
        return false;
    }
    if seg.has(tcphdr::SYN) {
        // Simultaneous open: the peer's SYN-ACK answering our SYN, in SYN_RECV on a
        // socket of our own (not a listener's child), passes.
        if t.state == TcpState::SynRecv
            && t.parent.is_none()
            && seg.has(tcphdr::ACK)
            && seg.seq.wrapping_add(1) == seg.end_seq
            && seg.seq.wrapping_add(1) == t.rcv_nxt
            && seg.ack_seq == t.snd_nxt
        {
            return true;
        }
        // RFC 5961 § 4.2: a SYN in a synchronized state gets a challenge ACK.
        stack.tcp.mib.inc(TcpExt::TCPSYNChallenge);
        send_challenge_ack(stack, sk, t);
        return false;
    }
    true
}

/// `tcp_reset`: the peer reset the connection.
fn tcp_reset(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    t.err = match t.state {
        TcpState::SynSent => errno::ECONNREFUSED,
        TcpState::CloseWait => errno::EPIPE,
        TcpState::Close => return,
        _ => errno::ECONNRESET,
    };
    super::minisocks::tcp_done(stack, sk, t);
}

/// `tcp_replace_ts_recent`.
fn update_ts_recent(stack: &Stack, t: &mut Tcb, seg: &Seg) {
    if let (true, Some((val, _))) = (t.tstamp_ok, seg.ts) {
        if !after(seg.seq, t.rcv_wup) && (val.wrapping_sub(t.ts_recent) as i32) >= 0 {
            t.ts_recent = val;
            t.ts_recent_stamp = stack.now();
        }
    }
}

/// `tcp_rcv_state_process` for every synchronized state.
fn rcv_state_process(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg, skb: Skb) {
    let now = stack.now();
    if !validate_incoming(stack, sk, t, seg) {
        return;
    }
    t.rcv_tstamp = now;
    if !seg.has(tcphdr::ACK) {
        return;
    }
    let prior_state = t.state;
    let acceptable = tcp_ack(stack, sk, t, seg);
    if t.state == TcpState::Close {
        return;
    }
    match prior_state {
        TcpState::SynRecv => {
            if !acceptable {
                output::tcp_v4_send_reset(stack, &with_header(seg), *seg.src.ip(), *seg.dst.ip());
                return;
            }
            t.snd_wnd = u32::from(seg.window) << t.snd_wscale;
            t.snd_wl1 = seg.seq;
            t.max_window = t.max_window.max(t.snd_wnd);
            finish_connect(stack, sk, t);
            super::minisocks::child_established(stack, sk, t);
        }
        TcpState::FinWait1 if t.snd_una == t.write_seq && t.write_queue.is_empty() => {
            t.state = TcpState::FinWait2;
            t.shutdown |= shutdown::SEND;
            timer::orphan_timers(stack, sk, t);
            sk.wq.wake_all();
        }
        TcpState::Closing if t.snd_una == t.write_seq => {
            super::minisocks::tcp_time_wait(stack, sk, t, TcpState::TimeWait);
            return;
        }
        TcpState::LastAck if t.snd_una == t.write_seq => {
            super::minisocks::tcp_done(stack, sk, t);
            return;
        }
        _ => {}
    }
    update_ts_recent(stack, t, seg);
    // Data and FIN (tcp_data_queue), unless the receive side is closed.
    match t.state {
        TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
            if seg.len > 0 || seg.has(tcphdr::FIN) =>
        {
            if t.shutdown & shutdown::RCV != 0
                && seg.len > 0
                && after(seg.end_seq, t.rcv_nxt)
                && t.state != TcpState::Established
            {
                // Data after we closed: reset (RFC 9293 § 3.10.7.4, as tcp_reset).
                stack.tcp.mib.inc(TcpExt::TCPAbortOnData);
                output::tcp_send_active_reset(stack, sk, t);
                tcp_reset(stack, sk, t);
                return;
            }
            if t.state == TcpState::Established {
                rcv_rtt_measure_ts(t, seg, stack.now());
            }
            tcp_data_queue(stack, sk, t, seg, skb);
        }
        // The peer's FIN was seen: just ACK retransmissions.
        TcpState::CloseWait | TcpState::Closing | TcpState::LastAck
            if seg.len > 0 && !after(seg.end_seq, t.rcv_nxt) =>
        {
            dsack_set(stack, t, seg.seq, seg.end_seq);
            output::tcp_send_ack(stack, sk, t);
        }
        _ => {}
    }
    if t.state != TcpState::Close {
        tcp_data_snd_check(stack, sk, t);
        ack_snd_check(stack, sk, t, true);
    }
}

/// `tcp_data_snd_check`: try to send more after an ACK; grow the send buffer.
fn tcp_data_snd_check(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    super::sendmsg::tcp_push_pending_frames(stack, sk, t);
    tcp_check_space(stack, sk, t);
}

/// `tcp_check_space` → `tcp_new_space` → `sk_stream_write_space`: only once a writer
/// found the send buffer full (`SOCK_NOSPACE`), grow the buffer if the window could use
/// more (`tcp_should_expand_sndbuf`), and wake the writers when a third of the buffer
/// is free again — a writer sleeps through many ACKs instead of waking for each.
fn tcp_check_space(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    use std::sync::atomic::Ordering;
    if !sk.nospace.load(Ordering::Acquire) {
        return;
    }
    if !t.sndbuf_locked
        && t.packets_out < t.snd_cwnd
        && !matches!(t.ca_state, CaState::Recovery | CaState::Loss)
    {
        sndbuf_expand(stack, t);
    }
    if super::sendmsg::stream_is_writeable(stack, t) {
        sk.nospace.store(false, Ordering::Release);
        sk.wq.wake_all();
    }
}

/// `tcp_ack`: process an ACK. Returns false when it acknowledges nothing we sent
/// (`snd_una < ack <= snd_nxt` fails).
fn tcp_ack(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg) -> bool {
    let now = stack.now();
    let ackn = seg.ack_seq;
    let prior_snd_una = t.snd_una;
    let prior_in_flight = t.packets_in_flight();
    let prior_packets = t.packets_out;
    let mut fl = 0u32;
    if before(ackn, prior_snd_una) {
        // Old duplicate ACK (RFC 5961 § 5.2: ignore if too old).
        if before(ackn, prior_snd_una.wrapping_sub(t.max_window)) {
            send_challenge_ack(stack, sk, t);
            return false;
        }
        return true;
    }
    if after(ackn, t.snd_nxt) {
        // ACK for data not sent yet.
        send_oow_ack(stack, sk, t, seg, TcpExt::TCPACKSkippedSeq);
        return false;
    }
    if after(ackn, prior_snd_una) {
        fl |= flag::SND_UNA_ADVANCED;
    }
    if seg.len > 0 {
        fl |= flag::DATA;
    }
    // Window update (tcp_ack_update_window).
    let nwin = if seg.has(tcphdr::SYN) {
        u32::from(seg.window)
    } else {
        u32::from(seg.window) << t.snd_wscale
    };
    if after(ackn, t.snd_una)
        || after(seg.seq, t.snd_wl1)
        || (seg.seq == t.snd_wl1 && (nwin > t.snd_wnd || nwin == 0))
    {
        if t.snd_wnd != nwin {
            fl |= flag::WIN_UPDATE;
            t.snd_wnd = nwin;
            if nwin > t.max_window {
                t.max_window = nwin;
                let pmtu = t.pmtu_cookie;
                if pmtu != 0 {
                    output::tcp_sync_mss(t, pmtu);
                }
            }
        }
        t.snd_wl1 = seg.seq;
    }
    // Something worked: the peer answers (zero-window and keepalive probes included).
    t.err_soft = 0;
    t.probes_out = 0;
    // RFC 5961-style check done; timestamps: echo-reply RTT.
    let ts_rtt = match (t.tstamp_ok, seg.ts) {
        (true, Some((_, ecr))) if ecr != 0 => {
            let d = output::tcp_time_stamp(t, now).wrapping_sub(ecr);
            (d as i32 >= 0).then(|| i64::from(d) * 1000)
        }
        _ => None,
    };
    // The highest SACKed sequence before this ACK (`prior_fack`).
    let prior_fack = if t.sack_ok && t.sacked_out > 0 {
        t.highest_sack
    } else {
        t.snd_una
    };
    // SACK blocks: the scoreboard (tcp_sacktag_write_queue).
    let prior_delivered = t.stats.delivered;
    let mut sack = recovery::SackOutcome::default();
    if t.sack_ok && seg.sacks.iter().any(|s| s.is_some()) {
        sack = recovery::sacktag_write_queue(stack, t, &seg.sacks, ackn, prior_snd_una);
        if sack.newly_sacked > 0 {
            fl |= flag::DATA_SACKED;
        }
    }
    // Free what was acknowledged.
    // The delivery-rate sample this ACK builds (tcp_rate.c), begun by the SACKed
    // packets and finished by the cumulatively ACKed ones.
    let mut rs = sack.rate;
    rs.prior_in_flight = prior_in_flight;
    let prior_lost = t.rate.lost;
    let prior_sacked = t.sacked_out;
    let (acked_pkts, rtt_us, retrans_acked, reord, fully_acked) =
        tcp_clean_rtx_queue_to(stack, sk, t, ackn, now, &mut rs);
    // FLAG_ACK_MAYBE_DELAYED: one small packet acknowledged alone, nothing SACKed or
    // DSACKed — typically a lone runt ACKed by the receiver's delayed-ACK timer.
    rs.is_ack_delayed = acked_pkts == 1
        && fully_acked
        && prior_sacked == 0
        && rtt_us.is_some()
        && !retrans_acked
        && ackn.wrapping_sub(prior_snd_una) < t.mss_cache
        && rs.prior_delivered.wrapping_add(1) == t.stats.delivered
        && fl & (flag::DATA_SACKED | flag::SYN_ACKED) == 0
        && !sack.dsack;
    if acked_pkts > 0 {
        fl |= flag::DATA_ACKED;
        // A hole below the highest SACK filled by a packet never retransmitted: the
        // network reordered it (tcp_clean_rtx_queue → tcp_check_sack_reordering).
        if t.sack_ok && before(reord, prior_fack) {
            recovery::check_sack_reordering(stack, t, reord, prior_fack);
        }
        // The MTU probe is through.
        if t.mtup.probe_size != 0 && !super::seq::after(t.mtup.probe_seq_end, ackn) {
            super::mtup::probe_success(stack, t);
        }
    }
    if retrans_acked {
        fl |= flag::RETRANS_DATA_ACKED;
    }
    t.snd_una = ackn;
    if fl & flag::SND_UNA_ADVANCED != 0 {
        let bytes = ackn.wrapping_sub(prior_snd_una);
        t.stats.bytes_acked += u64::from(bytes);
        t.retransmits = 0;
        t.backoff = 0;
        // An ACK that advances confirms the neighbour (dst_confirm_neigh).
        if let Some(d) = &t.dst {
            if let Some(n) = stack.ipv4.arp.lookup(&d.dev, d.nexthop()) {
                n.confirm(now);
            }
        }
    }
    // RTT (Karn: only from never-retransmitted data; else timestamps).
    let sample = rtt_us.or(if fl & flag::ACKED != 0 { ts_rtt } else { None });
    rs.rtt_us = sample.unwrap_or(-1);
    if let Some(rtt) = sample {
        tcp_rtt_estimator(t, rtt.max(1) as u32);
        tcp_set_rto(t);
    }
    if fl & flag::ACKED != 0 {
        with_cc(t, now, |cc, ctx| {
            cc.pkts_acked(
                ctx,
                &AckSample {
                    pkts_acked: acked_pkts,
                    rtt_us: sample.unwrap_or(-1),
                    in_flight: prior_in_flight,
                },
            )
        });
        let hystart = match t.cc.take_hystart_exit() {
            1 => Some((TcpExt::TCPHystartTrainDetect, TcpExt::TCPHystartTrainCwnd)),
            2 => Some((TcpExt::TCPHystartDelayDetect, TcpExt::TCPHystartDelayCwnd)),
            _ => None,
        };
        if let Some((detect, cwnd)) = hystart {
            stack.tcp.mib.inc(detect);
            stack.tcp.mib.add(cwnd, u64::from(t.snd_cwnd));
        }
    }
    // Zero-window probing: the window opened?
    if t.pending_timer == Pending::Probe0 && t.packets_out == 0 {
        if let Some(h) = t.write_queue.front() {
            if !after(
                h.cb.tcp.end_seq.min(h.cb.tcp.seq.wrapping_add(t.mss_cache)),
                t.wnd_end(),
            ) {
                t.backoff = 0;
                t.probes_out = 0;
                timer::clear_xmit_timer(sk, t);
            }
        }
    }
    let is_dupack = fl & (flag::SND_UNA_ADVANCED | flag::NOT_DUP) == 0 && prior_packets > 0;
    if t.packets_out == 0 && t.write_queue.is_empty() {
        t.probes_out = 0;
    }
    if t.sack_ok {
        recovery::rack_update_reo_wnd(stack, t, prior_delivered);
    }
    let pure_dupack = fl & (flag::SND_UNA_ADVANCED | flag::NOT_DUP | flag::DATA_SACKED) == 0;
    recovery::process_tlp_ack(stack, t, ackn, sack.dsack, pure_dupack);
    if fl & flag::ACKED != 0 {
        timer::tcp_set_xmit_timer(stack, sk, t);
    }
    // Congestion control and loss recovery (tcp_fastretrans_alert / tcp_cong_control).
    if t.sack_ok {
        let delivered = t.stats.delivered.wrapping_sub(prior_delivered);
        recovery::fastretrans_alert_sack(stack, sk, t, fl, delivered, prior_in_flight);
    } else {
        recovery::fastretrans_alert(stack, sk, t, fl, is_dupack, acked_pkts, prior_in_flight);
    }
    // tcp_rate_gen + tcp_cong_control: an algorithm with its own control loop (BBR)
    // sets cwnd and the pacing rate from the rate sample; the others grew or reduced
    // cwnd above, and the pacing rate follows cwnd/srtt.
    let delivered = t.stats.delivered.wrapping_sub(prior_delivered);
    let lost = t.rate.lost.wrapping_sub(prior_lost);
    super::rate::rate_gen(t, delivered, lost, &mut rs, now);
    if t.cc.has_cong_control() {
        with_cc(t, now, |cc, ctx| cc.cong_control(ctx, &rs));
    } else {
        output::tcp_update_pacing_rate(stack, t);
    }
    true
}

/// `tcp_clean_rtx_queue`: free every skb fully acknowledged by `ackn` (trimming a
/// partly acknowledged head). Returns (packets acked, RTT sample in µs from
/// never-retransmitted data, whether retransmitted data was acked, the lowest
/// sequence freed that was never retransmitted nor SACKed — for reordering).
fn tcp_clean_rtx_queue_to(
    stack: &Stack,
    _sk: &Arc<TcpSock>,
    t: &mut Tcb,
    ackn: u32,
    now: Instant,
    rs: &mut RateSample,
) -> (u32, Option<i64>, bool, u32, bool) {
    let mut pkts = 0u32;
    // Whether everything acknowledged was acknowledged whole (no TSO head trimmed).
    let mut fully_acked = true;
    let mut rtt: Option<i64> = None;
    let mut retrans = false;
    let mss = t.mss_cache.max(1);
    // Lowest start of what is acked here that was neither retransmitted nor SACKed.
    let mut reord = t.snd_nxt;
    while let Some(skb) = t.rtx_queue.front() {
        let cb = skb.cb.tcp;
        if after(cb.end_seq, ackn) {
            // Partly acknowledged: trim what was acked.
            if after(ackn, cb.seq) && !skb.is_empty() {
                let n = ackn.wrapping_sub(cb.seq) as usize;
                let before_pc = u32::from(skb.gso_segs.max(1));
                let skb = t.rtx_queue.front_mut().expect("head");
                output::trim_head(skb, n.min(skb.len()));
                let after_pc = (skb.len() as u32).div_ceil(mss).max(1);
                skb.gso_segs = after_pc as u16;
                let done = before_pc.saturating_sub(after_pc);
                fully_acked = false;
                if done > 0 {
                    super::rate::skb_delivered(&mut t.rate, &mut skb.cb.tcp, rs);
                }
                let bits = skb.cb.tcp.sacked;
                pkts += done;
                t.packets_out = t.packets_out.saturating_sub(done);
                let cb = skb.cb.tcp;
                if done > 0 && recovery::cum_acked(t, now, &cb, done) {
                    t.stats.delivered += done;
                    stack.tcp.mib.add(TcpExt::TCPDelivered, u64::from(done));
                }
                if bits & sacked::LOST != 0 {
                    t.lost_out = t.lost_out.saturating_sub(done);
                }
                if bits & sacked::RETRANS != 0 {
                    t.retrans_out = t.retrans_out.saturating_sub(done);
                }
                t.wmem_queued = t.wmem_queued.saturating_sub(n);
            }
            break;
        }
        let Some(mut skb) = t.rtx_queue.pop_front() else {
            break;
        };
        stack.trace.hit(Stage::TcpAck, skb.trace_id, skb.len(), now);
        super::rate::skb_delivered(&mut t.rate, &mut skb.cb.tcp, rs);
        let pc = u32::from(skb.gso_segs.max(1));
        pkts += pc;
        t.packets_out = t.packets_out.saturating_sub(pc);
        if skb.cb.tcp.sacked & (sacked::EVER_RETRANS | sacked::ACKED) == 0
            && before(skb.cb.tcp.seq, reord)
        {
            reord = skb.cb.tcp.seq;
        }
        if skb.cb.tcp.sacked & sacked::RETRANS != 0 {
            t.retrans_out = t.retrans_out.saturating_sub(pc);
            retrans = true;
        }
        if skb.cb.tcp.sacked & sacked::LOST != 0 {
            t.lost_out = t.lost_out.saturating_sub(pc);
        }
        if skb.cb.tcp.sacked & sacked::EVER_RETRANS == 0 {
            rtt = Some(
                now.saturating_duration_since(skb.cb.tcp.tx_time)
                    .as_micros() as i64,
            );
        } else {
            rtt = None;
        }
        if skb.cb.tcp.tcp_flags & tcphdr::SYN != 0 && t.state == TcpState::SynRecv {
            // counted elsewhere
        }
        // Each queued skb is charged its payload plus SKB_TRUESIZE_BASE (skb_entail,
        // tso_fragment); give back exactly that (sk_wmem_free_skb).
        t.wmem_queued = t
            .wmem_queued
            .saturating_sub(skb.len() + super::output::SKB_TRUESIZE_BASE);
        if recovery::cum_acked(t, now, &skb.cb.tcp, pc) {
            t.stats.delivered += pc;
            stack.tcp.mib.add(TcpExt::TCPDelivered, u64::from(pc));
        }
    }
    if t.packets_out == 0 {
        t.retrans_out = 0;
        t.lost_out = 0;
        t.sacked_out = 0;
        t.retrans_stamp = None;
    }
    if retrans && t.retrans_out == 0 {
        t.retrans_stamp = None;
    }
    (pkts, rtt, retrans, reord, fully_acked)
}

/// `tcp_rtt_estimator` (RFC 6298 as Linux computes it, in µs).
pub fn tcp_rtt_estimator(t: &mut Tcb, mrtt_us: u32) {
    let rto_min = TCP_RTO_MIN.as_micros() as u32;
    let mut m = i64::from(mrtt_us);
    let mut srtt = i64::from(t.srtt_us);
    t.min_rtt_us = t.min_rtt_us.min(mrtt_us);
    if srtt != 0 {
        m -= srtt >> 3;
        srtt += m;
        let mut mdev = i64::from(t.mdev_us);
        if m < 0 {
            m = -m;
            m -= mdev >> 2;
            if m > 0 {
                m >>= 3;
            }
        } else {
            m -= mdev >> 2;
        }
        mdev += m;
        t.mdev_us = mdev.max(0) as u32;
        if t.mdev_us > t.mdev_max_us {
            t.mdev_max_us = t.mdev_us;
            if t.mdev_max_us > t.rttvar_us {
                t.rttvar_us = t.mdev_max_us;
            }
        }
        if after(t.snd_una, t.rtt_seq) {
            if t.mdev_max_us < t.rttvar_us {
                t.rttvar_us -= (t.rttvar_us - t.mdev_max_us) >> 2;
            }
            t.rtt_seq = t.snd_nxt;
            t.mdev_max_us = rto_min;
        }
    } else {
        srtt = m << 3;
        t.mdev_us = (m << 1) as u32;
        t.rttvar_us = t.mdev_us.max(rto_min);
        t.mdev_max_us = t.rttvar_us;
        t.rtt_seq = t.snd_nxt;
    }
    t.srtt_us = srtt.max(1) as u32;
}

/// `tcp_set_rto`: RTO = SRTT + 4·RTTVAR (RFC 6298 § 2.3; Linux's `rttvar` already holds
/// the 4× deviation), at least 200 ms, at most 120 s.
pub fn tcp_set_rto(t: &mut Tcb) {
    let us = u64::from(t.srtt_us >> 3) + u64::from(t.rttvar_us);
    t.rto = Duration::from_micros(us).clamp(TCP_RTO_MIN, TCP_RTO_MAX);
}

/// `tcp_v4_err`: an ICMP error about one of our segments.
pub fn tcp_v4_err(stack: &Stack, e: &IcmpError) {
    let local = SocketAddrV4::new(e.saddr, e.sport);
    let remote = SocketAddrV4::new(e.daddr, e.dport);
    let Some(sk) = stack.tcp.ehash.read().get(&(local, remote)).cloned() else {
        stack.ipv4.icmp_mib.inc(crate::mib::Icmp::InErrors);
        return;
    };
    if e.kind == crate::ipv4::icmp::DEST_UNREACH && e.code == crate::ipv4::icmp::FRAG_NEEDED {
        sk.bh_run(stack, super::deferred::MTU_REDUCED);
        return;
    }
    let (err, fatal) = err_convert(e.kind, e.code);
    let owned = sk.slock.lock().owned;
    let mut t = sk.tcb.lock();
    match t.state {
        TcpState::SynSent | TcpState::SynRecv if fatal && !owned => {
            t.err = err;
            super::minisocks::tcp_done(stack, &sk, &mut t);
        }
        _ => {
            t.err_soft = err;
        }
    }
    drop(t);
    sk.wq.wake_all();
}

/// The MTU dropped (`tcp_v4_mtu_reduced`): resync the MSS and retransmit what no longer
/// fits.
pub fn mtu_reduced(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    if matches!(t.state, TcpState::Listen | TcpState::Close) {
        return;
    }
    let now = stack.now();
    let Some(dst) = t.dst.clone() else {
        return;
    };
    // Re-route to pick up the learned path MTU.
    if !stack.ipv4.fib.check(&dst) {
        if let Ok(d) = stack.ipv4.fib.route_output(
            stack,
            &crate::ipv4::route::Flowi4 {
                daddr: Some(*t.remote.ip()),
                saddr: Some(*t.local.ip()),
                ..Default::default()
            },
        ) {
            t.dst = Some(d);
        }
    }
    let mtu = t.dst.as_ref().map(|d| d.mtu(now)).unwrap_or(1500);
    if mtu < t.pmtu_cookie {
        output::tcp_sync_mss(t, mtu);
        // tcp_simple_retransmit: everything larger than the new MSS is lost.
        super::mtup::simple_retransmit(stack, sk, t);
    }
}

/// Whether an skb is a pure ACK (for counters).
pub fn is_pure_ack(seg: &Seg) -> bool {
    seg.len == 0 && seg.flags & (tcphdr::SYN | tcphdr::FIN | tcphdr::RST) == 0
}
