//! The Linux-style views and their commands, on two simulated hosts.

use std::net::SocketAddrV4;
use std::time::Duration;

use usnet::tcp::TcpSock;
use usnet::testutil::{ip, TwoHosts};
use usnet::views::command;

fn pair() -> (TwoHosts, std::sync::Arc<TcpSock>, std::sync::Arc<TcpSock>) {
    let h = TwoHosts::new(51, |_| {}).with_ip();
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
    l.listen(16).unwrap();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
    h.sim.run_for(Duration::from_millis(10));
    c.send(&[1; 5000]).unwrap();
    h.sim.run_for(Duration::from_millis(10));
    (h, c, l)
}

#[test]
fn ss_lists_connections_listeners_and_tcp_info() {
    let (h, c, _l) = pair();
    let out = command(&h.a, &["ss", "-ti"]).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("tcp   ESTAB"))
        .expect(&out);
    assert!(
        line.contains(&c.local_addr().to_string()) && line.contains("10.0.0.2:80"),
        "{out}"
    );
    assert!(
        out.contains("cubic") && out.contains("mss:1448") && out.contains("bytes_acked:5001"),
        "{out}"
    );
    let b = command(&h.b, &["ss", "-tl"]).unwrap();
    assert!(
        b.lines()
            .any(|l| l.starts_with("tcp   LISTEN") && l.contains("10.0.0.2:80")),
        "{b}"
    );
    assert!(!b.contains("ESTAB"), "-l shows listeners only: {b}");
}

#[test]
fn netstat_counts_what_happened() {
    let (h, _c, _l) = pair();
    let out = command(&h.b, &["netstat", "-s"]).unwrap();
    for want in [
        "Ip:",
        "Tcp:",
        "TcpExt:",
        "Udp:",
        "Icmp:",
        "PassiveOpens: 1",
        "CurrEstab: 1",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
}

#[test]
fn route_add_get_del() {
    let (h, _c, _l) = pair();
    command(
        &h.a,
        &[
            "route",
            "add",
            "192.168.0.0/16",
            "via",
            "10.0.0.2",
            "metric",
            "5",
        ],
    )
    .unwrap();
    let show = command(&h.a, &["route"]).unwrap();
    assert!(
        show.contains("192.168.0.0/16 via 10.0.0.2 dev eth0 metric 5"),
        "{show}"
    );
    let get = command(&h.a, &["route", "get", "192.168.3.4"]).unwrap();
    assert!(
        get.contains("via 10.0.0.2") && get.contains("dev eth0"),
        "{get}"
    );
    command(&h.a, &["route", "del", "192.168.0.0/16"]).unwrap();
    let e = command(&h.a, &["route", "get", "192.168.3.4"]).unwrap_err();
    assert!(
        e.contains("113") || e.to_lowercase().contains("unreachable"),
        "{e}"
    );
    assert!(
        command(&h.a, &["route", "add", "10.9.0.0/16", "dev", "eth7"])
            .unwrap_err()
            .contains("eth7")
    );
    assert!(command(&h.a, &["route", "frobnicate"]).is_err());
}

#[test]
fn qdisc_replace_to_tbf_and_back() {
    let (h, _c, _l) = pair();
    command(
        &h.a,
        &[
            "qdisc", "replace", "dev", "eth0", "tbf", "rate", "10mbit", "burst", "32k",
        ],
    )
    .unwrap();
    let s = command(&h.a, &["qdisc", "-s"]).unwrap();
    assert!(s.contains("qdisc tbf 0: dev eth0 root"), "{s}");
    command(&h.a, &["qdisc", "replace", "dev", "eth0", "pfifo_fast"]).unwrap();
    assert!(command(&h.a, &["qdisc"])
        .unwrap()
        .contains("qdisc pfifo_fast 0: dev eth0"));
    assert!(
        command(&h.a, &["qdisc", "replace", "dev", "eth0", "tbf"]).is_err(),
        "tbf needs a rate"
    );
}

#[test]
fn qdisc_replace_to_fq_shows_its_parameters_and_counters() {
    let (h, _c, _l) = pair();
    command(
        &h.a,
        &["qdisc", "replace", "dev", "eth0", "fq", "flow_limit", "50"],
    )
    .unwrap();
    let s = command(&h.a, &["qdisc", "-s"]).unwrap();
    assert!(
        s.contains(
            "qdisc fq 0: dev eth0 root refcnt 2 limit 10000p flow_limit 50p buckets 1024 \
             orphan_mask 1023 quantum 3028b initial_quantum 15140b"
        ),
        "{s}"
    );
    assert!(s.contains("\n  flows "), "{s}");
    assert!(s.contains("\n  gc 0 highprio "), "{s}");
    let e = command(
        &h.a,
        &["qdisc", "replace", "dev", "eth0", "fq", "quantum", "0"],
    )
    .unwrap_err();
    assert!(e.contains("quantum"), "{e}");
    assert!(command(&h.a, &["qdisc", "replace", "dev", "eth0", "fq", "bogus"]).is_err());
}

#[test]
fn sysctl_iptables_neigh_ethtool() {
    let (h, _c, _l) = pair();
    assert_eq!(
        command(&h.a, &["sysctl", "net.ipv4.tcp_sack=0"]).unwrap(),
        "net.ipv4.tcp_sack = 0\n"
    );
    assert_eq!(
        command(&h.a, &["sysctl", "net.ipv4.tcp_sack"]).unwrap(),
        "net.ipv4.tcp_sack = 0\n"
    );
    assert!(command(&h.a, &["sysctl", "net.ipv4.nope"])
        .unwrap_err()
        .contains("No such file"));
    assert!(command(&h.a, &["sysctl", "-a"]).unwrap().lines().count() > 20);
    command(
        &h.b,
        &[
            "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP",
        ],
    )
    .unwrap();
    let l = command(&h.b, &["iptables", "-L", "-v", "-n"]).unwrap();
    assert!(l.contains("DROP") && l.contains("dpt:9"), "{l}");
    let n = command(&h.a, &["neigh"]).unwrap();
    assert!(
        n.contains("10.0.0.2 dev eth0 lladdr 02:00:00:00:00:02"),
        "{n}"
    );
    let e = command(&h.a, &["ethtool", "-S", "eth0"]).unwrap();
    assert!(
        e.starts_with("NIC statistics:") && e.contains("tx_queue_0_packets"),
        "{e}"
    );
    assert!(command(&h.a, &["ethtool", "-S", "eth9"]).is_err());
    assert!(command(&h.a, &["bogus"])
        .unwrap_err()
        .contains("unknown command"));
}

#[test]
fn link_shows_devices_and_sets_their_gso_and_gro_sizes() {
    let h = TwoHosts::new(52, |_| {}).with_ip();
    let out = command(&h.a, &["link", "show", "eth0"]).unwrap();
    assert!(
        out.contains("eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500")
            && out.contains("tso_max_size 524280 gso_ipv4_max_size 65536 gro_ipv4_max_size 65536"),
        "{out}"
    );
    command(
        &h.a,
        &[
            "link",
            "set",
            "eth0",
            "gso_ipv4_max_size",
            "185000",
            "gro_ipv4_max_size",
            "185000",
        ],
    )
    .unwrap();
    assert_eq!(h.da.gso_ipv4_max_size(), 185_000);
    assert_eq!(h.da.gro_ipv4_max_size(), 185_000);
    let all = command(&h.a, &["link"]).unwrap();
    assert!(
        all.contains("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536"),
        "{all}"
    );
    assert!(
        all.contains("gso_ipv4_max_size 185000 gro_ipv4_max_size 185000"),
        "{all}"
    );
    // As `ip link set`: a size above the device's tso_max_size is refused.
    let e = command(
        &h.a,
        &["link", "set", "eth0", "gso_ipv4_max_size", "600000"],
    )
    .unwrap_err();
    assert!(e.contains("tso_max_size"), "{e}");
    assert!(command(&h.a, &["link", "show", "eth9"]).is_err());
    command(&h.a, &["link", "set", "eth0", "mtu", "9000"]).unwrap();
    assert_eq!(h.da.mtu(), 9000);
    // All or nothing: a refused value leaves the earlier ones unapplied too.
    let e = command(
        &h.a,
        &[
            "link",
            "set",
            "eth0",
            "mtu",
            "1500",
            "gro_ipv4_max_size",
            "999999999",
        ],
    )
    .unwrap_err();
    assert!(e.contains("gro_ipv4_max_size"), "{e}");
    assert_eq!(h.da.mtu(), 9000);
    // An unknown setting after a good one: refused, the good one undone.
    let e = command(&h.a, &["link", "set", "eth0", "mtu", "1500", "bogus", "1"]).unwrap_err();
    assert!(e.contains("bogus"), "{e}");
    assert_eq!(h.da.mtu(), 9000);
}
