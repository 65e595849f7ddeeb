//! The igb-like driver's decisions, on two hosts over the in-memory wire.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::dev::xmit::dev_queue_xmit;
use crate::link::Netem;
use crate::testutil::{mac, test_frame, Sink, TwoHosts};

fn send(h: &TwoHosts, n: u32, len: usize) {
    for i in 0..n {
        dev_queue_xmit(&h.a, &h.da, test_frame(mac(1), mac(2), len, i));
    }
}

#[test]
fn frames_cross_the_wire_in_order() {
    let h = TwoHosts::new(1, |_| {});
    let sink = Sink::install(&h.b, true);
    send(&h, 100, 1514);
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(sink.count(), 100);
    assert_eq!(*sink.seqs.lock(), (0..100).collect::<Vec<_>>());
    assert_eq!(h.db.stats.rx_packets.load(Ordering::Relaxed), 100);
    assert_eq!(h.da.stats.tx_packets.load(Ordering::Relaxed), 100);
}

#[test]
fn full_ring_stops_the_queue_and_completion_wakes_it() {
    let h = TwoHosts::new(2, |c| c.tx_ring = 64).without_bql();
    let sink = Sink::install(&h.b, true);
    // 300 frames from process context with no softirq in between: the ring (64) fills,
    // the driver stops the queue, the rest waits in the qdisc.
    send(&h, 300, 200);
    let txq = &h.da.txqs[0];
    assert!(txq.stopped(), "ring full: queue stopped");
    assert!(txq.qdisc.stats().qlen > 0, "the qdisc holds the rest");
    let in_ring = {
        let r = h.va.shared().tx_ring(0).unwrap().lock();
        r.count() - 1 - r.unused()
    };
    assert!(
        in_ring >= 64 - DESC_NEEDED - 2,
        "ring nearly full: {in_ring}"
    );
    h.sim.run_for(Duration::from_millis(5));
    assert_eq!(sink.count(), 300);
    assert_eq!(*sink.seqs.lock(), (0..300).collect::<Vec<_>>());
    assert!(txq.stops.load(Ordering::Relaxed) >= 1);
    assert!(
        txq.wakes.load(Ordering::Relaxed) >= 1,
        "completion woke the queue"
    );
    let restarts = h.va.shared().tx_ring(0).unwrap().lock().stats.restart_queue;
    assert!(restarts >= 1);
}

#[test]
fn completion_follows_the_dd_bit_in_order() {
    let h = TwoHosts::new(3, |_| {}).without_bql();
    let _sink = Sink::install(&h.b, false);
    send(&h, 3, 100);
    let shared = h.va.shared().clone();
    {
        let mut r = shared.tx_ring(0).unwrap().lock();
        assert_eq!(r.next_to_clean, 0);
        assert_eq!(r.next_to_use, 3, "one data descriptor per linear frame");
        // Pretend the hardware has not finished the second packet yet.
        assert_ne!(r.desc[1].status & status::DD, 0);
        r.desc[1].status &= !status::DD;
    }
    assert!(shared.clean_tx_irq(&h.a, 0));
    {
        let r = shared.tx_ring(0).unwrap().lock();
        assert_eq!(
            r.next_to_clean, 1,
            "cleaning stops at the first descriptor without DD"
        );
        assert_eq!(r.stats.packets, 1);
    }
    shared.tx_ring(0).unwrap().lock().desc[1].status |= status::DD;
    shared.clean_tx_irq(&h.a, 0);
    let r = shared.tx_ring(0).unwrap().lock();
    assert_eq!(r.next_to_clean, 3);
    assert_eq!(r.stats.packets, 3);
}

#[test]
fn tx_clean_respects_its_work_limit() {
    let h = TwoHosts::new(4, |c| c.tx_work_limit = 8).without_bql();
    let _sink = Sink::install(&h.b, false);
    send(&h, 20, 100);
    let shared = h.va.shared().clone();
    assert!(
        !shared.clean_tx_irq(&h.a, 0),
        "20 completions, limit 8: not complete"
    );
    assert_eq!(shared.tx_ring(0).unwrap().lock().stats.packets, 8);
}

#[test]
fn bql_stops_the_stack_and_the_limit_adapts() {
    let h = TwoHosts::new(5, |c| c.tx_ring = 1024);
    let _sink = Sink::install(&h.b, false);
    let txq = &h.da.txqs[0];
    // Fresh BQL limit is 0: after one frame the stack is held back (STACK_XOFF) and
    // the rest waits in the qdisc even though the ring has room.
    send(&h, 50, 1000);
    assert_ne!(txq.state_bits() & crate::dev::qstate::STACK_XOFF, 0);
    assert!(txq.qdisc.stats().qlen > 0);
    h.sim.run_for(Duration::from_millis(5));
    assert_eq!(txq.qdisc.stats().qlen, 0);
    let limit = txq.dql.limit();
    assert!(limit >= 1000, "limit grew after starvation: {limit}");
}

#[test]
fn napi_weight_and_budget_bound_each_softirq_run() {
    let h = TwoHosts::new(6, |c| c.rx_ring = 512).without_bql();
    let sink = Sink::install(&h.b, false);
    send(&h, 200, 100);
    // Let a transmit (its softirq may run; b's must not run yet).
    while h.a.softirq_pending() {
        h.a.do_softirq();
    }
    let qv = h.vb.shared().q_vector(0).unwrap().clone();
    // One NET_RX run with the default budget (300): the poll uses its weight (64) and
    // waits for the next run; no squeeze.
    h.b.softnet.take_pending();
    crate::dev::napi::net_rx_action(&h.b);
    assert_eq!(sink.count(), 64, "one poll of weight 64 per run");
    let ring_filled = h.vb.shared().rx_ring(0).unwrap().lock().hw_next;
    assert_eq!(ring_filled, 200, "all 200 frames went into b's RX ring");
    assert_eq!(h.b.softnet.softnet_stat()[2], 0);
    assert_ne!(
        h.b.softnet.pending() & crate::dev::softnet::NET_RX,
        0,
        "NET_RX raised again"
    );
    assert!(qv.masked(), "interrupt stays masked while NAPI polls");
    // A budget smaller than the weight squeezes the run.
    h.b.sysctl.set("net.core.netdev_budget", 50).unwrap();
    h.b.softnet.take_pending();
    crate::dev::napi::net_rx_action(&h.b);
    assert_eq!(sink.count(), 128);
    assert_eq!(h.b.softnet.softnet_stat()[2], 1, "one time_squeeze");
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(sink.count(), 200);
    assert!(!qv.masked(), "unmasked after completing");
    assert_eq!(h.b.softnet.softnet_stat()[0], 200);
}

#[test]
fn no_posted_descriptor_means_a_counted_drop() {
    let h = TwoHosts::new(7, |c| c.rx_ring = 16).without_bql();
    let sink = Sink::install(&h.b, false);
    send(&h, 100, 100);
    while h.a.softirq_pending() {
        h.a.do_softirq();
    }
    // b's first poll finds 100 frames DMA'd since the last one and 15 descriptors
    // posted: 85 are dropped and counted.
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(
        h.vb.shared()
            .stats
            .rx_no_buffer_count
            .load(Ordering::Relaxed),
        85
    );
    assert_eq!(h.db.stats.rx_missed_errors.load(Ordering::Relaxed), 85);
    assert_eq!(sink.count(), 15);
}

#[test]
fn interrupts_are_latched_while_masked() {
    let h = TwoHosts::new(8, |_| {}).without_bql();
    let sink = Sink::install(&h.b, false);
    send(&h, 1, 100);
    let qv = h.vb.shared().q_vector(0).unwrap().clone();
    assert!(
        qv.masked(),
        "the arriving frame raised and masked the interrupt"
    );
    assert_eq!((qv.interrupts(), qv.interrupts_latched()), (1, 0));
    // Another cause while masked is latched, not lost...
    qv.raise();
    assert_eq!(qv.interrupts_latched(), 1);
    h.sim.run_for(Duration::from_millis(1));
    // ...and fires when the poll completes and unmasks.
    assert_eq!(qv.interrupts(), 2);
    assert_eq!(sink.count(), 1);
    assert!(!qv.masked());
}

#[test]
fn corrupted_frames_fail_the_hardware_checksum() {
    let h = TwoHosts::new(9, |_| {});
    h.wire.set_netem(
        1,
        Netem {
            corrupt: 1.0,
            ..Netem::default()
        },
    );
    // An IPv4/UDP frame with a correct checksum; the wire flips a bit.
    let mut f = test_frame(mac(1), mac(2), 60, 0);
    {
        let d = f.data_mut();
        d[12..14].copy_from_slice(&[0x08, 0x00]);
        d[14] = 0x45;
        d[16..18].copy_from_slice(&46u16.to_be_bytes());
        d[22] = 64;
        d[23] = 17;
        d[26..30].copy_from_slice(&[10, 0, 0, 1]);
        d[30..34].copy_from_slice(&[10, 0, 0, 2]);
        let c = usnet_wire::checksum::checksum(&d[14..34]);
        d[24..26].copy_from_slice(&c.to_be_bytes());
        d[38..40].copy_from_slice(&26u16.to_be_bytes());
        d[40..42].copy_from_slice(&[0, 0]);
        let src = std::net::Ipv4Addr::new(10, 0, 0, 1);
        let dst = std::net::Ipv4Addr::new(10, 0, 0, 2);
        let mut acc = usnet_wire::checksum::Accumulator::with_initial(
            usnet_wire::checksum::pseudo_header_v4(&src, &dst, 17, 26),
        );
        acc.add(&d[34..60]);
        d[40..42].copy_from_slice(&acc.finish().to_be_bytes());
    }
    let mut total = 0;
    for _ in 0..50 {
        dev_queue_xmit(&h.a, &h.da, f.copy_linear(64));
        total += 1;
    }
    h.sim.run_for(Duration::from_millis(1));
    let st = h.vb.shared().rx_ring(0).unwrap().lock().stats;
    // Every frame is corrupted; those whose IP or UDP bytes were hit fail the check
    // (a flip in the Ethernet header may send it elsewhere or leave checksums intact).
    assert!(st.csum_err > 25, "csum_err {}", st.csum_err);
    // What passed the check went up to IPv4 (b has no address: counted there) or
    // nowhere.
    let ip_in = h.b.ipv4.mib.get(crate::mib::Ip::InReceives);
    assert!(ip_in + h.db.stats.rx_nohandler.load(Ordering::Relaxed) <= total);
    assert!(
        ip_in + st.csum_err >= total - 10,
        "ip {ip_in} csum_err {}",
        st.csum_err
    );
}

#[test]
fn three_hosts_on_a_learning_switch() {
    let mut sim = crate::sim::Sim::new(12);
    let hosts: Vec<_> = ["a", "b", "c"].iter().map(|n| sim.add_host(n)).collect();
    let wire = crate::link::Wire::switch(sim.clock(), 5, 3);
    let devs: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Vnic::create(h, VnicConfig::new("eth0", mac(i as u8 + 1)), &wire).unwrap())
        .collect();
    let sinks: Vec<_> = hosts.iter().map(|h| Sink::install(h, true)).collect();
    // a → b: b unknown yet, so the switch floods to b and c; c's NIC drops it as not
    // for its address only at the protocol layer (OtherHost), the sink still counts it.
    dev_queue_xmit(&hosts[0], &devs[0], test_frame(mac(1), mac(2), 100, 1));
    sim.run_for(Duration::from_millis(1));
    assert_eq!((sinks[1].count(), sinks[2].count()), (1, 1));
    // b answers: the switch learns where mac(2) is...
    dev_queue_xmit(&hosts[1], &devs[1], test_frame(mac(2), mac(1), 100, 2));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sinks[0].count(), 1);
    assert_eq!(
        sinks[2].count(),
        1,
        "mac(1) was already learned: no flood to c"
    );
    // ...so a → b no longer reaches c.
    dev_queue_xmit(&hosts[0], &devs[0], test_frame(mac(1), mac(2), 100, 3));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(*sinks[1].seqs.lock(), vec![1, 3]);
    assert_eq!(sinks[2].count(), 1);
}
