//! IPv4 (Linux's `net/ipv4/`): routing over a level-compressed trie, the output and
//! input paths, fragmentation and reassembly, ARP on top of the neighbour table, ICMP,
//! UDP and echo sockets, with netfilter's hooks on the way.
//!
//! [`Ipv4`] is the per-stack state; [`init`] registers the protocol handlers and brings
//! up `lo` with 127.0.0.1/8, as a Linux boot does.

pub mod addr;
pub mod arp;
pub mod defrag;
pub mod fib_trie;
pub mod icmp;
pub mod input;
pub mod output;
pub mod ping;
pub mod route;
pub mod udp;

use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use crate::mib::{IcmpMib, Ip, IpExtMib, IpMib, UdpMib};
use crate::neigh::NeighTable;
use crate::netfilter::{Netfilter, RejectWith};
use crate::skb::Skb;
use crate::timer::Timer;
use crate::Stack;

/// A protocol's receive entry (`tcp_v4_rcv`), registered by the TCP layer.
pub type RcvHook = Box<dyn Fn(&Stack, Skb) + Send + Sync>;
/// A protocol's ICMP error entry (`tcp_v4_err`).
pub type ErrHook = Box<dyn Fn(&Stack, &icmp::IcmpError) + Send + Sync>;
/// Sends a TCP reset in answer to a segment (for netfilter's REJECT --reject-with
/// tcp-reset).
pub type RstHook = Box<dyn Fn(&Stack, &Skb) + Send + Sync>;

/// Per-stack IPv4 state.
pub struct Ipv4 {
    /// Routing tables and the dst cache.
    pub fib: route::Fib,
    /// The ARP table.
    pub arp: NeighTable,
    /// Reassembly queues.
    pub frags: defrag::IpFrags,
    /// Netfilter hooks and the filter table.
    pub nf: Netfilter,
    /// `Ip:` counters.
    pub mib: IpMib,
    /// `IpExt:` counters.
    pub mib_ext: IpExtMib,
    /// `Icmp:` counters.
    pub icmp_mib: IcmpMib,
    /// `Udp:` counters.
    pub udp_mib: UdpMib,
    /// IP ID generator.
    pub idents: output::Idents,
    /// ICMP rate limits.
    pub icmp: icmp::IcmpState,
    /// UDP sockets.
    pub udp: udp::UdpTable,
    /// Echo sockets.
    pub ping: ping::PingTable,
    /// TCP's receive entry.
    pub tcp_rcv: OnceLock<RcvHook>,
    /// TCP's ICMP error entry.
    pub tcp_err: OnceLock<ErrHook>,
    /// TCP's reset sender.
    pub tcp_rst: OnceLock<RstHook>,
    frag_timer: OnceLock<Timer>,
}

impl std::fmt::Debug for Ipv4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipv4")
            .field("fib", &self.fib)
            .field("arp", &self.arp)
            .finish()
    }
}

impl Ipv4 {
    /// Fresh state; `key` seeds the IP ID generator.
    pub fn new(key: u64) -> Ipv4 {
        Ipv4 {
            fib: route::Fib::default(),
            arp: NeighTable::default(),
            frags: defrag::IpFrags::new(defrag::FragConfig::default()),
            nf: Netfilter::new(),
            mib: IpMib::default(),
            mib_ext: IpExtMib::default(),
            icmp_mib: IcmpMib::default(),
            udp_mib: UdpMib::default(),
            idents: output::Idents::new(key),
            icmp: icmp::IcmpState::default(),
            udp: udp::UdpTable::default(),
            ping: ping::PingTable::default(),
            tcp_rcv: OnceLock::new(),
            tcp_err: OnceLock::new(),
            tcp_rst: OnceLock::new(),
            frag_timer: OnceLock::new(),
        }
    }
}

/// Largest IPv4 datagram the 16-bit total length can describe (`IP_MAX_MTU`).
pub const IP_MAX_MTU: usize = 0xffff;

/// `iph_set_totlen`: write `len` as the total length of the IPv4 header `iph`, or 0 for
/// a BIG TCP packet longer than a total length can say.
#[inline]
pub fn iph_set_totlen(iph: &mut [u8], len: usize) {
    let v = if len <= IP_MAX_MTU { len as u16 } else { 0 };
    iph[2..4].copy_from_slice(&v.to_be_bytes());
}

/// `iph_totlen`: the length of the IPv4 datagram at `skb`'s data — its header's total
/// length, or, when that reads 0 on a TCP GSO packet (BIG TCP), the skb's own length.
/// The caller has checked that 20 header bytes are there.
#[inline]
pub fn iph_totlen(skb: &Skb) -> usize {
    iph_totlen_at(skb, 0)
}

/// [`iph_totlen`] of the IPv4 header `nh` bytes into `skb`'s data (a NIC looking past
/// the Ethernet header).
#[inline]
pub fn iph_totlen_at(skb: &Skb, nh: usize) -> usize {
    let d = skb.data();
    let len = usize::from(u16::from_be_bytes([d[nh + 2], d[nh + 3]]));
    if len != 0 || skb.gso_type != crate::skb::GsoType::TcpV4 || skb.gso_size == 0 {
        len
    } else {
        skb.len().saturating_sub(nh)
    }
}

/// `ip_send_check`: recompute the header checksum of the IPv4 header `iph` (its IHL
/// bytes, or what there is).
#[inline]
pub fn ip_send_check(iph: &mut [u8]) {
    let hlen = (usize::from(iph[0] & 0x0f) * 4).min(iph.len());
    iph[10..12].copy_from_slice(&[0, 0]);
    let c = usnet_wire::checksum::checksum(&iph[..hlen]);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Length of each IP datagram a GSO skb (at its IP header) is cut into: IP and
/// TCP/UDP headers plus `gso_size` (what `skb_gso_validate_network_len` checks).
pub(crate) fn gso_network_seglen(skb: &Skb) -> usize {
    let d = skb.data();
    let ihl = usize::from(d.first().map_or(5, |b| b & 0x0f)) * 4;
    let l4 = if skb.gso_type == crate::skb::GsoType::TcpV4 {
        d.get(ihl + 12).map_or(20, |b| usize::from(b >> 4) * 4)
    } else {
        8
    };
    ihl + l4 + usize::from(skb.gso_size)
}

/// Register IPv4 and ARP with the device layer and bring up `lo` (127.0.0.1/8).
pub fn init(stack: &Stack) {
    let _ = stack.dev_add_pack(crate::dev::rx::ETH_P_IP, Arc::new(input::IpHandler));
    let _ = stack.dev_add_pack(crate::dev::rx::ETH_P_ARP, Arc::new(arp::ArpHandler));
    if let Ok(lo) = crate::drivers::loopback::create(stack) {
        let _ = addr::addr_add(stack, &lo, Ipv4Addr::LOCALHOST, 8);
    }
    stack.ipv4.mib.set(Ip::Forwarding, 2);
    stack
        .ipv4
        .mib
        .set(Ip::DefaultTTL, stack.sysctl.ip_default_ttl() as u64);
}

/// Carry out a netfilter REJECT: ICMP unreachable of the requested kind, or a TCP reset.
pub(crate) fn reject(stack: &Stack, skb: &Skb, with: RejectWith) {
    let code = match with {
        RejectWith::IcmpNetUnreachable => 0,
        RejectWith::IcmpHostUnreachable => 1,
        RejectWith::IcmpProtoUnreachable => 2,
        RejectWith::IcmpPortUnreachable => 3,
        RejectWith::IcmpNetProhibited => 9,
        RejectWith::IcmpHostProhibited => 10,
        RejectWith::IcmpAdminProhibited => 13,
        RejectWith::TcpReset => {
            if let Some(h) = stack.ipv4.tcp_rst.get() {
                h(stack, skb);
            }
            return;
        }
    };
    icmp::icmp_send(stack, skb, icmp::DEST_UNREACH, code, 0);
}

/// Take the reassembly limits from the `net.ipv4.ipfrag_*` sysctls (read as each
/// fragment arrives, as Linux reads its netns's).
pub(crate) fn sync_frag_config(stack: &Stack) {
    let s = &stack.sysctl;
    let cur = stack.ipv4.frags.config();
    let want = defrag::FragConfig {
        high_thresh: s.ipfrag_high_thresh().max(0) as usize,
        low_thresh: s.ipfrag_low_thresh().max(0) as usize,
        timeout: std::time::Duration::from_secs(s.ipfrag_time().max(1) as u64),
        ..cur
    };
    if want != cur {
        stack.ipv4.frags.set_config(want);
    }
}

/// Copy reassembly counters that changed during a defrag call into the `Ip:` MIB.
pub(crate) fn sync_defrag_mib(stack: &Stack, before: &defrag::DefragStats) {
    let after = stack.ipv4.frags.stats();
    let m = &stack.ipv4.mib;
    m.add(
        Ip::ReasmFails,
        after.reasm_fails.saturating_sub(before.reasm_fails),
    );
    m.add(
        Ip::ReasmTimeout,
        after.reasm_timeout.saturating_sub(before.reasm_timeout),
    );
    stack.ipv4.mib_ext.add(
        crate::mib::IpExt::ReasmOverlaps,
        after.reasm_overlaps.saturating_sub(before.reasm_overlaps),
    );
}

/// Keep the reassembly timer armed for the oldest queue; on expiry, send ICMP time
/// exceeded (fragment reassembly) for queues whose first fragment had arrived.
pub(crate) fn arm_frag_timer(stack: &Stack) {
    let Some(at) = stack.ipv4.frags.next_expiry() else {
        return;
    };
    let t = stack.ipv4.frag_timer.get_or_init(|| {
        Timer::new(|stack, now| {
            let before = stack.ipv4.frags.stats();
            for q in stack.ipv4.frags.expire(now) {
                if let Some(first) = q.first_fragment {
                    icmp::icmp_send(stack, &first, icmp::TIME_EXCEEDED, 1, 0);
                }
            }
            sync_defrag_mib(stack, &before);
            arm_frag_timer(stack);
        })
    });
    stack.timers.arm_earliest(t, at);
}
