//! 1-byte request/response between two threads through two stacks on the vnic link,
//! with the blocking socket API (each stack's softirq runs on its own thread, as
//! ksoftirqd): transactions per second, like `netperf -t TCP_RR`.
//!
//! `cargo bench -p usnet --bench rr` (`USNET_RR_SECS` sets the duration, default 3).

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use usnet::socket::std_api::{TcpListener, TcpStream};
use usnet::testutil::{ip, RealTwoHosts};

fn run(secs: u64, busy_poll_us: u32) -> f64 {
    let h = RealTwoHosts::start(1);
    let addr = SocketAddrV4::new(ip(10, 0, 0, 2), 5000);
    let l = TcpListener::bind(&h.b, addr).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.set_busy_poll(busy_poll_us).unwrap();
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap_or(0) == 1 {
            if s.write(&b).is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(&h.a, addr).unwrap();
    c.set_nodelay(true).unwrap();
    c.set_busy_poll(busy_poll_us).unwrap();
    let mut b = [7u8; 1];
    for _ in 0..1000 {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
    }
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        for _ in 0..100 {
            c.write_all(&b).unwrap();
            c.read_exact(&mut b).unwrap();
        }
        n += 100;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    drop(c);
    let _ = server.join();
    rate
}

/// The same exchange with both stacks stepped by one thread (the simulator's poll
/// loop, no thread hand-offs): the CPU cost of the stacks themselves.
fn run_same_thread(n: u64) -> f64 {
    use usnet::tcp::TcpState;
    let h = usnet::testutil::TwoHosts::new(1, |c| c.line_rate_bps = 0).with_ip();
    let (c, s) = h.tcp_pair(5000);
    assert_eq!(c.state(), TcpState::Established);
    let mut b = [1u8; 1];
    let t0 = Instant::now();
    for _ in 0..n {
        c.send(&b).unwrap();
        h.sim
            .run_while(|| s.recv(&mut b).is_err(), Duration::from_secs(1));
        s.send(&b).unwrap();
        h.sim
            .run_while(|| c.recv(&mut b).is_err(), Duration::from_secs(1));
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    // `USNET_RR_ONLY=same|sleep|busy` runs one of the three cases (for profiling);
    // `USNET_RR_SAME_N` sets the one-thread case's transactions (default 200,000).
    let only = std::env::var("USNET_RR_ONLY").unwrap_or_default();
    let want = |case: &str| only.is_empty() || only == case;
    if want("same") {
        let n = std::env::var("USNET_RR_SAME_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200_000);
        let same = run_same_thread(n);
        println!("rr: {same:.0} transactions/s (both stacks on one thread, poll loop)");
    }
    let secs: u64 = std::env::var("USNET_RR_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    if want("sleep") {
        let sleeping = run(secs, 0);
        println!("rr: {sleeping:.0} transactions/s (1 byte each way, blocking API, threads sleep on wait queues)");
    }
    if want("busy") {
        let busy = run(secs, 50);
        println!(
            "rr: {busy:.0} transactions/s (same, SO_BUSY_POLL 50 us: the waiting thread polls the NIC)"
        );
    }
}
