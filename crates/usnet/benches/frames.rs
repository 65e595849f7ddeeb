//! Frames through `dev_queue_xmit` → qdisc → vnic driver → emulated hardware → wire →
//! peer RX ring → NAPI → `netif_receive_skb`, on one core (both hosts stepped by the
//! simulator on this thread). Each iteration sends a burst of 64 frames of 1514 bytes
//! and runs both hosts' softirqs until the burst is received and completed.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use usnet::dev::xmit::dev_queue_xmit;
use usnet::testutil::{mac, test_frame, Sink, TwoHosts};

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frames");
    for size in [64usize, 1514] {
        let h = TwoHosts::new(1, |_| {});
        let sink = Sink::install(&h.b, false);
        g.throughput(Throughput::Elements(64));
        g.bench_function(format!("dev_queue_xmit_to_peer_napi_{size}B"), |b| {
            let mut seq = 0u32;
            b.iter(|| {
                for _ in 0..64 {
                    dev_queue_xmit(&h.a, &h.da, test_frame(mac(1), mac(2), size, seq));
                    seq = seq.wrapping_add(1);
                }
                h.sim.run_pending();
                black_box(sink.count())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
