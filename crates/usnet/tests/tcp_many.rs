//! Many connections on one stack: 10,000 concurrent bulk transfers between two hosts all
//! complete with every byte intact, and an idle established connection costs at most
//! 2 KiB of memory besides its buffers (a counting allocator measures the live heap).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet::tcp::{TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};

struct Live;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only keeps a byte count.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

/// The live-byte count is process-wide: the tests here run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hosts(seed: u64) -> TwoHosts {
    let h = TwoHosts::new(seed, |_| {}).with_ip();
    for s in [&h.a, &h.b] {
        s.sysctl.set("net.core.somaxconn", 65535).unwrap();
        s.sysctl.set("net.ipv4.tcp_max_syn_backlog", 65535).unwrap();
    }
    h
}

/// Open `n` connections a → b:`port` and accept them all; returns (clients, servers, the
/// listener).
fn open(h: &TwoHosts, n: usize, port: u16) -> (Vec<Arc<TcpSock>>, Vec<Arc<TcpSock>>, Arc<TcpSock>) {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), port)).unwrap();
    l.listen(65535).unwrap();
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    for i in 0..n {
        let c = TcpSock::new(&h.a);
        c.set_nonblocking(true);
        let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), port));
        clients.push(c);
        if i % 256 == 255 {
            h.sim.run_for(Duration::from_millis(1));
            while let Ok(s) = l.accept() {
                servers.push(s);
            }
        }
    }
    h.sim.run_while(
        || {
            while let Ok(s) = l.accept() {
                servers.push(s);
            }
            servers.len() < n
        },
        Duration::from_secs(10),
    );
    assert_eq!(servers.len(), n, "all accepted");
    h.sim.run_for(Duration::from_millis(10));
    assert!(clients.iter().all(|c| c.state() == TcpState::Established));
    for s in &servers {
        s.set_nonblocking(true);
    }
    (clients, servers, l)
}

#[test]
fn ten_thousand_concurrent_bulk_connections_complete_intact() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = 10_000;
    let per = 16 * 1024;
    let h = hosts(71);
    let (clients, servers, _l) = open(&h, n, 80);
    // Each connection carries its own pattern, so crossed streams would show.
    let pattern = |i: usize, j: usize| (i.wrapping_mul(31) + j * 7) as u8;
    let data: Vec<Vec<u8>> = (0..n)
        .map(|i| (0..per).map(|j| pattern(i, j)).collect())
        .collect();
    let mut sent = vec![0usize; n];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); n];
    // Servers are matched to clients by the client's port.
    let by_port: std::collections::HashMap<u16, usize> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.local_addr().port(), i))
        .collect();
    let owner: Vec<usize> = servers
        .iter()
        .map(|s| by_port[&s.peer_addr().unwrap().port()])
        .collect();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0;
    let finished = h.sim.run_while(
        || {
            for (i, c) in clients.iter().enumerate() {
                if sent[i] < per {
                    if let Ok(k) = c.send(&data[i][sent[i]..]) {
                        sent[i] += k;
                    }
                }
            }
            for (s, &i) in servers.iter().zip(&owner) {
                while let Ok(k) = s.recv(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    got[i].extend_from_slice(&buf[..k]);
                    if got[i].len() == per {
                        done += 1;
                    }
                }
            }
            done < n
        },
        Duration::from_secs(120),
    );
    assert!(finished, "{done} of {n} transfers finished");
    let bad = (0..n).filter(|&i| got[i] != data[i]).count();
    assert_eq!(bad, 0, "{bad} connections with wrong bytes");
}

#[test]
fn an_idle_established_connection_costs_at_most_2_kib() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = 2_000;
    let h = hosts(72);
    // Warm up pools, tables and timers with a first batch.
    let warm = open(&h, 200, 81);
    drop(warm);
    h.sim.run_for(Duration::from_secs(1));
    let before = LIVE.load(Ordering::Relaxed);
    let (clients, servers, l) = open(&h, n, 80);
    h.sim.run_for(Duration::from_millis(100));
    let after = LIVE.load(Ordering::Relaxed);
    let per_socket = (after - before) as f64 / (2 * n) as f64;
    // Both ends are sockets of this process: 2n of them.
    assert!(
        per_socket <= 2048.0,
        "{per_socket:.0} bytes per idle established socket"
    );
    assert!(per_socket > 256.0, "the count is real: {per_socket:.0}");
    drop((clients, servers, l));
}
