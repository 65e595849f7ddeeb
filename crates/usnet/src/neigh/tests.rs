//! The neighbour state machine, driven through real ARP on two hosts.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::ipv4::udp::UdpSocket;
use crate::testutil::{ip, mac, TwoHosts};

fn pair() -> TwoHosts {
    TwoHosts::new(21, |_| {}).with_ip()
}

fn udp_pair(h: &TwoHosts) -> (Arc<UdpSocket>, Arc<UdpSocket>) {
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    let rx = UdpSocket::new(&h.b);
    rx.set_nonblocking(true);
    rx.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 9000)).unwrap();
    (tx, rx)
}

fn drain(rx: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = rx.recv_from(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn packets_wait_during_resolution_and_flush_in_order() {
    let h = pair();
    let (tx, rx) = udp_pair(&h);
    let to = SocketAddrV4::new(ip(10, 0, 0, 2), 9000);
    for i in 0..5u8 {
        tx.send_to(&[i; 10], Some(to)).unwrap();
    }
    let n =
        h.a.ipv4
            .arp
            .lookup(&h.da, ip(10, 0, 0, 2))
            .expect("entry created");
    assert_eq!(n.state(), nud::INCOMPLETE);
    assert_eq!(n.queued(), 5, "all five wait on arp_queue");
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(n.state(), nud::REACHABLE);
    assert_eq!(n.ha(), mac(2));
    let got = drain(&rx);
    assert_eq!(got, (0..5u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
    // b learned a from the request (STALE), without probing.
    let nb = h.b.ipv4.arp.lookup(&h.db, ip(10, 0, 0, 1)).unwrap();
    assert_eq!(nb.state(), nud::STALE);
    assert_eq!(nb.ha(), mac(1));
}

#[test]
fn failed_resolution_after_three_probes_reports_ehostunreach() {
    let h = pair();
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.connect(SocketAddrV4::new(ip(10, 0, 0, 99), 9)).unwrap();
    tx.send_to(b"anyone?", None).unwrap();
    let n = h.a.ipv4.arp.lookup(&h.da, ip(10, 0, 0, 99)).unwrap();
    let t0 = h.sim.now();
    let mut failed_at = None;
    h.sim.run_while(
        || {
            if n.state() == nud::FAILED && failed_at.is_none() {
                failed_at = Some(h.sim.now());
            }
            failed_at.is_none()
        },
        Duration::from_secs(10),
    );
    // Probes at 0 s, 1 s, 2 s (broadcast, mcast_probes = 3); FAILED at 3 s.
    assert_eq!(failed_at.map(|t| t - t0), Some(Duration::from_secs(3)));
    let st: std::collections::HashMap<_, _> = h.a.ipv4.arp.stats.snapshot().into_iter().collect();
    assert_eq!(st["res_failed"], 1);
    h.sim.run_for(Duration::from_millis(1));
    let err = tx.send_to(b"again", None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(crate::sock::errno::EHOSTUNREACH));
    let wire: std::collections::HashMap<_, _> = h.wire.stats(1).into_iter().collect();
    assert_eq!(wire["sent"], 3, "three ARP requests, no data frame");
}

#[test]
fn reachable_goes_stale_then_delay_then_probe() {
    let h = pair();
    let (tx, rx) = udp_pair(&h);
    let to = SocketAddrV4::new(ip(10, 0, 0, 2), 9000);
    tx.send_to(b"x", Some(to)).unwrap();
    h.sim.run_for(Duration::from_millis(1));
    let n = h.a.ipv4.arp.lookup(&h.da, ip(10, 0, 0, 2)).unwrap();
    assert_eq!(n.state(), nud::REACHABLE);
    // Reachable time is randomised within [15 s, 45 s).
    h.sim.run_for(Duration::from_secs(46));
    assert_eq!(
        n.state(),
        nud::STALE,
        "unconfirmed for longer than reachable_time"
    );
    // Use while stale: DELAY, the packet goes out at once with the old address.
    tx.send_to(b"y", Some(to)).unwrap();
    assert_eq!(n.state(), nud::DELAY);
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(drain(&rx).len(), 2);
    // No confirmation within delay_first_probe_time (5 s): PROBE with unicast
    // requests; b answers and the entry is REACHABLE again.
    h.sim.run_for(Duration::from_millis(4990));
    assert_eq!(n.state(), nud::DELAY);
    h.sim.run_for(Duration::from_millis(20));
    assert_eq!(n.state(), nud::REACHABLE, "probed and confirmed");
    assert_eq!(
        h.b.ipv4.arp.stats.rcv_probes_ucast.load(Ordering::Relaxed),
        1,
        "the probe was unicast"
    );
}

#[test]
fn upper_layer_confirmation_skips_the_probe() {
    let h = pair();
    let (tx, _rx) = udp_pair(&h);
    let to = SocketAddrV4::new(ip(10, 0, 0, 2), 9000);
    tx.send_to(b"x", Some(to)).unwrap();
    h.sim.run_for(Duration::from_millis(1));
    let n = h.a.ipv4.arp.lookup(&h.da, ip(10, 0, 0, 2)).unwrap();
    h.sim.run_for(Duration::from_secs(46));
    tx.send_to(b"y", Some(to)).unwrap();
    assert_eq!(n.state(), nud::DELAY);
    n.confirm(h.sim.now()); // as TCP does when an ACK advances
    h.sim.run_for(Duration::from_secs(6));
    assert_eq!(n.state(), nud::REACHABLE);
    assert_eq!(
        h.b.ipv4.arp.stats.rcv_probes_ucast.load(Ordering::Relaxed),
        0
    );
}

#[test]
fn mac_change_announced_by_gratuitous_arp_updates_the_cached_header() {
    let h = pair();
    let (tx, rx) = udp_pair(&h);
    let to = SocketAddrV4::new(ip(10, 0, 0, 2), 9000);
    tx.send_to(b"1", Some(to)).unwrap();
    h.sim.run_for(Duration::from_millis(1));
    let n = h.a.ipv4.arp.lookup(&h.da, ip(10, 0, 0, 2)).unwrap();
    assert_eq!(
        n.hh.read().map(|x| x[..6].to_vec()),
        Some(mac(2).0.to_vec())
    );
    // b's NIC gets a new address and announces it.
    let new = usnet_wire::EthernetAddress([0x02, 0, 0, 0, 0, 0x77]);
    h.db.set_mac(new).unwrap();
    crate::ipv4::arp::arp_send_gratuitous(&h.b, &h.db);
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(n.ha(), new);
    assert_eq!(n.hh.read().map(|x| x[..6].to_vec()), Some(new.0.to_vec()));
    tx.send_to(b"2", Some(to)).unwrap();
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(drain(&rx).len(), 2, "the new address is used");
}

#[test]
fn arp_queue_is_bounded_in_bytes() {
    let h = pair();
    h.a.ipv4.arp.parms.write().unres_qlen_bytes = 10_000;
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.set_sndbuf(10 << 20);
    let to = SocketAddrV4::new(ip(10, 0, 0, 2), 9000);
    for _ in 0..20 {
        tx.send_to(&[0; 1000], Some(to)).unwrap();
    }
    let n = h.a.ipv4.arp.lookup(&h.da, ip(10, 0, 0, 2)).unwrap();
    let q = n.queued();
    assert!(q > 0 && q < 20, "{q} queued");
    assert_eq!(
        h.a.ipv4
            .arp
            .stats
            .unresolved_discards
            .load(Ordering::Relaxed) as usize,
        20 - q
    );
}

#[test]
fn forced_gc_keeps_the_table_bounded() {
    let h = pair();
    let t = &h.a.ipv4.arp;
    for i in 0..2000u32 {
        let a = std::net::Ipv4Addr::from(0x0a00_0000 + 1000 + i);
        let _ = t.create(&h.a, &h.da, a);
        h.sim.run_for(Duration::from_millis(10));
    }
    assert!(t.len() <= t.gc_thresh3, "{}", t.len());
    assert!(t.stats.forced_gc_runs.load(Ordering::Relaxed) > 0);
}

#[test]
fn hh_cache_reads_never_tear() {
    let hh = Arc::new(HhCache::default());
    let a = [0x11u8; 14];
    let b = [0x22u8; 14];
    hh.write(&a);
    let w = {
        let hh = hh.clone();
        std::thread::spawn(move || {
            for i in 0..200_000 {
                hh.write(if i % 2 == 0 { &b } else { &a });
            }
        })
    };
    for _ in 0..200_000 {
        let h = hh.read().unwrap();
        assert!(h == a || h == b, "torn header {h:?}");
    }
    w.join().unwrap();
}

#[test]
fn ip_neigh_listing() {
    let h = pair();
    let (tx, _rx) = udp_pair(&h);
    tx.send_to(b"x", Some(SocketAddrV4::new(ip(10, 0, 0, 2), 9000)))
        .unwrap();
    h.sim.run_for(Duration::from_millis(1));
    let rows = h.a.ipv4.arp.dump(h.sim.now());
    let line = rows
        .iter()
        .map(|r| r.to_string())
        .find(|l| l.starts_with("10.0.0.2"))
        .unwrap();
    assert_eq!(
        line,
        "10.0.0.2 dev eth0 lladdr 02:00:00:00:00:02 used 0/0/0 probes 4 REACHABLE"
    );
}
