//! Segments a well-behaved peer would not send, injected on the wire: RFC 5961's
//! blind-attack defences (challenge ACKs for in-window RST and SYN, reset only on an
//! exact RST), and SYN floods against the SYN queue with and without SYN cookies.

mod common;

use std::net::SocketAddrV4;
use std::time::Duration;

use common::{accept_for, craft_tcp, inject, Conn};
use usnet::sock::errno;
use usnet::tcp::{TcpExt, TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};

const RST: u8 = 0x04;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// (client address, server address, server's rcv_nxt, server's snd_nxt)
fn endpoints(k: &Conn) -> (SocketAddrV4, SocketAddrV4, u32, u32) {
    let (rcv_nxt, snd_nxt) = k.s.with_tcb(|t| (t.rcv_nxt, t.snd_nxt));
    (k.c.local_addr(), k.s.local_addr(), rcv_nxt, snd_nxt)
}

#[test]
fn in_window_rst_gets_a_challenge_ack_and_the_connection_survives() {
    let k = Conn::new(31, |_| {});
    let (ca, sa, rcv_nxt, _) = endpoints(&k);
    k.log.clear();
    inject(
        &k.h,
        craft_tcp(ca, sa, rcv_nxt.wrapping_add(1000), 0, RST, 0, &[], false),
        false,
    );
    k.h.sim.run_for(Duration::from_millis(50));
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 1);
    assert_eq!(k.s.state(), TcpState::Established);
    // The challenge ACK reached a (it carries rcv_nxt); a's stack ignores it.
    let acks: Vec<_> = k
        .log
        .segs
        .lock()
        .iter()
        .filter(|s| !s.outgoing && s.flags == ACK)
        .copied()
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].ack, rcv_nxt);
    // Data still flows.
    k.c.send(b"still here").unwrap();
    assert_eq!(k.run_reading(Duration::from_millis(50)), 10);
}

#[test]
fn rst_outside_the_window_is_ignored() {
    let k = Conn::new(32, |_| {});
    let (ca, sa, rcv_nxt, _) = endpoints(&k);
    inject(
        &k.h,
        craft_tcp(ca, sa, rcv_nxt.wrapping_sub(100_000), 0, RST, 0, &[], false),
        false,
    );
    k.h.sim.run_for(Duration::from_millis(50));
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 0);
    assert_eq!(k.s.state(), TcpState::Established);
}

#[test]
fn exact_rst_resets_the_connection() {
    let k = Conn::new(33, |_| {});
    let (ca, sa, rcv_nxt, _) = endpoints(&k);
    inject(
        &k.h,
        craft_tcp(ca, sa, rcv_nxt, 0, RST, 0, &[], false),
        false,
    );
    k.h.sim.run_for(Duration::from_millis(50));
    assert_eq!(k.s.state(), TcpState::Close);
    let mut buf = [0u8; 4];
    assert_eq!(
        k.s.recv(&mut buf).unwrap_err().raw_os_error(),
        Some(errno::ECONNRESET)
    );
    assert_eq!(k.h.b.tcp.snmp.get(usnet::tcp::Tcp::EstabResets), 1);
}

#[test]
fn syn_on_an_established_connection_gets_a_challenge_ack() {
    let k = Conn::new(34, |_| {});
    let (ca, sa, rcv_nxt, _) = endpoints(&k);
    inject(
        &k.h,
        craft_tcp(ca, sa, rcv_nxt.wrapping_add(5), 0, SYN, 1000, &[], false),
        false,
    );
    k.h.sim.run_for(Duration::from_millis(50));
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPSYNChallenge), 1);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 1);
    assert_eq!(k.s.state(), TcpState::Established);
}

/// SYNs from spoofed sources (10.0.0.99 and .100, which never answer) at port 80 of b.
fn syn_flood(h: &TwoHosts, n: u32) {
    let mut sent = 0;
    while sent < n {
        for _ in 0..200.min(n - sent) {
            // Distinct (address, port) per SYN, so none is a retransmission.
            let src = SocketAddrV4::new(
                ip(10, 0, 0, 99 + (sent / 60000) as u8),
                1024 + (sent % 60000) as u16,
            );
            let seq = sent.wrapping_mul(2_654_435_761);
            inject(
                h,
                craft_tcp(
                    src,
                    SocketAddrV4::new(ip(10, 0, 0, 2), 80),
                    seq,
                    0,
                    SYN,
                    65535,
                    &[],
                    false,
                ),
                false,
            );
            sent += 1;
        }
        h.sim.run_for(Duration::from_micros(500));
    }
}

fn listener(h: &TwoHosts, backlog: usize) -> std::sync::Arc<TcpSock> {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
    l.listen(backlog).unwrap();
    l
}

#[test]
fn without_cookies_a_full_syn_queue_drops_new_syns() {
    let h = TwoHosts::new(35, |_| {}).with_ip();
    h.b.sysctl.set("net.ipv4.tcp_syncookies", 0).unwrap();
    let l = listener(&h, 8);
    syn_flood(&h, 100);
    let m = |x| h.b.tcp.mib.get(x);
    assert_eq!(
        m(TcpExt::TCPReqQFullDrop),
        100 - 8,
        "the queue holds the backlog"
    );
    assert_eq!(m(TcpExt::SyncookiesSent), 0);
    // A legitimate client cannot get in while the queue is full.
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
    h.sim.run_for(Duration::from_millis(500));
    assert_eq!(c.state(), TcpState::SynSent);
    assert!(l.accept().is_err());
}

#[test]
fn syn_cookies_keep_the_door_open_under_a_100k_syn_flood() {
    let h = TwoHosts::new(36, |_| {}).with_ip();
    let l = listener(&h, 128);
    syn_flood(&h, 100_000);
    let m = |x| h.b.tcp.mib.get(x);
    // Beyond the backlog every SYN is answered statelessly.
    assert!(
        m(TcpExt::SyncookiesSent) >= 100_000 - 128,
        "{}",
        m(TcpExt::SyncookiesSent)
    );
    assert_eq!(m(TcpExt::TCPReqQFullDrop), 0);
    // A legitimate client connects through the flood (its ACK carries a valid cookie)
    // and its data arrives.
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
    let s = accept_for(&h, &l, &c, || true);
    assert_eq!(c.state(), TcpState::Established);
    assert!(m(TcpExt::SyncookiesRecv) >= 1);
    s.set_nonblocking(true);
    c.send(b"hello through the flood").unwrap();
    h.sim.run_for(Duration::from_millis(20));
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello through the flood");
}
