//! fq's decisions, each checked against what Linux's `sch_fq` does: the scheduler is
//! driven directly with explicit times, and through a device's qdisc slot under the
//! simulator where the watchdog matters.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dev::sched::{netif_schedule, QdiscSlot};
use crate::dev::xmit::dev_queue_xmit;
use crate::dev::NetXmit;
use crate::sim::Sim;
use crate::skb::SkbOwner;
use crate::sock::{PacingStatus, SkPacing};
use crate::testutil::{mac, test_frame, FakeDriver};
use crate::Stack;

/// A connected socket as fq sees it through `skb->sk`.
struct TestSock {
    pacing: SkPacing,
}

impl SkbOwner for TestSock {
    fn skb_released(&self, _truesize: u32) {}
    fn pacing(&self) -> Option<&SkPacing> {
        Some(&self.pacing)
    }
}

fn sock(id: u64, rate: u64) -> Arc<TestSock> {
    let s = TestSock {
        pacing: SkPacing::new(id),
    };
    s.pacing.set_rate(rate);
    Arc::new(s)
}

fn host() -> (Sim, Stack, Arc<FakeDriver>, Arc<NetDevice>) {
    let mut sim = Sim::new(1);
    let s = sim.add_host("h");
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    (sim, s, drv, dev)
}

/// A 1000-byte frame of orphan flow `hash` carrying `seq`.
fn pkt(hash: u32, seq: u32) -> Skb {
    let mut s = test_frame(mac(1), mac(2), 1000, seq);
    s.hash = hash;
    s
}

fn owned(sk: &Arc<TestSock>, seq: u32) -> Skb {
    let mut s = test_frame(mac(1), mac(2), 1000, seq);
    s.set_owner(sk.clone());
    s
}

fn seq_of(s: &Skb) -> u32 {
    let d = s.data();
    u32::from_be_bytes([d[14], d[15], d[16], d[17]])
}

/// Quanta of exactly three 1000-byte packets, so rounds are easy to read.
fn small_quanta() -> FqConfig {
    let mut c = FqConfig::for_mtu(1500);
    c.quantum = 3000;
    c.initial_quantum = 3000;
    c
}

fn drain(q: &mut Fq, now: Instant) -> Vec<u32> {
    let mut out = Vec::new();
    while let Dequeue::Packet(s) = q.dequeue(now) {
        out.push(seq_of(&s));
    }
    out
}

const T0: Instant = Instant::from_millis(1000);

#[test]
fn flows_take_turns_a_quantum_each_so_a_bulk_flow_cannot_starve_another() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(small_quanta()).unwrap();
    // Flow A queues its backlog first; flow B arrives behind it.
    for i in 0..30 {
        q.enqueue(pkt(1, 100 + i), &dev, T0).unwrap();
    }
    for i in 0..9 {
        q.enqueue(pkt(2, 200 + i), &dev, T0).unwrap();
    }
    let order = drain(&mut q, T0);
    let want: Vec<u32> = [
        100, 101, 102, 200, 201, 202, 103, 104, 105, 203, 204, 205, 106, 107, 108, 206, 207, 208,
    ]
    .into_iter()
    .chain(109..130)
    .collect();
    assert_eq!(order, want, "three packets (one quantum) per turn");
    assert_eq!((q.qlen(), q.backlog()), (0, 0));
}

#[test]
fn a_new_flow_goes_before_the_backlog_of_old_flows() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(small_quanta()).unwrap();
    for i in 0..20 {
        q.enqueue(pkt(1, i), &dev, T0).unwrap();
    }
    // A spends its initial credit and becomes an old flow with 15 packets waiting.
    for i in 0..5 {
        let Dequeue::Packet(s) = q.dequeue(T0) else {
            panic!("packet {i}")
        };
        assert_eq!(seq_of(&s), i);
    }
    q.enqueue(pkt(2, 500), &dev, T0).unwrap();
    q.enqueue(pkt(2, 501), &dev, T0).unwrap();
    let order = drain(&mut q, T0);
    assert_eq!(
        &order[..2],
        &[500, 501],
        "the new flow's packets go first: {order:?}"
    );
    assert_eq!(order.len(), 17);
}

#[test]
fn the_101st_packet_of_a_flow_is_dropped_and_counted_while_other_flows_enqueue() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    for i in 0..100 {
        assert!(q.enqueue(pkt(1, i), &dev, T0).is_ok(), "packet {i}");
    }
    assert!(q.enqueue(pkt(1, 100), &dev, T0).is_err());
    assert_eq!(q.stats().flows_plimit, 1);
    assert!(
        q.enqueue(pkt(2, 0), &dev, T0).is_ok(),
        "another flow still fits"
    );
    assert_eq!(q.qlen(), 101);

    // Through a device: the drop is a qdisc drop, and `tc -s` shows flows_plimit.
    let (_sim, s, _drv, dev) = host();
    let slot = &dev.txqs[0].qdisc;
    slot.replace(Box::new(Fq::new(FqConfig::for_device(&dev)).unwrap()));
    assert!(slot.run_begin(), "hold the qdisc so everything is queued");
    for i in 0..101 {
        let rc = dev_queue_xmit(&s, &dev, pkt(1, i));
        assert_eq!(rc == NetXmit::Drop, i == 100, "packet {i}");
    }
    assert_eq!(slot.stats().drops, 1);
    assert_eq!(slot.stats().qlen, 100);
    let x = slot.xstats().unwrap();
    assert!(x.contains(" flows_plimit 1"), "{x}");
    assert!(x.starts_with("  flows 1 (inactive 0 throttled 0)"), "{x}");
}

#[test]
fn the_total_limit_drops_past_limit_packets() {
    let (_sim, _s, _drv, dev) = host();
    let mut c = FqConfig::for_mtu(1500);
    c.limit = 5;
    let mut q = Fq::new(c).unwrap();
    for i in 0..5 {
        q.enqueue(pkt(i, i), &dev, T0).unwrap();
    }
    assert!(q.enqueue(pkt(9, 9), &dev, T0).is_err());
    assert_eq!(q.stats().flows_plimit, 0);
}

#[test]
fn a_packet_stamped_for_the_future_is_held_until_then() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    let edt = T0 + Duration::from_millis(7);
    let mut s = pkt(1, 1);
    s.tstamp = edt;
    q.enqueue(s, &dev, T0).unwrap();
    q.enqueue(pkt(2, 2), &dev, T0).unwrap();
    // The unstamped flow goes; the stamped one waits for its time.
    assert!(matches!(q.dequeue(T0), Dequeue::Packet(s) if seq_of(&s) == 2));
    assert!(matches!(q.dequeue(T0), Dequeue::Throttled(t) if t == edt));
    assert_eq!(q.stats().throttled_flows, 1);
    let just_before = edt - Duration::from_nanos(1);
    assert!(matches!(q.dequeue(just_before), Dequeue::Throttled(t) if t == edt));
    assert!(matches!(q.dequeue(edt), Dequeue::Packet(s) if seq_of(&s) == 1));
    assert!(matches!(q.dequeue(edt), Dequeue::Empty));
    assert_eq!(q.stats().throttled_flows, 0);
}

#[test]
fn the_watchdog_releases_a_future_packet_at_its_departure_time() {
    let (sim, s, drv, dev) = host();
    dev.txqs[0]
        .qdisc
        .replace(Box::new(Fq::new(FqConfig::for_device(&dev)).unwrap()));
    let edt = sim.now() + Duration::from_millis(5);
    let mut f = pkt(1, 42);
    f.tstamp = edt;
    assert_eq!(dev_queue_xmit(&s, &dev, f), NetXmit::Success);
    assert!(drv.sent_seqs().is_empty(), "not before its time");
    while drv.sent_seqs().is_empty() {
        assert!(sim.step(), "the watchdog must fire");
    }
    assert_eq!(sim.now(), edt);
    assert_eq!(drv.sent_seqs(), vec![42]);
    let x = dev.txqs[0].qdisc.xstats().unwrap();
    assert!(x.contains(" throttled 1"), "{x}");
}

#[test]
fn a_packet_beyond_the_horizon_is_dropped_or_capped() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    let mut s = pkt(1, 1);
    s.tstamp = T0 + Duration::from_secs(11);
    assert!(q.enqueue(s, &dev, T0).is_err());
    assert_eq!(q.stats().horizon_drops, 1);
    let mut q = Fq::new(FqConfig::for_mtu(1500).parse(&["horizon_cap"]).unwrap()).unwrap();
    let mut s = pkt(1, 1);
    s.tstamp = T0 + Duration::from_secs(11);
    q.enqueue(s, &dev, T0).unwrap();
    assert!(matches!(q.dequeue(T0), Dequeue::Throttled(t) if t == T0 + Duration::from_secs(10)));
    assert_eq!(q.stats().horizon_caps, 1);
}

#[test]
fn a_slow_socket_is_paced_one_packet_every_len_over_rate() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    // 50 kB/s, under low_rate_threshold: 1000-byte packets 20 ms apart.
    let sk = sock(7, 50_000);
    for i in 0..5 {
        q.enqueue(owned(&sk, i), &dev, T0).unwrap();
    }
    assert_eq!(
        sk.pacing.status(),
        PacingStatus::Fq,
        "fq claimed the socket"
    );
    let mut now = T0;
    let mut times = Vec::new();
    while times.len() < 5 {
        match q.dequeue(now) {
            Dequeue::Packet(_) => times.push(now),
            Dequeue::Throttled(t) => now = t,
            Dequeue::Empty => panic!("lost packets"),
        }
    }
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, vec![Duration::from_millis(20); 4]);
}

#[test]
fn a_fast_socket_is_paced_a_quantum_at_a_time() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(small_quanta()).unwrap();
    // 1 MB/s, above low_rate_threshold: a quantum (3 packets) then 3 ms of quiet.
    let sk = sock(8, 1_000_000);
    for i in 0..9 {
        q.enqueue(owned(&sk, i), &dev, T0).unwrap();
    }
    let mut now = T0;
    let mut times = Vec::new();
    while times.len() < 9 {
        match q.dequeue(now) {
            Dequeue::Packet(_) => times.push((now - T0).as_micros()),
            Dequeue::Throttled(t) => now = t,
            Dequeue::Empty => panic!("lost packets"),
        }
    }
    assert_eq!(times, vec![0, 0, 0, 3000, 3000, 3000, 6000, 6000, 6000]);
}

#[test]
fn maxrate_paces_every_flow_even_with_timestamps() {
    let (_sim, _s, _drv, dev) = host();
    let cfg = FqConfig::for_mtu(1500)
        .parse(&["maxrate", "400kbit"])
        .unwrap();
    assert_eq!(cfg.maxrate, 50_000);
    let mut q = Fq::new(cfg).unwrap();
    for i in 0..3 {
        let mut s = pkt(1, i);
        s.tstamp = T0;
        q.enqueue(s, &dev, T0).unwrap();
    }
    assert!(matches!(q.dequeue(T0), Dequeue::Packet(_)));
    assert!(matches!(q.dequeue(T0), Dequeue::Throttled(t) if t == T0 + Duration::from_millis(20)));
}

#[test]
fn nopacing_leaves_the_socket_to_pace_itself() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500).parse(&["nopacing"]).unwrap()).unwrap();
    let sk = sock(9, 50_000);
    sk.pacing.request_internal();
    for i in 0..3 {
        q.enqueue(owned(&sk, i), &dev, T0).unwrap();
    }
    assert_eq!(sk.pacing.status(), PacingStatus::Needed);
    assert_eq!(drain(&mut q, T0), vec![0, 1, 2], "no rate pacing");
}

#[test]
fn idle_detached_flows_are_garbage_collected_after_three_seconds() {
    let (_sim, _s, _drv, dev) = host();
    let mut c = small_quanta();
    c.quantum = 1000;
    c.initial_quantum = 1000;
    c.buckets = 2;
    let mut q = Fq::new(c).unwrap();
    let key = |h: u32| (u64::from(h & 1023) << 1) | 1;
    // A second orphan flow that shares A's bucket.
    let same = (2..1024)
        .find(|&h| q.bucket_of(key(h)) == q.bucket_of(key(1)))
        .unwrap();
    let other = (2..1024)
        .find(|&h| q.bucket_of(key(h)) != q.bucket_of(key(1)))
        .unwrap();
    q.enqueue(pkt(1, 1), &dev, T0).unwrap();
    for i in 0..3 {
        q.enqueue(pkt(other, 10 + i), &dev, T0).unwrap();
    }
    // A sends and, once found empty on old_flows, is detached.
    assert_eq!(drain(&mut q, T0), vec![1, 10, 11, 12]);
    assert_eq!(q.stats().flows, 2);
    assert_eq!(q.stats().inactive_flows, 2);
    let slots = q.flows.len();
    q.enqueue(pkt(same, 20), &dev, T0 + Duration::from_secs(3))
        .unwrap();
    assert_eq!(q.stats().gc_flows, 0, "not idle for more than 3 s yet");
    assert_eq!(q.stats().flows, 3);
    let late = T0 + Duration::from_secs(3) + Duration::from_millis(1);
    let third = (2..1024)
        .find(|&h| h != same && q.bucket_of(key(h)) == q.bucket_of(key(1)))
        .unwrap();
    q.enqueue(pkt(third, 30), &dev, late).unwrap();
    assert_eq!(q.stats().gc_flows, 1, "A was collected");
    assert_eq!(q.stats().flows, 3);
    assert_eq!(q.flows.len(), slots + 1, "A's slot was reused");
    assert_eq!(drain(&mut q, late), vec![20, 30]);
}

#[test]
fn control_packets_skip_the_flows() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    for i in 0..3 {
        q.enqueue(pkt(1, i), &dev, T0).unwrap();
    }
    let mut c = pkt(2, 99);
    c.priority = 7;
    q.enqueue(c, &dev, T0).unwrap();
    assert_eq!(drain(&mut q, T0), vec![99, 0, 1, 2]);
    assert_eq!(q.stats().highprio_packets, 1);
}

#[test]
fn late_ect_packets_are_marked_ce_past_ce_threshold() {
    let (_sim, _s, _drv, dev) = host();
    let cfg = FqConfig::for_mtu(1500)
        .parse(&["ce_threshold", "1ms"])
        .unwrap();
    let mut q = Fq::new(cfg).unwrap();
    let mut s = Skb::alloc(40, 64);
    let d = s.put(40);
    d[0] = 0x45;
    d[1] = 0x02; // ECT(0)
    d[2..4].copy_from_slice(&40u16.to_be_bytes());
    d[8] = 64;
    d[9] = 17;
    s.set_network_header(0);
    s.protocol = ETH_P_IP;
    s.tstamp = T0;
    q.enqueue(s, &dev, T0).unwrap();
    let Dequeue::Packet(s) = q.dequeue(T0 + Duration::from_millis(2)) else {
        panic!("packet")
    };
    let h = s.network_header();
    assert_eq!(h[1] & 3, 3, "CE");
    assert_eq!(
        usnet_wire::checksum::checksum(&h[..20]),
        0,
        "checksum fixed"
    );
    assert_eq!(q.stats().ce_mark, 1);
}

#[test]
fn describe_and_xstats_read_like_tc() {
    let q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    assert_eq!(
        q.describe(),
        "limit 10000p flow_limit 100p buckets 1024 orphan_mask 1023 quantum 3028b \
         initial_quantum 15140b low_rate_threshold 550Kbit refill_delay 40ms \
         timer_slack 10us horizon 10s horizon_drop"
    );
    assert_eq!(
        q.xstats().unwrap(),
        "  flows 0 (inactive 0 throttled 0)\n  gc 0 highprio 0 throttled 0"
    );
    let c = FqConfig::for_mtu(1500)
        .parse(&[
            "limit", "500", "buckets", "100", "maxrate", "1gbit", "nopacing",
        ])
        .unwrap();
    assert_eq!((c.limit, c.buckets, c.maxrate), (500, 128, 125_000_000));
    let d = Fq::new(c).unwrap().describe();
    assert!(
        d.contains("buckets 128 ") && d.contains("nopacing ") && d.contains("maxrate 1Gbit "),
        "{d}"
    );
}

#[test]
fn bad_parameters_are_errors_not_panics() {
    let base = FqConfig::for_mtu(1500);
    for bad in [
        &["quantum", "0"][..],
        &["quantum", "2m"],
        &["limit", "0"],
        &["limit", "ten"],
        &["limit"],
        &["buckets", "4000000000"],
        &["buckets", "1000000"],
        &["maxrate", "fast"],
        &["horizon", "5000s"],
        &["frobnicate"],
    ] {
        let e = base.parse(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(e.to_string().starts_with("fq:"), "{e}");
    }
    let mut c = base;
    c.buckets = 1000;
    assert!(Fq::new(c).is_err());
}

#[test]
fn reset_and_replace_drop_everything_queued() {
    let (_sim, _s, _drv, dev) = host();
    let mut q = Fq::new(FqConfig::for_mtu(1500)).unwrap();
    for i in 0..10 {
        let mut s = pkt(i, i);
        s.tstamp = T0 + Duration::from_millis(u64::from(i));
        q.enqueue(s, &dev, T0).unwrap();
    }
    let _ = q.dequeue(T0);
    assert_eq!(q.reset(), 9);
    assert_eq!((q.qlen(), q.backlog(), q.stats().flows), (0, 0, 0));
    assert!(matches!(q.dequeue(T0), Dequeue::Empty));
    q.enqueue(pkt(1, 1), &dev, T0).unwrap();
    assert_eq!(drain(&mut q, T0), vec![1]);
}

/// A scheduled slot with nothing eligible must not spin: the run ends and only the
/// watchdog brings it back.
#[test]
fn a_throttled_slot_waits_for_the_watchdog() {
    let (sim, s, drv, dev) = host();
    let slot: &Arc<QdiscSlot> = &dev.txqs[0].qdisc;
    slot.replace(Box::new(Fq::new(FqConfig::for_device(&dev)).unwrap()));
    let at = sim.now() + Duration::from_millis(3);
    for i in 0..3 {
        let mut f = pkt(i, i);
        f.tstamp = at;
        dev_queue_xmit(&s, &dev, f);
    }
    netif_schedule(slot);
    s.do_softirq();
    assert!(drv.sent_seqs().is_empty());
    sim.run_for(Duration::from_millis(3));
    assert_eq!(drv.sent_seqs(), vec![0, 1, 2]);
}
