//! Hardware GRO (`rx-gro-hw`, Linux's `NETIF_F_GRO_HW`) on the vnic: over an
//! unimpaired wire a TSO packet reaches a receiver that coalesces in hardware as the one
//! packet its frames rebuild, counted as frames on both NICs and the wire; a receiver
//! without it, or a wire that loses or delays frames one by one, gets the frames.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use usnet::dev::{Features, NetDeviceOps};
use usnet::drivers::vnic::Vnic;
use usnet::link::{DropFilter, Netem};
use usnet::tcp::TcpSock;
use usnet::testutil::TwoHosts;

/// Two hosts on a clean wire with an established connection a → b.
fn pair(seed: u64, setup: impl Fn(&TwoHosts)) -> (TwoHosts, Arc<TcpSock>, Arc<TcpSock>) {
    let h = TwoHosts::new(seed, |_| {}).with_ip();
    setup(&h);
    let (c, s) = h.tcp_pair(5001);
    (h, c, s)
}

/// Move `n` bytes a → b with the receiver reading all the time; asserts they arrive
/// intact.
fn bulk(h: &TwoHosts, c: &Arc<TcpSock>, s: &Arc<TcpSock>, n: usize) {
    common::bulk_intact(&h.sim, c, s, n, Duration::from_secs(30));
}

fn ethtool(v: &Vnic) -> HashMap<String, u64> {
    v.ethtool_stats().into_iter().collect()
}

fn sw_gro_skbs(h: &TwoHosts) -> u64 {
    let m: HashMap<_, _> = h.db.offload_stats().into_iter().collect();
    m["rx_gro_skbs"]
}

fn wire(h: &TwoHosts, port: usize) -> HashMap<&'static str, u64> {
    h.wire.stats(port).into_iter().collect()
}

#[test]
fn tso_packets_reach_a_hardware_gro_receiver_whole_and_count_as_frames() {
    let (h, c, s) = pair(21, |_| {});
    assert!(h.db.features().contains(Features::GRO_HW), "on by default");
    bulk(&h, &c, &s, 8 << 20);
    let (a, b) = (ethtool(&h.va), ethtool(&h.vb));
    let (packets, frames) = (b["rx_hw_gro_packets"], b["rx_hw_gro_wire_packets"]);
    assert!(a["tx_queue_0_tso"] > 0);
    assert!(
        packets > 0 && frames >= 8 * packets,
        "{frames} frames in {packets} coalesced packets"
    );
    // Every frame the sender's hardware sent, the receiver's took in, and the wire
    // carried, counted the same way on all three.
    assert_eq!(a["hw_tx_frames"], b["hw_rx_frames"]);
    let w = wire(&h, 1);
    assert_eq!(w["sent"], a["hw_tx_frames"]);
    assert_eq!(w["delivered"], w["sent"]);
    assert_eq!(w["delivered_bytes"], b["rx_queue_0_bytes"]);
    assert_eq!(a["tx_queue_0_bytes"], b["rx_queue_0_bytes"]);
    let tx =
        h.da.stats
            .tx_packets
            .load(std::sync::atomic::Ordering::Relaxed);
    let rx =
        h.db.stats
            .rx_packets
            .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(tx, rx, "ip -s link counts frames at both ends");
    assert_eq!(sw_gro_skbs(&h), 0, "nothing left for software GRO to merge");
    assert_eq!(c.info().total_retrans, 0);
}

#[test]
fn without_hardware_gro_the_receiver_gets_frames_and_merges_them_in_software() {
    let (h, c, s) = pair(22, |h| {
        h.db.set_features(h.db.features() - Features::GRO_HW);
    });
    bulk(&h, &c, &s, 4 << 20);
    let (a, b) = (ethtool(&h.va), ethtool(&h.vb));
    assert_eq!(b["rx_hw_gro_packets"], 0);
    assert!(
        a["tx_queue_0_tso"] > 0,
        "the sender still hands its NIC TSO packets"
    );
    // Frame by frame, a line-rate burst can outrun the 256 posted descriptors (a
    // coalesced packet takes one).
    assert_eq!(
        a["hw_tx_frames"],
        b["hw_rx_frames"] + b["rx_no_buffer_count"]
    );
    assert!(sw_gro_skbs(&h) > 0, "software GRO merged what arrived");
}

#[test]
fn a_wire_that_loses_frames_one_by_one_cuts_tso_packets_into_frames() {
    // Lose exactly one full-sized data frame, the 300th: a TSO packet that crossed
    // whole could only lose all its frames at once.
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n = seen.clone();
    let filter: DropFilter = Arc::new(move |f: &usnet::skb::Skb| {
        f.len() > 1000 && n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 299
    });
    let (h, c, s) = pair(23, |_| {});
    h.wire.set_drop_filter(1, Some(filter));
    bulk(&h, &c, &s, 4 << 20);
    let (a, b) = (ethtool(&h.va), ethtool(&h.vb));
    let w = wire(&h, 1);
    assert_eq!(w["lost"], 1);
    assert_eq!(b["rx_hw_gro_packets"], 0, "frames, not trains, crossed");
    assert_eq!(a["hw_tx_frames"], b["hw_rx_frames"] + 1);
    assert_eq!(w["sent"], w["delivered"] + w["lost"]);
    assert!(c.info().total_retrans >= 1, "the lost frame was sent again");
    // A delayed wire also carries frames (its queue limit counts frames).
    let (h, c, s) = pair(24, |h| {
        h.wire.set_netem(
            1,
            Netem {
                delay: Duration::from_millis(1),
                ..Netem::default()
            },
        );
    });
    bulk(&h, &c, &s, 1 << 20);
    assert_eq!(ethtool(&h.vb)["rx_hw_gro_packets"], 0);
}

#[test]
fn turning_gro_off_turns_hardware_gro_off_too() {
    let h = TwoHosts::new(25, |_| {});
    let f = h.db.set_features(h.db.features() - Features::GRO);
    assert!(
        !f.contains(Features::GRO_HW),
        "netdev_fix_features: GRO_HW needs GRO"
    );
    let f =
        h.db.set_features(h.db.features() | Features::GRO | Features::GRO_HW);
    assert!(f.contains(Features::GRO_HW));
    let f = h.db.set_features(h.db.features() - Features::RXCSUM);
    assert!(!f.contains(Features::GRO_HW), "and receive checksumming");
}
