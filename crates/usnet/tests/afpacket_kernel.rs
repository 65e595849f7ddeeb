//! usnet on the `afpacket` driver (mmap'd `TPACKET_V3` rings) against the Linux
//! kernel over a veth pair. Each test makes two network namespaces: `usaf-…` (A)
//! holds the kernel's end `vk0` with 10.78.N.1/24; `usaf-…-u` (B) holds the peer end
//! `vu0`, up but with no address, which usnet opens through `AF_PACKET` and runs
//! 10.78.N.2 on. Offloads are turned off on both ends (`ethtool -K`) so the kernel
//! sends MTU-sized frames. Needs root (CAP_NET_ADMIN) and `ethtool`; skipped with a
//! message otherwise, except under `CI=true`, where it must run.

use std::net::SocketAddrV4;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet::dev::{Features, NetDevice};
use usnet::drivers::afpacket::AfPacket;
use usnet::socket::std_api::UdpSocket;
use usnet::testutil::ip;
use usnet::Stack;
use usnet_wire::EthernetAddress;

mod common;
use common::kernel::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Both namespaces, the veth pair between them, and a started usnet stack on `vu0`.
struct Lab {
    /// The kernel's namespace (A).
    ns: String,
    /// The namespace holding usnet's veth end (B).
    uns: String,
    stack: Stack,
    dev: Arc<NetDevice>,
    n: u8,
}

fn have_ethtool() -> bool {
    let ok = Command::new("ethtool")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(!in_ci(), "CI=true but ethtool is not installed");
        eprintln!("skipping: ethtool is not installed (apt-get install ethtool)");
    }
    ok
}

impl Lab {
    /// All offloads off on the kernel's end, checksums included: every frame the
    /// kernel sends is MTU-sized with its checksums finished.
    fn new() -> Option<Lab> {
        Lab::build(false)
    }

    /// As [`Lab::new`] but with the kernel's transmit checksum offload left on: its
    /// TCP frames reach `AF_PACKET` with the checksum unfinished
    /// (`TP_STATUS_CSUMNOTREADY`).
    fn with_tx_csum() -> Option<Lab> {
        Lab::build(true)
    }

    fn build(tx_csum: bool) -> Option<Lab> {
        if !have_ethtool() {
            return None;
        }
        let n =
            (NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() % 50 * 4) as u8 % 250 + 1;
        let ns = format!("usaf-{}-{n}", std::process::id());
        let uns = format!("{ns}-u");
        if !ns_add(&ns) {
            return None;
        }
        if !ns_add(&uns) {
            let _ = sh(&["ip", "netns", "del", &ns]);
            return None;
        }
        // From here on a failure panics; the guard removes the namespaces.
        let guard = NsGuard(vec![ns.clone(), uns.clone()]);
        must(&[
            "ip", "-n", &ns, "link", "add", "vk0", "type", "veth", "peer", "name", "vu0", "netns",
            &uns,
        ]);
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        must(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("10.78.{n}.1/24"),
            "dev",
            "vk0",
        ]);
        // usnet's end: no addresses, and no IPv6 chatter from B's kernel.
        let _ = sh(&[
            "ip",
            "netns",
            "exec",
            &uns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.vu0.disable_ipv6=1",
        ]);
        let kernel_off: &[&str] = if tx_csum {
            &["tso", "off", "gso", "off", "gro", "off"]
        } else {
            &["tso", "off", "gso", "off", "gro", "off", "tx", "off"]
        };
        let mut k = vec!["ip", "netns", "exec", &ns, "ethtool", "-K", "vk0"];
        k.extend_from_slice(kernel_off);
        must(&k);
        must(&[
            "ip", "netns", "exec", &uns, "ethtool", "-K", "vu0", "tso", "off", "gso", "off", "gro",
            "off",
        ]);
        must(&["ip", "-n", &uns, "link", "set", "vu0", "up"]);
        must(&["ip", "-n", &ns, "link", "set", "vk0", "up"]);
        let afp = AfPacket::open_in_netns("vu0", &netns_path(&uns)).expect("AF_PACKET rings");
        let stack = Stack::builder().name("usnet").build();
        let dev = AfPacket::create(
            &stack,
            &afp,
            "eth0",
            EthernetAddress([0x02, 0x75, 0x73, 0x61, 0x66, n]),
        )
        .expect("register");
        usnet::ipv4::addr::addr_add(&stack, &dev, ip(10, 78, n, 2), 24).expect("address");
        stack.start();
        std::mem::forget(guard);
        Some(Lab {
            ns,
            uns,
            stack,
            dev,
            n,
        })
    }

    /// A driver counter (`ethtool -S`) of usnet's device.
    fn stat(&self, name: &str) -> u64 {
        self.dev
            .ops
            .ethtool_stats()
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| panic!("no counter {name}"), |(_, v)| v)
    }

    fn stats(&self) -> String {
        format!("{:?}", self.dev.ops.ethtool_stats())
    }
}

impl KernelLab for Lab {
    fn stack(&self) -> &Stack {
        &self.stack
    }
    fn kernel(&self) -> std::net::Ipv4Addr {
        ip(10, 78, self.n, 1)
    }
    fn us(&self) -> std::net::Ipv4Addr {
        ip(10, 78, self.n, 2)
    }
    fn ns(&self) -> &str {
        &self.ns
    }
}

/// Removes namespaces if setting up the lab fails half-way.
struct NsGuard(Vec<String>);

impl Drop for NsGuard {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stack.stop();
        for ns in [&self.ns, &self.uns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

#[test]
fn the_kernel_pings_usnet_and_usnet_pings_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    ping_both_ways(&lab);
}

#[test]
fn usnet_sends_3_mb_to_a_kernel_tcp_server() {
    let Some(lab) = Lab::new() else { return };
    usnet_sends_to_the_kernel(&lab, 8000, 3_000_000);
}

#[test]
fn a_kernel_tcp_client_sends_2_mb_to_a_usnet_server() {
    let Some(lab) = Lab::new() else { return };
    the_kernel_sends_to_usnet(&lab, 8001, 2_000_000);
}

/// The ring counters move: blocks were retired to usnet (the DD bit), frames went out
/// through the TX ring, and nothing was malformed.
#[test]
fn the_ring_counters_show_blocks_in_and_frames_out() {
    let Some(lab) = Lab::new() else { return };
    assert_eq!(lab.dev.mtu(), 1500, "the veth's MTU");
    usnet_sends_to_the_kernel(&lab, 8002, 500_000);
    the_kernel_sends_to_usnet(&lab, 8003, 500_000);
    let s = lab.stats();
    eprintln!("afpacket counters: {s}");
    assert!(lab.stat("rx_blocks") > 0, "{s}");
    assert!(lab.stat("rx_frames") > 300, "{s}");
    assert!(lab.stat("tx_frames") > 300, "{s}");
    assert!(lab.stat("tx_kicks") > 0, "{s}");
    assert!(
        lab.stat("tp_packets") > 0,
        "the kernel counted them too: {s}"
    );
    assert_eq!(lab.stat("rx_errors"), 0, "{s}");
    assert_eq!(lab.stat("tx_errors"), 0, "{s}");
    assert_eq!(
        lab.stat("rx_csum_partial"),
        0,
        "tx checksumming is off on vk0: {s}"
    );
    assert_eq!(lab.dev.ops.driver_name(), "afpacket");
}

/// With the kernel's transmit checksum offload on, its TCP frames reach the ring with
/// the checksum unfinished; the driver hands them over as CHECKSUM_PARTIAL and the
/// bytes arrive intact.
#[test]
fn unfinished_kernel_checksums_arrive_as_checksum_partial() {
    let Some(lab) = Lab::with_tx_csum() else {
        return;
    };
    the_kernel_sends_to_usnet(&lab, 8004, 1_000_000);
    let s = lab.stats();
    eprintln!("afpacket counters: {s}");
    assert!(lab.stat("rx_csum_partial") > 0, "{s}");
    assert_eq!(lab.stat("rx_errors"), 0, "{s}");
}

/// A rate limit on usnet's veth end (`tbf` on `vu0`, 20 Mbit/s) holds the kernel's skbs
/// — and with them the TX ring's frames, which the kernel sends without copying — so
/// a burst of datagrams fills the ring: the driver stops the queue, the reader wakes
/// it as frames complete, and every datagram still arrives, in order.
#[test]
fn a_full_tx_ring_stops_the_queue_until_completions_wake_it() {
    const COUNT: usize = 1000;
    const SIZE: usize = 1200;
    let Some(lab) = Lab::new() else { return };
    must(&[
        "ip", "netns", "exec", &lab.uns, "tc", "qdisc", "add", "dev", "vu0", "root", "tbf", "rate",
        "20mbit", "burst", "16kb", "latency", "500ms",
    ]);
    // Resolve ARP first, so the burst does not wait in the neighbour queue.
    let p = usnet::ipv4::ping::PingSocket::new(&lab.stack).unwrap();
    p.send_echo(lab.kernel(), 1, b"warm").unwrap();
    p.recv(Some(Duration::from_secs(5))).expect("echo reply");
    // SO_RCVBUFFORCE (33): the receiver's buffer past net.core.rmem_max, so a
    // receiver the scheduler holds back under load does not drop datagrams.
    let py = lab.python(&format!(
        "import socket,hashlib\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,33,8<<20)\ns.bind(('{k}',9005))\nprint('ready',flush=True)\ns.settimeout(5)\nh=hashlib.sha256()\nn=0\ntry:\n  while n<{COUNT}:\n    h.update(s.recv(4096))\n    n+=1\nexcept socket.timeout:\n  pass\nprint(n,h.hexdigest())",
        k = lab.kernel()
    ));
    std::thread::sleep(Duration::from_millis(300));
    let datagrams: Vec<Vec<u8>> = (0..COUNT)
        .map(|i| (0..SIZE).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    let mut all = Vec::new();
    for d in &datagrams {
        all.extend_from_slice(d);
    }
    let stack = lab.stack.clone();
    let (us, kernel) = (lab.us(), lab.kernel());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // Sends block while the queue is stopped: bound the whole burst.
    std::thread::spawn(move || {
        let u = UdpSocket::bind(&stack, SocketAddrV4::new(us, 9005)).unwrap();
        for d in &datagrams {
            u.send_to(d, SocketAddrV4::new(kernel, 9005)).unwrap();
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the burst stalled: {}", lab.stats()));
    let out = wait_output(py);
    let s = lab.stats();
    eprintln!("afpacket counters: {s}");
    let want = format!("{COUNT} {}", sha256_hex(&all));
    assert_eq!(
        out.lines().last(),
        Some(want.as_str()),
        "every datagram, in order: {s}"
    );
    assert!(lab.stat("tx_ring_full") > 0, "the ring filled: {s}");
    assert!(lab.stat("tx_wakes") > 0, "completions woke the queue: {s}");
    assert_eq!(lab.stat("tx_errors"), 0, "{s}");
    let txq = &lab.dev.txqs[0];
    assert!(txq.stops.load(Ordering::Relaxed) > 0, "{s}");
    assert!(txq.wakes.load(Ordering::Relaxed) > 0, "{s}");
}

/// With software GSO turned on, TCP hands the device GSO skbs that are segmented just
/// before the driver: each batch's frames go into the ring with one doorbell
/// (`xmit_more`), and the bytes still arrive intact.
#[test]
fn with_software_gso_one_doorbell_rings_for_a_batch() {
    let Some(lab) = Lab::new() else { return };
    let f = lab.dev.set_features(Features::SG | Features::GSO);
    assert!(f.contains(Features::GSO), "{f:?}");
    usnet_sends_to_the_kernel(&lab, 8006, 3_000_000);
    let s = lab.stats();
    eprintln!("afpacket counters: {s}");
    let (frames, kicks) = (lab.stat("tx_frames"), lab.stat("tx_kicks"));
    assert!(frames > 2000, "{s}");
    assert!(kicks < frames / 2, "doorbells batched: {s}");
    assert_eq!(lab.stat("tx_errors"), 0, "{s}");
}
