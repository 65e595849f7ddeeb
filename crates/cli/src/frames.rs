//! `usnet frames`: the device layer alone. Two hosts with emulated igb-like NICs on one
//! in-memory wire with netem-style impairments, stepped by the deterministic scheduler.
//!
//! Host A sends numbered Ethernet frames through `dev_queue_xmit` → pfifo_fast → the vnic
//! driver's TX ring → the wire; host B's NIC DMAs them into its RX ring and NAPI hands
//! them to a protocol handler. It then shows where every frame went.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use usnet::dev::xmit::dev_queue_xmit;
use usnet::dev::NetDeviceOps;
use usnet::link::{Loss, Netem};
use usnet::pcap::PcapTap;
use usnet::testutil::{mac, test_frame, Sink, TwoHosts};
use usnet::util::{parse_percent, parse_rate, parse_size, parse_time};

/// Options of `usnet frames`, written as `tc netem` writes them.
#[derive(Args, Debug)]
#[command(
    after_help = "EXAMPLES:\n  usnet frames\n  usnet frames --frames 200000 --loss 2% --delay 5ms --reorder 1 --rate 10gbit\n  usnet frames --frames 1000 --pcap /tmp/demo.pcap && tcpdump -nr /tmp/demo.pcap | head"
)]
pub struct FramesArgs {
    /// Frames to send.
    #[arg(long, default_value = "1000000")]
    frames: u64,
    /// Frame size in bytes (Ethernet header included).
    #[arg(long, default_value = "1514", value_parser = parse_size)]
    size: u64,
    /// Random loss on the wire, in percent (`2` or `2%`).
    #[arg(long, value_parser = parse_percent)]
    loss: Option<f64>,
    /// One-way delay (`5ms`).
    #[arg(long, value_parser = parse_time)]
    delay: Option<Duration>,
    /// Jitter around the delay (`1ms`).
    #[arg(long, value_parser = parse_time)]
    jitter: Option<Duration>,
    /// Percentage of frames sent ahead of delayed ones (needs --delay).
    #[arg(long, value_parser = parse_percent)]
    reorder: Option<f64>,
    /// Duplicate frames, in percent.
    #[arg(long, value_parser = parse_percent)]
    duplicate: Option<f64>,
    /// NIC line rate (`10gbit`, `100mbit`); `0` for as fast as the CPU goes.
    #[arg(long, default_value = "10gbit", value_parser = parse_rate)]
    rate: u64,
    /// Seed for every random choice (same seed, same run).
    #[arg(long, default_value = "1")]
    seed: u64,
    /// Write what host B receives to this pcap file.
    #[arg(long)]
    pcap: Option<std::path::PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Run the device-layer demo; returns the process exit status.
pub fn run(a: FramesArgs) -> i32 {
    let size = a.size.clamp(60, 9014) as usize;
    let h = TwoHosts::new(a.seed, |c| {
        c.line_rate_bps = a.rate;
        if size > 1514 {
            c.mtu = (size - 14) as u32;
        }
    });
    let netem = Netem {
        delay: a.delay.unwrap_or_default(),
        jitter: a.jitter.unwrap_or_default(),
        loss: a.loss.map(Loss::Random).unwrap_or_default(),
        reorder: a.reorder.unwrap_or(0.0),
        duplicate: a.duplicate.unwrap_or(0.0),
        limit: 100_000,
        ..Netem::default()
    };
    if a.reorder.is_some() && a.delay.is_none() {
        eprintln!(
            "usnet frames: --reorder needs --delay (reordered frames skip the delay), as tc netem"
        );
        return 2;
    }
    h.wire.set_netem(1, netem);
    let sink = Sink::install(&h.b, false);
    if let Some(p) = &a.pcap {
        match PcapTap::create_rx_only(p) {
            Ok(t) => h.db.add_tap(t),
            Err(e) => {
                eprintln!("usnet frames: cannot write {}: {e}", p.display());
                return 1;
            }
        }
    }
    println!(
        "usnet frames: host a (eth0 {}) → host b (eth0 {}) over an in-memory wire",
        mac(1),
        mac(2)
    );
    println!(
        "  {} frames of {} bytes; impairments: {}",
        a.frames,
        size,
        crate::demo::describe(&netem, (a.rate > 0).then_some(a.rate))
    );
    let start = Instant::now();
    let mut sent = 0u64;
    let mut last = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    h.sim.run_while(
        || {
            let mut burst = 0;
            while sent < a.frames && burst < 64 && h.da.txqs[0].qdisc.stats().qlen < 512 {
                dev_queue_xmit(&h.a, &h.da, test_frame(mac(1), mac(2), size, sent as u32));
                sent += 1;
                burst += 1;
            }
            if tty && last.elapsed() > Duration::from_millis(200) {
                last = Instant::now();
                eprint!(
                    "\r  sent {:>10}  received {:>10}  virtual time {:>10.3}s ",
                    sent,
                    sink.count(),
                    h.sim.now().as_nanos() as f64 / 1e9
                );
                let _ = std::io::stderr().flush();
            }
            sent < a.frames || h.sim.next_event().is_some()
        },
        Duration::from_secs(24 * 3600),
    );
    if tty {
        eprintln!();
    }
    h.db.clear_taps();
    let secs = start.elapsed().as_secs_f64();
    let got = sink.count();
    let q = h.da.txqs[0].qdisc.stats();
    let wire: HashMap<_, _> = h.wire.stats(1).into_iter().collect();
    let ea: HashMap<_, _> = h.va.ethtool_stats().into_iter().collect();
    let eb: HashMap<_, _> = h.vb.ethtool_stats().into_iter().collect();
    let lb: HashMap<_, _> = h.db.link_stats().into_iter().collect();
    println!("\nwhere the frames went:");
    println!("  application sent           {sent:>12}");
    println!(
        "  qdisc pfifo_fast (a)       {:>12} sent, {} dropped, {} requeues",
        q.packets, q.drops, q.requeues
    );
    println!(
        "  vnic a TX ring             {:>12} completed, {} doorbells, {} restarts",
        ea["tx_queue_0_packets"], ea["tx_queue_0_doorbells"], ea["tx_queue_0_restart"]
    );
    println!(
        "  wire → b                   {:>12} sent, {} lost, {} dup, {} reordered, {} over limit",
        wire["sent"], wire["lost"], wire["duplicated"], wire["reordered"], wire["dropped_limit"]
    );
    println!(
        "  vnic b RX ring             {:>12} received, {} no buffer",
        eb["rx_queue_0_packets"], eb["rx_no_buffer_count"]
    );
    println!(
        "  protocol handler (b)       {got:>12} delivered, {} no handler",
        lb["rx_nohandler"]
    );
    let [processed, _, squeeze] = h.b.softnet.softnet_stat();
    println!("  softnet b                  {processed:>12} processed, {squeeze} time_squeeze");
    let accounted = got
        + q.drops
        + wire["lost"]
        + wire["dropped_limit"]
        + eb["rx_no_buffer_count"]
        + lb["rx_nohandler"];
    let ok = sent + wire["duplicated"] == accounted;
    println!(
        "\n  {} frames in {:.3} s of CPU time: {:.2} M frames/s, {:.2} Gbit/s; virtual time {:.3} s",
        sent,
        secs,
        sent as f64 / secs / 1e6,
        sent as f64 * size as f64 * 8.0 / secs / 1e9,
        h.sim.now().as_nanos() as f64 / 1e9
    );
    println!(
        "  accounting: sent + duplicated = delivered + every counted drop: {}",
        if ok { "yes" } else { "NO" }
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "frames_sent": sent, "frames_received": got, "seconds": secs,
                "frames_per_s": sent as f64 / secs,
                "gbit_per_s": sent as f64 * size as f64 * 8.0 / secs / 1e9,
                "lost": wire["lost"], "qdisc_drops": q.drops,
                "rx_no_buffer": eb["rx_no_buffer_count"], "accounted": ok,
            })
        );
    }
    if ok {
        0
    } else {
        1
    }
}
