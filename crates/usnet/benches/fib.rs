//! FIB longest-prefix match over an Internet-sized table: 1,000,000 prefixes with a
//! length mix like the global routing table, built into the LC-trie; reports build time,
//! memory per prefix, and lookups per second on random addresses — one at a time
//! (`FibTrie::lookup`, bound by memory latency) and batched (`FibTrie::lookup_many`,
//! whose cache misses overlap), each the median of several passes, with and without
//! reading the value each lookup returns.
//!
//! `cargo bench -p usnet --bench fib` (set `USNET_FIB_PREFIXES` for a smaller table).

use std::hint::black_box;
use std::time::Instant;

use usnet::ipv4::fib_trie::FibTrie;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Lookups per second (millions), the median of `passes` timed passes.
fn rate(passes: usize, n: usize, mut pass: impl FnMut() -> u64) -> f64 {
    let mut sink = 0u64;
    let mut r: Vec<f64> = (0..passes)
        .map(|_| {
            let t = Instant::now();
            sink ^= pass();
            n as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    black_box(sink);
    r.sort_by(f64::total_cmp);
    r[r.len() / 2]
}

fn main() {
    let n: usize = std::env::var("USNET_FIB_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Rng(0x5eed_f1b0_0000_0001);
    let mut prefixes = Vec::with_capacity(n);
    while prefixes.len() < n {
        let r = rng.next();
        // 60% /24, 10% /22-/23, 10% /16-/21, 15% /25-/32, 5% /8-/15 (roughly the DFZ).
        let len = match r % 100 {
            0..=59 => 24,
            60..=69 => 22 + (r >> 8) as u8 % 2,
            70..=79 => 16 + (r >> 8) as u8 % 6,
            80..=94 => 25 + (r >> 8) as u8 % 8,
            _ => 8 + (r >> 8) as u8 % 8,
        };
        // Unicast space 1.0.0.0–223.255.255.255.
        let addr = ((r >> 16) as u32 % (223 << 24)) + (1 << 24);
        prefixes.push((addr, len));
    }
    let t0 = Instant::now();
    let mut fib = FibTrie::new();
    for (i, (p, l)) in prefixes.iter().enumerate() {
        fib.insert(*p, *l, i as u32);
    }
    let build = t0.elapsed();
    let stats = fib.stats();
    let bytes = fib.memory_bytes();
    let probes: Vec<u32> = (0..10_000_000).map(|_| rng.next() as u32).collect();
    let few = &probes[..2_000_000];

    // One at a time: each lookup's reads wait for the one before.
    let single = rate(3, few.len(), || {
        let mut h = 0u64;
        for a in few {
            if let Some((p, l, _)) = fib.lookup(black_box(*a)) {
                h ^= u64::from(p) ^ u64::from(l);
            }
        }
        h
    });
    let single_v = rate(3, few.len(), || {
        let mut h = 0u64;
        for a in few {
            if let Some((_, _, v)) = fib.lookup(black_box(*a)) {
                h += u64::from(*v & 1);
            }
        }
        h
    });
    // Batched, 4096 addresses per call.
    let mut out = vec![None; 4096];
    let mut batch = |read_value: bool| {
        let mut h = 0u64;
        for chunk in probes.chunks(out.len()) {
            fib.lookup_many(black_box(chunk), &mut out);
            for (p, l, v) in out[..chunk.len()].iter().flatten() {
                h ^= if read_value {
                    u64::from(**v & 1)
                } else {
                    u64::from(*p) ^ u64::from(*l)
                };
            }
        }
        h
    };
    let many = rate(5, probes.len(), || batch(false));
    let many_v = rate(5, probes.len(), || batch(true));

    println!(
        "fib: {} prefixes ({} distinct) built in {:.2} s",
        n,
        fib.len(),
        build.as_secs_f64()
    );
    println!(
        "fib: {:.1} bytes/prefix ({:.1} MiB)",
        bytes as f64 / fib.len() as f64,
        bytes as f64 / 1048576.0
    );
    println!("fib: random addresses, one core, median of passes (M lookups/s):");
    println!("fib:   lookup       {single:6.2}   (+ reading the value: {single_v:6.2})");
    println!("fib:   lookup_many  {many:6.2}   (+ reading the value: {many_v:6.2})");
    println!("fib: trie stats\n{stats}");
}
