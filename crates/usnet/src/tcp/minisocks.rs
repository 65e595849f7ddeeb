//! Connection setup and teardown state that is lighter than a full socket (Linux's
//! `net/ipv4/tcp_minisocks.c`, `inet_connection_sock.c`, `syncookies.c`):
//!
//! * the SYN queue of request sockets, SYN-ACK retransmission, and the accept queue,
//!   sized by the listen backlog — overflows counted as `ListenOverflows` and
//!   `ListenDrops`;
//! * SYN cookies (`tcp_syncookies = 1`): when the SYN queue is full, the SYN-ACK carries
//!   the connection's state in its sequence number instead, and the final ACK rebuilds it;
//! * TIME_WAIT entries: small records kept 60 s after a close, answering retransmitted
//!   FINs and letting a new SYN with a higher sequence number reuse the pair;
//! * ISNs and timestamp offsets from a keyed hash of the connection (RFC 6528).

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use usnet_wire::{TcpFlags, TcpRepr, TcpSeqNumber};

use super::input::Seg;
use super::output::{self, tcphdr};
use super::timer;
use super::{Tcb, Tcp, TcpExt, TcpSock, TcpState, TCP_TIMEOUT_INIT, TCP_TIMEWAIT_LEN};
use crate::dev::flow::mix;
use crate::skb::Skb;
use crate::time::Instant;
use crate::timer::Timer;
use crate::Stack;

/// A half-open connection in the SYN queue (Linux's `struct request_sock`).
#[derive(Clone, Debug)]
pub struct RequestSock {
    /// Our address.
    pub local: SocketAddrV4,
    /// The peer.
    pub remote: SocketAddrV4,
    /// Our ISN.
    pub iss: u32,
    /// The peer's ISN.
    pub irs: u32,
    /// The peer's MSS.
    pub mss: u16,
    /// The peer's window scale (None: no scaling).
    pub snd_wscale: Option<u8>,
    /// Our window scale.
    pub rcv_wscale: u8,
    /// SACK permitted.
    pub sack: bool,
    /// The peer's TSval (when timestamps are on).
    pub ts_recent: Option<u32>,
    /// Our initial window.
    pub rcv_wnd: u32,
    /// Our window clamp.
    pub window_clamp: u32,
    /// SYN-ACKs retransmitted.
    pub retrans: u32,
    /// When the next SYN-ACK retransmission is due.
    pub expires: Instant,
    /// Our timestamp offset.
    pub tsoffset: u32,
    /// The peer's raw (unscaled) window from the SYN.
    pub snd_wnd: u32,
    /// When the first SYN-ACK was sent (`snt_synack`), for the handshake's RTT sample;
    /// `None` for a connection rebuilt from a SYN cookie.
    pub snt_synack: Option<Instant>,
}

fn hash4(stack: &Stack, local: SocketAddrV4, remote: SocketAddrV4, salt: u64) -> u32 {
    let s = stack.tcp.secret;
    let a = mix(
        u32::from(*local.ip()) ^ s[0] as u32,
        u32::from(*remote.ip()) ^ (s[0] >> 32) as u32,
        (u32::from(local.port()) << 16 | u32::from(remote.port())) ^ s[1] as u32 ^ salt as u32,
    );
    mix(a, (s[1] >> 32) as u32, (salt >> 32) as u32)
}

/// RFC 6528 ISN: a keyed hash of the connection plus a clock ticking every 64 ns
/// (Linux's `secure_tcp_seq`).
pub fn secure_seq(stack: &Stack, local: SocketAddrV4, remote: SocketAddrV4, now: Instant) -> u32 {
    hash4(stack, local, remote, 0).wrapping_add((now.as_nanos() >> 6) as u32)
}

/// Per-connection timestamp offset (Linux's `secure_tcp_ts_off`).
pub fn ts_offset(stack: &Stack, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
    hash4(stack, local, remote, 0x5453)
}

/// MSS values a SYN cookie can encode (Linux's `msstab`).
pub const COOKIE_MSSTAB: [u16; 4] = [536, 1300, 1440, 1460];
/// Cookies older than this many minutes are refused (`MAX_SYNCOOKIE_AGE`).
const COOKIE_MAX_AGE: u32 = 2;

fn cookie_minute(now: Instant) -> u32 {
    (now.as_nanos() / 60_000_000_000) as u32
}

/// A SYN cookie ISN: hash of the connection and the minute, with the MSS index in the
/// low two bits (Linux's `secure_tcp_syn_cookie`).
pub fn cookie_make(
    stack: &Stack,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    peer_isn: u32,
    mss_idx: u32,
    now: Instant,
) -> u32 {
    let count = cookie_minute(now);
    let h1 = hash4(stack, local, remote, 1);
    let h2 = hash4(stack, local, remote, 2 + u64::from(count));
    h1.wrapping_add(peer_isn)
        .wrapping_add(count << 24)
        .wrapping_add((h2.wrapping_add(mss_idx)) & 0x00ff_ffff)
}

/// Check a cookie returned in an ACK; the MSS index if valid (`__cookie_v4_check`).
pub fn cookie_check(
    stack: &Stack,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    peer_isn: u32,
    cookie: u32,
    now: Instant,
) -> Option<u32> {
    let h1 = hash4(stack, local, remote, 1);
    let c = cookie.wrapping_sub(h1).wrapping_sub(peer_isn);
    let count = cookie_minute(now);
    let age = count.wrapping_sub(c >> 24) & 0xff;
    if age > COOKIE_MAX_AGE {
        return None;
    }
    let minute = count.wrapping_sub(age);
    let h2 = hash4(stack, local, remote, 2 + u64::from(minute));
    let idx = (c.wrapping_sub(h2)) & 0x00ff_ffff;
    (idx < COOKIE_MSSTAB.len() as u32).then_some(idx)
}

/// Timestamp encoding of a cookie's options (`cookie_init_timestamp`): the low 4 bits of
/// TSval carry the window scale (15: none), bit 4 SACK.
fn cookie_ts(now_ts: u32, wscale: Option<u8>, sack: bool) -> u32 {
    let opts = u32::from(wscale.unwrap_or(15)) | (u32::from(sack) << 4);
    (now_ts & !0x1f) | opts
}

fn listener_window(stack: &Stack, t: &Tcb, mss: u32) -> (u32, u8, u32) {
    let mut tmp = Tcb::new(stack);
    tmp.rcvbuf = t.rcvbuf;
    tmp.advmss = mss;
    output::select_initial_window(stack, &mut tmp, stack.sysctl.tcp_window_scaling() != 0);
    (tmp.rcv_wnd, tmp.rcv_wscale, tmp.window_clamp)
}

/// `tcp_v4_conn_request` / `tcp_check_req`: a segment for a listener.
pub fn tcp_v4_conn_request(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg, skb: Skb) {
    let now = stack.now();
    let mib = &stack.tcp.mib;
    if seg.flags & tcphdr::RST != 0 {
        if let Some(l) = &mut t.listen {
            l.syn_queue.remove(&seg.src);
        }
        return;
    }
    if seg.flags & tcphdr::ACK != 0 && seg.flags & tcphdr::SYN == 0 {
        check_req(stack, sk, t, seg, skb);
        return;
    }
    if seg.flags & tcphdr::SYN == 0 {
        return;
    }
    let Some(l) = &t.listen else {
        return;
    };
    // A retransmitted SYN for a known request: resend the SYN-ACK.
    if let Some(req) = l.syn_queue.get(&seg.src).cloned() {
        send_req_synack(stack, &req, now);
        return;
    }
    // sk_acceptq_is_full: more than the backlog already waits.
    if sk.accept_q.lock().len() > l.max_ack_backlog {
        mib.inc(TcpExt::ListenOverflows);
        mib.inc(TcpExt::ListenDrops);
        return;
    }
    let syn_full = l.syn_queue.len() >= l.max_ack_backlog.max(1);
    let cookies = stack.sysctl.tcp_syncookies();
    let want_cookie = cookies == 2 || (syn_full && cookies == 1);
    if syn_full && !want_cookie {
        mib.inc(TcpExt::TCPReqQFullDrop);
        mib.inc(TcpExt::ListenDrops);
        return;
    }
    // Without syncookies, the last quarter of tcp_max_syn_backlog is kept for peers
    // proven alive (none are tracked here, as with no TCP metrics).
    if !want_cookie && cookies == 0 {
        let max = stack.sysctl.tcp_max_syn_backlog().max(0) as usize;
        if max.saturating_sub(l.syn_queue.len()) < max >> 2 {
            mib.inc(TcpExt::ListenDrops);
            return;
        }
    }
    let local = SocketAddrV4::new(*seg.dst.ip(), seg.dst.port());
    let mtu = crate::ipv4::addr::is_local(stack, *seg.dst.ip())
        .and_then(|_| {
            stack
                .ipv4
                .fib
                .route_output(
                    stack,
                    &crate::ipv4::route::Flowi4 {
                        daddr: Some(*seg.src.ip()),
                        saddr: Some(*seg.dst.ip()),
                        ..Default::default()
                    },
                )
                .ok()
        })
        .map(|d| d.mtu(now))
        .unwrap_or(1500);
    let advmss = mtu.saturating_sub(40).min(t.user_mss.unwrap_or(u32::MAX));
    let (rcv_wnd, rcv_wscale0, clamp) = listener_window(stack, t, advmss);
    let wscale_on = seg.wscale.is_some() && stack.sysctl.tcp_window_scaling() != 0;
    let rcv_wscale = if wscale_on { rcv_wscale0 } else { 0 };
    let sack = seg.sack_perm && stack.sysctl.tcp_sack() != 0;
    let ts_on = seg.ts.is_some() && stack.sysctl.tcp_timestamps() != 0;
    let tsoff = ts_offset(stack, local, seg.src);
    let peer_mss = seg.mss.unwrap_or(536);
    if want_cookie {
        mib.inc(TcpExt::SyncookiesSent);
        mib.inc(TcpExt::TCPReqQFullDoCookies);
        if let Some(l) = &mut t.listen {
            l.cookies_sent += 1;
            l.last_overflow = Some(now);
        }
        let idx = COOKIE_MSSTAB
            .iter()
            .rposition(|&m| m <= peer_mss)
            .unwrap_or(0) as u32;
        let iss = cookie_make(stack, local, seg.src, seg.seq, idx, now);
        let ts = ts_on.then(|| {
            let v = cookie_ts(
                (now.as_millis() as u32).wrapping_add(tsoff),
                wscale_on.then_some(rcv_wscale),
                sack,
            );
            (v, seg.ts.map(|x| x.0).unwrap_or(0))
        });
        output::send_synack(
            stack,
            local,
            seg.src,
            iss,
            seg.seq.wrapping_add(1),
            advmss.min(65535) as u16,
            wscale_on.then_some(rcv_wscale),
            sack && ts_on,
            ts,
            rcv_wnd.min(65535) as u16,
        );
        return;
    }
    let req = RequestSock {
        local,
        remote: seg.src,
        iss: match skb.cb.tcp.tw_isn {
            0 => secure_seq(stack, local, seg.src, now),
            isn => isn,
        },
        irs: seg.seq,
        mss: peer_mss,
        snd_wscale: seg.wscale.filter(|_| wscale_on),
        rcv_wscale,
        sack,
        ts_recent: if ts_on { seg.ts.map(|x| x.0) } else { None },
        rcv_wnd,
        window_clamp: clamp,
        retrans: 0,
        expires: now + TCP_TIMEOUT_INIT,
        tsoffset: tsoff,
        snd_wnd: u32::from(seg.window),
        snt_synack: Some(now),
    };
    send_req_synack(stack, &req, now);
    if let Some(l) = &mut t.listen {
        l.syn_queue.insert(seg.src, req);
    }
    arm_synack_timer(stack, sk, t);
    drop(skb);
}

fn send_req_synack(stack: &Stack, req: &RequestSock, now: Instant) {
    let ts = req
        .ts_recent
        .map(|r| ((now.as_millis() as u32).wrapping_add(req.tsoffset), r));
    output::send_synack(
        stack,
        req.local,
        req.remote,
        req.iss,
        req.irs.wrapping_add(1),
        req.mss.max(1),
        req.snd_wscale.map(|_| req.rcv_wscale),
        req.sack,
        ts,
        req.rcv_wnd.min(65535) as u16,
    );
}

fn arm_synack_timer(stack: &Stack, sk: &TcpSock, t: &Tcb) {
    if let Some(next) = t
        .listen
        .as_ref()
        .and_then(|l| l.syn_queue.values().map(|r| r.expires).min())
    {
        stack.timers.arm_earliest(&sk.timers.keepalive, next);
    }
}

/// The listener's timer: retransmit SYN-ACKs with backoff; drop requests after
/// `tcp_synack_retries` (`reqsk_timer_handler`).
pub fn synack_timer(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let now = stack.now();
    let max = stack.sysctl.tcp_synack_retries().max(0) as u32;
    let mut to_send = Vec::new();
    if let Some(l) = &mut t.listen {
        l.syn_queue.retain(|_, r| {
            if r.expires > now {
                return true;
            }
            if r.retrans >= max {
                return false;
            }
            r.retrans += 1;
            r.expires = now + TCP_TIMEOUT_INIT * (1 << r.retrans.min(16));
            to_send.push(r.clone());
            true
        });
    }
    for r in &to_send {
        stack.tcp.mib.inc(TcpExt::TCPSynRetrans);
        send_req_synack(stack, r, now);
    }
    arm_synack_timer(stack, sk, t);
}

/// `tcp_check_req`: the ACK completing a handshake.
fn check_req(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, seg: &Seg, skb: Skb) {
    let now = stack.now();
    let req = t.listen.as_mut().and_then(|l| l.syn_queue.remove(&seg.src));
    let req = match req {
        Some(r) => {
            if seg.ack_seq != r.iss.wrapping_add(1) {
                // Not for this request: reset, keep the request.
                if let Some(l) = &mut t.listen {
                    l.syn_queue.insert(seg.src, r);
                }
                output::tcp_v4_send_reset(stack, &header_skb(seg), *seg.src.ip(), *seg.dst.ip());
                return;
            }
            r
        }
        None => {
            // A cookie?
            // Only worth checking if the queue overflowed into cookies within the
            // cookie lifetime (tcp_synq_no_recent_overflow: 2 minutes).
            let recent = t
                .listen
                .as_ref()
                .and_then(|l| l.last_overflow)
                .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(120));
            let cookies = if recent {
                stack.sysctl.tcp_syncookies()
            } else {
                0
            };
            let local = SocketAddrV4::new(*seg.dst.ip(), seg.dst.port());
            let idx = (cookies != 0)
                .then(|| {
                    cookie_check(
                        stack,
                        local,
                        seg.src,
                        seg.seq.wrapping_sub(1),
                        seg.ack_seq.wrapping_sub(1),
                        now,
                    )
                })
                .flatten();
            let Some(idx) = idx else {
                if cookies != 0 {
                    stack.tcp.mib.inc(TcpExt::SyncookiesFailed);
                }
                output::tcp_v4_send_reset(stack, &header_skb(seg), *seg.src.ip(), *seg.dst.ip());
                return;
            };
            stack.tcp.mib.inc(TcpExt::SyncookiesRecv);
            let (rcv_wnd, rcv_wscale0, clamp) = listener_window(stack, t, 1460);
            let tsoff = ts_offset(stack, local, seg.src);
            let (wscale, sack, ts_recent) = match seg.ts {
                Some((val, ecr)) => {
                    let w = (ecr & 0xf) as u8;
                    (
                        if w == 15 { None } else { Some(w) },
                        ecr & 0x10 != 0,
                        Some(val),
                    )
                }
                None => (None, false, None),
            };
            RequestSock {
                local,
                remote: seg.src,
                iss: seg.ack_seq.wrapping_sub(1),
                irs: seg.seq.wrapping_sub(1),
                mss: COOKIE_MSSTAB[idx as usize],
                snd_wscale: wscale,
                rcv_wscale: if wscale.is_some() { rcv_wscale0 } else { 0 },
                sack,
                ts_recent,
                rcv_wnd,
                window_clamp: clamp,
                retrans: 0,
                expires: now,
                tsoffset: tsoff,
                snd_wnd: u32::from(seg.window),
                snt_synack: None,
            }
        }
    };
    // Accept queue full: drop the ACK (the peer retransmits), as Linux.
    let max = t.listen.as_ref().map_or(0, |l| l.max_ack_backlog);
    if sk.accept_q.lock().len() > max {
        stack.tcp.mib.inc(TcpExt::ListenOverflows);
        stack.tcp.mib.inc(TcpExt::ListenDrops);
        if stack.sysctl.tcp_abort_on_overflow() != 0 {
            output::tcp_v4_send_reset(stack, &header_skb(seg), *seg.src.ip(), *seg.dst.ip());
        } else if let Some(l) = &mut t.listen {
            // Keep the request so the retransmitted ACK can complete it later.
            l.syn_queue.insert(seg.src, req);
        }
        return;
    }
    let child = create_openreq_child(stack, sk, t, &req);
    stack
        .tcp
        .ehash
        .write()
        .insert((req.local, req.remote), child.clone());
    super::bhash_add_child(stack, &child, req.local.port());
    stack.tcp.snmp.inc(Tcp::PassiveOpens);
    // The ACK (and any data it carries) goes to the child now.
    let mut ct = child.tcb.lock();
    super::input::tcp_v4_do_rcv_child(stack, &child, &mut ct, seg, skb);
}

fn header_skb(seg: &Seg) -> Skb {
    let repr = TcpRepr {
        src_port: seg.src.port(),
        dst_port: seg.dst.port(),
        seq_number: TcpSeqNumber(seg.seq),
        ack_number: (seg.flags & tcphdr::ACK != 0).then_some(TcpSeqNumber(seg.ack_seq)),
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
        &mut usnet_wire::TcpPacket::new_unchecked(&mut h[..]),
        seg.src.ip(),
        seg.dst.ip(),
        false,
    );
    skb.put(seg.len as usize);
    skb
}

/// `tcp_create_openreq_child`: a full socket for a completed handshake, in SYN_RECV
/// until the ACK is processed on it.
fn create_openreq_child(
    stack: &Stack,
    parent: &Arc<TcpSock>,
    pt: &Tcb,
    req: &RequestSock,
) -> Arc<TcpSock> {
    let now = stack.now();
    let mut t = Tcb::new(stack);
    t.state = TcpState::SynRecv;
    t.local = req.local;
    t.remote = req.remote;
    t.iss = req.iss;
    t.irs = req.irs;
    t.snd_una = req.iss.wrapping_add(1);
    t.snd_nxt = t.snd_una;
    t.write_seq = t.snd_una;
    t.pushed_seq = t.snd_una;
    t.snd_sml = t.snd_una;
    t.rcv_nxt = req.irs.wrapping_add(1);
    t.rcv_wup = t.rcv_nxt;
    t.copied_seq = t.rcv_nxt;
    t.rcv_wnd = req.rcv_wnd;
    t.window_clamp = req.window_clamp;
    t.rcv_ssthresh = req.rcv_wnd;
    t.rcv_wscale = req.rcv_wscale;
    t.wscale_ok = req.snd_wscale.is_some();
    t.snd_wscale = req.snd_wscale.unwrap_or(0);
    t.sack_ok = req.sack;
    t.tstamp_ok = req.ts_recent.is_some();
    t.ts_recent = req.ts_recent.unwrap_or(0);
    t.ts_recent_stamp = now;
    t.tsoffset = req.tsoffset;
    t.mss_clamp = u32::from(req.mss).max(64);
    t.snd_wnd = req.snd_wnd;
    t.max_window = t.snd_wnd;
    t.snd_wl1 = req.irs;
    t.sndbuf = pt.sndbuf;
    t.rcvbuf = pt.rcvbuf;
    t.sndbuf_locked = pt.sndbuf_locked;
    t.rcvbuf_locked = pt.rcvbuf_locked;
    t.nonagle = pt.nonagle;
    // The child runs the listener's congestion control (a clone of the listener, as
    // inet_csk_clone_lock makes it); tcp_init_transfer initialises it on the ACK.
    if let Some(cc) = super::cong::by_name(pt.cc.name()) {
        t.cc = cc;
    }
    t.keepalive = pt.keepalive;
    t.keepalive_time = pt.keepalive_time;
    t.keepalive_intvl = pt.keepalive_intvl;
    t.keepalive_probes = pt.keepalive_probes;
    t.user_timeout_ms = pt.user_timeout_ms;
    t.user_mss = pt.user_mss;
    t.linger = pt.linger;
    t.ip_opts = pt.ip_opts.clone();
    t.ip_opts.inet_id = None;
    t.parent = Some(Arc::downgrade(parent));
    t.dst = stack
        .ipv4
        .fib
        .route_output(
            stack,
            &crate::ipv4::route::Flowi4 {
                daddr: Some(*req.remote.ip()),
                saddr: Some(*req.local.ip()),
                ..Default::default()
            },
        )
        .ok();
    let mtu = t.dst.as_ref().map(|d| d.mtu(now)).unwrap_or(1500);
    t.advmss = mtu.saturating_sub(40).min(pt.user_mss.unwrap_or(u32::MAX));
    output::tcp_sync_mss(&mut t, mtu);
    super::input::tcp_initialize_rcv_mss(&mut t);
    // tcp_synack_rtt_meas: the handshake's RTT, unless the SYN-ACK was retransmitted
    // (Karn).
    if let (Some(sent), 0) = (req.snt_synack, req.retrans) {
        let rtt = now.saturating_duration_since(sent).as_micros().max(1) as u32;
        super::input::tcp_rtt_estimator(&mut t, rtt);
        super::input::tcp_set_rto(&mut t);
    }
    output::tcp_update_pacing_rate(stack, &mut t);
    TcpSock::new_raw(stack, t)
}

/// The child finished its handshake: into the listener's accept queue.
pub fn child_established(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let Some(parent) = t.parent.as_ref().and_then(|p| p.upgrade()) else {
        return;
    };
    parent.accept_q.lock().push_back(sk.clone());
    parent.wq.wake_all();
    let _ = stack;
}

/// `tcp_done`: the connection is over — unhash, stop timers, drop queues, wake
/// everyone.
pub fn tcp_done(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    // tcp_set_state(TCP_CLOSE): failed attempts and resets of established connections
    // (received RSTs and local aborts alike).
    match t.state {
        TcpState::SynSent | TcpState::SynRecv => stack.tcp.snmp.inc(Tcp::AttemptFails),
        TcpState::Established | TcpState::CloseWait => stack.tcp.snmp.inc(Tcp::EstabResets),
        _ => {}
    }
    t.state = TcpState::Close;
    t.shutdown = super::shutdown::RCV | super::shutdown::SEND;
    timer::clear_xmit_timer(sk, t);
    sk.timers.delack.del();
    sk.timers.keepalive.del();
    sk.timers.del_pace();
    t.write_queue.clear();
    t.rtx_queue.clear();
    t.ofo_queue.clear();
    t.packets_out = 0;
    t.retrans_out = 0;
    t.lost_out = 0;
    t.sacked_out = 0;
    t.wmem_queued = 0;
    t.frag_pending = 0;
    unhash(stack, sk, t);
    sk.wq.wake_all();
    if let Some(p) = t.parent.as_ref().and_then(|p| p.upgrade()) {
        p.wq.wake_all();
    }
}

/// Remove the socket from the lookup tables (`inet_unhash` + `inet_put_port`).
pub fn unhash(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    {
        let mut eh = stack.tcp.ehash.write();
        if eh
            .get(&(t.local, t.remote))
            .is_some_and(|s| Arc::ptr_eq(s, sk))
        {
            eh.remove(&(t.local, t.remote));
        }
    }
    {
        let mut lh = stack.tcp.lhash.write();
        if let Some(v) = lh.get_mut(&t.local.port()) {
            v.retain(|e| !Arc::ptr_eq(&e.sk, sk));
            if v.is_empty() {
                lh.remove(&t.local.port());
            }
        }
    }
    if t.local.port() != 0 {
        super::bhash_remove(stack, sk, t.local.port());
    }
}

/// A TIME_WAIT entry (Linux's `struct inet_timewait_sock`).
#[derive(Clone, Copy, Debug)]
pub struct TimeWait {
    /// Next sequence expected from the peer.
    pub rcv_nxt: u32,
    /// Our next sequence number.
    pub snd_nxt: u32,
    /// Window we advertise.
    pub rcv_wnd: u32,
    /// The peer's last TSval (timestamps on).
    pub ts_recent: Option<u32>,
    /// Our timestamp offset.
    pub tsoffset: u32,
    /// When the entry expires.
    pub expires: Instant,
    /// Last out-of-window ACK sent (`tw_last_oow_ack_time`), for the rate limit.
    pub last_oow_ack: Instant,
}

/// TIME_WAIT entries by (local, remote), expiring in creation order.
#[derive(Default)]
pub struct TimeWaitTable {
    map: Mutex<HashMap<(SocketAddrV4, SocketAddrV4), TimeWait>>,
    order: Mutex<VecDeque<(Instant, SocketAddrV4, SocketAddrV4)>>,
    timer: std::sync::OnceLock<Timer>,
}

impl std::fmt::Debug for TimeWaitTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimeWaitTable({})", self.map.lock().len())
    }
}

impl TimeWaitTable {
    /// Whether the pair is in TIME_WAIT.
    pub fn contains(&self, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
        self.map.lock().contains_key(&(local, remote))
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry (for `ss`).
    pub fn entries(&self) -> Vec<(SocketAddrV4, SocketAddrV4, TimeWait)> {
        self.map
            .lock()
            .iter()
            .map(|((l, r), tw)| (*l, *r, *tw))
            .collect()
    }

    fn insert(&self, stack: &Stack, local: SocketAddrV4, remote: SocketAddrV4, tw: TimeWait) {
        self.map.lock().insert((local, remote), tw);
        self.order.lock().push_back((tw.expires, local, remote));
        let t = self.timer.get_or_init(|| {
            Timer::new(|stack, now| {
                stack.tcp.tw.expire(stack, now);
            })
        });
        stack.timers.arm_earliest(t, tw.expires);
    }

    fn remove(&self, local: SocketAddrV4, remote: SocketAddrV4) {
        self.map.lock().remove(&(local, remote));
    }

    fn expire(&self, stack: &Stack, now: Instant) {
        let mut next = None;
        {
            let mut order = self.order.lock();
            let mut map = self.map.lock();
            while let Some(&(at, l, r)) = order.front() {
                if at > now {
                    next = Some(at);
                    break;
                }
                order.pop_front();
                if map.get(&(l, r)).is_some_and(|tw| tw.expires <= now) {
                    map.remove(&(l, r));
                } else if let Some(tw) = map.get(&(l, r)) {
                    // Restarted (a retransmitted FIN): re-queue at its new time.
                    order.push_back((tw.expires, l, r));
                }
            }
        }
        if let (Some(at), Some(t)) = (next, self.timer.get()) {
            stack.timers.arm_earliest(t, at);
        }
    }
}

/// `tcp_time_wait`: replace the socket by a TIME_WAIT entry for 60 s.
pub fn tcp_time_wait(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, _state: TcpState) {
    let now = stack.now();
    let tw = TimeWait {
        rcv_nxt: t.rcv_nxt,
        snd_nxt: t.snd_nxt,
        rcv_wnd: t.rcv_wnd,
        ts_recent: t.tstamp_ok.then_some(t.ts_recent),
        tsoffset: t.tsoffset,
        expires: now + TCP_TIMEWAIT_LEN,
        last_oow_ack: Instant::ZERO,
    };
    let (l, r) = (t.local, t.remote);
    stack.tcp.mib.inc(TcpExt::TW);
    // The socket is done; the pair lives on in TIME_WAIT.
    let port = t.local.port();
    tcp_done(stack, sk, t);
    t.state = TcpState::TimeWait;
    stack.tcp.tw.insert(stack, l, r, tw);
    let _ = port;
}

/// `tcp_timewait_state_process`: a segment for a TIME_WAIT pair.
pub fn tcp_timewait_state_process(stack: &Stack, skb: Skb, seg: &Seg) {
    let now = stack.now();
    let key = (seg.dst, seg.src);
    let Some(tw) = stack.tcp.tw.map.lock().get(&key).copied() else {
        return;
    };
    let paws_reject = match (tw.ts_recent, seg.ts) {
        (Some(r), Some((v, _))) => (r.wrapping_sub(v) as i32) > 0 && seg.flags & tcphdr::RST == 0,
        _ => false,
    };
    let rst = seg.flags & tcphdr::RST != 0;
    // An in-window segment (seq == rcv_nxt) can only be a reset or a bare ACK.
    if !paws_reject && seg.seq == tw.rcv_nxt && (seg.seq == seg.end_seq || rst) {
        if rst {
            // TIME_WAIT assassination (tcp_rfc1337 = 0): the entry goes.
            stack.tcp.tw.remove(seg.dst, seg.src);
        } else if let Some(e) = stack.tcp.tw.map.lock().get_mut(&key) {
            e.expires = now + TCP_TIMEWAIT_LEN;
        }
        return;
    }
    // A new SYN may reopen the pair if it is not an old duplicate (a higher sequence,
    // or a newer timestamp); its ISN continues from ours (tcp_tw_isn).
    let newer_ts = match (tw.ts_recent, seg.ts) {
        (Some(r), Some((v, _))) => (r.wrapping_sub(v) as i32) < 0,
        _ => false,
    };
    if seg.flags & tcphdr::SYN != 0
        && !rst
        && seg.flags & tcphdr::ACK == 0
        && !paws_reject
        && (super::seq::after(seg.seq, tw.rcv_nxt) || newer_ts)
    {
        stack.tcp.tw.remove(seg.dst, seg.src);
        stack.tcp.mib.inc(TcpExt::TWRecycled);
        if let Some(l) = super::input::lookup_listener(stack, seg.dst, seg.src) {
            // The SYN itself goes on (a copy of its TCP part alone would lose the IP
            // header the listener reads the addresses from).
            let mut syn = skb;
            syn.cb.tcp.tw_isn = tw.snd_nxt.wrapping_add(65535 + 2).max(1);
            l.rcv_or_backlog(stack, syn);
        }
        return;
    }
    if paws_reject {
        stack.tcp.mib.inc(TcpExt::PAWSEstab);
    }
    if rst {
        return;
    }
    // Out of window (a retransmitted FIN, say): restart the 60 s and ACK it, at most
    // once per tcp_invalid_ratelimit.
    let mut last = Instant::ZERO;
    if let Some(e) = stack.tcp.tw.map.lock().get_mut(&key) {
        if paws_reject || seg.flags & tcphdr::ACK != 0 {
            e.expires = now + TCP_TIMEWAIT_LEN;
        }
        last = e.last_oow_ack;
    }
    let data = seg.seq != seg.end_seq && seg.flags & tcphdr::SYN == 0;
    if !data {
        let limited =
            super::input::oow_rate_limited(stack, &mut last, TcpExt::TCPACKSkippedTimeWait);
        if let Some(e) = stack.tcp.tw.map.lock().get_mut(&key) {
            e.last_oow_ack = last;
        }
        if limited {
            return;
        }
    }
    let repr = TcpRepr {
        src_port: seg.dst.port(),
        dst_port: seg.src.port(),
        seq_number: TcpSeqNumber(tw.snd_nxt),
        ack_number: Some(TcpSeqNumber(tw.rcv_nxt)),
        flags: TcpFlags::empty(),
        window_len: tw.rcv_wnd.min(65535) as u16,
        urgent_ptr: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_ranges: [None; 4],
        timestamp: tw
            .ts_recent
            .map(|r| ((now.as_millis() as u32).wrapping_add(tw.tsoffset), r)),
        payload_len: 0,
    };
    output::send_raw(stack, seg.dst, seg.src, &repr);
}

/// How long a SYN-ACK is retried in total (`tcp_synack_retries` with backoff from 1 s).
pub fn synack_lifetime(retries: u32) -> Duration {
    TCP_TIMEOUT_INIT * ((1 << (retries + 1)) - 1)
}
