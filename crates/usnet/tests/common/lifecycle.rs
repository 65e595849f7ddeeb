//! Shared by the connection-lifecycle tests (tcp_handshake, tcp_teardown, tcp_resets,
//! tcp_timeouts, tcp_window): two hosts with static ARP entries, so the first segment
//! of a test leaves at once and timings are exact; listen / non-blocking connect /
//! accept on them; an established [`Conn`] that keeps its listener and logs segments on
//! both NICs (unlike [`super::Conn`], which resolves ARP on the wire and logs a only);
//! and segment-level tools (TCP flags, cutting the wire, reading and pushing data).

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::link::Netem;
use usnet::skb::Skb;
use usnet::sock::errno;
use usnet::tcp::{TcpSock, TcpState};
use usnet::testutil::{ip, mac, tcp_segment, SegLog, SegRecord, TwoHosts};
use usnet::time::Instant;

use super::D;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// Wire port of host a (frames *to* a) and of host b.
pub const TO_A: usize = 0;
pub const TO_B: usize = 1;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(later: Instant, earlier: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64()
}

pub fn server() -> SocketAddrV4 {
    SocketAddrV4::new(ip(10, 0, 0, 2), 80)
}

/// Two hosts with a 5 ms one-way delay each way and static ARP entries, so the first
/// segment of a test leaves at once (no ARP round trip shifts the timings).
pub fn hosts(seed: u64) -> TwoHosts {
    let h = TwoHosts::new(seed, |_| {}).with_ip();
    h.a.ipv4
        .arp
        .add_permanent(&h.a, &h.da, ip(10, 0, 0, 2), mac(2))
        .expect("neigh a");
    h.b.ipv4
        .arp
        .add_permanent(&h.b, &h.db, ip(10, 0, 0, 1), mac(1))
        .expect("neigh b");
    let delayed = Netem {
        delay: D,
        ..Netem::default()
    };
    h.wire.set_netem(TO_A, delayed);
    h.wire.set_netem(TO_B, delayed);
    h
}

pub fn listen(h: &TwoHosts, port: u16, backlog: usize) -> Arc<TcpSock> {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), port)).unwrap();
    l.listen(backlog).unwrap();
    l
}

/// A non-blocking connect from host a (`EINPROGRESS`).
pub fn connect(h: &TwoHosts, to: SocketAddrV4) -> Arc<TcpSock> {
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let e = c.connect(to).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EINPROGRESS));
    c
}

/// Wait (virtual time) until `c` is established and `l` hands out its child
/// ([`super::accept_for`]); the child is made non-blocking.
pub fn accept_for(h: &TwoHosts, l: &Arc<TcpSock>, c: &Arc<TcpSock>) -> Arc<TcpSock> {
    let s = super::accept_for(h, l, c, || c.state() == TcpState::Established);
    s.set_nonblocking(true);
    s
}

/// Drop every TCP segment going to `port` (ARP still passes, so TCP sees silence, not
/// an unreachable neighbour), or stop dropping.
pub fn cut_tcp(h: &TwoHosts, port: usize, cut: bool) {
    h.wire.set_drop_filter(
        port,
        if cut {
            Some(Arc::new(|f: &Skb| tcp_segment(f).is_some()))
        } else {
            None
        },
    );
}

/// An established connection a → b:80, a segment log on each NIC.
pub struct Conn {
    pub h: TwoHosts,
    pub l: Arc<TcpSock>,
    pub c: Arc<TcpSock>,
    pub s: Arc<TcpSock>,
    /// What a's NIC sends and receives.
    pub log: Arc<SegLog>,
    /// What b's NIC sends and receives.
    pub blog: Arc<SegLog>,
}

impl Conn {
    pub fn new(seed: u64) -> Conn {
        Conn::with(seed, |_, _| {})
    }

    /// `setup` runs on the hosts and the listener before the client connects.
    pub fn with(seed: u64, setup: impl FnOnce(&TwoHosts, &Arc<TcpSock>)) -> Conn {
        let h = hosts(seed);
        let l = listen(&h, 80, 16);
        setup(&h, &l);
        let c = connect(&h, server());
        let s = accept_for(&h, &l, &c);
        // Let the handshake's last ACK settle.
        h.sim.run_for(ms(50));
        let log = SegLog::attach(&h.da);
        let blog = SegLog::attach(&h.db);
        Conn {
            h,
            l,
            c,
            s,
            log,
            blog,
        }
    }

    /// The server's (rcv_nxt, snd_nxt).
    pub fn server_seqs(&self) -> (u32, u32) {
        self.s.with_tcb(|t| (t.rcv_nxt, t.snd_nxt))
    }
}

/// Read everything `s` has now.
pub fn drain(s: &Arc<TcpSock>, into: &mut Vec<u8>) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    let mut eof = false;
    loop {
        match s.recv(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    eof
}

/// Queue as much of `data[*sent..]` as the send buffer takes.
pub fn push(c: &Arc<TcpSock>, data: &[u8], sent: &mut usize) {
    while *sent < data.len() {
        match c.send(&data[*sent..]) {
            Ok(n) => *sent += n,
            Err(_) => break,
        }
    }
}

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 + i / 251) as u8).collect()
}

pub fn segs_after(log: &SegLog, t: Instant, outgoing: bool) -> Vec<SegRecord> {
    log.segs
        .lock()
        .iter()
        .filter(|s| s.at >= t && s.outgoing == outgoing)
        .copied()
        .collect()
}
