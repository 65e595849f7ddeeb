//! Entry points for fuzzing the stack's receive path with arbitrary bytes (used by the
//! cargo-fuzz targets in `fuzz/` and by property tests): each feeds one frame to a
//! host with an address, a UDP socket and ARP, then runs its softirq so any replies
//! (ICMP, ARP) are generated too. Nothing here may panic or grow without bound.

use std::cell::RefCell;
use std::net::SocketAddrV4;
use std::sync::Arc;

use crate::dev::rx::netif_receive_skb;
use crate::dev::NetDevice;
use crate::ipv4::udp::UdpSocket;
use crate::sim::Sim;
use crate::skb::Skb;
use crate::testutil::{ip, FakeDriver};
use crate::Stack;

struct Host {
    _sim: Sim,
    stack: Stack,
    dev: Arc<NetDevice>,
    drv: Arc<FakeDriver>,
    udp: Arc<UdpSocket>,
}

thread_local! {
    static HOST: RefCell<Option<Host>> = const { RefCell::new(None) };
}

fn with_host(f: impl FnOnce(&Host)) {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        let host = h.get_or_insert_with(|| {
            let mut sim = Sim::new(1);
            let stack = sim.add_host("fuzz");
            let (drv, dev) = FakeDriver::create(&stack, "eth0", 1000, 1).expect("device");
            crate::ipv4::addr::addr_add(&stack, &dev, ip(10, 0, 0, 1), 24).expect("addr");
            stack.sysctl.set("net.ipv4.ip_forward", 1).expect("sysctl");
            let udp = UdpSocket::new(&stack);
            udp.set_nonblocking(true);
            udp.bind(SocketAddrV4::new(ip(0, 0, 0, 0), 53))
                .expect("bind");
            Host {
                _sim: sim,
                stack,
                dev,
                drv,
                udp,
            }
        });
        f(host);
        // Bound memory: forget what was sent and received.
        host.drv.sent.lock().clear();
        host.drv.more_hints.lock().clear();
        let mut buf = [0u8; 64];
        while host.udp.recv_from(&mut buf).is_ok() {}
    });
}

/// Feed `data` as an Ethernet frame to the host's device.
pub fn ethernet_frame(data: &[u8]) {
    with_host(|h| {
        let mut skb = Skb::from_slice(data, 64);
        if crate::dev::rx::eth_type_trans(&mut skb, &h.dev).is_some() {
            netif_receive_skb(&h.stack, &h.dev, skb);
        }
        h.stack.do_softirq();
    });
}

/// Feed `data` as an IPv4 packet (`ip_rcv`).
pub fn ip_rcv(data: &[u8]) {
    with_host(|h| {
        let mut skb = Skb::from_slice(data, 64);
        skb.protocol = crate::dev::rx::ETH_P_IP;
        crate::ipv4::input::ip_rcv(&h.stack, &h.dev, skb);
        h.stack.do_softirq();
    });
}

/// Feed `data` as an ARP packet (`arp_rcv`).
pub fn arp_rcv(data: &[u8]) {
    with_host(|h| {
        let mut skb = Skb::from_slice(data, 64);
        skb.protocol = crate::dev::rx::ETH_P_ARP;
        crate::ipv4::arp::arp_rcv(&h.stack, &h.dev, skb);
        h.stack.do_softirq();
    });
}
