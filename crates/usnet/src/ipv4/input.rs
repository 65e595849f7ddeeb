//! The IPv4 receive path (Linux's `net/ipv4/ip_input.c` and `ip_forward.c`):
//! `ip_rcv` (validation with counted drops, NF PRE_ROUTING) → `ip_rcv_finish` (input
//! route) → `ip_local_deliver` (reassembly, NF LOCAL_IN) → `ip_local_deliver_finish`
//! (demux to ICMP, UDP, TCP) — or `ip_forward` (TTL, ICMP time exceeded, path MTU,
//! NF FORWARD) → `ip_forward_finish` → `dst_output`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use usnet_wire::checksum;

use super::output::{dst_output, nf, IPSKB_FORWARDED, IP_DF};
use super::route::InputRoute;
use crate::dev::rx::PacketHandler;
use crate::dev::NetDevice;
use crate::mib::{Ip, IpExt};
use crate::netfilter::{NfHook, Verdict};
use crate::skb::{PktType, Skb};
use crate::trace::Stage;
use crate::Stack;

/// The IPv4 protocol handler (`ip_rcv`, registered for EtherType 0x0800).
pub struct IpHandler;

impl PacketHandler for IpHandler {
    fn rcv(&self, stack: &Stack, dev: &Arc<NetDevice>, skb: Skb) {
        ip_rcv(stack, dev, skb);
    }
}

/// `ip_rcv` + `ip_rcv_core`: validate the header; every malformed packet is a counted
/// drop (InHdrErrors, InCsumErrors, InTruncatedPkts).
pub fn ip_rcv(stack: &Stack, dev: &Arc<NetDevice>, mut skb: Skb) {
    stack
        .trace
        .hit(Stage::IpRcv, skb.trace_id, skb.len(), stack.now());
    if skb.pkt_type == PktType::OtherHost {
        return;
    }
    let ip = &stack.ipv4;
    ip.mib.inc(Ip::InReceives);
    ip.mib_ext.add(IpExt::InOctets, skb.len() as u64);
    match skb.pkt_type {
        PktType::Broadcast => ip.mib_ext.inc(IpExt::InBcastPkts),
        PktType::Multicast => ip.mib_ext.inc(IpExt::InMcastPkts),
        _ => {}
    }
    if !skb.may_pull(20) {
        ip.mib.inc(Ip::InHdrErrors);
        return;
    }
    let (ihl, tot) = (
        usize::from(skb.data()[0] & 0x0f) * 4,
        super::iph_totlen(&skb),
    );
    if skb.data()[0] >> 4 != 4 || ihl < 20 || !skb.may_pull(ihl) {
        ip.mib.inc(Ip::InHdrErrors);
        return;
    }
    if checksum::checksum(&skb.data()[..ihl]) != 0 {
        ip.mib_ext.inc(IpExt::InCsumErrors);
        ip.mib.inc(Ip::InHdrErrors);
        return;
    }
    if skb.len() < tot {
        ip.mib_ext.inc(IpExt::InTruncatedPkts);
        ip.mib.inc(Ip::InDiscards);
        return;
    }
    if tot < ihl {
        ip.mib.inc(Ip::InHdrErrors);
        return;
    }
    skb.trim(tot);
    skb.reset_network_header();
    skb.set_transport_header(ihl);
    skb.cb.ip.iif = dev.ifindex;
    if nf(stack, NfHook::PreRouting, &skb, Some(dev.name()), None) != Verdict::Accept {
        return;
    }
    ip_rcv_finish(stack, dev, skb);
}

fn addrs(skb: &Skb) -> (Ipv4Addr, Ipv4Addr) {
    let h = skb.data();
    (
        Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        Ipv4Addr::new(h[16], h[17], h[18], h[19]),
    )
}

/// Whether the header carries a source-route option (dropped, as Linux with
/// `accept_source_route = 0`).
fn has_source_route(opts: &[u8]) -> bool {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return false,
            1 => i += 1,
            t => {
                if t == 0x83 || t == 0x89 {
                    return true;
                }
                let Some(&l) = opts.get(i + 1) else {
                    return false;
                };
                if l < 2 {
                    return false;
                }
                i += usize::from(l);
            }
        }
    }
    false
}

/// `ip_rcv_finish`: the input route decides — deliver, forward, or drop with the right
/// counter (a host that does not forward counts InAddrErrors; a router with no route
/// answers ICMP net unreachable and counts InNoRoutes).
pub fn ip_rcv_finish(stack: &Stack, dev: &Arc<NetDevice>, skb: Skb) {
    let ip = &stack.ipv4;
    let (saddr, daddr) = addrs(&skb);
    let ihl = usize::from(skb.data()[0] & 0x0f) * 4;
    if ihl > 20 && has_source_route(&skb.data()[20..ihl]) {
        return;
    }
    match ip.fib.route_input(stack, daddr, saddr, dev) {
        InputRoute::Local => ip_local_deliver(stack, skb, false),
        InputRoute::Broadcast => ip_local_deliver(stack, skb, true),
        InputRoute::Forward(dst) => ip_forward(stack, dev, &dst, skb),
        InputRoute::Unreachable { code, forwarding } => {
            if !forwarding {
                ip.mib.inc(Ip::InAddrErrors);
                return;
            }
            if code == 0 {
                ip.mib_ext.inc(IpExt::InNoRoutes);
            }
            super::icmp::icmp_send(stack, &skb, super::icmp::DEST_UNREACH, code, 0);
        }
        InputRoute::Martian => ip.mib.inc(Ip::InAddrErrors),
    }
}

/// `ip_local_deliver`: reassemble fragments, pass NF LOCAL_IN, then demultiplex.
pub fn ip_local_deliver(stack: &Stack, skb: Skb, broadcast: bool) {
    stack
        .trace
        .hit(Stage::IpLocalDeliver, skb.trace_id, skb.len(), stack.now());
    let ip = &stack.ipv4;
    let frag = u16::from_be_bytes([skb.data()[6], skb.data()[7]]) & 0x3fff != 0;
    let skb = if frag {
        ip.mib.inc(Ip::ReasmReqds);
        super::sync_frag_config(stack);
        let before = ip.frags.stats();
        let r = ip.frags.ip_defrag(skb, stack.now());
        super::sync_defrag_mib(stack, &before);
        super::arm_frag_timer(stack);
        match r {
            super::defrag::DefragResult::Complete(s) => {
                ip.mib.inc(Ip::ReasmOKs);
                s
            }
            _ => return,
        }
    } else {
        skb
    };
    let in_dev = stack.devs.by_index(skb.cb.ip.iif);
    match nf(
        stack,
        NfHook::LocalIn,
        &skb,
        in_dev.as_ref().map(|d| d.name()),
        None,
    ) {
        Verdict::Accept => {}
        Verdict::Reject(with) => {
            super::reject(stack, &skb, with);
            return;
        }
        Verdict::Drop => return,
    }
    ip_local_deliver_finish(stack, skb, broadcast);
}

/// `ip_local_deliver_finish`: hand the payload to ICMP, UDP or TCP; anything else gets
/// ICMP protocol unreachable (InUnknownProtos).
pub fn ip_local_deliver_finish(stack: &Stack, mut skb: Skb, broadcast: bool) {
    let ip = &stack.ipv4;
    let (saddr, daddr) = addrs(&skb);
    let ihl = usize::from(skb.data()[0] & 0x0f) * 4;
    let proto = skb.data()[9];
    ip.mib.inc(Ip::InDelivers);
    skb.reset_network_header();
    skb.pull(ihl);
    skb.reset_transport_header();
    match proto {
        1 => super::icmp::icmp_rcv(stack, skb, broadcast),
        17 => super::udp::udp_rcv(stack, skb, saddr, daddr, broadcast),
        6 => match ip.tcp_rcv.get() {
            Some(h) => h(stack, skb),
            None => {
                skb.push(ihl);
                ip.mib.inc(Ip::InUnknownProtos);
                super::icmp::icmp_send(stack, &skb, super::icmp::DEST_UNREACH, 2, 0);
            }
        },
        _ => {
            skb.push(ihl);
            ip.mib.inc(Ip::InUnknownProtos);
            if !broadcast {
                super::icmp::icmp_send(stack, &skb, super::icmp::DEST_UNREACH, 2, 0);
            }
        }
    }
}

/// `ip_forward`: a router's decisions for a packet not addressed to it.
pub fn ip_forward(
    stack: &Stack,
    in_dev: &Arc<NetDevice>,
    dst: &Arc<super::route::Dst>,
    mut skb: Skb,
) {
    let ip = &stack.ipv4;
    if skb.pkt_type != PktType::Host {
        ip.mib.inc(Ip::InDiscards);
        return;
    }
    let ttl = skb.data()[8];
    if ttl <= 1 {
        // TTL would reach 0: ICMP time exceeded in transit.
        super::icmp::icmp_send(stack, &skb, super::icmp::TIME_EXCEEDED, 0, 0);
        ip.mib.inc(Ip::InHdrErrors);
        return;
    }
    let mtu = dst.mtu(stack.now()) as usize;
    let df = u16::from_be_bytes([skb.data()[6], skb.data()[7]]) & IP_DF != 0;
    let size = if skb.cb.ip.frag_max_size != 0 {
        usize::from(skb.cb.ip.frag_max_size)
    } else {
        skb.len()
    };
    // ip_exceeds_mtu: a GSO skb (GRO's, or the NIC's coalesced packet) exceeds only
    // if its segments would (skb_gso_validate_network_len).
    let exceeds = if skb.cb.ip.frag_max_size != 0 || !skb.is_gso() {
        size > mtu
    } else {
        size > mtu && super::gso_network_seglen(&skb) > mtu
    };
    if df && exceeds {
        ip.mib.inc(Ip::FragFails);
        super::icmp::icmp_send(
            stack,
            &skb,
            super::icmp::DEST_UNREACH,
            super::icmp::FRAG_NEEDED,
            mtu as u32,
        );
        return;
    }
    // ip_decrease_ttl: TTL − 1 with an RFC 1624 checksum update.
    {
        let h = skb.data_mut();
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] = ttl - 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let c = checksum::update16(u16::from_be_bytes([h[10], h[11]]), old, new);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    skb.cb.ip.flags |= IPSKB_FORWARDED;
    match nf(
        stack,
        NfHook::Forward,
        &skb,
        Some(in_dev.name()),
        Some(dst.dev.name()),
    ) {
        Verdict::Accept => {}
        Verdict::Reject(with) => {
            super::reject(stack, &skb, with);
            return;
        }
        Verdict::Drop => return,
    }
    // ip_forward_finish.
    ip.mib.inc(Ip::ForwDatagrams);
    let _ = dst_output(stack, dst, skb);
}
