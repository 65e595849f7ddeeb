use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::testutil::{mac, test_frame};
use crate::time::VirtualClock;

/// An endpoint that records when it was told frames arrive.
#[derive(Default)]
struct Probe {
    calls: AtomicU64,
    last: AtomicU64,
}

impl Endpoint for Probe {
    fn frame_arriving(&self, at: Instant) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.last.store(at.as_nanos(), Ordering::Relaxed);
    }
}

fn setup(n: usize) -> (Arc<VirtualClock>, Wire, Vec<Arc<Probe>>) {
    let clock = VirtualClock::new();
    let wire = Wire::switch(clock.clone(), 9, n);
    let probes: Vec<Arc<Probe>> = (0..n).map(|_| Arc::new(Probe::default())).collect();
    for p in &probes {
        wire.attach(p.clone()).unwrap();
    }
    (clock, wire, probes)
}

fn seqs(wire: &Wire, port: PortId, now: Instant) -> Vec<u32> {
    let mut v = Vec::new();
    wire.pull(port, now, |s, _, _| {
        let d = s.data();
        v.push(u32::from_be_bytes([d[14], d[15], d[16], d[17]]));
    });
    v
}

#[test]
fn cable_delivers_to_the_other_end_at_once() {
    let (clock, wire, probes) = setup(2);
    let mut frames = vec![
        test_frame(mac(1), mac(2), 64, 1),
        test_frame(mac(1), mac(2), 64, 2),
    ];
    wire.transmit(0, &mut frames);
    assert_eq!(
        probes[1].calls.load(Ordering::Relaxed),
        1,
        "one notification per batch"
    );
    assert_eq!(probes[0].calls.load(Ordering::Relaxed), 0);
    assert_eq!(seqs(&wire, 1, clock.now()), vec![1, 2]);
}

#[test]
fn delay_holds_frames_until_their_time() {
    let (clock, wire, probes) = setup(2);
    wire.set_netem(
        1,
        Netem {
            delay: std::time::Duration::from_millis(10),
            ..Netem::default()
        },
    );
    wire.transmit(0, &mut vec![test_frame(mac(1), mac(2), 64, 1)]);
    assert_eq!(probes[1].last.load(Ordering::Relaxed), 10_000_000);
    assert!(seqs(&wire, 1, Instant::from_millis(9)).is_empty());
    clock.advance_to(Instant::from_millis(10));
    assert_eq!(seqs(&wire, 1, clock.now()), vec![1]);
}

#[test]
fn reordered_frames_overtake_delayed_ones() {
    let (clock, wire, _) = setup(2);
    wire.set_netem(
        1,
        Netem {
            delay: std::time::Duration::from_millis(10),
            reorder: 0.5,
            ..Netem::default()
        },
    );
    let mut frames: Vec<Skb> = (0..100)
        .map(|i| test_frame(mac(1), mac(2), 64, i))
        .collect();
    wire.transmit(0, &mut frames);
    let early = seqs(&wire, 1, clock.now());
    assert!(!early.is_empty() && early.len() < 100, "{}", early.len());
    clock.advance_to(Instant::from_millis(10));
    let late = seqs(&wire, 1, clock.now());
    assert_eq!(early.len() + late.len(), 100);
    assert!(early.windows(2).all(|w| w[0] < w[1]));
    assert!(late.windows(2).all(|w| w[0] < w[1]));
    let st: std::collections::HashMap<_, _> = wire.stats(1).into_iter().collect();
    assert_eq!(st["reordered"], early.len() as u64);
}

#[test]
fn queue_limit_drops_and_counts() {
    let (_clock, wire, _) = setup(2);
    wire.set_netem(
        1,
        Netem {
            delay: std::time::Duration::from_millis(1),
            limit: 10,
            ..Netem::default()
        },
    );
    let mut frames: Vec<Skb> = (0..25).map(|i| test_frame(mac(1), mac(2), 64, i)).collect();
    wire.transmit(0, &mut frames);
    let st: std::collections::HashMap<_, _> = wire.stats(1).into_iter().collect();
    assert_eq!(st["sent"], 25);
    assert_eq!(st["dropped_limit"], 15);
    assert_eq!(wire.in_flight(1), 10);
}

#[test]
fn switch_learns_and_floods() {
    let (clock, wire, _) = setup(3);
    // Unknown destination: flooded to ports 1 and 2.
    wire.transmit(0, &mut vec![test_frame(mac(1), mac(2), 64, 1)]);
    assert_eq!(seqs(&wire, 1, clock.now()), vec![1]);
    assert_eq!(seqs(&wire, 2, clock.now()), vec![1]);
    // Port 1 answers from mac(2): the switch learns it.
    wire.transmit(1, &mut vec![test_frame(mac(2), mac(1), 64, 2)]);
    assert_eq!(
        seqs(&wire, 0, clock.now()),
        vec![2],
        "mac(1) was learned on port 0"
    );
    assert!(seqs(&wire, 2, clock.now()).is_empty());
    wire.transmit(0, &mut vec![test_frame(mac(1), mac(2), 64, 3)]);
    assert_eq!(seqs(&wire, 1, clock.now()), vec![3]);
    assert!(seqs(&wire, 2, clock.now()).is_empty(), "no more flooding");
    // Broadcast goes everywhere else.
    wire.transmit(
        2,
        &mut vec![test_frame(mac(3), EthernetAddress::BROADCAST, 64, 4)],
    );
    assert_eq!(seqs(&wire, 0, clock.now()), vec![4]);
    assert_eq!(seqs(&wire, 1, clock.now()), vec![4]);
}

#[test]
fn corruption_copies_and_never_touches_shared_pages() {
    let (clock, wire, _) = setup(2);
    wire.set_netem(
        1,
        Netem {
            corrupt: 1.0,
            ..Netem::default()
        },
    );
    let page = bytes::Bytes::from(vec![0u8; 1000]);
    let mut f = test_frame(mac(1), mac(2), 64, 1);
    f.push_frag(page.clone()).unwrap();
    wire.transmit(0, &mut vec![f]);
    let mut got = Vec::new();
    wire.pull(1, clock.now(), |s, _, _| got.push(s.to_vec()));
    assert_eq!(got.len(), 1);
    assert!(page.iter().all(|&b| b == 0), "the shared page is untouched");
    let original = {
        let mut v = test_frame(mac(1), mac(2), 64, 1).to_vec();
        v.extend_from_slice(&page);
        v
    };
    let diff: u32 = got[0]
        .iter()
        .zip(&original)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(diff, 1, "exactly one bit flipped");
}

#[test]
fn a_tso_packet_that_cannot_be_cut_is_counted_malformed() {
    let (clock, wire, _probes) = setup(2);
    let mut f = test_frame(mac(1), mac(2), 3000, 1);
    f.gso_size = 1000;
    f.gso_type = crate::skb::GsoType::TcpV4;
    wire.transmit(0, &mut vec![f]);
    let st: std::collections::HashMap<_, _> = wire.stats(1).into_iter().collect();
    assert_eq!((st["sent"], st["malformed"], st["delivered"]), (1, 1, 0));
    assert!(seqs(&wire, 1, clock.now()).is_empty());
}
