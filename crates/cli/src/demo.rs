//! `usnet demo`: two hosts, 10.0.0.1 and 10.0.0.2, each with an emulated igb-like NIC,
//! on one in-memory wire with netem-style impairments, stepped by the deterministic
//! scheduler. Host A opens a TCP connection to host B and sends `--bytes` of data
//! through the whole stack: tcp_sendmsg → tcp_write_xmit → tcp_transmit_skb →
//! ip_queue_xmit → neighbour/ARP → dev_queue_xmit → qdisc → vnic TX ring → wire → vnic
//! RX ring → NAPI → ip_rcv → tcp_v4_rcv → the reading application, and the ACKs back.
//! The data are hashed at both ends; the counters that moved are printed per layer.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use clap::Args;
use sha2::{Digest, Sha256};
use usnet::link::{Loss, Netem};
use usnet::pcap::PcapTap;
use usnet::tcp::{SockOpt, TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};
use usnet::util::{parse_percent, parse_rate, parse_size, parse_time};
use usnet::Stack;

/// Options of `usnet demo`, written as `tc netem` writes them.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    usnet demo\n  \
    usnet demo --bytes 100M --loss 2% --delay 5ms --reorder 1 --seed 7\n  \
    usnet demo --bytes 10M --rate 1gbit --delay 1ms --cc reno --json\n  \
    usnet demo --bytes 1M --pcap /tmp/demo.pcap && tcpdump -nr /tmp/demo.pcap | head\n  \
    usnet demo --bytes 20M --loss 1% --delay 5ms --plot /tmp/cwnd.svg")]
pub struct DemoArgs {
    /// Bytes to transfer from A to B (`1G`, `100M`, `4096`).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    bytes: u64,
    /// MTU of both NICs (68–9000).
    #[arg(long, default_value = "1500")]
    mtu: u32,
    /// Random loss on the wire, both directions, in percent (`2` or `2%`).
    #[arg(long, value_parser = parse_percent)]
    loss: Option<f64>,
    /// One-way delay (`5ms`): the RTT is twice this.
    #[arg(long, value_parser = parse_time)]
    delay: Option<Duration>,
    /// Jitter around the delay (`1ms`).
    #[arg(long, value_parser = parse_time)]
    jitter: Option<Duration>,
    /// Percentage of frames sent ahead of delayed ones (needs --delay, as tc netem).
    #[arg(long, value_parser = parse_percent)]
    reorder: Option<f64>,
    /// Duplicate frames, in percent.
    #[arg(long, value_parser = parse_percent)]
    duplicate: Option<f64>,
    /// NIC line rate (`10gbit`, `100mbit`) in virtual time; `0`: infinitely fast.
    #[arg(long, default_value = "10gbit", value_parser = parse_rate)]
    rate: u64,
    /// Congestion control of the sender (`cubic`, `reno`, `bbr`).
    #[arg(long, default_value = "cubic")]
    cc: String,
    /// Seed for every random choice (same seed, same run).
    #[arg(long, default_value = "1")]
    seed: u64,
    /// Capture what host B receives to this pcap file (tcpdump -r reads it).
    #[arg(long)]
    pcap: Option<std::path::PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// After the transfer, show host a's state as Linux's tools would: any of ss,
    /// netstat, route, neigh, qdisc, ethtool, link (comma separated).
    #[arg(long, value_delimiter = ',')]
    show: Vec<String>,
    /// Draw cwnd, ssthresh, srtt and throughput against virtual time to this file
    /// (`.svg`, or `.png` without text), sampled every 100 µs of virtual time.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

/// Whether `p` names a file `--plot` can write: `Some(true)` for PNG, `Some(false)`
/// for SVG.
fn plot_kind(p: &std::path::Path) -> Option<bool> {
    match p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "png" => Some(true),
        Some(e) if e == "svg" => Some(false),
        _ => None,
    }
}

/// A deterministic payload stream (xorshift64), so any misplaced byte changes the hash.
struct Payload(u64);

impl Payload {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Every counter of a host, by "Group:Name".
fn counters(h: &Stack) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let groups = [
        ("Ip", h.ipv4.mib.snapshot()),
        ("Icmp", h.ipv4.icmp_mib.snapshot()),
        ("Tcp", h.tcp.snmp.snapshot()),
        ("TcpExt", h.tcp.mib.snapshot()),
    ];
    for (g, snap) in groups {
        for (k, v) in snap {
            m.insert(format!("{g}:{k}"), v);
        }
    }
    if let Some(dev) = h.devs.by_name("eth0") {
        for (k, v) in dev.link_stats().into_iter().chain(dev.offload_stats()) {
            m.insert(format!("eth0:{k}"), v);
        }
        let q = dev.txqs[0].qdisc.stats();
        m.insert("qdisc:packets".into(), q.packets);
        m.insert("qdisc:drops".into(), q.drops);
        m.insert("qdisc:requeues".into(), q.requeues);
    }
    m
}

fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    after
        .iter()
        .filter(|(k, v)| {
            // Gauges and constants are not movement.
            !k.ends_with("RtoAlgorithm")
                && !k.ends_with("RtoMin")
                && !k.ends_with("RtoMax")
                && !k.ends_with("MaxConn")
                && !k.ends_with("Forwarding")
                && !k.ends_with("DefaultTTL")
                && !k.ends_with("CurrEstab")
                && **v != before.get(*k).copied().unwrap_or(0)
        })
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0).min(*v)))
        .collect()
}

fn human(bytes: f64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", U[i])
}

/// Run the demo; returns the process exit status.
pub fn run(a: DemoArgs) -> i32 {
    if !(68..=9000).contains(&a.mtu) {
        eprintln!("usnet demo: --mtu {} is outside 68..=9000", a.mtu);
        return 2;
    }
    if a.reorder.is_some() && a.delay.is_none() {
        eprintln!(
            "usnet demo: --reorder needs --delay (reordered frames skip the delay), as tc netem"
        );
        return 2;
    }
    let plot_png = match &a.plot {
        None => false,
        Some(p) => match plot_kind(p) {
            Some(png) => png,
            None => {
                eprintln!(
                    "usnet demo: --plot {} needs a .svg or .png file name",
                    p.display()
                );
                return 2;
            }
        },
    };
    if usnet::tcp::cong::by_name(&a.cc).is_none() {
        eprintln!(
            "usnet demo: unknown congestion control {:?} (try cubic, reno or bbr)",
            a.cc
        );
        return 2;
    }
    let h = TwoHosts::new(a.seed, |c| {
        c.line_rate_bps = a.rate;
        c.mtu = a.mtu;
    })
    .with_ip();
    let netem = Netem {
        delay: a.delay.unwrap_or_default(),
        jitter: a.jitter.unwrap_or_default(),
        loss: a.loss.map(Loss::Random).unwrap_or_default(),
        reorder: a.reorder.unwrap_or(0.0),
        duplicate: a.duplicate.unwrap_or(0.0),
        limit: 100_000,
        ..Netem::default()
    };
    h.wire.set_netem(0, netem);
    h.wire.set_netem(1, netem);
    if let Some(p) = &a.pcap {
        match PcapTap::create_rx_only(p) {
            Ok(t) => h.db.add_tap(t),
            Err(e) => {
                eprintln!(
                    "usnet demo: cannot write {}: {e} (is the directory writable?)",
                    p.display()
                );
                return 1;
            }
        }
    }
    println!(
        "usnet demo: TCP from host a (10.0.0.1) to host b (10.0.0.2:5001) over an in-memory wire"
    );
    println!(
        "  {} ({} bytes), MTU {}, congestion control {}; impairments: {}",
        human(a.bytes as f64),
        a.bytes,
        a.mtu,
        a.cc,
        describe(&netem, (a.rate > 0).then_some(a.rate))
    );
    let before_a = counters(&h.a);
    let before_b = counters(&h.b);

    // Connection setup.
    let listener = TcpSock::new(&h.b);
    listener.set_nonblocking(true);
    let setup = listener
        .bind(SocketAddrV4::new(ip(10, 0, 0, 2), 5001))
        .and_then(|_| listener.listen(128));
    if let Err(e) = setup {
        eprintln!("usnet demo: listen failed: {e}");
        return 1;
    }
    let client = TcpSock::new(&h.a);
    client.set_nonblocking(true);
    if let Err(e) = client.set_opt(SockOpt::Congestion(a.cc.clone())) {
        eprintln!("usnet demo: {e}");
        return 2;
    }
    let _ = client.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 5001));
    let mut server = None;
    h.sim.run_while(
        || {
            server = server.take().or_else(|| listener.accept().ok());
            server.is_none() || client.state() != TcpState::Established
        },
        Duration::from_secs(120),
    );
    let Some(server) = server else {
        eprintln!(
            "usnet demo: the connection was not established within 120 s of virtual time ({:?}); with --loss near 100% nothing gets through",
            client.state()
        );
        return 1;
    };
    server.set_nonblocking(true);

    // The transfer.
    let mut payload = Payload(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut tx_hash, mut rx_hash) = (Sha256::new(), Sha256::new());
    let mut chunk = vec![0u8; 256 * 1024];
    let (mut off, mut len) = (0usize, 0usize);
    let (mut sent, mut received) = (0u64, 0u64);
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut closed = false;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let start = Instant::now();
    let vstart = h.sim.now();
    let mut last = Instant::now();
    let mut next_pct = 10u64;
    let total = a.bytes;
    let mut samples: Vec<crate::plot::Sample> = Vec::new();
    let plotting = a.plot.is_some();
    let sample_every = Duration::from_micros(100);
    let mut next_sample = vstart;
    let finished = h.sim.run_while(
        || {
            loop {
                if off == len && sent < total {
                    len = (total - sent).min(chunk.len() as u64) as usize;
                    payload.fill(&mut chunk[..len]);
                    tx_hash.update(&chunk[..len]);
                    off = 0;
                }
                if off == len {
                    break;
                }
                match client.send(&chunk[off..len]) {
                    Ok(n) => {
                        off += n;
                        sent += n as u64;
                    }
                    Err(_) => break,
                }
            }
            if sent == total && off == len && !closed {
                client.close();
                closed = true;
            }
            loop {
                match server.recv(&mut rbuf) {
                    Ok(0) => return false,
                    Ok(n) => {
                        rx_hash.update(&rbuf[..n]);
                        received += n as u64;
                    }
                    Err(_) => break,
                }
            }
            if plotting && h.sim.now() >= next_sample {
                let now = h.sim.now();
                next_sample = now + sample_every;
                samples.push(client.with_tcb(|t| crate::plot::Sample {
                    t: now.saturating_duration_since(vstart).as_secs_f64(),
                    cwnd: t.snd_cwnd,
                    ssthresh: t.snd_ssthresh,
                    srtt_us: t.srtt_us >> 3,
                    received,
                }));
            }
            let pct = received * 100 / total.max(1);
            let show = if tty {
                last.elapsed() > Duration::from_millis(200)
            } else {
                pct >= next_pct
            };
            if show {
                last = Instant::now();
                while next_pct <= pct {
                    next_pct += 10;
                }
                let i = client.info();
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                let line = format!(
                    "  {:>5.1}%  {:>10} of {:<10}  {:>7.2} Gbit/s  cwnd {:>5}  retrans {:>7}  virtual {:>8.3} s",
                    received as f64 * 100.0 / total.max(1) as f64,
                    human(received as f64),
                    human(total as f64),
                    received as f64 * 8.0 / secs / 1e9,
                    i.snd_cwnd,
                    i.total_retrans,
                    h.sim.now().saturating_duration_since(vstart).as_secs_f64()
                );
                if tty {
                    eprint!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
                let _ = std::io::stderr().flush();
            }
            true
        },
        Duration::from_secs(24 * 3600),
    );
    if tty {
        eprintln!();
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let vsecs = h.sim.now().saturating_duration_since(vstart).as_secs_f64();
    h.db.clear_taps();
    let info = client.info();
    let sha_sent = hex(&tx_hash.finalize());
    let sha_recv = hex(&rx_hash.finalize());
    let intact = finished && received == total && sha_sent == sha_recv;
    let gbps = received as f64 * 8.0 / secs / 1e9;
    if let Some(p) = &a.plot {
        let title = format!(
            "usnet demo: {} over {}, {}",
            human(total as f64),
            describe(&netem, (a.rate > 0).then_some(a.rate)),
            a.cc
        );
        let bytes = if plot_png {
            crate::plot::png(&samples)
        } else {
            crate::plot::svg(&title, &samples).into_bytes()
        };
        if let Err(e) = std::fs::write(p, bytes) {
            eprintln!(
                "usnet demo: cannot write {}: {e} (is the directory writable?)",
                p.display()
            );
            return 1;
        }
        eprintln!("plot: {} ({} samples)", p.display(), samples.len());
    }

    println!("\nresult:");
    println!("  bytes            {received} of {total}");
    println!("  seconds          {secs:.3} (wall clock; virtual time {vsecs:.3} s)");
    println!("  throughput       {gbps:.2} Gbit/s through both stacks");
    println!(
        "  retransmits      {} ({} bytes), cwnd {} ssthresh {}, srtt {:.3} ms",
        info.total_retrans,
        info.bytes_retrans,
        info.snd_cwnd,
        if info.snd_ssthresh >= 0x7fff_ffff {
            "-".to_string()
        } else {
            info.snd_ssthresh.to_string()
        },
        info.rtt_us as f64 / 1000.0
    );
    println!("  sha256 sent      {sha_sent}");
    println!("  sha256 received  {sha_recv}");
    println!(
        "  data             {}",
        if intact {
            "identical"
        } else {
            "DIFFERENT (or incomplete)"
        }
    );
    for (name, host, before) in [("a", &h.a, &before_a), ("b", &h.b, &before_b)] {
        let m = moved(before, &counters(host));
        println!(
            "\ncounters that moved on host {name} (netstat -s / ip -s link / ethtool -S names):"
        );
        let mut group = String::new();
        for (k, v) in &m {
            let (g, n) = k.split_once(':').unwrap_or(("", k));
            if g != group {
                print!("\n  {g}:");
                group = g.to_string();
            }
            print!(" {n} {v}");
        }
        println!();
    }
    for v in &a.show {
        let args: Vec<&str> = match v.as_str() {
            "ss" => vec!["ss", "-tuai"],
            "netstat" => vec!["netstat", "-s"],
            "ethtool" => vec!["ethtool", "-S", "eth0"],
            "qdisc" => vec!["qdisc", "-s"],
            other => vec![other],
        };
        println!("\n$ {} (host a)", args.join(" "));
        match usnet::views::command(&h.a, &args) {
            Ok(t) => print!("{t}"),
            Err(e) => println!("usnet demo: --show {v}: {e}"),
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "bytes": received,
                "seconds": secs,
                "gbit_per_s": gbps,
                "virtual_seconds": vsecs,
                "retransmits": info.total_retrans,
                "sha256_sent": sha_sent,
                "sha256_received": sha_recv,
                "identical": intact,
                "cwnd": info.snd_cwnd,
                "srtt_us": info.rtt_us,
                "cc": a.cc,
                "seed": a.seed,
            })
        );
    }
    if intact {
        0
    } else {
        1
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The impairments as `tc netem` would list them.
pub fn describe(n: &Netem, rate: Option<u64>) -> String {
    let mut v = Vec::new();
    if !n.delay.is_zero() {
        v.push(format!("delay {:?}", n.delay));
    }
    if !n.jitter.is_zero() {
        v.push(format!("jitter {:?}", n.jitter));
    }
    if let Loss::Random(p) = n.loss {
        v.push(format!("loss {}%", p * 100.0));
    }
    if n.reorder > 0.0 {
        v.push(format!("reorder {}%", n.reorder * 100.0));
    }
    if n.duplicate > 0.0 {
        v.push(format!("duplicate {}%", n.duplicate * 100.0));
    }
    if let Some(r) = rate {
        v.push(format!("rate {}", usnet::util::fmt_rate(r)));
    }
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
