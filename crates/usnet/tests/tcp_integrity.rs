//! Integrity under impairment: a bulk transfer between two stacks across the vnic wire
//! with 2% loss, 1% reordering and 0.1% duplication in both directions arrives
//! byte-identical (SHA-256 at both ends), for 20 seeds.
//!
//! The size per seed is 1 GiB; `USNET_INTEGRITY_BYTES` overrides it (e.g. for debug
//! builds) and `USNET_INTEGRITY_SEEDS` the number of seeds. Seeds run on all cores.

use std::net::SocketAddrV4;
use std::time::Duration;

use sha2::{Digest, Sha256};
use usnet::link::{Loss, Netem};
use usnet::tcp::{TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic payload: a xorshift stream, so any misplaced byte changes the hash.
struct Pattern(u64);

impl Pattern {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

struct Outcome {
    sent: [u8; 32],
    received: [u8; 32],
    bytes: u64,
    retrans: u32,
    virtual_secs: f64,
}

fn transfer(seed: u64, total: u64) -> Outcome {
    let h = TwoHosts::new(seed, |_| {}).with_ip();
    let impair = Netem {
        delay: Duration::from_micros(500),
        loss: Loss::Random(0.02),
        reorder: 0.01,
        duplicate: 0.001,
        ..Netem::default()
    };
    h.wire.set_netem(0, impair);
    h.wire.set_netem(1, impair);
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 5001)).unwrap();
    l.listen(8).unwrap();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 5001));
    let mut server = None;
    h.sim.run_while(
        || {
            if server.is_none() {
                server = l.accept().ok();
            }
            server.is_none() || c.state() != TcpState::Established
        },
        Duration::from_secs(60),
    );
    let s = server.expect("connection accepted");
    s.set_nonblocking(true);
    let start = h.sim.now();
    let mut pat = Pattern(seed | 1);
    let mut tx_hash = Sha256::new();
    let mut rx_hash = Sha256::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let (mut chunk_off, mut chunk_len) = (0usize, 0usize);
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut closed = false;
    let finished = h.sim.run_while(
        || {
            loop {
                if chunk_off == chunk_len && sent < total {
                    chunk_len = (total - sent).min(chunk.len() as u64) as usize;
                    pat.fill(&mut chunk[..chunk_len]);
                    tx_hash.update(&chunk[..chunk_len]);
                    chunk_off = 0;
                }
                if chunk_off == chunk_len {
                    break;
                }
                match c.send(&chunk[chunk_off..chunk_len]) {
                    Ok(n) => {
                        chunk_off += n;
                        sent += n as u64;
                    }
                    Err(_) => break,
                }
            }
            if sent == total && chunk_off == chunk_len && !closed {
                c.close();
                closed = true;
            }
            loop {
                match s.recv(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => {
                        rx_hash.update(&buf[..n]);
                        received += n as u64;
                    }
                    Err(_) => break,
                }
            }
            true
        },
        Duration::from_secs(3600),
    );
    assert!(
        finished,
        "seed {seed}: transfer did not finish ({received} of {total} bytes)\nsender {:#?}\nreceiver {:#?}\nsender mib {:?}",
        c.info(),
        s.info(),
        h.a.tcp.mib.snapshot()
    );
    Outcome {
        sent: tx_hash.finalize().into(),
        received: rx_hash.finalize().into(),
        bytes: received,
        retrans: c.info().total_retrans,
        virtual_secs: h.sim.now().saturating_duration_since(start).as_secs_f64(),
    }
}

#[test]
fn bulk_under_loss_reordering_and_duplication_is_intact_for_20_seeds() {
    let total = env_or("USNET_INTEGRITY_BYTES", 1 << 30);
    let seeds = env_or("USNET_INTEGRITY_SEEDS", 20);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let results: Vec<(u64, Outcome)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                sc.spawn(move || {
                    (0..seeds)
                        .filter(|s| s % workers == w)
                        .map(|s| (s, transfer(1000 + s, total)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len() as u64, seeds);
    for (seed, o) in &results {
        eprintln!(
            "seed {seed}: {} bytes in {:.1} s virtual, {} retransmits",
            o.bytes, o.virtual_secs, o.retrans
        );
        assert_eq!(o.bytes, total, "seed {seed}: byte count");
        assert_eq!(o.sent, o.received, "seed {seed}: SHA-256 differs");
        assert!(
            o.retrans > 0,
            "seed {seed}: 2% loss must cause retransmissions"
        );
    }
}
