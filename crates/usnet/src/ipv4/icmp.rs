//! ICMP (Linux's `net/ipv4/icmp.c`): echo replies, error generation (`icmp_send`) with
//! Linux's rate limits, and error reception (`icmp_unreach`) that lowers path MTUs and
//! delivers errors to the sockets they concern.
//!
//! Rate limits, as Linux: a global token bucket of `icmp_msgs_per_sec` (1000) with a
//! burst of `icmp_msgs_burst` (50), and a per-destination limit of one error per
//! `icmp_ratelimit` (1 s, burst 6) for the types in `icmp_ratemask` (destination
//! unreachable, source quench, time exceeded, parameter problem) — except
//! fragmentation-needed, which path MTU discovery depends on, and errors to this host.

use crate::hash::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use parking_lot::Mutex;
use usnet_wire::checksum;

use super::output::{ip_local_out, ip_push_header, IpSockOpts, PmtuDisc, MAX_HEADER};
use super::route::{Flowi4, RtnType};
use crate::mib::Icmp;
use crate::skb::Skb;
use crate::sock::errno;
use crate::time::Instant;
use crate::Stack;

/// Echo reply.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable.
pub const DEST_UNREACH: u8 = 3;
/// Source quench.
pub const SOURCE_QUENCH: u8 = 4;
/// Redirect.
pub const REDIRECT: u8 = 5;
/// Echo request.
pub const ECHO: u8 = 8;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter problem.
pub const PARAMETERPROB: u8 = 12;
/// Timestamp request.
pub const TIMESTAMP: u8 = 13;
/// Timestamp reply.
pub const TIMESTAMPREPLY: u8 = 14;

/// Destination-unreachable code: fragmentation needed and DF set.
pub const FRAG_NEEDED: u8 = 4;
/// Destination-unreachable code: port unreachable.
pub const PORT_UNREACH: u8 = 3;

/// Rate-limit state (global bucket and per-destination tokens).
#[derive(Debug, Default)]
pub struct IcmpState {
    global: Mutex<(u64, Instant)>,
    peers: Mutex<HashMap<Ipv4Addr, (u64, Instant)>>,
}

/// Whether `t` is an error type (errors are never sent about errors).
fn is_error(t: u8) -> bool {
    matches!(
        t,
        DEST_UNREACH | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETERPROB
    )
}

/// Linux's `icmp_err_convert`: the errno a socket sees for an ICMP error, and whether it
/// is fatal.
pub fn err_convert(kind: u8, code: u8) -> (i32, bool) {
    match kind {
        DEST_UNREACH => match code {
            0 => (errno::ENETUNREACH, true),
            1 => (errno::EHOSTUNREACH, true),
            2 => (errno::ENOPROTOOPT, true),
            3 => (errno::ECONNREFUSED, true),
            4 => (errno::EMSGSIZE, false),
            5 => (errno::EOPNOTSUPP, false),
            6 | 9 | 11 => (errno::ENETUNREACH, true),
            7 => (errno::EHOSTDOWN, true),
            8 => (errno::ENONET, true),
            _ => (errno::EHOSTUNREACH, true),
        },
        TIME_EXCEEDED => (errno::EHOSTUNREACH, false),
        PARAMETERPROB => (errno::EPROTO, false),
        _ => (errno::EHOSTUNREACH, false),
    }
}

fn count_out(stack: &Stack, t: u8) {
    let m = &stack.ipv4.icmp_mib;
    m.inc(Icmp::OutMsgs);
    let c = match t {
        ECHO_REPLY => Icmp::OutEchoReps,
        DEST_UNREACH => Icmp::OutDestUnreachs,
        SOURCE_QUENCH => Icmp::OutSrcQuenchs,
        REDIRECT => Icmp::OutRedirects,
        ECHO => Icmp::OutEchos,
        TIME_EXCEEDED => Icmp::OutTimeExcds,
        PARAMETERPROB => Icmp::OutParmProbs,
        TIMESTAMP => Icmp::OutTimestamps,
        TIMESTAMPREPLY => Icmp::OutTimestampReps,
        _ => return,
    };
    m.inc(c);
}

impl IcmpState {
    /// `icmp_global_allow`: the global token bucket.
    fn global_allow(&self, stack: &Stack, now: Instant) -> bool {
        let per_sec = stack.sysctl.icmp_msgs_per_sec().max(0) as u64;
        let burst = stack.sysctl.icmp_msgs_burst().max(0) as u64;
        if per_sec == 0 {
            return true;
        }
        let mut g = self.global.lock();
        let (credit, stamp) = *g;
        let elapsed_ms = now.saturating_duration_since(stamp).as_millis() as u64;
        let credit = if stamp == Instant::ZERO {
            burst
        } else {
            (credit + elapsed_ms * per_sec / 1000).min(burst)
        };
        if credit == 0 {
            *g = (0, if elapsed_ms > 0 { now } else { stamp });
            return false;
        }
        *g = (credit - 1, now);
        true
    }

    /// `inet_peer_xrlim_allow`: one error per `icmp_ratelimit` to a destination, with a
    /// burst of 6.
    fn peer_allow(&self, stack: &Stack, dst: Ipv4Addr, now: Instant) -> bool {
        let timeout = stack.sysctl.icmp_ratelimit().max(0) as u64 * 1_000_000;
        if timeout == 0 {
            return true;
        }
        let burst = 6 * timeout;
        let mut p = self.peers.lock();
        if p.len() > 65536 {
            p.clear();
        }
        let e = p.entry(dst).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(e.1).as_nanos() as u64;
        e.0 = (e.0 + elapsed).min(burst);
        e.1 = now;
        if e.0 >= timeout {
            e.0 -= timeout;
            true
        } else {
            false
        }
    }
}

/// `icmp_send`: send an ICMP error of `kind`/`code` about `orig` (whose data starts at
/// its IP header) back to its source. `info` is the next-hop MTU for
/// fragmentation-needed, the pointer for parameter problem.
pub fn icmp_send(stack: &Stack, orig: &Skb, kind: u8, code: u8, info: u32) {
    let d = orig.data();
    if d.len() < 20 {
        return;
    }
    let ihl = usize::from(d[0] & 0x0f) * 4;
    if ihl < 20 || d.len() < ihl {
        return;
    }
    let frag_off = u16::from_be_bytes([d[6], d[7]]);
    let proto = d[9];
    let osrc = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let odst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    // Never about fragments other than the first, about broadcasts, about errors.
    if frag_off & 0x1fff != 0 {
        return;
    }
    if osrc.is_unspecified() || osrc.is_broadcast() || osrc.is_multicast() {
        return;
    }
    if odst.is_multicast() || super::addr::is_broadcast(stack, odst) {
        return;
    }
    if proto == 1 && d.len() > ihl && is_error(d[ihl]) {
        return;
    }
    let now = stack.now();
    let st = &stack.ipv4.icmp;
    let mask = stack.sysctl.icmp_ratemask() as u32;
    let limited =
        kind < 32 && mask & (1 << kind) != 0 && !(kind == DEST_UNREACH && code == FRAG_NEEDED);
    let to_self = super::addr::is_local(stack, osrc).is_some();
    if limited && !to_self {
        if !st.global_allow(stack, now) {
            stack.ipv4.icmp_mib.inc(Icmp::OutRateLimitGlobal);
            return;
        }
        if !st.peer_allow(stack, osrc, now) {
            stack.ipv4.icmp_mib.inc(Icmp::OutRateLimitHost);
            return;
        }
    }
    // Source: the address the packet was sent to, if ours; else let routing choose.
    let saddr = super::addr::is_local(stack, odst).map(|_| odst);
    let dst = match stack.ipv4.fib.route_output(
        stack,
        &Flowi4 {
            daddr: Some(osrc),
            saddr,
            ..Flowi4::default()
        },
    ) {
        Ok(d) => d,
        Err(_) => return,
    };
    // Quote as much of the original as fits in 576 bytes.
    let room = 576 - 20 - 8;
    let quote = orig.len().min(room);
    let mut skb = Skb::alloc(8 + quote, MAX_HEADER);
    {
        let h = skb.put(8 + quote);
        h[0] = kind;
        h[1] = code;
        h[2..4].copy_from_slice(&[0, 0]);
        let rest: [u8; 4] = match (kind, code) {
            (DEST_UNREACH, FRAG_NEEDED) => {
                let m = (info.min(0xffff) as u16).to_be_bytes();
                [0, 0, m[0], m[1]]
            }
            (PARAMETERPROB, _) => [info as u8, 0, 0, 0],
            _ => [0; 4],
        };
        h[4..8].copy_from_slice(&rest);
        orig.copy_bits(0, &mut h[8..8 + quote]);
        let c = checksum::checksum(h);
        h[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let opts = IpSockOpts {
        tos: (d[1] & 0x1e) | 0xc0,
        pmtudisc: PmtuDisc::Dont,
        priority: 6,
        ..IpSockOpts::default()
    };
    let src = saddr.unwrap_or(dst.saddr);
    ip_push_header(stack, &dst, &mut skb, src, osrc, 1, &opts);
    count_out(stack, kind);
    let _ = ip_local_out(stack, &dst, skb);
}

/// Send an ICMP message (echo/timestamp reply) `body` (ICMP header onwards, checksum
/// filled here) from `saddr` to `daddr`.
fn icmp_reply(stack: &Stack, saddr: Ipv4Addr, daddr: Ipv4Addr, tos: u8, mut body: Skb) {
    {
        let h = body.data_mut();
        h[2..4].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(h);
        h[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let Ok(dst) = stack.ipv4.fib.route_output(
        stack,
        &Flowi4 {
            daddr: Some(daddr),
            saddr: Some(saddr),
            ..Flowi4::default()
        },
    ) else {
        return;
    };
    let kind = body.data()[0];
    let opts = IpSockOpts {
        tos,
        pmtudisc: PmtuDisc::Dont,
        ..IpSockOpts::default()
    };
    ip_push_header(stack, &dst, &mut body, saddr, daddr, 1, &opts);
    count_out(stack, kind);
    let _ = ip_local_out(stack, &dst, body);
}

/// `icmp_rcv`: `skb.data()` is the ICMP message; the network header is set; `local`
/// says whether the packet was addressed to one of our unicast addresses.
pub fn icmp_rcv(stack: &Stack, skb: Skb, broadcast: bool) {
    let m = &stack.ipv4.icmp_mib;
    m.inc(Icmp::InMsgs);
    let d = skb.data();
    if d.len() < 8 {
        m.inc(Icmp::InErrors);
        return;
    }
    if !skb.ip_summed.is_verified() {
        let mut acc = checksum::Accumulator::new();
        for c in skb.chunks() {
            acc.add(c);
        }
        if acc.finish() != 0 {
            m.inc(Icmp::InCsumErrors);
            m.inc(Icmp::InErrors);
            return;
        }
    }
    let nh = skb.network_header();
    if nh.len() < 20 {
        return;
    }
    let src = Ipv4Addr::new(nh[12], nh[13], nh[14], nh[15]);
    let dst = Ipv4Addr::new(nh[16], nh[17], nh[18], nh[19]);
    let tos = nh[1];
    let kind = d[0];
    match kind {
        ECHO => {
            m.inc(Icmp::InEchos);
            if stack.sysctl.icmp_echo_ignore_all() != 0
                || (broadcast && stack.sysctl.icmp_echo_ignore_broadcasts() != 0)
            {
                return;
            }
            let from = if broadcast {
                match super::addr::select_addr_for(stack, src) {
                    Some(a) => a,
                    None => return,
                }
            } else {
                dst
            };
            let mut reply = Skb::alloc(skb.len(), MAX_HEADER);
            {
                let r = reply.put(skb.len());
                skb.copy_bits(0, r);
                r[0] = ECHO_REPLY;
                r[1] = 0;
            }
            icmp_reply(stack, from, src, tos, reply);
        }
        ECHO_REPLY => {
            m.inc(Icmp::InEchoReps);
            super::ping::ping_rcv(stack, skb, src);
        }
        TIMESTAMP => {
            m.inc(Icmp::InTimestamps);
            if d.len() < 20 || broadcast {
                return;
            }
            let ms = (stack.now().as_millis() % 86_400_000) as u32;
            let mut reply = Skb::alloc(20, MAX_HEADER);
            {
                let r = reply.put(20);
                r[..8].copy_from_slice(&d[..8]);
                r[0] = TIMESTAMPREPLY;
                r[8..12].copy_from_slice(&d[8..12]);
                r[12..16].copy_from_slice(&ms.to_be_bytes());
                r[16..20].copy_from_slice(&ms.to_be_bytes());
            }
            icmp_reply(stack, dst, src, tos, reply);
        }
        TIMESTAMPREPLY => m.inc(Icmp::InTimestampReps),
        DEST_UNREACH => {
            m.inc(Icmp::InDestUnreachs);
            icmp_unreach(stack, skb);
        }
        TIME_EXCEEDED => {
            m.inc(Icmp::InTimeExcds);
            icmp_unreach(stack, skb);
        }
        PARAMETERPROB => {
            m.inc(Icmp::InParmProbs);
            icmp_unreach(stack, skb);
        }
        SOURCE_QUENCH => m.inc(Icmp::InSrcQuenchs),
        REDIRECT => m.inc(Icmp::InRedirects),
        18.. => m.inc(Icmp::InErrors),
        _ => {}
    }
}

/// An ICMP error as the socket layer sees it (what `err_handler` gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// ICMP type.
    pub kind: u8,
    /// ICMP code.
    pub code: u8,
    /// Next-hop MTU (fragmentation needed) or pointer.
    pub info: u32,
    /// Our address in the quoted packet (its source).
    pub saddr: Ipv4Addr,
    /// The peer's address in the quoted packet.
    pub daddr: Ipv4Addr,
    /// Quoted protocol.
    pub protocol: u8,
    /// Quoted source port (or ICMP echo identifier).
    pub sport: u16,
    /// Quoted destination port.
    pub dport: u16,
}

/// `icmp_unreach`: parse the quoted datagram, lower the path MTU on fragmentation
/// needed, and hand the error to the protocol (`icmp_socket_deliver` → `err_handler`).
fn icmp_unreach(stack: &Stack, skb: Skb) {
    let d = skb.data();
    if d.len() < 8 + 20 {
        stack.ipv4.icmp_mib.inc(Icmp::InErrors);
        return;
    }
    let kind = d[0];
    let code = d[1];
    let q = &d[8..];
    let ihl = usize::from(q[0] & 0x0f) * 4;
    if q[0] >> 4 != 4 || ihl < 20 || q.len() < ihl + 8 {
        stack.ipv4.icmp_mib.inc(Icmp::InErrors);
        return;
    }
    let saddr = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
    let daddr = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
    if super::addr::is_broadcast(stack, daddr) {
        return; // bogus error about a broadcast we sent
    }
    let l4 = &q[ihl..];
    let mut info = 0;
    if kind == DEST_UNREACH && code == FRAG_NEEDED {
        info = u32::from(u16::from_be_bytes([d[6], d[7]]));
        if stack.sysctl.ip_no_pmtu_disc() == 0 && info >= 68 {
            stack.ipv4.fib.update_pmtu(stack, daddr, info);
        }
    } else if kind == PARAMETERPROB {
        info = u32::from(d[4]);
    }
    let e = IcmpError {
        kind,
        code,
        info,
        saddr,
        daddr,
        protocol: q[9],
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
    };
    match e.protocol {
        17 => super::udp::udp_err(stack, &e),
        1 => super::ping::ping_err(stack, &e, u16::from_be_bytes([l4[4], l4[5]])),
        6 => {
            if let Some(h) = stack.ipv4.tcp_err.get() {
                h(stack, &e);
            }
        }
        _ => {}
    }
}

/// The route type an ICMP reply would use (for tests).
pub fn reply_kind(stack: &Stack, to: Ipv4Addr) -> Option<RtnType> {
    stack
        .ipv4
        .fib
        .route_output(
            stack,
            &Flowi4 {
                daddr: Some(to),
                ..Flowi4::default()
            },
        )
        .ok()
        .map(|d: Arc<super::route::Dst>| d.kind)
}
