//! One million frames through qdisc → vnic → lossy, reordering wire → peer RX ring, and
//! every counter on the way adds up exactly: what the application sent equals what
//! arrived plus each counted drop.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use usnet::dev::xmit::dev_queue_xmit;
use usnet::link::{Loss, Netem};
use usnet::testutil::{mac, test_frame, Sink, TwoHosts};

fn stats(v: Vec<(&'static str, u64)>) -> HashMap<&'static str, u64> {
    v.into_iter().collect()
}

fn ethtool(h: &usnet::drivers::vnic::Vnic) -> HashMap<String, u64> {
    use usnet::dev::NetDeviceOps;
    h.ethtool_stats().into_iter().collect()
}

#[test]
fn a_million_frames_and_every_counter_adds_up() {
    const N: u64 = 1_000_000;
    let h = TwoHosts::new(2026, |c| {
        c.rx_ring = 256;
        c.tx_ring = 256;
        c.line_rate_bps = 10_000_000_000;
    });
    h.wire.set_netem(
        1,
        Netem {
            delay: Duration::from_millis(1),
            loss: Loss::Random(0.05),
            reorder: 0.01,
            duplicate: 0.001,
            limit: 4000,
            ..Netem::default()
        },
    );
    let sink = Sink::install(&h.b, false);
    let mut sent = 0u64;
    let done = h.sim.run_while(
        || {
            // The application: keep the qdisc fed without flooding it.
            let mut burst = 0;
            while sent < N && burst < 64 && h.da.txqs[0].qdisc.stats().qlen < 512 {
                dev_queue_xmit(&h.a, &h.da, test_frame(mac(1), mac(2), 1514, sent as u32));
                sent += 1;
                burst += 1;
            }
            sent < N || h.sim.next_event().is_some()
        },
        Duration::from_secs(3600),
    );
    assert!(done, "the run finished");
    assert_eq!(sent, N);

    let q = h.da.txqs[0].qdisc.stats();
    let a_link = stats(h.da.link_stats());
    let b_link = stats(h.db.link_stats());
    let wire = stats(h.wire.stats(1));
    let a_hw = ethtool(&h.va);
    let b_hw = ethtool(&h.vb);

    // Application → qdisc.
    assert_eq!(q.qlen, 0);
    assert_eq!(sent, q.packets + q.drops, "qdisc: sent + dropped");
    // qdisc → driver → completion.
    assert_eq!(
        q.packets, a_link["tx_packets"],
        "every dequeued frame completed"
    );
    assert_eq!(a_hw["hw_tx_frames"], a_link["tx_packets"]);
    // Hardware → wire.
    assert_eq!(wire["sent"], a_hw["hw_tx_frames"]);
    assert_eq!(h.wire.in_flight(1), 0);
    assert_eq!(
        wire["sent"] + wire["duplicated"],
        wire["delivered"] + wire["lost"] + wire["dropped_limit"],
        "wire: {wire:?}"
    );
    // Wire → RX ring.
    assert_eq!(
        wire["delivered"],
        b_hw["hw_rx_frames"] + b_hw["rx_no_buffer_count"]
    );
    assert_eq!(b_hw["rx_no_buffer_count"], b_link["rx_missed_errors"]);
    // RX ring → stack.
    assert_eq!(b_hw["hw_rx_frames"], b_link["rx_packets"]);
    assert_eq!(
        b_link["rx_packets"],
        sink.count() + b_link["rx_nohandler"] + b_link["rx_errors"]
    );
    // And the whole chain, end to end.
    assert_eq!(
        sent + wire["duplicated"],
        sink.count()
            + q.drops
            + wire["lost"]
            + wire["dropped_limit"]
            + b_hw["rx_no_buffer_count"]
            + b_link["rx_nohandler"]
            + b_link["rx_errors"]
    );
    // The impairments really happened.
    let lost = wire["lost"] as f64 / wire["sent"] as f64;
    assert!((0.045..0.055).contains(&lost), "loss rate {lost}");
    assert!(wire["reordered"] > 5_000, "{wire:?}");
    assert!(wire["duplicated"] > 500);
    assert!(sink.count() > 900_000);
    assert_eq!(h.b.softnet.softnet_stat()[0], b_link["rx_packets"]);
    let _ = Ordering::Relaxed;
}
