//! Shared harness for TCP scenario tests: two hosts with a 5 ms one-way delay, an
//! established connection a → b, and a segment log on a's NIC.
#![allow(dead_code)]

pub mod kernel;
pub mod lifecycle;

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::link::Netem;
use usnet::tcp::{TcpSock, TcpState};
use usnet::testutil::{ip, SegLog, TwoHosts};

/// One-way delay on the wire: the RTT is twice this.
pub const D: Duration = Duration::from_millis(5);
pub const RTT: Duration = Duration::from_millis(10);

pub struct Conn {
    pub h: TwoHosts,
    pub c: Arc<TcpSock>,
    pub s: Arc<TcpSock>,
    /// Segments host a sends and receives.
    pub log: Arc<SegLog>,
}

impl Conn {
    pub fn new(seed: u64, setup: impl Fn(&TwoHosts)) -> Conn {
        Conn::with_nic(seed, |_| {}, setup)
    }

    /// As [`Conn::new`], with `nic` applied to both NICs' configurations.
    pub fn with_nic(
        seed: u64,
        nic: impl Fn(&mut usnet::drivers::vnic::VnicConfig),
        setup: impl Fn(&TwoHosts),
    ) -> Conn {
        let h = TwoHosts::new(seed, nic).with_ip();
        let delayed = Netem {
            delay: D,
            ..Netem::default()
        };
        h.wire.set_netem(0, delayed);
        h.wire.set_netem(1, delayed);
        setup(&h);
        let l = TcpSock::new(&h.b);
        let (c, s) = connect_through(&h, &l);
        s.set_nonblocking(true);
        // Let the handshake's last ACK settle.
        h.sim.run_for(Duration::from_millis(50));
        let log = SegLog::attach(&h.da);
        Conn { h, c, s, log }
    }

    pub fn drain(&self) -> usize {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        while let Ok(k) = self.s.recv(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    }

    /// Run the hosts, the receiver appending what it reads to `got`, until it holds
    /// `n` bytes or `limit` has passed.
    pub fn read_to(&self, got: &mut Vec<u8>, n: usize, limit: Duration) {
        self.h.sim.run_while(
            || {
                got.extend(self.read_all());
                got.len() < n
            },
            limit,
        );
    }

    /// Everything the receiver can read now (without running the hosts).
    pub fn read_all(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = self.s.recv(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Run for `d`, with the receiving application reading all the time.
    pub fn run_reading(&self, d: Duration) -> usize {
        let mut got = 0;
        self.h.sim.run_while(
            || {
                got += self.drain();
                true
            },
            d,
        );
        got
    }

    /// Run (the receiving application reading) until the sender has nothing
    /// unacknowledged, for at most `limit`.
    pub fn run_until_acked(&self, limit: Duration) {
        self.h.sim.run_while(
            || {
                self.drain();
                self.c.info().unacked > 0
            },
            limit,
        );
    }
}

/// A hand-made Ethernet/IPv4/TCP frame from `src` to `dst` (MACs of hosts a → b unless
/// `to_a`), with correct checksums: for injecting segments a real peer would not send.
#[allow(clippy::too_many_arguments)]
pub fn craft_tcp(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
    to_a: bool,
) -> usnet::skb::Skb {
    craft_tcp_opts(src, dst, seq, ack, flags, window, &[], payload, to_a)
}

/// As [`craft_tcp`], with TCP options `opts` (a multiple of 4 bytes).
#[allow(clippy::too_many_arguments)]
pub fn craft_tcp_opts(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    opts: &[u8],
    payload: &[u8],
    to_a: bool,
) -> usnet::skb::Skb {
    use usnet::testutil::mac;
    use usnet_wire::checksum;
    assert_eq!(opts.len() % 4, 0);
    let (smac, dmac) = if to_a {
        (mac(2), mac(1))
    } else {
        (mac(1), mac(2))
    };
    let hlen = 20 + opts.len();
    let tcp_len = hlen + payload.len();
    let mut f = vec![0u8; 14 + 20 + tcp_len];
    f[0..6].copy_from_slice(dmac.as_bytes());
    f[6..12].copy_from_slice(smac.as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let iph = &mut f[14..34];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    iph[6] = 0x40;
    iph[8] = 64;
    iph[9] = 6;
    iph[12..16].copy_from_slice(&src.ip().octets());
    iph[16..20].copy_from_slice(&dst.ip().octets());
    let c = checksum::checksum(iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((hlen / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&window.to_be_bytes());
    t[20..hlen].copy_from_slice(opts);
    t[hlen..].copy_from_slice(payload);
    let mut acc = checksum::Accumulator::with_initial(checksum::pseudo_header_v4(
        src.ip(),
        dst.ip(),
        6,
        tcp_len as u32,
    ));
    acc.add(t);
    let c = acc.finish();
    t[16..18].copy_from_slice(&c.to_be_bytes());
    usnet::skb::Skb::from_slice(&f, 64)
}

/// The timestamps option (NOP, NOP, TS) — RFC 7323 § 3.2 wants it on every non-RST
/// segment of a connection that negotiated it, so injected non-RST segments carry one
/// whose TSval (the receiver's `ts_recent`) passes PAWS.
pub fn ts_opt(val: u32, ecr: u32) -> [u8; 12] {
    let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&val.to_be_bytes());
    o[8..12].copy_from_slice(&ecr.to_be_bytes());
    o
}

/// Put a crafted frame on the wire towards b (or a).
pub fn inject(h: &TwoHosts, frame: usnet::skb::Skb, to_a: bool) {
    let from = if to_a { 1 } else { 0 };
    h.wire.transmit(from, &mut vec![frame]);
}

/// Drop a→b data segments by the bytes they carry (offsets from the first data byte):
/// the segment carrying each `(offset, times)` is dropped the first `times` times. Returns the number
/// of frames dropped so far.
pub fn drop_times(k: &Conn, rel: &[(u32, u32)]) -> Arc<std::sync::atomic::AtomicU32> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let isn = k.c.with_tcb(|t| t.iss);
    let mut left: std::collections::HashMap<u32, u32> = rel
        .iter()
        .map(|&(r, n)| (isn.wrapping_add(1).wrapping_add(r), n))
        .collect();
    let dropped = Arc::new(AtomicU32::new(0));
    let d = dropped.clone();
    let left = parking_lot::Mutex::new(std::mem::take(&mut left));
    k.h.wire.set_drop_filter(
        1,
        Some(Arc::new(move |f| {
            let Some((seq, len, _)) = usnet::testutil::tcp_segment(f) else {
                return false;
            };
            if len == 0 {
                return false;
            }
            // The segment that carries a target byte is dropped.
            let mut l = left.lock();
            for (target, n) in l.iter_mut() {
                if target.wrapping_sub(seq) < len && *n > 0 {
                    *n -= 1;
                    d.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
            false
        })),
    );
    dropped
}

/// Send `bytes` (a pattern) from a to b and read them all, calling `each` every step;
/// asserts that the transfer finished within `limit` and arrived intact.
pub fn bulk_with(k: &Conn, bytes: usize, limit: Duration, mut each: impl FnMut()) {
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 + i / 1000) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::with_capacity(bytes);
    let mut buf = vec![0u8; 1 << 16];
    let done = k.h.sim.run_while(
        || {
            while sent < data.len() {
                match k.c.send(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            each();
            got.len() < data.len()
        },
        limit,
    );
    assert!(done, "transfer finished: {} of {bytes}", got.len());
    assert!(got == data, "data intact");
}

/// Listen on 10.0.0.2:80 with `l` (a fresh socket of host b, options already set),
/// connect to it from host a and accept: (client, accepted), both non-blocking once
/// the client is established.
pub fn connect_through(h: &TwoHosts, l: &Arc<TcpSock>) -> (Arc<TcpSock>, Arc<TcpSock>) {
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
    l.listen(16).unwrap();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
    let s = accept_for(h, l, &c, || c.state() == TcpState::Established);
    (c, s)
}

/// Run the simulator until listener `l` hands out a child and `done()` holds
/// (bounded: 5 s of virtual time); the child, or a panic naming client `c`'s state.
pub fn accept_for(
    h: &TwoHosts,
    l: &Arc<TcpSock>,
    c: &Arc<TcpSock>,
    done: impl Fn() -> bool,
) -> Arc<TcpSock> {
    let mut s = None;
    h.sim.run_while(
        || {
            s = s.take().or_else(|| l.accept().ok());
            s.is_none() || !done()
        },
        Duration::from_secs(5),
    );
    s.unwrap_or_else(|| panic!("not accepted (client {:?})", c.state()))
}

/// Receive and send buffers that never limit a transfer (cwnd does): host b reads
/// into 16 MiB by default, both may grow to 32 MiB.
pub fn roomy_buffers(h: &TwoHosts) {
    h.b.sysctl
        .set("net.ipv4.tcp_rmem_default", 16 << 20)
        .unwrap();
    h.b.sysctl.set("net.ipv4.tcp_rmem_max", 32 << 20).unwrap();
    h.a.sysctl.set("net.ipv4.tcp_wmem_max", 32 << 20).unwrap();
}

/// The most payload host a sent within any `window` (past the first `skip`
/// segments): how bursty the sender is.
pub fn burstiest(log: &SegLog, skip: usize, window: Duration) -> usize {
    let segs = log.data_out();
    let mut worst = 0usize;
    for (i, s) in segs.iter().enumerate().skip(skip) {
        let win: usize = segs[i..]
            .iter()
            .take_while(|x| x.at.saturating_duration_since(s.at) < window)
            .map(|x| x.len as usize)
            .sum();
        worst = worst.max(win);
    }
    worst
}

/// Data both ways on an established pair: "ping" a → b and "pong" b → a, each
/// received within one RTT.
pub fn ping_pong(h: &TwoHosts, a: &Arc<TcpSock>, b: &Arc<TcpSock>) {
    a.send(b"ping").unwrap();
    b.send(b"pong").unwrap();
    h.sim.run_for(RTT);
    let mut buf = [0u8; 8];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
}

/// Move `n` patterned bytes `c` → `s` (non-blocking sockets on `sim`'s hosts) with the
/// receiver reading all the time, within `limit` of virtual time; asserts they arrive
/// intact.
pub fn bulk_intact(
    sim: &usnet::sim::Sim,
    c: &Arc<TcpSock>,
    s: &Arc<TcpSock>,
    n: usize,
    limit: Duration,
) {
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::with_capacity(n);
    let mut buf = vec![0u8; 1 << 16];
    sim.run_while(
        || {
            if sent < n {
                if let Ok(k) = c.send(&data[sent..]) {
                    sent += k;
                }
            }
            while let Ok(k) = s.recv(&mut buf) {
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
            got.len() < n
        },
        limit,
    );
    assert!(got == data, "{} of {n} bytes arrived intact", got.len());
}
