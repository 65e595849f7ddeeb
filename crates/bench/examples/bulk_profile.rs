//! usnet's in-memory bulk case (`bulk_mtu1500` / `bulk_mtu9000` of `usnet bench`)
//! alone, for profiling:
//!
//! ```sh
//! cargo build --release -p usnet-bench --example bulk_profile
//! perf record -g target/release/examples/bulk_profile 1500 1073741824 3
//! ```
//!
//! Arguments: MTU, bytes per run, runs, and optionally the NICs' line rate in bit/s
//! (default: the bench's, `usn::BULK_LINE_RATE`; 0: none) and a BIG TCP size for both
//! NICs' `gso_ipv4_max_size` / `gro_ipv4_max_size` (default 0: not set, 64 KiB).
//! Prints Gbit/s per run.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (Some(mtu), Some(bytes), Some(runs)) = (
        a.get(1).and_then(|m| m.parse::<u32>().ok()),
        a.get(2).and_then(|b| b.parse::<u64>().ok()),
        a.get(3).and_then(|r| r.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: bulk_profile MTU BYTES RUNS");
        std::process::exit(2);
    };
    let rate = a
        .get(4)
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(usnet_bench::usn::BULK_LINE_RATE);
    let big = a.get(5).and_then(|r| r.parse::<u32>().ok()).unwrap_or(0);
    let pair = usnet_bench::usn::Pair::with_big_tcp(mtu, rate, big);
    for _ in 0..runs {
        let cpu0 = cpu_ns();
        let secs = pair.bulk(bytes);
        let cpu = (cpu_ns() - cpu0) as f64 / 1e9;
        let gbit = |s: f64| bytes as f64 * 8.0 / s / 1e9;
        println!(
            "{:.2} Gbit/s ({:.2} per second of this thread's CPU time)",
            gbit(secs),
            gbit(cpu)
        );
    }
}

/// This thread's time on a CPU (ns), from /proc/thread-self/schedstat: without the
/// time the hypervisor took the virtual CPU away, where the kernel accounts steal.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
