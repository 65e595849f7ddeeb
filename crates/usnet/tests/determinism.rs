//! The simulator repeats a run exactly for the same seed, and a different seed gives a
//! different run: every random choice (wire impairments, jitter) derives from the seed.

use std::time::Duration;

use usnet::dev::xmit::dev_queue_xmit;
use usnet::link::{Loss, Netem};
use usnet::testutil::{mac, test_frame, Sink, TwoHosts};

fn run(seed: u64) -> (Vec<u32>, Vec<(&'static str, u64)>, u64) {
    let h = TwoHosts::new(seed, |c| c.line_rate_bps = 1_000_000_000);
    h.wire.set_netem(
        1,
        Netem {
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(1),
            loss: Loss::GilbertElliott {
                p: 0.02,
                r: 0.3,
                loss_bad: 0.8,
                loss_good: 0.01,
            },
            duplicate: 0.01,
            reorder: 0.02,
            ..Netem::default()
        },
    );
    let sink = Sink::install(&h.b, true);
    let mut sent = 0u32;
    h.sim.run_while(
        || {
            while sent < 20_000 && h.da.txqs[0].qdisc.stats().qlen < 100 {
                dev_queue_xmit(&h.a, &h.da, test_frame(mac(1), mac(2), 800, sent));
                sent += 1;
            }
            sent < 20_000 || h.sim.next_event().is_some()
        },
        Duration::from_secs(60),
    );
    let seqs = sink.seqs.lock().clone();
    (seqs, h.wire.stats(1), h.sim.now().as_nanos())
}

#[test]
fn same_seed_same_run_different_seed_different_run() {
    let a = run(42);
    let b = run(42);
    let c = run(43);
    assert_eq!(
        a, b,
        "same seed: identical arrival order, counters and end time"
    );
    assert_ne!(a.0, c.0, "another seed: another run");
    assert!(a.0.len() > 15_000);
    assert!(
        a.0.windows(2).any(|w| w[0] > w[1]),
        "jitter and reordering happened"
    );
}
