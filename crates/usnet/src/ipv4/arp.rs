//! ARP (Linux's `net/ipv4/arp.c`): the IPv4 side of the neighbour table — how an entry
//! is set up (`arp_constructor`), how a probe is sent (`arp_solicit`), what happens to
//! packets when resolution fails (`arp_error_report`), and ARP input (`arp_rcv` →
//! `arp_process`): replies for our addresses, learning from requests, gratuitous ARP.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use usnet_wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};

use crate::dev::rx::{PacketHandler, ETH_P_ARP};
use crate::dev::xmit::dev_queue_xmit;
use crate::dev::{flags, NetDevice};
use crate::neigh::{neigh_update, nud, NeighParms, Neighbour, UpdateFlags};
use crate::skb::{PktType, Skb};
use crate::Stack;

use super::route::{RtnType, Scope};

/// `arp_constructor`: set up a new entry. Loopback and NOARP devices, broadcast and
/// multicast next hops need no resolution (NUD_NOARP, with the device's, the broadcast
/// or the mapped multicast address).
pub fn arp_constructor(stack: &Stack, n: &Arc<Neighbour>, kind: RtnType) {
    if n.state() != nud::NONE {
        return;
    }
    let dev = &n.dev;
    let ha = if n.key.is_multicast() || kind == RtnType::Multicast {
        let o = n.key.octets();
        Some(EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]))
    } else if dev.flags() & (flags::NOARP | flags::LOOPBACK) != 0 {
        Some(dev.mac())
    } else if kind == RtnType::Broadcast || super::addr::is_broadcast(stack, n.key) {
        Some(EthernetAddress::BROADCAST)
    } else {
        None
    };
    if let Some(ha) = ha {
        neigh_update(stack, n, Some(ha), nud::NOARP, UpdateFlags::ADMIN_OVERRIDE);
    }
}

/// Send an ARP packet (`arp_send`). `dest_hw` None: broadcast.
#[allow(clippy::too_many_arguments)]
pub fn arp_send(
    stack: &Stack,
    dev: &Arc<NetDevice>,
    op: ArpOperation,
    dest_ip: Ipv4Addr,
    src_ip: Ipv4Addr,
    dest_hw: Option<EthernetAddress>,
    target_hw: EthernetAddress,
) {
    if dev.flags() & flags::NOARP != 0 {
        return;
    }
    let src_hw = dev.mac();
    let mut skb = Skb::alloc(14 + 28, 32);
    {
        let d = skb.put(14 + 28);
        let to = dest_hw.unwrap_or(EthernetAddress::BROADCAST);
        d[0..6].copy_from_slice(&to.0);
        d[6..12].copy_from_slice(&src_hw.0);
        d[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: src_hw,
            source_protocol_addr: src_ip,
            target_hardware_addr: target_hw,
            target_protocol_addr: dest_ip,
        }
        .emit(&mut ArpPacket::new_unchecked(&mut d[14..]));
    }
    skb.reset_mac_header();
    skb.set_network_header(14);
    skb.protocol = ETH_P_ARP;
    skb.priority = 7; // TC_PRIO_CONTROL
    let _ = dev_queue_xmit(stack, dev, skb);
}

/// `arp_solicit`: send the probe the timer or `neigh_event_send` asked for. While
/// `probes` is below `ucast_probes` (PROBE state) it is unicast to the known address;
/// otherwise broadcast. The source address is the waiting packet's if it is ours, else
/// the device's address on the target's subnet.
pub fn arp_solicit(
    stack: &Stack,
    n: &Arc<Neighbour>,
    probes: u32,
    state: u8,
    ha: EthernetAddress,
    skb: Option<&Skb>,
    parms: &NeighParms,
) {
    let saddr = skb
        .and_then(|s| {
            let d = s.data();
            (d.len() >= 20).then(|| Ipv4Addr::new(d[12], d[13], d[14], d[15]))
        })
        .filter(|a| super::addr::is_local(stack, *a).is_some())
        .or_else(|| super::addr::select_addr(&n.dev, n.key, Scope::Link))
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let unicast = probes < parms.ucast_probes && state & nud::VALID != 0;
    let dest_hw = unicast.then_some(ha);
    arp_send(
        stack,
        &n.dev,
        ArpOperation::Request,
        n.key,
        saddr,
        dest_hw,
        EthernetAddress([0; 6]),
    );
}

/// `arp_error_report` → `ipv4_link_failure`: a packet that waited for a neighbour that
/// never answered is reported back to its sender as ICMP host unreachable (a local
/// sender's socket gets `EHOSTUNREACH`).
pub fn arp_error_report(stack: &Stack, _n: &Arc<Neighbour>, skb: Skb) {
    stack.ipv4.mib.inc(crate::mib::Ip::OutDiscards);
    super::icmp::icmp_send(stack, &skb, 3, 1, 0);
}

/// Send a gratuitous ARP for each address of `dev` (on address or MAC change, as
/// `inetdev_send_gratuitous_arp`).
pub fn arp_send_gratuitous(stack: &Stack, dev: &Arc<NetDevice>) {
    let addrs: Vec<Ipv4Addr> = dev.ip.read().iter().map(|a| a.addr).collect();
    for a in addrs {
        arp_send(
            stack,
            dev,
            ArpOperation::Request,
            a,
            a,
            None,
            EthernetAddress([0; 6]),
        );
    }
}

/// The ARP protocol handler (`arp_rcv`).
pub struct ArpHandler;

impl PacketHandler for ArpHandler {
    fn rcv(&self, stack: &Stack, dev: &Arc<NetDevice>, skb: Skb) {
        arp_rcv(stack, dev, skb);
    }
}

/// `arp_rcv` + `arp_process`.
pub fn arp_rcv(stack: &Stack, dev: &Arc<NetDevice>, mut skb: Skb) {
    if dev.flags() & (flags::NOARP | flags::LOOPBACK) != 0 || skb.pkt_type == PktType::OtherHost {
        return;
    }
    if !skb.may_pull(28) {
        return;
    }
    let Ok(pkt) = ArpPacket::new_checked(skb.data()) else {
        return;
    };
    let Ok(ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: sha,
        source_protocol_addr: sip,
        target_protocol_addr: tip,
        ..
    }) = ArpRepr::parse(&pkt)
    else {
        return;
    };
    if tip.is_multicast() || tip.is_loopback() || sip.is_multicast() || !sha.is_unicast() {
        return;
    }
    let table = &stack.ipv4.arp;
    let is_garp = sip == tip;
    let now = stack.now();
    // A request for one of our addresses: answer, and learn the asker (STALE).
    if operation == ArpOperation::Request && !sip.is_unspecified() {
        if let Some(_owner) = super::addr::is_local(stack, tip) {
            if !is_garp {
                let stat = if skb.pkt_type == PktType::Host {
                    &table.stats.rcv_probes_ucast
                } else {
                    &table.stats.rcv_probes_mcast
                };
                stat.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = table.create(stack, dev, sip) {
                    neigh_update(stack, &n, Some(sha), nud::STALE, UpdateFlags::OVERRIDE);
                }
                arp_send(stack, dev, ArpOperation::Reply, sip, tip, Some(sha), sha);
                return;
            }
        }
    } else if operation == ArpOperation::Request && sip.is_unspecified() {
        // Duplicate address detection probe for our address: answer it.
        if super::addr::is_local(stack, tip).is_some() {
            arp_send(stack, dev, ArpOperation::Reply, sip, tip, Some(sha), sha);
        }
        return;
    }
    // Everything else updates an existing entry only (arp_accept = 0).
    if let Some(n) = table.lookup(dev, sip) {
        let locktime = table.parms.read().locktime;
        let override_ = is_garp || now > n.updated() + locktime;
        let state = if operation == ArpOperation::Reply && skb.pkt_type == PktType::Host {
            nud::REACHABLE
        } else {
            nud::STALE
        };
        let flags = if override_ {
            UpdateFlags::OVERRIDE
        } else {
            UpdateFlags::NONE
        };
        neigh_update(stack, &n, Some(sha), state, flags);
    }
}

impl Neighbour {
    /// When the entry last changed.
    pub fn updated(&self) -> crate::time::Instant {
        self.updated_at()
    }
}
