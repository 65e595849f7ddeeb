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
        "demo", "frames", "up", "get", "send", "recv", "ss", "netstat", "route", "neigh", "qdisc",
        "ethtool", "iptables", "sysctl",
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
        "--delay",
        "1ms",
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
    // The stage times add up to no more than the segment's total, in virtual time and
    // in host a's CPU time.
    let nums = |line: &str| -> Vec<f64> {
        line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let total = s
        .lines()
        .find(|l| l.contains("segment total"))
        .expect("totals");
    let v = nums(total);
    assert!(v[1] <= v[0] + 0.001 && v[0] > 0.0, "{total}");
    let cpu = s
        .lines()
        .find(|l| l.contains("CPU at the stages"))
        .expect("CPU");
    let c = nums(cpu);
    assert!(c[0] <= c[1] && c[0] > 0.0, "{cpu}");
    assert!(
        s.contains("host b: stage") && s.contains("<100µs"),
        "histograms:\n{s}"
    );
    // The drawing parses as XML and shows the same journey, box by box, in order.
    let drawing = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&drawing).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let boxes: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    let mut at = 0;
    for stage in order {
        let (host, name) = stage.split_once(' ').unwrap();
        let want = format!("{host} {}", name.trim());
        let pos = boxes[at..]
            .iter()
            .position(|t| t.starts_with(&want))
            .unwrap_or_else(|| panic!("{want} missing or out of order in the SVG"));
        at += pos;
    }
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("rect")).count(),
        boxes.len() - 1
    );
    let _ = std::fs::remove_file(svg);
}

#[test]
fn demo_plots_cwnd_ssthresh_srtt_and_throughput_as_svg_and_png() {
    let dir = std::env::temp_dir();
    let svg = dir.join(format!("usnet-plot-{}.svg", std::process::id()));
    let png = dir.join(format!("usnet-plot-{}.png", std::process::id()));
    for file in [&svg, &png] {
        let out = usnet(&[
            "demo",
            "--bytes",
            "4M",
            "--loss",
            "1%",
            "--delay",
            "2ms",
            "--plot",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The SVG parses as XML and holds the four series, each a real curve inside the
    // drawing; ssthresh appears because the losses set it.
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let (w, h): (f64, f64) = (
        root.attribute("width").unwrap().parse().unwrap(),
        root.attribute("height").unwrap().parse().unwrap(),
    );
    for name in ["cwnd", "ssthresh", "srtt", "throughput"] {
        let line = doc
            .descendants()
            .find(|n| n.attribute("data-series") == Some(name))
            .unwrap_or_else(|| panic!("no {name} series"));
        let pts: Vec<(f64, f64)> = line
            .attribute("points")
            .unwrap()
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert!(pts.len() >= 10, "{name}: {} points", pts.len());
        assert!(
            pts.iter()
                .all(|&(x, y)| (0.0..=w).contains(&x) && (0.0..=h).contains(&y)),
            "{name} stays inside the drawing"
        );
        assert!(
            pts.windows(2).all(|p| p[1].0 >= p[0].0),
            "{name}: time runs left to right"
        );
    }
    // The PNG: signature, IHDR with the drawing's size, chunks with valid CRCs, and
    // IEND last.
    let b = std::fs::read(&png).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let mut kinds = Vec::new();
    while at < b.len() {
        let len = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let kind = &b[at + 4..at + 8];
        let crc = u32::from_be_bytes(b[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32(&b[at + 4..at + 8 + len]), "CRC of {kind:?}");
        if kind == b"IHDR" {
            let d = &b[at + 8..at + 8 + len];
            assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()) as f64, w);
            assert_eq!(u32::from_be_bytes(d[4..8].try_into().unwrap()) as f64, h);
        }
        kinds.push(String::from_utf8_lossy(kind).to_string());
        at += 12 + len;
    }
    assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
    let _ = std::fs::remove_file(svg);
    let _ = std::fs::remove_file(png);
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn plot_needs_an_svg_or_png_name() {
    let out = usnet(&["demo", "--bytes", "1M", "--plot", "/tmp/x.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".svg or .png"));
}

#[test]
fn demo_matches_under_5_percent_loss_and_2_percent_reordering() {
    let out = usnet(&[
        "demo",
        "--bytes",
        "2M",
        "--loss",
        "5",
        "--reorder",
        "2",
        "--delay",
        "1ms",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out);
    assert_eq!(j["identical"], true);
    assert_eq!(j["sha256_sent"], j["sha256_received"]);
    assert!(j["retransmits"].as_u64().unwrap() > 0);
}

/// `usnet bench --quick --json`: every case has a unit and, for each system, median,
/// min and max or `null` with a note; ratios are usnet's median over the peer's.
#[test]
fn bench_quick_json_reports_every_case_side_by_side() {
    let t0 = std::time::Instant::now();
    let out = usnet(&["bench", "--quick", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(300),
        "under 5 minutes"
    );
    let j = last_json(&out);
    let cases = j["cases"].as_array().expect("cases");
    let names: Vec<&str> = cases.iter().filter_map(|c| c["name"].as_str()).collect();
    for want in [
        "bulk_mtu1500",
        "bulk_mtu9000",
        "rr_1byte_one_thread",
        "rr_1byte_threads",
        "rr_1byte_veth_busy_poll",
        "lossy_1pct_10ms",
        "conn_setup",
        "idle_conn_memory",
        "tap_usnet_to_kernel",
        "tap_usnet_to_kernel_sendfile",
        "tap_kernel_to_usnet",
        "limit",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for c in cases.iter().filter(|c| c["name"] != "limit") {
        assert!(c["unit"].is_string(), "{c}");
        for sys in ["usnet", "smoltcp", "kernel"] {
            let v = &c[sys];
            if v.is_null() {
                assert!(c["note"].as_str().is_some_and(|n| n.contains(sys)), "{c}");
            } else {
                let (lo, mid, hi) = (
                    v["min"].as_f64().unwrap(),
                    v["median"].as_f64().unwrap(),
                    v["max"].as_f64().unwrap(),
                );
                assert!(lo > 0.0 && lo <= mid && mid <= hi, "{sys} in {c}");
            }
        }
        if let (Some(u), Some(s), Some(r)) = (
            c["usnet"]["median"].as_f64(),
            c["smoltcp"]["median"].as_f64(),
            c["ratio_usnet_smoltcp"].as_f64(),
        ) {
            assert!((u / s - r).abs() <= 0.01 * r.max(1.0), "{c}");
        }
    }
    // usnet and smoltcp always run the bulk cases in memory.
    assert!(cases[0]["usnet"]["median"].as_f64().unwrap() > 0.1);
    assert!(cases[0]["smoltcp"]["median"].as_f64().unwrap() > 0.1);
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            !cases[0]["kernel"].is_null(),
            "CI runs as root: the veth case must run"
        );
        // The zero-copy TAP case: usnet's send_pages and the kernel's sendfile both ran.
        let zc = cases
            .iter()
            .find(|c| c["name"] == "tap_usnet_to_kernel_sendfile")
            .expect("the sendfile case");
        assert!(zc["usnet"]["median"].as_f64().unwrap() > 0.1, "{zc}");
        assert!(zc["kernel"]["median"].as_f64().unwrap() > 0.1, "{zc}");
    }
}
