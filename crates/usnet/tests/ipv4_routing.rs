//! IPv4 across three hosts, a — r — b, where r routes between two wires.

mod common;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::ipv4::output::PmtuDisc;
use usnet::ipv4::ping::PingSocket;
use usnet::ipv4::route::{FibRoute, RtnType, TableId};
use usnet::ipv4::udp::UdpSocket;
use usnet::mib::{Icmp, Ip};
use usnet::sock::errno;
use usnet::testutil::{ip, Routed};

fn ping(
    h: &Routed,
    s: &Arc<PingSocket>,
    to: std::net::Ipv4Addr,
    seq: u16,
) -> Option<usnet::ipv4::ping::EchoReply> {
    s.send_echo(to, seq, b"0123456789abcdef").unwrap();
    let mut got = None;
    h.sim.run_while(
        || {
            got = s.try_recv().ok().flatten();
            got.is_none()
        },
        Duration::from_secs(5),
    );
    got
}

#[test]
fn ping_through_the_router() {
    let h = Routed::new(1, |_| {});
    let s = PingSocket::new(&h.a).unwrap();
    let r = ping(&h, &s, ip(10, 0, 2, 1), 1).expect("an echo reply");
    assert_eq!(r.from, ip(10, 0, 2, 1));
    assert_eq!(r.seq, 1);
    assert_eq!(r.data, b"0123456789abcdef");
    assert_eq!(r.ttl, 63, "one hop: the router decremented the TTL");
    assert_eq!(
        h.r.ipv4.mib.get(Ip::ForwDatagrams),
        2,
        "request and reply forwarded"
    );
    assert_eq!(h.b.ipv4.icmp_mib.get(Icmp::InEchos), 1);
    assert_eq!(h.b.ipv4.icmp_mib.get(Icmp::OutEchoReps), 1);
    assert_eq!(h.a.ipv4.icmp_mib.get(Icmp::InEchoReps), 1);
    // The router answers for its own far address too.
    let r2 = ping(&h, &s, ip(10, 0, 2, 254), 2).expect("router replies");
    assert_eq!(r2.ttl, 64);
}

#[test]
fn ttl_expiry_is_answered_by_the_router() {
    let h = Routed::new(2, |_| {});
    let s = PingSocket::new(&h.a).unwrap();
    s.set_ttl(1);
    s.send_echo(ip(10, 0, 2, 1), 1, b"x").unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(h.r.ipv4.icmp_mib.get(Icmp::OutTimeExcds), 1);
    assert_eq!(h.a.ipv4.icmp_mib.get(Icmp::InTimeExcds), 1);
    assert_eq!(h.b.ipv4.icmp_mib.get(Icmp::InEchos), 0);
    let e = s.try_recv().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EHOSTUNREACH));
}

#[test]
fn a_host_that_does_not_forward_counts_in_addr_errors() {
    let h = Routed::new(3, |_| {});
    h.r.sysctl.set("net.ipv4.ip_forward", 0).unwrap();
    let s = PingSocket::new(&h.a).unwrap();
    s.send_echo(ip(10, 0, 2, 1), 1, b"x").unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(h.r.ipv4.mib.get(Ip::InAddrErrors), 1);
    assert_eq!(h.r.ipv4.mib.get(Ip::ForwDatagrams), 0);
}

#[test]
fn no_route_is_ehostunreach_and_out_no_routes() {
    let h = Routed::new(4, |_| {});
    h.a.ipv4
        .fib
        .del(TableId::Main, ip(0, 0, 0, 0), 0, None)
        .unwrap();
    let u = UdpSocket::new(&h.a);
    u.set_nonblocking(true);
    let e = u
        .send_to(b"x", Some(SocketAddrV4::new(ip(192, 0, 2, 1), 9)))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::ENETUNREACH));
    assert_eq!(h.a.ipv4.mib.get(Ip::OutNoRoutes), 1);
}

#[test]
fn pmtu_discovery_across_a_smaller_link() {
    let h = Routed::new(5, |_| {});
    h.r1.set_mtu(1000).unwrap();
    h.db.set_mtu(1000).unwrap();
    let rx = UdpSocket::new(&h.b);
    rx.set_nonblocking(true);
    rx.bind(SocketAddrV4::new(ip(10, 0, 2, 1), 7000)).unwrap();
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.set_ip_opts(|o| o.pmtudisc = PmtuDisc::Do);
    tx.connect(SocketAddrV4::new(ip(10, 0, 2, 1), 7000))
        .unwrap();
    // 1400 bytes fit a's link (1500) but not r → b (1000): r answers frag-needed.
    tx.send_to(&[7; 1400], None).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(h.r.ipv4.mib.get(Ip::FragFails), 1);
    assert_eq!(h.r.ipv4.icmp_mib.get(Icmp::OutDestUnreachs), 1);
    assert_eq!(h.a.ipv4.fib.pmtu(ip(10, 0, 2, 1), h.sim.now()), Some(1000));
    // The connected socket sees EMSGSIZE once, and the next oversize send is refused
    // locally with EMSGSIZE; a datagram that fits the path goes through.
    assert_eq!(
        tx.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::EMSGSIZE)
    );
    let e = tx.send_to(&[7; 1400], None).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EMSGSIZE));
    tx.send_to(&[7; 900], None).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    let mut buf = [0u8; 2000];
    let (n, _) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(n, 900);
}

#[test]
fn route_change_invalidates_the_cached_dst() {
    let h = Routed::new(6, |_| {});
    let rx = UdpSocket::new(&h.b);
    rx.set_nonblocking(true);
    rx.bind(SocketAddrV4::new(ip(10, 0, 2, 1), 7000)).unwrap();
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.connect(SocketAddrV4::new(ip(10, 0, 2, 1), 7000))
        .unwrap();
    tx.send_to(b"1", None).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(rx.rx_queued(), 1);
    // A more specific route: unreachable. The socket's cached dst must not be used.
    let mut r = FibRoute::unicast(ip(10, 0, 2, 0), 24, None, None);
    r.kind = RtnType::Unreachable;
    h.a.ipv4.fib.add(r).unwrap();
    let e = tx.send_to(b"2", None).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EHOSTUNREACH));
    h.a.ipv4
        .fib
        .del(TableId::Main, ip(10, 0, 2, 0), 24, None)
        .unwrap();
    tx.send_to(b"3", None).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(rx.rx_queued(), 2);
}

#[test]
fn udp_to_a_closed_port_is_econnrefused() {
    let h = Routed::new(7, |_| {});
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.connect(SocketAddrV4::new(ip(10, 0, 2, 1), 5555))
        .unwrap();
    tx.send_to(b"hello?", None).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(h.b.ipv4.udp_mib.get(usnet::mib::Udp::NoPorts), 1);
    let mut buf = [0u8; 16];
    let e = tx.recv_from(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::ECONNREFUSED));
    let m: HashMap<_, _> = h.b.ipv4.icmp_mib.snapshot().into_iter().collect();
    assert_eq!(m["OutDestUnreachs"], 1);
}

#[test]
fn loopback_delivers_to_our_own_address() {
    let h = Routed::new(8, |_| {});
    let s = PingSocket::new(&h.a).unwrap();
    let r = ping(&h, &s, ip(127, 0, 0, 1), 1).expect("lo answers");
    assert_eq!(r.from, ip(127, 0, 0, 1));
    let r = ping(&h, &s, ip(10, 0, 1, 1), 2).expect("our own address answers over lo");
    assert_eq!(r.from, ip(10, 0, 1, 1));
    assert_eq!(h.a.ipv4.mib.get(Ip::ForwDatagrams), 0);
}

fn iptables(stack: &usnet::Stack, args: &[&str]) -> String {
    usnet::netfilter::parse_command(args)
        .expect("parse")
        .apply(stack.ipv4.nf.filter())
        .expect("apply")
}

#[test]
fn netfilter_drop_and_reject_show_in_counters() {
    let h = Routed::new(9, |_| {});
    let rx = UdpSocket::new(&h.b);
    rx.set_nonblocking(true);
    rx.bind(SocketAddrV4::new(ip(10, 0, 2, 1), 7000)).unwrap();
    iptables(
        &h.r,
        &[
            "-A", "FORWARD", "-p", "udp", "--dport", "7000", "-j", "DROP",
        ],
    );
    iptables(
        &h.b,
        &[
            "-A", "INPUT", "-p", "udp", "--dport", "7001", "-j", "REJECT",
        ],
    );
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    for _ in 0..3 {
        tx.send_to(&[1; 100], Some(SocketAddrV4::new(ip(10, 0, 2, 1), 7000)))
            .unwrap();
    }
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(rx.rx_queued(), 0, "dropped in r's FORWARD chain");
    let listing = iptables(&h.r, &["-L", "FORWARD", "-v", "-n"]);
    assert!(listing.contains("    3   384 DROP       udp  --  *      *       0.0.0.0/0            0.0.0.0/0            udp dpt:7000"), "{listing}");
    // REJECT on b: the connected sender hears ECONNREFUSED (port unreachable).
    let tx2 = UdpSocket::new(&h.a);
    tx2.set_nonblocking(true);
    tx2.connect(SocketAddrV4::new(ip(10, 0, 2, 1), 7001))
        .unwrap();
    tx2.send_to(b"knock", None).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    let mut buf = [0u8; 8];
    assert_eq!(
        tx2.recv_from(&mut buf).unwrap_err().raw_os_error(),
        Some(errno::ECONNREFUSED)
    );
    let listing = iptables(&h.b, &["-L", "INPUT", "-v", "-n"]);
    assert!(
        listing.contains("reject-with icmp-port-unreachable"),
        "{listing}"
    );
    assert!(listing.contains("    1    33 REJECT"), "{listing}");
    assert_eq!(h.b.ipv4.icmp_mib.get(Icmp::OutDestUnreachs), 1);
}

#[test]
fn icmp_errors_are_rate_limited_per_destination() {
    let h = Routed::new(10, |_| {});
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.set_sndbuf(1 << 20);
    for _ in 0..100 {
        tx.send_to(b"x", Some(SocketAddrV4::new(ip(10, 0, 2, 1), 4444)))
            .unwrap();
    }
    h.sim.run_for(Duration::from_millis(10));
    let m = &h.b.ipv4.icmp_mib;
    assert_eq!(h.b.ipv4.udp_mib.get(usnet::mib::Udp::NoPorts), 100);
    // icmp_ratelimit 1 s with a burst of 6 per destination.
    assert_eq!(m.get(Icmp::OutDestUnreachs), 6);
    assert_eq!(m.get(Icmp::OutRateLimitHost), 94);
    h.sim.run_for(Duration::from_millis(1000));
    tx.send_to(b"x", Some(SocketAddrV4::new(ip(10, 0, 2, 1), 4444)))
        .unwrap();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(
        m.get(Icmp::OutDestUnreachs),
        7,
        "one more token after a second"
    );
}

#[test]
fn fragmented_udp_survives_reordering_and_loss_and_frees_its_memory() {
    use usnet::link::netem::{Loss, Netem};
    let h = Routed::new(11, |_| {});
    // Frames towards b: 5% loss, 30% reordered (jumping ahead of a 1 ms delay).
    h.wire_b.set_netem(
        1,
        Netem {
            delay: Duration::from_millis(1),
            loss: Loss::Random(0.05),
            reorder: 0.3,
            ..Netem::default()
        },
    );
    let rx = UdpSocket::new(&h.b);
    rx.set_nonblocking(true);
    rx.set_rcvbuf(4 << 20);
    rx.bind(SocketAddrV4::new(ip(10, 0, 2, 1), 9000)).unwrap();
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.connect(SocketAddrV4::new(ip(10, 0, 2, 1), 9000))
        .unwrap();
    const N: usize = 200;
    let mut got = 0;
    let mut buf = vec![0u8; 9000];
    let mut drain = |got: &mut usize| {
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            assert_eq!(n, 8192, "only whole datagrams are delivered");
            let k = u32::from_be_bytes(buf[..4].try_into().unwrap());
            for (i, b) in buf[4..n].iter().enumerate() {
                let i = i + 4;
                assert_eq!(
                    *b,
                    (i as u32).wrapping_mul(31).wrapping_add(k) as u8,
                    "datagram {k} byte {i}"
                );
            }
            *got += 1;
        }
    };
    for k in 0..N {
        let mut d = vec![0u8; 8192];
        for (i, b) in d.iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(31).wrapping_add(k as u32) as u8;
        }
        d[..4].copy_from_slice(&(k as u32).to_be_bytes());
        tx.send_to(&d, None).unwrap();
        h.sim.run_for(Duration::from_micros(200));
        drain(&mut got);
    }
    h.sim.run_for(Duration::from_millis(50));
    drain(&mut got);
    // Each datagram is 6 fragments: P(all arrive) = 0.95^6 ≈ 0.74.
    assert!(got > N / 2 && got < N, "{got} of {N} datagrams reassembled");
    let oks = h.b.ipv4.mib.get(Ip::ReasmOKs);
    assert_eq!(oks, got as u64);
    assert_eq!(h.a.ipv4.mib.get(Ip::FragCreates), (N * 6) as u64);
    assert_eq!(h.a.ipv4.mib.get(Ip::FragOKs), N as u64);
    // Incomplete datagrams wait in memory until ipfrag_time (30 s), then are freed.
    assert!(h.b.ipv4.frags.mem() > 0);
    h.sim.run_for(Duration::from_secs(31));
    assert_eq!(h.b.ipv4.frags.mem(), 0);
    assert_eq!(h.b.ipv4.frags.queues(), 0);
    assert_eq!(h.b.ipv4.mib.get(Ip::ReasmTimeout), (N - got) as u64);
}

/// A router forwarding the coalesced packets of a TCP flow (GRO, or the NIC's
/// `rx-gro-hw`) into a smaller link judges them by their segments
/// (`ip_exceeds_mtu` → `skb_gso_validate_network_len`): one fragmentation-needed per
/// oversized packet, refused before it counts as forwarded; the sender lowers its MSS
/// and the data arrives intact.
#[test]
fn a_coalesced_tcp_packet_too_big_for_the_next_link_is_refused_before_forwarding() {
    use usnet::tcp::TcpSock;
    // Only the router's link towards b is small: b still advertises an MSS of 1460.
    let h = Routed::new(9, |_| {});
    h.r1.set_mtu(1000).unwrap();
    let to = SocketAddrV4::new(ip(10, 0, 2, 1), 5001);
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(to).unwrap();
    l.listen(4).unwrap();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(to);
    h.sim.run_for(Duration::from_millis(10));
    let s = l.accept().unwrap();
    s.set_nonblocking(true);
    common::bulk_intact(&h.sim, &c, &s, 1 << 20, Duration::from_secs(30));
    assert!(c.info().snd_mss <= 1000 - 40, "mss {}", c.info().snd_mss);
    let fails = h.r.ipv4.mib.get(Ip::FragFails);
    let sent_icmp = h.r.ipv4.icmp_mib.get(Icmp::OutDestUnreachs);
    assert!((1..=3).contains(&fails), "{fails} refusals");
    assert_eq!(fails, sent_icmp, "each refusal told the sender");
    // Refused in ip_forward, before the TTL, the FORWARD hook and the forwarded count:
    // every datagram r took in was either forwarded or refused.
    let m = |x| h.r.ipv4.mib.get(x);
    assert_eq!(m(Ip::InReceives), m(Ip::ForwDatagrams) + fails);
}

/// The `net.ipv4.ipfrag_*` sysctls are the reassembly limits: a queue missing a
/// fragment lives `ipfrag_time` seconds, and above `ipfrag_high_thresh` bytes held new
/// fragments are refused.
#[test]
fn ipfrag_sysctls_set_the_reassembly_limits() {
    let h = usnet::testutil::TwoHosts::new(12, |_| {}).with_ip();
    h.b.sysctl.set("net.ipv4.ipfrag_time", 2).unwrap();
    // Lose every second fragment with a non-zero offset: no datagram completes.
    let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let n2 = n.clone();
    h.wire.set_drop_filter(
        1,
        Some(Arc::new(move |f: &usnet::skb::Skb| {
            let d = f.data();
            d.len() > 34
                && d[12..14] == [0x08, 0x00]
                && u16::from_be_bytes([d[20], d[21]]) & 0x1fff != 0
                && n2.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 0
        })),
    );
    let rx = UdpSocket::new(&h.b);
    rx.set_nonblocking(true);
    rx.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 9000)).unwrap();
    let tx = UdpSocket::new(&h.a);
    tx.set_nonblocking(true);
    tx.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 9000))
        .unwrap();
    tx.send_to(&[1u8; 8192], None).unwrap();
    h.sim.run_for(Duration::from_millis(1500));
    assert_eq!(h.b.ipv4.frags.queues(), 1, "held for ipfrag_time");
    h.sim.run_for(Duration::from_millis(1000));
    assert_eq!(h.b.ipv4.frags.queues(), 0, "expired after 2 s, not 30");
    assert_eq!(h.b.ipv4.mib.get(Ip::ReasmTimeout), 1);
    // A high threshold below one fragment's cost refuses the next datagram's pieces.
    h.b.sysctl.set("net.ipv4.ipfrag_high_thresh", 1).unwrap();
    h.b.sysctl.set("net.ipv4.ipfrag_low_thresh", 0).unwrap();
    let fails = h.b.ipv4.mib.get(Ip::ReasmFails);
    for _ in 0..2 {
        tx.send_to(&[2u8; 8192], None).unwrap();
        h.sim.run_for(Duration::from_millis(10));
    }
    assert!(
        h.b.ipv4.mib.get(Ip::ReasmFails) > fails,
        "refused over the limit"
    );
    assert_eq!(h.b.ipv4.frags.config().high_thresh, 1);
}
