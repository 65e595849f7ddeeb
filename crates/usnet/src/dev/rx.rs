//! The receive half of `net/core/dev.c`: `eth_type_trans`, `__netif_receive_skb` with
//! its packet taps (`ptype_all`, where tcpdump hooks in) and protocol handlers
//! (`ptype_base`: IPv4, ARP, ...).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use usnet_wire::EthernetAddress;

use super::NetDevice;
use crate::skb::{PktType, Skb};
use crate::time::Instant;
use crate::trace::Stage;
use crate::Stack;

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// 802.3 frames (length field instead of EtherType).
pub const ETH_P_802_3: u16 = 0x0001;
/// Ethernet header length.
pub const ETH_HLEN: usize = 14;

/// Which way a tapped packet was going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapDir {
    /// Being sent (seen at `xmit_one`).
    Outgoing,
    /// Received (seen at `__netif_receive_skb`).
    Incoming,
}

/// A packet tap (Linux's `ptype_all` entry): sees every frame sent or received on the
/// device, from the Ethernet header on. Must not keep the skb.
pub trait PacketTap: Send + Sync {
    /// One frame went by.
    fn tap(&self, dev: &NetDevice, frame: &Skb, mac_offset: usize, dir: TapDir, now: Instant);
}

/// A protocol's receive handler (Linux's `packet_type.func`: `ip_rcv`, `arp_rcv`).
pub trait PacketHandler: Send + Sync {
    /// Handle one received packet; `skb.data()` starts at the network header.
    fn rcv(&self, stack: &Stack, dev: &Arc<NetDevice>, skb: Skb);
}

/// `eth_type_trans`: record the MAC header, pull it, classify the destination and
/// return the EtherType. Frames shorter than a header are left untouched (`None`).
pub fn eth_type_trans(skb: &mut Skb, dev: &NetDevice) -> Option<u16> {
    if !skb.may_pull(ETH_HLEN) {
        return None;
    }
    skb.reset_mac_header();
    let (dst, proto) = {
        let h = skb.data();
        let mut d = [0u8; 6];
        d.copy_from_slice(&h[0..6]);
        (EthernetAddress(d), u16::from_be_bytes([h[12], h[13]]))
    };
    skb.pull(ETH_HLEN);
    skb.pkt_type = if dst.is_broadcast() {
        PktType::Broadcast
    } else if dst.is_multicast() {
        PktType::Multicast
    } else if dst != dev.mac() {
        PktType::OtherHost
    } else {
        PktType::Host
    };
    let proto = if proto >= 0x0600 { proto } else { ETH_P_802_3 };
    skb.protocol = proto;
    skb.reset_network_header();
    Some(proto)
}

/// Hand a frame to every tap of `dev` (`dev_queue_xmit_nit` / `deliver_skb` to
/// `ptype_all`).
pub fn deliver_taps(stack: &Stack, dev: &NetDevice, skb: &Skb, dir: TapDir) {
    if let Some(taps) = dev.taps() {
        let mac = match dir {
            TapDir::Outgoing => skb.data_offset(),
            TapDir::Incoming => skb.mac_header_offset().unwrap_or(skb.data_offset()),
        };
        let now = stack.now();
        for t in taps.iter() {
            t.tap(dev, skb, mac, dir, now);
        }
    }
}

/// `__netif_receive_skb`: taps, then the protocol handler for `skb.protocol`.
pub fn netif_receive_skb(stack: &Stack, dev: &Arc<NetDevice>, skb: Skb) {
    // One clock reading per packet up the stack (the softirq pass's time scope takes
    // it for everything this packet causes).
    let now = stack.refresh_now();
    stack
        .trace
        .hit(Stage::NetifReceiveSkb, skb.trace_id, skb.len(), now);
    deliver_taps(stack, dev, &skb, TapDir::Incoming);
    match stack.ptype_handler(skb.protocol) {
        Some(h) => h.rcv(stack, dev, skb),
        None => {
            dev.stats.rx_nohandler.fetch_add(1, Ordering::Relaxed);
        }
    }
}
