//! usnet and the Linux kernel on one TAP link: each test makes its own network
//! namespace (`usnt-…`) holding the TAP interface with the kernel's address
//! 10.77.N.1/24, runs usnet at 10.77.N.2 on the descriptor, and removes the namespace.
//! Traffic stays inside that namespace. Needs root (CAP_NET_ADMIN); skipped with a
//! message otherwise, except under `CI=true`, where it must run.

use std::io::Write;
use std::net::SocketAddrV4;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use std::sync::Arc;

use usnet::drivers::packet::PacketSocket;
use usnet::drivers::relay::Relay;
use usnet::drivers::tap::Tap;
use usnet::link::{Loss, Netem};
use usnet::socket::std_api::UdpSocket;
use usnet::testutil::ip;
use usnet::Stack;
use usnet_wire::EthernetAddress;

mod common;
use common::kernel::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace with a TAP in it, and a started usnet stack on the TAP.
///
/// With a relay ([`Lab::with_relay`]) the kernel's interface is a second TAP held by
/// the relay, and usnet's TAP sits alone in a second namespace (no addresses, so its
/// kernel side answers nothing), where the relay reads and writes it through an
/// `AF_PACKET` socket: usnet ═ relay (impaired) ═ kernel.
struct Lab {
    ns: String,
    stack: Stack,
    n: u8,
    /// The namespace holding usnet's TAP, when there is a relay.
    relay_ns: Option<String>,
    /// The relay, when there is one.
    relay: Option<Relay>,
}

/// Give the kernel's interface `dev` in `ns` the address 10.77.n.1/24 and bring it up.
fn kernel_side_up(ns: &str, dev: &str, n: u8) {
    must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    must(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        &format!("10.77.{n}.1/24"),
        "dev",
        dev,
    ]);
    must(&["ip", "-n", ns, "link", "set", dev, "up"]);
}

impl Lab {
    fn new() -> Option<Lab> {
        Lab::build(None, false)
    }

    /// A multiqueue TAP (`IFF_MULTI_QUEUE`) with offloads.
    fn multiqueue(queues: usize) -> Option<Lab> {
        Lab::build_with(None, true, queues)
    }

    /// The TAP opened with offloads (virtio header, TSO and checksum both ways).
    fn offload() -> Option<Lab> {
        Lab::build(None, true)
    }

    /// usnet and the kernel with the relay between them, impairing each direction.
    fn with_relay(to_kernel: Netem, to_usnet: Netem) -> Option<Lab> {
        Lab::build(Some((to_kernel, to_usnet)), false)
    }

    fn build(relay: Option<(Netem, Netem)>, offload: bool) -> Option<Lab> {
        Lab::build_with(relay, offload, 1)
    }

    fn build_with(relay: Option<(Netem, Netem)>, offload: bool, queues: usize) -> Option<Lab> {
        let n =
            (NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() % 50 * 4) as u8 % 250 + 1;
        let ns = format!("usnt-{}-{n}", std::process::id());
        if !ns_add(&ns) {
            return None;
        }
        let (tap, relay) = match relay {
            None => {
                let tap = if queues > 1 {
                    Tap::open_multiqueue_in_netns("usnt0", queues, offload, &netns_path(&ns))
                } else if offload {
                    Tap::open_offload_in_netns("usnt0", &netns_path(&ns))
                } else {
                    Tap::open_in_netns("usnt0", &netns_path(&ns))
                }
                .expect("TAP");
                kernel_side_up(&ns, "usnt0", n);
                (tap, None)
            }
            Some((to_kernel, to_usnet)) => {
                let rns = format!("{ns}-r");
                assert!(ns_add(&rns), "second namespace");
                let ktap = Tap::open_in_netns("usnk0", &netns_path(&ns)).expect("kernel TAP");
                kernel_side_up(&ns, "usnk0", n);
                let tap = Tap::open_in_netns("usnt0", &netns_path(&rns)).expect("usnet TAP");
                must(&["ip", "-n", &rns, "link", "set", "usnt0", "up"]);
                let port = PacketSocket::open_in_netns("usnt0", &netns_path(&rns))
                    .expect("AF_PACKET on usnet's TAP");
                let r = Relay::start(Arc::new(port), ktap, to_kernel, to_usnet, 42).expect("relay");
                (tap, Some((rns, r)))
            }
        };
        let stack = Stack::builder().name("usnet").build();
        let dev = Tap::create(
            &stack,
            &tap,
            "eth0",
            EthernetAddress([0x02, 0x75, 0x73, 0x6e, 0x65, n]),
        )
        .expect("register");
        usnet::ipv4::addr::addr_add(&stack, &dev, ip(10, 77, n, 2), 24).expect("address");
        stack.start();
        let (relay_ns, relay) = relay.unzip();
        Some(Lab {
            ns,
            stack,
            n,
            relay_ns,
            relay,
        })
    }
}

impl KernelLab for Lab {
    fn stack(&self) -> &Stack {
        &self.stack
    }
    fn kernel(&self) -> std::net::Ipv4Addr {
        ip(10, 77, self.n, 1)
    }
    fn us(&self) -> std::net::Ipv4Addr {
        ip(10, 77, self.n, 2)
    }
    fn ns(&self) -> &str {
        &self.ns
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stack.stop();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        drop(self.relay.take());
        if let Some(rns) = self.relay_ns.take() {
            let _ = Command::new("ip").args(["netns", "del", &rns]).output();
        }
    }
}

#[test]
fn udp_both_ways_with_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    let u = UdpSocket::bind(&lab.stack, SocketAddrV4::new(lab.us(), 9000)).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Kernel → usnet, then usnet answers to the kernel's socket.
    let py = lab.python(&format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(5)\ns.bind(('{k}',9001))\ns.sendto(b'from linux',('{u}',9000))\nprint(s.recvfrom(100)[0].decode())",
        k = lab.kernel(),
        u = lab.us()
    ));
    let mut buf = [0u8; 64];
    let (n, from) = u.recv_from(&mut buf).expect("datagram from the kernel");
    assert_eq!(&buf[..n], b"from linux");
    assert_eq!(from, SocketAddrV4::new(lab.kernel(), 9001));
    u.send_to(b"from usnet", from).unwrap();
    assert_eq!(wait_output(py).trim(), "from usnet");
}

#[test]
fn usnet_connects_to_a_kernel_tcp_server() {
    let Some(lab) = Lab::new() else { return };
    usnet_sends_to_the_kernel(&lab, 8000, 3_000_000);
}

#[test]
fn a_kernel_tcp_client_talks_to_a_usnet_server() {
    let Some(lab) = Lab::new() else { return };
    the_kernel_sends_to_usnet(&lab, 8001, 2_000_000);
}

/// A driver counter (`ethtool -S`) of usnet's TAP device.
fn tap_stat(lab: &Lab, name: &str) -> u64 {
    let dev = lab.stack.devs.by_name("eth0").expect("eth0");
    dev.ops
        .ethtool_stats()
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| v)
}

/// With offloads, usnet writes TSO frames the kernel segments itself, and reads the
/// kernel's GSO packets whole, checksums unfinished — and the bytes still arrive
/// intact both ways.
#[test]
fn with_offloads_tso_frames_go_out_and_gso_packets_come_in_intact() {
    let Some(lab) = Lab::offload() else { return };
    usnet_sends_to_the_kernel(&lab, 8005, 8_000_000);
    let tso = tap_stat(&lab, "tx_tso_frames");
    assert!(tso > 0, "usnet handed the kernel TSO frames");
    // The application's own pages as the frames' fragments (`send_pages`).
    usnet_splices_to_the_kernel(&lab, 8007, 8_000_000);
    assert!(
        tap_stat(&lab, "tx_tso_frames") > tso,
        "spliced pages went out as TSO"
    );
    the_kernel_sends_to_usnet(&lab, 8006, 8_000_000);
    let gso = tap_stat(&lab, "rx_gso_frames");
    assert!(gso > 0, "the kernel handed usnet GSO packets");
    assert_eq!(tap_stat(&lab, "rx_errors"), 0);
    assert_eq!(tap_stat(&lab, "tx_errors"), 0);
}

/// A multiqueue TAP: flows spread over the queues both ways (the kernel by its flow
/// hash, usnet by `netdev_pick_tx`), each queue with its own descriptor and reader,
/// and every flow's bytes arrive intact.
#[test]
fn a_multiqueue_tap_spreads_flows_over_its_queues() {
    let Some(lab) = Lab::multiqueue(4) else {
        return;
    };
    std::thread::scope(|sc| {
        for i in 0..6u16 {
            let lab = &lab;
            sc.spawn(move || usnet_sends_to_the_kernel(lab, 8100 + i, 1_000_000));
            sc.spawn(move || the_kernel_sends_to_usnet(lab, 8200 + i, 1_000_000));
        }
    });
    let used = |dir: &str| {
        (0..4)
            .filter(|q| tap_stat(&lab, &format!("{dir}_queue_{q}_frames")) > 0)
            .count()
    };
    assert!(used("tx") >= 2, "usnet sent on {} queues", used("tx"));
    assert!(used("rx") >= 2, "the kernel sent on {} queues", used("rx"));
    assert_eq!(tap_stat(&lab, "rx_errors"), 0);
}

/// 1% random loss and 5 ms delay each way (10 ms RTT) between usnet and the kernel,
/// applied by the relay: both kernels' loss recovery (usnet's SACK/RACK, Linux's)
/// bring every byte through, both ways.
#[test]
fn transfers_through_a_lossy_relay_arrive_intact_both_ways() {
    let imp = Netem {
        delay: Duration::from_millis(5),
        loss: Loss::Random(0.01),
        ..Netem::default()
    };
    let Some(lab) = Lab::with_relay(imp, imp) else {
        return;
    };
    let t0 = std::time::Instant::now();
    usnet_sends_to_the_kernel(&lab, 8003, 1_500_000);
    the_kernel_sends_to_usnet(&lab, 8004, 1_500_000);
    let retrans = lab.stack.tcp.snmp.get(usnet::tcp::Tcp::RetransSegs);
    let st = lab.relay.as_ref().unwrap().stats();
    for (dir, d) in ["usnet→kernel", "kernel→usnet"].iter().zip(st) {
        assert!(d.received > 1000, "{dir}: {d:?}");
        assert!(d.lost > 0, "{dir}: the relay lost frames: {d:?}");
        assert!(
            d.lost * 1000 < d.received * 25,
            "{dir}: about 1% lost: {d:?}"
        );
        assert_eq!(d.too_big, 0, "{dir}: MTU-sized frames only: {d:?}");
    }
    assert!(retrans > 0, "usnet retransmitted what the relay lost");
    // The delay is real: a 10 ms RTT bounds how fast it can go.
    assert!(
        t0.elapsed() > Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
}

/// The relay's own contract, on ping through it: the delay shows in the RTT, and
/// every frame is accounted for (received = forwarded + lost + dropped + ... −
/// duplicated).
#[test]
fn the_relay_delays_and_accounts_for_every_frame() {
    let imp = Netem {
        delay: Duration::from_millis(20),
        duplicate: 0.2,
        ..Netem::default()
    };
    let Some(mut lab) = Lab::with_relay(imp, Netem::default()) else {
        return;
    };
    let p = usnet::ipv4::ping::PingSocket::new(&lab.stack).unwrap();
    // The first echo waits for ARP; then time the rest.
    p.send_echo(lab.kernel(), 1, b"warm").unwrap();
    p.recv(Some(Duration::from_secs(5))).expect("first reply");
    let mut rtts = Vec::new();
    for i in 2..40u16 {
        let t = std::time::Instant::now();
        p.send_echo(lab.kernel(), i, b"through the relay").unwrap();
        loop {
            let r = p.recv(Some(Duration::from_secs(5))).expect("reply");
            if r.seq == i {
                break;
            }
        }
        rtts.push(t.elapsed());
    }
    let min = *rtts.iter().min().unwrap();
    assert!(
        min >= Duration::from_millis(20) && min < Duration::from_millis(200),
        "one-way 20 ms delay: min RTT {min:?}"
    );
    lab.stack.stop();
    std::thread::sleep(Duration::from_millis(100));
    let [a, b] = lab.relay.take().unwrap().stop();
    assert!(a.duplicated > 0, "{a:?}");
    for d in [a, b] {
        assert_eq!(
            d.received + d.duplicated,
            d.forwarded + d.lost + d.dropped_limit + d.too_big + d.send_errors + d.discarded,
            "{d:?}"
        );
    }
}

#[test]
fn the_kernel_pings_usnet_and_usnet_pings_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    ping_both_ways(&lab);
}

#[test]
fn tcpdump_on_the_kernel_side_finds_nothing_wrong_with_usnet_packets() {
    let Some(lab) = Lab::new() else { return };
    let dump = Command::new("ip")
        .args([
            "netns", "exec", &lab.ns, "timeout", "10", "tcpdump", "-i", "usnt0", "-n", "-vv", "-c",
            "12", "tcp",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    let py = lab.python(&format!(
        "import socket\nl=socket.socket()\nl.bind(('{k}',8002))\nl.listen()\nc,_=l.accept()\nwhile c.recv(65536): pass\nc.close()",
        k = lab.kernel()
    ));
    std::thread::sleep(Duration::from_millis(300));
    let mut s = connect_when_listening(&lab.stack, SocketAddrV4::new(lab.kernel(), 8002));
    s.write_all(&[0x42; 20_000]).unwrap();
    drop(s);
    wait_output(py);
    let out = dump.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{}.", lab.us())),
        "usnet's packets captured:\n{text}"
    );
    for bad in ["bad cksum", "incorrect", "truncated", "malformed", "[|tcp]"] {
        assert!(!text.contains(bad), "tcpdump says {bad:?}:\n{text}");
    }
    assert!(
        text.contains("cksum") && text.contains("(correct)"),
        "checksums verified:\n{text}"
    );
}
