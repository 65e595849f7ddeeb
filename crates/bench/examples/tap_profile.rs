//! usnet → the kernel over a TAP with offloads, alone (the `tap_usnet_to_kernel` case of
//! `usnet bench` without the other systems), for profiling:
//!
//! ```sh
//! cargo build --release -p usnet-cli -p usnet-bench --example tap_profile
//! sudo perf record -g target/release/examples/tap_profile target/release/usnet 2000000000 3
//! ```
//!
//! Arguments: the `usnet` binary (its `bench-peer sink` is the kernel's receiver in the
//! namespace), bytes per run, runs, and `splice` to send with `send_pages` (no copy)
//! instead of `write`. Needs root (a namespace and a TAP).
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (Some(exe), Some(bytes), Some(runs)) = (
        a.get(1).map(std::path::PathBuf::from),
        a.get(2).and_then(|b| b.parse::<u64>().ok()),
        a.get(3).and_then(|r| r.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: tap_profile USNET_EXE BYTES RUNS [splice]");
        std::process::exit(2);
    };
    let splice = a.get(4).is_some_and(|m| m == "splice");
    let mut lab = match usnet_bench::tap::TapLab::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tap_profile: {e}");
            std::process::exit(1);
        }
    };
    for _ in 0..runs {
        let secs = match lab.usnet_to_kernel(&exe, bytes, splice) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tap_profile: {e}");
                std::process::exit(1);
            }
        };
        println!("{:.2} Gbit/s", bytes as f64 * 8.0 / secs / 1e9);
    }
}
