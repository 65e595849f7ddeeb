//! `usnet trace`: the seeds' diagram come alive. Runs a TCP transfer between two hosts
//! with the trace points on, then shows one segment's journey through every stage —
//! `tcp_sendmsg` to the driver, the wire, NAPI on the peer, TCP input, and back to the
//! ACK and TX completion — with the time at each stage, and for the whole run a
//! per-stage count and latency histogram. `--svg FILE` draws the journey.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::time::Duration;

use clap::Args;
use usnet::link::{Loss, Netem};
use usnet::tcp::{SockOpt, TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};
use usnet::trace::{Event, Stage};
use usnet::util::{parse_percent, parse_size, parse_time};

/// Options of `usnet trace`.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    usnet trace\n  \
    usnet trace --bytes 4M --segment 100 --delay 1ms --svg /tmp/journey.svg\n  \
    usnet trace --loss 1% --delay 2ms")]
pub struct TraceArgs {
    /// Bytes to transfer from A to B.
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    bytes: u64,
    /// Which traced segment (skb) to follow: the Nth that host a sent.
    #[arg(long, default_value = "10")]
    segment: usize,
    /// One-way delay on the wire (`1ms`).
    #[arg(long, value_parser = parse_time)]
    delay: Option<Duration>,
    /// Random loss on the wire, in percent.
    #[arg(long, value_parser = parse_percent)]
    loss: Option<f64>,
    /// Seed for every random choice.
    #[arg(long, default_value = "1")]
    seed: u64,
    /// Also write the journey as an SVG drawing.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
}

/// One event of the journey, with its host.
struct Hop {
    host: char,
    ev: Event,
}

/// Run `usnet trace`; returns the exit status.
pub fn run(a: TraceArgs) -> i32 {
    let h = TwoHosts::new(a.seed, |_| {}).with_ip();
    let netem = Netem {
        delay: a.delay.unwrap_or_default(),
        loss: a.loss.map(Loss::Random).unwrap_or_default(),
        ..Netem::default()
    };
    h.wire.set_netem(0, netem);
    h.wire.set_netem(1, netem);
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    let listen = l
        .bind(SocketAddrV4::new(ip(10, 0, 0, 2), 5001))
        .and_then(|_| l.listen(8));
    if let Err(e) = listen {
        eprintln!("usnet trace: {e}");
        return 1;
    }
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.set_opt(SockOpt::NoDelay(true));
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 5001));
    let mut s = None;
    h.sim.run_while(
        || {
            s = s.take().or_else(|| l.accept().ok());
            s.is_none() || c.state() != TcpState::Established
        },
        Duration::from_secs(60),
    );
    let Some(s) = s else {
        eprintln!("usnet trace: no connection");
        return 1;
    };
    s.set_nonblocking(true);
    h.a.trace.enable();
    h.b.trace.enable();
    let data = vec![0x5au8; 64 * 1024];
    let (mut sent, mut got) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    h.sim.run_while(
        || {
            while sent < a.bytes {
                let n = (a.bytes - sent).min(data.len() as u64) as usize;
                match c.send(&data[..n]) {
                    Ok(k) => sent += k as u64,
                    Err(_) => break,
                }
            }
            while let Ok(k) = s.recv(&mut buf) {
                if k == 0 {
                    break;
                }
                got += k as u64;
            }
            got < a.bytes
        },
        Duration::from_secs(3600),
    );
    // Let the last ACKs and TX completions land.
    h.sim.run_for(Duration::from_millis(50));
    h.a.trace.disable();
    h.b.trace.disable();
    let ev_a = h.a.trace.events();
    let ev_b = h.b.trace.events();
    let mut ids: Vec<u32> = ev_a
        .iter()
        .filter(|e| e.stage == Stage::TcpSendmsg)
        .map(|e| e.id)
        .collect();
    ids.dedup();
    let Some(&id) = ids.get(a.segment.saturating_sub(1)).or(ids.last()) else {
        eprintln!("usnet trace: nothing was traced");
        return 1;
    };
    // On the peer, a TSO skb arrives as several frames: follow the first up to TCP.
    let mut on_b: Vec<Event> = ev_b.iter().filter(|e| e.id == id).copied().collect();
    on_b.sort_by_key(|e| (e.at, e.real_ns));
    let frames = on_b.iter().filter(|e| e.stage == Stage::HwRx).count();
    let mut seen = std::collections::HashSet::new();
    let mut first_frame = Vec::new();
    for e in on_b {
        if seen.insert(e.stage as usize) {
            first_frame.push(e);
        }
        if e.stage == Stage::TcpV4Rcv {
            break;
        }
    }
    let mut journey: Vec<Hop> = ev_a
        .iter()
        .filter(|e| e.id == id)
        .map(|e| Hop { host: 'a', ev: *e })
        .chain(first_frame.into_iter().map(|e| Hop { host: 'b', ev: e }))
        .collect();
    // Both tracers were enabled back to back: their wall clocks line up closely
    // enough to order hops that share a virtual instant.
    journey.sort_by_key(|h| (h.ev.at, h.ev.real_ns));
    println!(
        "usnet trace: {} bytes from 10.0.0.1 to 10.0.0.2; following segment #{} (skb id {id}) of {}",
        got,
        ids.iter().position(|x| *x == id).map_or(0, |p| p + 1),
        ids.len()
    );
    // Consecutive hits of one stage (a TSO skb leaving as many frames, a loop
    // revisiting it) are one line with a count.
    let mut lines: Vec<(usize, usize)> = Vec::new(); // (first index, count)
    for (i, hop) in journey.iter().enumerate() {
        match lines.last_mut() {
            Some((f, n))
                if journey[*f].host == hop.host && journey[*f].ev.stage == hop.ev.stage =>
            {
                *n += 1
            }
            _ => lines.push((i, 1)),
        }
    }
    println!(
        "\n  The skb left host a as {frames} frame(s); host b's lines follow the first one.\n\n  host  stage                        ×   virtual time    CPU until next   bytes"
    );
    let t0 = journey.first().map(|h| h.ev.at).unwrap_or_default();
    let (mut stage_sum_ns, mut cpu_sum_ns) = (0u128, 0u128);
    for w in lines.windows(2) {
        let (a_, b_) = (&journey[w[0].0], &journey[w[1].0]);
        stage_sum_ns += b_.ev.at.saturating_duration_since(a_.ev.at).as_nanos();
    }
    for (k, &(first, n)) in lines.iter().enumerate() {
        let hop = &journey[first];
        let last = &journey[first + n - 1];
        // CPU time from this stage to the next one on the same host, when both ran in
        // the same softirq or syscall (same virtual instant).
        let next = lines[k + 1..]
            .iter()
            .map(|(f, _)| &journey[*f])
            .find(|x| x.host == hop.host);
        let cpu_ns = next
            .filter(|x| x.ev.at == last.ev.at)
            .map(|x| x.ev.real_ns.saturating_sub(hop.ev.real_ns));
        if hop.host == 'a' {
            cpu_sum_ns += u128::from(cpu_ns.unwrap_or(0));
        }
        let cpu = cpu_ns
            .map(|ns| format!("{ns:>10} ns"))
            .unwrap_or_else(|| "             -".into());
        println!(
            "  {}     {:<26} {:>3}  +{:>10.3} µs  {}   {}",
            hop.host,
            hop.ev.stage.name(),
            n,
            hop.ev.at.saturating_duration_since(t0).as_nanos() as f64 / 1000.0,
            cpu,
            hop.ev.len
        );
    }
    // The journey's totals: the time between one stage and the next, summed, against
    // the segment's whole time; and host a's CPU at its stages against the wall-clock
    // span of its part of the journey.
    let total_ns = journey
        .last()
        .map_or(0, |h| h.ev.at.saturating_duration_since(t0).as_nanos());
    let on_a: Vec<&Hop> = journey.iter().filter(|h| h.host == 'a').collect();
    let wall_a = match (on_a.first(), on_a.last()) {
        (Some(f), Some(l)) => u128::from(l.ev.real_ns.saturating_sub(f.ev.real_ns)),
        _ => 0,
    };
    println!(
        "\n  segment total {:.3} µs virtual; the stage times add up to {:.3} µs\n  host a: CPU at the stages {cpu_sum_ns} ns of {wall_a} ns wall clock from its first stage to its last",
        total_ns as f64 / 1000.0,
        stage_sum_ns as f64 / 1000.0
    );
    print_histograms(&ev_a, 'a');
    print_histograms(&ev_b, 'b');
    if let Some(p) = &a.svg {
        if let Err(e) = std::fs::write(p, svg(&journey)) {
            eprintln!("usnet trace: cannot write {}: {e}", p.display());
            return 1;
        }
        println!("\n  journey drawn in {}", p.display());
    }
    0
}

/// Per stage: hits, and how long skbs spent there (CPU time to their next stage on
/// the same host), as a log-scale histogram.
fn print_histograms(events: &[Event], host: char) {
    let mut by_id: BTreeMap<u32, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_id.entry(e.id).or_default().push(e);
    }
    const BUCKETS: [(&str, u64); 5] = [
        ("<1µs", 1_000),
        ("<10µs", 10_000),
        ("<100µs", 100_000),
        ("<1ms", 1_000_000),
        (">=1ms", u64::MAX),
    ];
    let mut hist: BTreeMap<usize, (u64, [u64; 5])> = BTreeMap::new();
    for evs in by_id.values() {
        for w in evs.windows(2) {
            let d = w[1].real_ns.saturating_sub(w[0].real_ns);
            let b = BUCKETS.iter().position(|(_, lim)| d < *lim).unwrap_or(4);
            let slot = hist.entry(w[0].stage as usize).or_default();
            slot.0 += 1;
            slot.1[b] += 1;
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n  host {host}: stage                     count    <1µs   <10µs  <100µs    <1ms   >=1ms"
    );
    for (stage, (n, b)) in &hist {
        let name = Stage::ALL.get(*stage).map_or("?", |s| s.name());
        let _ = writeln!(
            out,
            "          {name:<26} {n:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
            b[0], b[1], b[2], b[3], b[4]
        );
    }
    print!("{out}");
}

/// The journey as a column of boxes, one per stage, with the host and times.
fn svg(journey: &[Hop]) -> String {
    let row = 34;
    let height = 60 + row * journey.len() as i32;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{height}\" font-family=\"monospace\" font-size=\"13\">\n\
         <text x=\"20\" y=\"28\" font-size=\"16\">one segment's journey through usnet (host a → host b → back)</text>\n"
    );
    let t0 = journey.first().map(|h| h.ev.at).unwrap_or_default();
    for (i, hop) in journey.iter().enumerate() {
        let y = 45 + row * i as i32;
        let (x, color) = if hop.host == 'a' {
            (20, "#dbe9f6")
        } else {
            (360, "#f6e3db")
        };
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"330\" height=\"26\" rx=\"5\" fill=\"{color}\" stroke=\"#555\"/>\
             <text x=\"{}\" y=\"{}\">{} {}  +{:.1} µs</text>",
            x + 8,
            y + 18,
            hop.host,
            hop.ev.stage.name(),
            hop.ev.at.saturating_duration_since(t0).as_nanos() as f64 / 1000.0
        );
        if i + 1 < journey.len() {
            let nx = if journey[i + 1].host == 'a' { 185 } else { 525 };
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{nx}\" y2=\"{}\" stroke=\"#888\"/>",
                x + 165,
                y + 26,
                y + row
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
