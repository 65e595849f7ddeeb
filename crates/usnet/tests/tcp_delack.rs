//! Delayed ACKs in request/response traffic, as Linux decides them: data sent within
//! the ATO of received data (every skb of a reply) counts toward interactive
//! ("pingpong") mode (`tcp_event_data_sent` → `inet_csk_inc_pingpong_cnt`); at
//! `net.ipv4.tcp_pingpong_thresh` the receiver stops acknowledging requests at once
//! (quick ACKs and the read-side ACK of `tcp_cleanup_rbuf` are off) and its ACK rides
//! on the reply; a delayed ACK that fires leaves the mode. And the other way: a
//! segment that opens the receive window is acknowledged at once
//! (`tcp_grow_window` → `icsk_ack.quick |= 1`).

mod common;

use std::time::Duration;

use common::{Conn, D, RTT};
use usnet::tcp::TcpExt;
use usnet::testutil::SegRecord;

/// `n` one-byte requests from the client, each answered by one byte from the server
/// as soon as it is read; the client waits for each reply (pause `think` before each
/// reply). Returns the segments host b sent during the exchange.
fn exchange(k: &Conn, n: usize, think: Duration) -> Vec<SegRecord> {
    k.log.clear();
    let mut b = [0u8; 1];
    for i in 0..n {
        k.c.send(&[i as u8]).unwrap();
        assert!(
            k.h.sim.run_while(|| k.s.recv(&mut b).is_err(), 4 * RTT),
            "request {i} did not arrive"
        );
        assert_eq!(b[0], i as u8);
        if !think.is_zero() {
            k.h.sim.run_for(think);
        }
        k.s.send(&b).unwrap();
        assert!(
            k.h.sim.run_while(|| k.c.recv(&mut b).is_err(), 4 * RTT),
            "reply {i} did not arrive"
        );
    }
    // Settle any ACK still owed.
    k.h.sim.run_for(Duration::from_millis(300));
    // Host a's log sees what b sent as incoming segments.
    k.log.all().into_iter().filter(|s| !s.outgoing).collect()
}

fn pure_acks(segs: &[SegRecord]) -> usize {
    segs.iter().filter(|s| s.len == 0).count()
}

#[test]
fn request_response_acks_ride_on_the_replies() {
    let k = Conn::new(1, |_| {});
    let from_b = exchange(&k, 40, Duration::ZERO);
    let replies = from_b.iter().filter(|s| s.len == 1).count();
    assert_eq!(replies, 40);
    // Only the first request is acknowledged on its own (quick-ACK mode, before any
    // reply made the connection interactive); every later ACK rides on a reply.
    assert_eq!(
        pure_acks(&from_b),
        1,
        "b sent pure ACKs beside its replies: {from_b:?}"
    );
    // The client too: its ACKs of the replies ride on the next request (only the
    // last reply, with no request after it, gets a delayed ACK of its own).
    let from_a: Vec<_> = k.log.out();
    assert_eq!(from_a.iter().filter(|s| s.len == 1).count(), 40);
    assert!(
        pure_acks(&from_a) <= 2,
        "a sent {} pure ACKs: {from_a:?}",
        pure_acks(&from_a)
    );
}

#[test]
fn pingpong_threshold_counts_replies_before_acks_are_delayed() {
    let k = Conn::new(2, |h| {
        h.b.sysctl.set("net.ipv4.tcp_pingpong_thresh", 3).unwrap();
    });
    let from_b = exchange(&k, 40, Duration::ZERO);
    // Three replies before the mode starts: the first three requests are each
    // acknowledged at once.
    assert_eq!(pure_acks(&from_b), 3, "{from_b:?}");
}

/// The count is of data segments sent within the ATO, not of replies: current Linux
/// increments it in `tcp_event_data_sent` for every skb transmitted (the jiffy-based
/// "first reply since the data" condition was reverted, 4d8f24eeedc5). With a
/// threshold of 3 and replies written in two pieces (`TCP_NODELAY`: two skbs), the
/// mode starts after the second reply.
#[test]
fn pingpong_counts_every_data_segment_sent_within_the_ato() {
    use usnet::tcp::SockOpt;
    let k = Conn::new(5, |h| {
        h.b.sysctl.set("net.ipv4.tcp_pingpong_thresh", 3).unwrap();
    });
    k.s.set_opt(SockOpt::NoDelay(true)).unwrap();
    k.log.clear();
    let (mut b, mut got) = ([0u8; 64], 0);
    for i in 0..6u8 {
        k.c.send(&[i]).unwrap();
        assert!(k.h.sim.run_while(|| k.s.recv(&mut b).is_err(), 4 * RTT));
        k.s.send(&[i; 10]).unwrap();
        k.s.send(&[i; 10]).unwrap();
        let want = got + 20;
        k.h.sim.run_while(
            || {
                while let Ok(n) = k.c.recv(&mut b) {
                    got += n;
                }
                got < want
            },
            4 * RTT,
        );
        assert_eq!(got, want, "reply {i}");
    }
    k.h.sim.run_for(Duration::from_millis(300));
    let from_b: Vec<_> = k.log.all().into_iter().filter(|s| !s.outgoing).collect();
    let data = from_b.iter().filter(|s| s.len > 0).count();
    assert_eq!(data, 12, "each reply in two segments: {from_b:?}");
    assert_eq!(pure_acks(&from_b), 2, "{from_b:?}");
}

#[test]
fn a_delayed_ack_that_fires_leaves_interactive_mode() {
    let k = Conn::new(3, |_| {});
    exchange(&k, 10, Duration::ZERO);
    let fired = k.h.b.tcp.mib.get(TcpExt::DelayedACKs);
    // The server now thinks longer than the delayed-ACK timeout before replying: the
    // ACK cannot wait for the reply, and the timer sends it.
    let from_b = exchange(&k, 1, Duration::from_millis(250));
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::DelayedACKs), fired + 1);
    assert_eq!(pure_acks(&from_b), 1, "{from_b:?}");
    // Having left the mode, the next request is acknowledged when read (the
    // pushed one-byte segment; `tcp_cleanup_rbuf`) and the reply re-enters it.
    let from_b = exchange(&k, 3, Duration::ZERO);
    assert_eq!(pure_acks(&from_b), 1, "{from_b:?}");
}

/// While the receive window is opening, `tcp_grow_window` asks for a quick ACK for the
/// segment that opened it (`icsk_ack.quick |= 1`), so the sender hears of the larger
/// window at once: well past the connection's initial quick ACKs (at most 16), a bulk
/// flow's segments are still acknowledged one by one while the window grows, and two
/// at a time once it has stopped growing.
#[test]
fn a_growing_window_is_acknowledged_segment_by_segment() {
    use usnet::tcp::SockOpt;
    // Segments arrive spaced by a 1 Gbit/s line, so the reader takes each in as it
    // comes (a reader that leaves a whole window unread holds the ACKs, see below).
    let k = Conn::with_nic(
        4,
        |c| c.line_rate_bps = 1_000_000_000,
        |h| {
            h.b.sysctl
                .set("net.ipv4.tcp_rmem_default", 4 << 20)
                .unwrap();
            // One ACK decision per segment (GRO would merge a burst into one skb).
            h.db.set_features(h.db.features() - usnet::dev::Features::GRO);
        },
    );
    k.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    k.s.set_opt(SockOpt::RcvBuf(8 << 20)).unwrap();
    k.log.clear();
    let data = vec![7u8; 1 << 20];
    let mut sent = 0;
    k.h.sim.run_while(
        || {
            common::lifecycle::push(&k.c, &data, &mut sent);
            k.drain();
            true
        },
        5 * RTT,
    );
    let mss = k.c.info().snd_mss;
    let acks: Vec<u32> = k
        .log
        .all()
        .iter()
        .filter(|s| !s.outgoing && s.len == 0)
        .map(|s| s.ack)
        .collect();
    let steps: Vec<u32> = acks
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]) / mss)
        .collect();
    assert!(steps.len() > 60, "{steps:?}");
    assert!(
        steps[16..40].iter().all(|&s| s == 1),
        "one ACK per segment while the window grows: {steps:?}"
    );
    assert!(
        steps[40..].contains(&2),
        "two segments per ACK once it stops: {steps:?}"
    );
    assert!(k.h.b.tcp.mib.get(TcpExt::DelayedACKs) <= 2);
}

/// A bulk transfer into a 64 KiB receive buffer that nobody reads (GRO off: one ACK
/// decision per segment), with `SO_RCVLOWAT` if given: the connection, and the data
/// segments a sent and the pure ACKs it got.
fn unread_bulk(rcvlowat: Option<u32>) -> (Conn, usize, usize) {
    use usnet::tcp::SockOpt;
    let k = Conn::new(5, |h| {
        h.db.set_features(h.db.features() - usnet::dev::Features::GRO);
    });
    k.s.set_opt(SockOpt::RcvBuf(64 << 10)).unwrap();
    if let Some(v) = rcvlowat {
        k.s.set_opt(SockOpt::RcvLowat(v)).unwrap();
    }
    k.log.clear();
    let data = vec![3u8; 256 << 10];
    let mut sent = 0;
    k.h.sim.run_while(
        || {
            common::lifecycle::push(&k.c, &data, &mut sent);
            true
        },
        20 * RTT,
    );
    let log = k.log.all();
    let data_segs = log.iter().filter(|s| s.outgoing && s.len > 0).count();
    let acks = log.iter().filter(|s| !s.outgoing && s.len == 0).count();
    (k, data_segs, acks)
}

/// A receiver whose reader has fallen behind does not acknowledge every second
/// segment: `__tcp_ack_snd_check` sends at once only if the window's right edge
/// would move on (`__tcp_select_window >= rcv_wnd`); while unread data fills the
/// buffer the ACK waits — for the delayed-ACK timer, or for the reader, whose
/// `tcp_cleanup_rbuf` sends it with the window it freed.
#[test]
fn a_receiver_behind_its_reader_holds_acks_until_the_reader_frees_space() {
    let (k, data_segs, acks) = unread_bulk(None);
    let unread = k.s.info().bytes_received;
    assert!(
        unread > 16 << 10,
        "the buffer filled: {unread} bytes unread"
    );
    assert!(
        acks * 3 < data_segs,
        "{acks} ACKs for {data_segs} segments with nobody reading"
    );
    // The reader catches up: its read sends the ACK with the window it freed.
    k.log.clear();
    assert!(k.drain() > 0);
    let now = k.h.sim.now();
    k.h.sim.run_for(D);
    let upd = k.log.all();
    let first = upd.iter().find(|s| !s.outgoing && s.len == 0);
    assert!(
        first.is_some_and(|s| s.at.saturating_duration_since(now) <= D),
        "an ACK left with the read: {upd:?}"
    );
}

/// `SO_RCVLOWAT`: the socket reads as readable (and a reader is woken) only once that
/// many bytes wait; a non-blocking read still takes what is there; the buffer grows to
/// hold the mark (`tcp_set_rcvlowat`); and a receiver short of the mark acknowledges
/// two full segments at once even with the reader behind, so the sender sends the rest.
#[test]
fn rcvlowat_holds_readability_until_enough_has_arrived() {
    use usnet::tcp::SockOpt;
    let k = Conn::new(6, |h| {
        h.db.set_features(h.db.features() - usnet::dev::Features::GRO);
    });
    let rcvbuf0 = k.s.info().rcvbuf;
    k.s.set_opt(SockOpt::RcvLowat(1 << 20)).unwrap();
    let info = k.s.info();
    assert!(
        info.rcvbuf >= 2 << 20 && info.rcvbuf > rcvbuf0,
        "{}",
        info.rcvbuf
    );
    k.s.set_opt(SockOpt::RcvLowat(3000)).unwrap();
    assert_eq!(k.s.with_tcb(|t| t.rcvlowat), 3000);
    let woken = k.s.wq.seq();
    k.c.send(&[1u8; 1000]).unwrap();
    k.h.sim.run_for(RTT);
    assert!(!k.s.readable(), "1000 of 3000 bytes: not readable");
    assert_eq!(k.s.wq.seq(), woken, "and no reader woken (tcp_data_ready)");
    k.c.send(&[2u8; 2500]).unwrap();
    k.h.sim.run_for(RTT);
    assert!(k.s.readable(), "3500 bytes: readable");
    assert_ne!(k.s.wq.seq(), woken, "the reader is woken");
    let mut buf = [0u8; 8192];
    assert_eq!(k.s.recv(&mut buf).unwrap(), 3500);
    // Non-blocking reads take what is there, short of the mark.
    k.c.send(&[3u8; 100]).unwrap();
    k.h.sim.run_for(RTT);
    assert!(!k.s.readable());
    assert_eq!(k.s.recv(&mut buf).unwrap(), 100);

    // With a mark above what the window holds unread, ACKs are not held for the
    // reader (compare a_receiver_behind_its_reader_holds_acks_until_the_reader_frees_space).
    let (_, data_segs, acks) = unread_bulk(Some(32 << 10));
    assert!(
        acks * 3 >= data_segs,
        "{acks} ACKs for {data_segs} segments short of the mark"
    );
}
