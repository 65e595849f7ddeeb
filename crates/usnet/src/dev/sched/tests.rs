//! Decisions of the qdisc layer, each checked against a fake driver.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::tbf::{Tbf, TbfConfig};
use super::*;
use crate::dev::xmit::dev_queue_xmit;
use crate::sim::Sim;
use crate::testutil::{mac, test_frame, FakeDriver};

fn host() -> (Sim, Stack) {
    let mut sim = Sim::new(1);
    let s = sim.add_host("h");
    (sim, s)
}

fn frame(seq: u32) -> Skb {
    test_frame(mac(1), mac(2), 100, seq)
}

#[test]
fn empty_idle_qdisc_is_bypassed_straight_to_the_driver() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    s.trace.enable();
    let mut skb = frame(1);
    skb.trace_id = 7;
    assert_eq!(dev_queue_xmit(&s, &dev, skb), NetXmit::Success);
    assert_eq!(
        drv.sent_seqs(),
        vec![1],
        "sent synchronously in the caller's context"
    );
    let st = dev.txqs[0].qdisc.stats();
    assert_eq!((st.packets, st.qlen), (1, 0));
    let stages: Vec<_> = s.trace.events().iter().map(|e| e.stage).collect();
    assert!(stages.contains(&Stage::QdiscBypass));
    assert!(!stages.contains(&Stage::QdiscEnqueue));
}

#[test]
fn busy_qdisc_enqueues_and_the_runner_sends_in_order() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    // Another context is running the qdisc: our packets must be enqueued, not sent.
    assert!(dev.txqs[0].qdisc.run_begin());
    s.trace.enable();
    for i in 0..5 {
        let mut skb = frame(i);
        skb.trace_id = 100 + i;
        assert_eq!(dev_queue_xmit(&s, &dev, skb), NetXmit::Success);
    }
    assert!(drv.sent_seqs().is_empty());
    assert_eq!(dev.txqs[0].qdisc.stats().qlen, 5);
    assert!(s
        .trace
        .events()
        .iter()
        .all(|e| e.stage != Stage::QdiscBypass));
    // The running context finishes its run.
    qdisc_run(&s, &dev.txqs[0].qdisc, &dev, &dev.txqs[0]);
    assert_eq!(drv.sent_seqs(), vec![0, 1, 2, 3, 4]);
    assert!(!dev.txqs[0].qdisc.is_running());
}

#[test]
fn quota_stops_the_caller_and_reschedules_to_net_tx() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    let txq = &dev.txqs[0];
    txq.stop();
    for i in 0..200 {
        dev_queue_xmit(&s, &dev, frame(i));
    }
    assert_eq!(txq.qdisc.stats().qlen, 200);
    txq.start(); // started without a reschedule: the next sender runs the qdisc
    dev_queue_xmit(&s, &dev, frame(200));
    assert_eq!(
        drv.sent.lock().len(),
        64,
        "the caller sends dev_tx_weight packets, then hands over"
    );
    assert!(txq.qdisc.is_scheduled());
    assert_ne!(s.softnet.pending() & crate::dev::softnet::NET_TX, 0);
    s.do_softirq();
    assert_eq!(drv.sent_seqs(), (0..=200).collect::<Vec<_>>());
    assert!(s.softnet.stats.tx_action.load(Ordering::Relaxed) >= 3);
}

#[test]
fn busy_driver_requeues_at_the_head_and_retries_from_softirq() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    let txq = &dev.txqs[0];
    txq.stop();
    for i in 0..4 {
        dev_queue_xmit(&s, &dev, frame(i));
    }
    // The first packet found the queue stopped on the bypass path and was requeued
    // already (as Linux's sch_direct_xmit does).
    let before = txq.qdisc.stats().requeues;
    assert_eq!(before, 1);
    drv.busy_next.store(1, Ordering::Relaxed);
    txq.wake(); // reschedules the qdisc
    s.softnet.take_pending();
    net_tx_action(&s);
    // This attempt was refused: requeued, counted, rescheduled.
    let st = txq.qdisc.stats();
    assert_eq!(st.requeues, before + 1);
    assert!(txq.qdisc.is_scheduled());
    assert!(drv.sent_seqs().is_empty());
    s.do_softirq();
    assert_eq!(
        drv.sent_seqs(),
        vec![0, 1, 2, 3],
        "order kept across the requeue"
    );
    assert_eq!(txq.qdisc.stats().qlen, 0);
}

#[test]
fn stopped_queue_sends_nothing_until_woken() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    let txq = &dev.txqs[0];
    drv.stop_after.store(2, Ordering::Relaxed);
    for i in 0..5 {
        dev_queue_xmit(&s, &dev, frame(i));
    }
    assert_eq!(
        drv.sent_seqs(),
        vec![0, 1],
        "driver stopped the queue after two"
    );
    assert!(txq.stopped());
    s.do_softirq();
    assert_eq!(drv.sent.lock().len(), 2, "a stopped queue sends nothing");
    assert_eq!(txq.qdisc.stats().qlen, 3);
    txq.wake();
    s.do_softirq();
    assert_eq!(drv.sent_seqs(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn pfifo_fast_serves_bands_by_priority_and_drops_past_txqueuelen() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 6, 1).unwrap();
    let txq = &dev.txqs[0];
    // Another context holds the qdisc, so everything is enqueued.
    assert!(txq.qdisc.run_begin());
    // priority → band: 6 → 0, 0 → 1, 1 → 2.
    for (seq, prio) in [(0, 1), (1, 0), (2, 6), (3, 1), (4, 0), (5, 6), (6, 6)] {
        let mut f = frame(seq);
        f.priority = prio;
        let rc = dev_queue_xmit(&s, &dev, f);
        assert_eq!(rc == NetXmit::Drop, seq == 6, "seq {seq}");
    }
    assert_eq!(txq.qdisc.stats().drops, 1);
    qdisc_run(&s, &txq.qdisc, &dev, txq);
    assert_eq!(drv.sent_seqs(), vec![2, 5, 1, 4, 0, 3]);
    assert_eq!(
        txq.qdisc.describe(),
        "bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"
    );
}

#[test]
fn noqueue_sends_directly_and_drops_when_busy() {
    let (_sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 0, 1).unwrap();
    assert_eq!(dev.txqs[0].qdisc.kind(), "noqueue");
    assert_eq!(dev_queue_xmit(&s, &dev, frame(1)), NetXmit::Success);
    drv.busy_next.store(1, Ordering::Relaxed);
    assert_eq!(dev_queue_xmit(&s, &dev, frame(2)), NetXmit::Drop);
    assert_eq!(drv.sent_seqs(), vec![1]);
    assert_eq!(dev.txqs[0].qdisc.stats().drops, 1);
    assert_eq!(dev.stats.tx_dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn tbf_paces_packets_at_its_rate() {
    let (sim, s) = host();
    let (drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    // 8 Mbit/s = 1 byte/µs; 100-byte frames cost 100 µs each; bucket of one frame.
    dev.txqs[0].qdisc.replace(Box::new(Tbf::new(TbfConfig {
        rate_bps: 8_000_000,
        burst: 100,
        limit: 10_000,
    })));
    for i in 0..10 {
        dev_queue_xmit(&s, &dev, frame(i));
    }
    assert_eq!(drv.sent.lock().len(), 1, "the bucket holds one frame");
    let start = sim.now();
    let mut times = Vec::new();
    let mut seen = 1;
    while seen < 10 {
        assert!(sim.step(), "tbf must keep the queue scheduled");
        let n = drv.sent.lock().len();
        if n > seen {
            times.push(sim.now() - start);
            seen = n;
        }
    }
    assert_eq!(times.len(), 9);
    for (i, t) in times.iter().enumerate() {
        assert_eq!(
            *t,
            Duration::from_micros(100 * (i as u64 + 1)),
            "packet {}",
            i + 1
        );
    }
    assert!(dev.txqs[0].qdisc.stats().overlimits >= 9);
    assert_eq!(drv.sent_seqs(), (0..10).collect::<Vec<_>>());
}

#[test]
fn device_down_drops_and_counts() {
    let (_sim, s) = host();
    let (_drv, dev) = FakeDriver::create(&s, "f0", 1000, 1).unwrap();
    crate::dev::dev_close(&s, &dev);
    assert_eq!(dev_queue_xmit(&s, &dev, frame(1)), NetXmit::Drop);
    assert_eq!(dev.stats.tx_dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn flows_pick_distinct_queues_and_keep_to_them() {
    let (_sim, s) = host();
    let (_drv, dev) = FakeDriver::create(&s, "f0", 1000, 4).unwrap();
    let mut seen = std::collections::HashSet::new();
    for port in 0..64u16 {
        let mut f = frame(0);
        {
            // An IPv4/TCP header after the Ethernet header, varying the source port.
            let d = f.data_mut();
            d[12] = 0x08;
            d[13] = 0x00;
            d[14] = 0x45;
            d[23] = 6;
            d[34..36].copy_from_slice(&(1000 + port).to_be_bytes());
        }
        f.set_network_header(14);
        f.protocol = crate::dev::rx::ETH_P_IP;
        let q1 = crate::dev::xmit::netdev_pick_tx(&dev, &mut f);
        f.hash = 0;
        let q2 = crate::dev::xmit::netdev_pick_tx(&dev, &mut f);
        assert_eq!(q1, q2);
        seen.insert(q1);
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn register_checks_names_mtu_and_duplicates() {
    use crate::dev::NetDeviceConfig;
    let (_sim, s) = host();
    let drv: Arc<dyn crate::dev::NetDeviceOps> = Arc::new(FakeDriver::default());
    let reg = |cfg: NetDeviceConfig| s.devs.register(&s, cfg, drv.clone());
    let ok = NetDeviceConfig::ethernet("eth0", mac(1));
    let dev = reg(ok.clone()).unwrap();
    assert_eq!(dev.ifindex, 2, "ifindex 1 is lo, as in Linux");
    assert!(!dev.is_up(), "registered devices start down");
    assert_eq!(
        reg(ok.clone()).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
    for bad in ["", "a/b", "eth 0", "averyveryverylongname", "..", "x:1"] {
        let mut c = ok.clone();
        c.name = bad.to_string();
        assert_eq!(
            reg(c).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    let mut c = NetDeviceConfig::ethernet("eth1", mac(2));
    c.mtu = 20;
    assert!(reg(c).is_err(), "MTU below min_mtu");
    let mut c = NetDeviceConfig::ethernet("eth1", mac(2));
    c.mac = usnet_wire::EthernetAddress::BROADCAST;
    assert!(reg(c).is_err(), "multicast address");
    let mut c = NetDeviceConfig::ethernet("eth1", mac(2));
    c.hw_features = crate::dev::Features::TSO | crate::dev::Features::SG;
    c.features = c.hw_features;
    let d1 = reg(c).unwrap();
    assert!(
        !d1.features().contains(crate::dev::Features::TSO),
        "TSO without checksum offload is fixed away"
    );
    assert_eq!(d1.ifindex, 3);
    assert!(dev.set_mtu(9000).is_ok());
    assert!(dev.set_mtu(10_000).is_err());
    s.devs.unregister(&s, dev.ifindex).unwrap();
    assert!(s.devs.by_name("eth0").is_none());
    assert!(s.devs.unregister(&s, dev.ifindex).is_err());
}
