//! usnet's side: two stacks in this process on vnics over the in-memory wire, stepped
//! by one thread, as `usnet demo` runs them. The CPU is the limit: the clock is
//! virtual, so a NIC's line rate only decides how virtual time moves.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use std::io::{Read, Write};

use usnet::socket::std_api;
use usnet::tcp::{SockOpt, TcpSock, TcpState};
use usnet::testutil::{ip, RealTwoHosts, TwoHosts};

/// A non-blocking listener on b (10.0.0.2) at `port`.
fn listener(h: &TwoHosts, port: u16, backlog: usize) -> Arc<TcpSock> {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), port))
        .expect("bind");
    l.listen(backlog).expect("listen");
    l
}

/// Connect a → b:`port` and accept: (client, the accepted socket if any).
fn connect(h: &TwoHosts, l: &Arc<TcpSock>, port: u16) -> (Arc<TcpSock>, Option<Arc<TcpSock>>) {
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), port));
    let mut s = None;
    h.sim.run_while(
        || {
            s = s.take().or_else(|| l.accept().ok());
            s.is_none() || c.state() != TcpState::Established
        },
        Duration::from_secs(10),
    );
    (c, s)
}

/// Line rate of the NICs in the bulk cases: 100 Gbit/s, above what one core moves.
pub const BULK_LINE_RATE: u64 = 100_000_000_000;

/// The BIG TCP size of the `bulk_mtu1500_big_tcp` case, for both NICs'
/// `gso_ipv4_max_size` and `gro_ipv4_max_size`: 185,000 bytes, the figure BIG TCP was
/// introduced and deployed with (Linux's own selftest uses 128,000).
pub const BIG_TCP_SIZE: u32 = 185_000;

/// Two hosts and an established connection a → b.
pub struct Pair {
    h: TwoHosts,
    c: Arc<TcpSock>,
    s: Arc<TcpSock>,
}

impl Pair {
    /// Hosts with `mtu` and an established connection (CUBIC, Linux's defaults), on
    /// NICs without a line rate: virtual time stands still while packets move.
    pub fn new(mtu: u32) -> Pair {
        Pair::build(mtu, 1, None, 0)
    }

    /// As [`Pair::new`], on NICs sending at `bps` in virtual time. Bulk transfers want
    /// this: with virtual time standing still, TCP measures no round trip, so
    /// receive-buffer autotuning (`tcp_rcv_space_adjust`) never runs and the window
    /// stays at its initial 64 KiB; at a line rate above what the CPU moves, time
    /// passes as frames are serialized and the stacks tune as on a real link.
    pub fn with_line_rate(mtu: u32, bps: u64) -> Pair {
        Pair::build(mtu, 1, None, bps)
    }

    /// As [`Pair::with_line_rate`], with BIG TCP: both NICs' `gso_ipv4_max_size` and
    /// `gro_ipv4_max_size` set to `size` (as `ip link set DEV gso_ipv4_max_size SIZE
    /// gro_ipv4_max_size SIZE`) before the connection is made.
    pub fn with_big_tcp(mtu: u32, bps: u64, size: u32) -> Pair {
        Pair::build_with(mtu, 1, None, bps, size)
    }

    /// As [`Pair::new`], with `netem` on the wire both ways (and `seed` for it).
    pub fn with_netem(mtu: u32, seed: u64, netem: Option<usnet::link::Netem>) -> Pair {
        Pair::build(mtu, seed, netem, 0)
    }

    fn build(mtu: u32, seed: u64, netem: Option<usnet::link::Netem>, bps: u64) -> Pair {
        Pair::build_with(mtu, seed, netem, bps, 0)
    }

    fn build_with(
        mtu: u32,
        seed: u64,
        netem: Option<usnet::link::Netem>,
        bps: u64,
        big_tcp: u32,
    ) -> Pair {
        let h = TwoHosts::new(seed, |c| {
            c.mtu = mtu;
            c.line_rate_bps = bps;
        })
        .with_ip();
        if big_tcp > 0 {
            for d in [&h.da, &h.db] {
                d.set_gso_ipv4_max_size(big_tcp)
                    .expect("gso_ipv4_max_size within the vnic's tso_max_size");
                d.set_gro_ipv4_max_size(big_tcp)
                    .expect("gro_ipv4_max_size within GRO_MAX_SIZE");
            }
        }
        if let Some(n) = netem {
            h.wire.set_netem(0, n);
            h.wire.set_netem(1, n);
        }
        let l = listener(&h, 5001, 16);
        let (c, s) = connect(&h, &l, 5001);
        let s = s.expect("accepted");
        s.set_nonblocking(true);
        Pair { h, c, s }
    }

    /// Move `bytes` from a to b; returns wall-clock seconds.
    pub fn bulk(&self, bytes: u64) -> f64 {
        let chunk = vec![0x5au8; 256 * 1024];
        let mut rbuf = vec![0u8; 256 * 1024];
        let (mut sent, mut got) = (0u64, 0u64);
        let t0 = std::time::Instant::now();
        self.h.sim.run_while(
            || {
                while sent < bytes {
                    let n = ((bytes - sent) as usize).min(chunk.len());
                    match self.c.send(&chunk[..n]) {
                        Ok(k) => sent += k as u64,
                        Err(_) => break,
                    }
                }
                while let Ok(k) = self.s.recv(&mut rbuf) {
                    if k == 0 {
                        break;
                    }
                    got += k as u64;
                }
                got < bytes
            },
            Duration::from_secs(24 * 3600),
        );
        t0.elapsed().as_secs_f64()
    }

    /// `n` one-byte request/response exchanges; returns transactions per second.
    pub fn rr(&self, n: u32) -> f64 {
        let _ = self.c.set_opt(SockOpt::NoDelay(true));
        let _ = self.s.set_opt(SockOpt::NoDelay(true));
        let mut b = [0u8; 1];
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            let _ = self.c.send(&[1]);
            self.h.sim.run_while(
                || match self.s.recv(&mut b) {
                    Ok(_) => {
                        let _ = self.s.send(&b);
                        false
                    }
                    Err(_) => true,
                },
                Duration::from_secs(10),
            );
            self.h
                .sim
                .run_while(|| self.c.recv(&mut b).is_err(), Duration::from_secs(10));
        }
        f64::from(n) / t0.elapsed().as_secs_f64()
    }
}

/// Connections set up and torn down per second (connect, accept, close on both ends),
/// over `n` connections on one pair of stacks.
pub fn conn_rate(n: u32) -> f64 {
    let h = TwoHosts::new(2, |c| c.line_rate_bps = 0).with_ip();
    let l = listener(&h, 5002, 1024);
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        let (c, s) = connect(&h, &l, 5002);
        c.close();
        if let Some(s) = s {
            s.close();
        }
    }
    // Let the FINs go out (TIME_WAIT stays behind, as in Linux).
    h.sim.run_for(Duration::from_millis(1));
    f64::from(n) / t0.elapsed().as_secs_f64()
}

/// `n` one-byte request/response exchanges between two application threads with the
/// blocking API, each stack's softirq on its own thread (as ksoftirqd); transactions per
/// second. `busy_us` > 0 sets `SO_BUSY_POLL` on both sockets.
pub fn rr_threads(n: u32, busy_us: u32) -> Result<f64, String> {
    let h = RealTwoHosts::start(3);
    let addr = SocketAddrV4::new(ip(10, 0, 0, 2), 5003);
    let l = std_api::TcpListener::bind(&h.b, addr).map_err(|e| e.to_string())?;
    let server = std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_nodelay(true);
        let _ = s.set_busy_poll(busy_us);
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap_or(0) == 1 {
            if s.write(&b).is_err() {
                break;
            }
        }
    });
    let c = std_api::TcpStream::connect(&h.a, addr).map_err(|e| e.to_string())?;
    c.set_nodelay(true).map_err(|e| e.to_string())?;
    c.set_busy_poll(busy_us).map_err(|e| e.to_string())?;
    let rate = crate::rr_client(&c, n).map_err(|e| e.to_string())?;
    drop(c);
    let _ = server.join();
    Ok(rate)
}

/// Goodput in Mbit/s of `bytes` over a path with `loss` (probability) both ways and
/// `one_way` delay, in the simulator's virtual time.
pub fn lossy(bytes: u64, loss: f64, one_way: Duration, seed: u64, cc: &str) -> f64 {
    let netem = usnet::link::Netem {
        delay: one_way,
        loss: usnet::link::Loss::Random(loss),
        limit: 100_000,
        ..Default::default()
    };
    let p = Pair::with_netem(1500, seed, Some(netem));
    p.c.set_opt(usnet::tcp::SockOpt::Congestion(cc.to_string()))
        .expect("a known congestion control");
    let v0 = p.h.sim.now();
    p.bulk(bytes);
    let secs = p.h.sim.now().saturating_duration_since(v0).as_secs_f64();
    bytes as f64 * 8.0 / secs / 1e6
}

/// Bytes the C allocator has handed out and not had back (glibc's `mallinfo2`: in-use
/// heap plus mmap'd blocks), so memory freed earlier and reused is not counted twice.
fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics and returns a plain struct.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

/// Memory per idle established socket: the growth of the heap in use while `n`
/// connections (2n sockets) are open on a pair of stacks, nothing queued.
pub fn idle_socket_bytes(n: usize) -> Result<f64, String> {
    let h = TwoHosts::new(4, |c| c.line_rate_bps = 0).with_ip();
    for s in [&h.a, &h.b] {
        let _ = s.sysctl.set("net.core.somaxconn", 65535);
        let _ = s.sysctl.set("net.ipv4.tcp_max_syn_backlog", 65535);
    }
    let l = listener(&h, 5004, 65535);
    // Warm up the pools and tables first.
    let warm: Vec<_> = (0..256).map(|_| connect(&h, &l, 5004)).collect();
    drop(warm);
    let before = heap_in_use();
    let mut keep = Vec::with_capacity(n);
    for _ in 0..n {
        keep.push(connect(&h, &l, 5004));
    }
    h.sim.run_for(Duration::from_millis(10));
    let after = heap_in_use();
    if keep.iter().any(|(_, s)| s.is_none()) {
        return Err("a connection was not accepted".into());
    }
    Ok(after.saturating_sub(before) as f64 / (2 * n) as f64)
}
