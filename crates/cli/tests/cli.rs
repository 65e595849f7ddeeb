//! The `usnet` binary: the demo's JSON contract, exit status and `--help`.

use std::process::Command;

fn usnet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_usnet"))
        .args(args)
        .output()
        .expect("run usnet")
}

fn last_json(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

#[test]
fn demo_transfers_intact_under_impairment_and_reports_json() {
    let out = usnet(&[
        "demo",
        "--bytes",
        "4M",
        "--loss",
        "1%",
        "--delay",
        "1ms",
        "--reorder",
        "1",
        "--seed",
        "3",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out);
    assert_eq!(j["bytes"], 4 * 1024 * 1024);
    assert_eq!(j["sha256_sent"], j["sha256_received"]);
    assert_eq!(j["sha256_sent"].as_str().map(str::len), Some(64));
    assert!(j["seconds"].as_f64().unwrap() > 0.0);
    assert!(j["gbit_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        j["retransmits"].as_u64().unwrap() > 0,
        "1% loss causes retransmissions"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("TcpExt:"), "per-layer counters printed");
}

#[test]
fn demo_is_deterministic_per_seed() {
    let run = || {
        last_json(&usnet(&[
            "demo", "--bytes", "1M", "--loss", "2", "--delay", "1ms", "--seed", "9", "--json",
        ]))
    };
    let (a, b) = (run(), run());
    assert_eq!(a["retransmits"], b["retransmits"]);
    assert_eq!(a["virtual_seconds"], b["virtual_seconds"]);
}

#[test]
fn bad_options_are_clear_errors() {
    let out = usnet(&["demo", "--mtu", "20"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mtu"));
    let out = usnet(&["demo", "--cc", "vegas"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cubic"));
    let out = usnet(&["demo", "--reorder", "5"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "demo", "frames", "up", "get", "ss", "netstat", "route", "neigh", "qdisc", "ethtool",
        "iptables", "sysctl",
    ] {
        let out = usnet(&[cmd, "--help"]);
        assert!(out.status.success());
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("EXAMPLES"), "{cmd} --help: {s}");
    }
}

#[test]
fn demo_shows_linux_style_views_and_views_without_ctl_say_how() {
    let out = usnet(&[
        "demo",
        "--bytes",
        "1M",
        "--show",
        "ss,netstat,route,neigh,qdisc,ethtool",
    ]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "$ ss -tuai",
        "cwnd:",
        "Tcp:",
        "ActiveOpens: 1",
        "10.0.0.0/24 dev eth0",
        "lladdr",
        "qdisc pfifo_fast 0: dev eth0",
        "NIC statistics:",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    let out = usnet(&["ss", "-t"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ctl"));
}

#[test]
fn trace_follows_one_segment_through_the_seed_functions() {
    let svg = std::env::temp_dir().join(format!("usnet-trace-{}.svg", std::process::id()));
    let out = usnet(&[
        "trace",
        "--bytes",
        "256K",
        "--segment",
        "3",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    // The journey, in the seeds' order.
    let order = [
        "a     tcp_sendmsg",
        "a     tcp_write_xmit",
        "a     tcp_transmit_skb",
        "a     ip_queue_xmit",
        "a     ip_output",
        "a     ip_finish_output2",
        "a     dev_queue_xmit",
        "a     igb_xmit_frame_ring",
        "a     hw_tx",
        "b     hw_rx",
        "b     igb_clean_rx_irq",
        "b     ip_rcv",
        "b     tcp_v4_rcv",
        "a     tcp_ack",
    ];
    let mut at = 0;
    for stage in order {
        let pos = s[at..]
            .find(stage)
            .unwrap_or_else(|| panic!("{stage} missing or out of order:\n{s}"));
        at += pos;
    }
    assert!(s.contains("igb_clean_tx_irq"), "TX completion shown:\n{s}");
    assert!(
        s.contains("host b: stage") && s.contains("<100µs"),
        "histograms:\n{s}"
    );
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(drawing.starts_with("<svg") && drawing.contains("tcp_v4_rcv"));
    let _ = std::fs::remove_file(svg);
}
