//! Steady-state traffic allocates nothing: skbs, ring slots, wire queue entries and the
//! softirq lists are all recycled; so are fq's flow slots and queues. A counting global
//! allocator proves it (the tests take turns, so each counts only its own traffic).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use usnet::dev::xmit::dev_queue_xmit;
use usnet::testutil::{mac, test_frame, Sink, TwoHosts};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn pump(h: &TwoHosts, sink: &Sink, frames: u64) {
    let target = sink.count() + frames;
    let mut seq = 0u32;
    while sink.count() < target {
        for _ in 0..32 {
            let mut f = test_frame(mac(1), mac(2), 1514, seq);
            // Eight flows, for a qdisc that tells flows apart.
            f.hash = seq % 8 + 1;
            dev_queue_xmit(&h.a, &h.da, f);
            seq = seq.wrapping_add(1);
        }
        h.sim.run_for(Duration::from_micros(10));
    }
}

#[test]
fn steady_state_frames_allocate_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = TwoHosts::new(5, |_| {});
    let sink = Sink::install(&h.b, false);
    // Warm up: pools, rings, queues and timers reach their working sizes.
    pump(&h, &sink, 50_000);
    let before = ALLOCS.load(Ordering::Relaxed);
    pump(&h, &sink, 200_000);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocs, 0,
        "{allocs} allocations for 200000 frames in steady state"
    );
}

#[test]
fn steady_state_through_fq_allocates_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = TwoHosts::new(5, |_| {});
    for txq in h.da.txqs.iter() {
        let fq = usnet::dev::sched::fq::Fq::new(usnet::dev::sched::fq::FqConfig::for_device(&h.da))
            .unwrap();
        txq.qdisc.replace(Box::new(fq));
    }
    let sink = Sink::install(&h.b, false);
    pump(&h, &sink, 50_000);
    let before = ALLOCS.load(Ordering::Relaxed);
    pump(&h, &sink, 200_000);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocs, 0,
        "{allocs} allocations for 200000 frames through fq in steady state"
    );
    let x = h.da.txqs[0].qdisc.xstats().unwrap_or_default();
    assert!(x.contains("flows 8 "), "{x}");
}

/// TCP request/response through both stacks (socket calls, TCP in and out, IP, the
/// neighbour's cached header, the qdisc, the NIC, the wire, GRO): after warm-up, a
/// transaction allocates nothing.
#[test]
fn steady_state_tcp_request_response_allocates_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = TwoHosts::new(6, |_| {}).with_ip();
    let (c, s) = h.tcp_pair(5000);
    let exchange = |n: usize| {
        let mut b = [1u8; 64];
        for _ in 0..n {
            c.send(&b).unwrap();
            assert!(h
                .sim
                .run_while(|| s.recv(&mut b).is_err(), Duration::from_secs(1)));
            s.send(&b).unwrap();
            assert!(h
                .sim
                .run_while(|| c.recv(&mut b).is_err(), Duration::from_secs(1)));
            // Some time between transactions, so timers come and go.
            h.sim.run_for(Duration::from_millis(1));
        }
    };
    // Warm-up: 14 s of virtual time. A slot of the timer wheel allocates the first
    // time it holds a timer and keeps that capacity; the retransmission timer, re-filed
    // every 201 ticks, has passed through every slot of the first two levels by then.
    exchange(14_000);
    let before = ALLOCS.load(Ordering::Relaxed);
    exchange(5_000);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in 5000 request/response transactions"
    );
}

/// A bulk TCP transfer in steady state: the sender's page fragments are refilled once
/// their segments are acknowledged (the stack's page pool), skbs come from their pools,
/// fragments move between skbs through a reused scratch list — 64 MiB move with (almost)
/// no allocation.
#[test]
fn steady_state_tcp_bulk_allocates_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = TwoHosts::new(7, |_| {}).with_ip();
    let (c, s) = h.tcp_pair(5001);
    let chunk = vec![0x5au8; 64 << 10];
    let mut buf = vec![0u8; 256 << 10];
    let mut move_bytes = |total: u64| {
        let (mut sent, mut got) = (0u64, 0u64);
        while got < total {
            if sent < total {
                if let Ok(n) = c.send(&chunk) {
                    sent += n as u64;
                }
            }
            while let Ok(n) = s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            h.sim.run_for(Duration::from_micros(50));
        }
    };
    // Warm-up: pooled skb bodies reach the fragment count GRO builds, and timer-wheel
    // slots the number of timers they hold at once.
    move_bytes(256 << 20);
    let before = ALLOCS.load(Ordering::Relaxed);
    move_bytes(64 << 20);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    // What remains is warm-up that runs out, not per-packet work: a pooled skb body
    // grows its fragment list the first few times it is a GRO head (there are many
    // bodies in the pool), and a wheel slot the first time it holds more timers. One
    // allocation per skb (a TSO split, a GSO pass, an acknowledged head trimmed), or a
    // fresh page per 32 KiB, would be thousands.
    assert!(
        allocs < 64,
        "{allocs} allocations moving 64 MiB in steady state"
    );
}
