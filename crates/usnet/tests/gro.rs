//! GRO in NAPI (`napi_gro_receive`, `tcp_gro_receive`, `napi_gro_flush`): in-order
//! segments of one flow that arrive in one poll reach TCP as one skb; a gap, a PSH, a
//! different TTL or the end of the poll ends the merge, and nothing is reordered or lost.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{craft_tcp, inject, Conn};
use usnet::mib::Ip;
use usnet::testutil::TwoHosts;

const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const SEG: usize = 1000;

/// A connection without TCP timestamps, so hand-made option-less segments look like the
/// peer's own.
fn conn(seed: u64) -> Conn {
    Conn::new(seed, |h: &TwoHosts| {
        for s in [&h.a, &h.b] {
            s.sysctl.set("net.ipv4.tcp_timestamps", 0).unwrap();
        }
    })
}

fn gro(k: &Conn) -> (u64, u64) {
    let m: HashMap<_, _> = k.h.db.offload_stats().into_iter().collect();
    (m["rx_gro_skbs"], m["rx_gro_packets"])
}

/// The bytes of segment `i` (each segment carries its own index, so order shows).
fn payload(i: usize) -> Vec<u8> {
    (0..SEG).map(|j| (i * 7 + j) as u8).collect()
}

/// Put segments `idx` (with `flags` and TTL 64, or the TTL in `ttl`) on the wire to b in
/// one burst, so that b's NAPI polls them together.
fn burst(k: &Conn, idx: &[(usize, u8, u8)]) {
    burst_in_pieces(k, idx, 1);
}

/// As [`burst`], with each frame's payload carried in `pieces` page fragments (as
/// frames DMA'd into several buffers arrive).
fn burst_in_pieces(k: &Conn, idx: &[(usize, u8, u8)], pieces: usize) {
    let (rcv_nxt, snd_nxt) = k.s.with_tcb(|t| (t.rcv_nxt, t.snd_nxt));
    let base = rcv_nxt.wrapping_sub(k.s.with_tcb(|t| t.stats.bytes_received as u32));
    let frames: Vec<_> = idx
        .iter()
        .map(|&(i, flags, ttl)| {
            let seq = base.wrapping_add((i * SEG) as u32);
            let mut f = craft_tcp(
                k.c.local_addr(),
                k.s.local_addr(),
                seq,
                snd_nxt,
                flags,
                60000,
                &payload(i),
                false,
            );
            if ttl != 64 {
                let d = f.data_mut();
                d[14 + 8] = ttl;
                d[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
                let c = usnet_wire::checksum::checksum(&d[14..34]);
                d[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
            }
            if pieces > 1 {
                f = in_pieces(&f, 14 + 20 + 20, pieces);
            }
            f
        })
        .collect();
    for f in frames {
        inject(&k.h, f, false);
    }
    k.h.sim.run_for(Duration::from_millis(20));
}

/// IP datagrams b received since `mark` (from [`ip_mark`]), leaving out what host a
/// itself sent (its ACKs to b's ACKs of data it never sent): what the burst became.
fn ip_datagrams_since(k: &Conn, mark: (u64, u64)) -> u64 {
    let (in0, out0) = mark;
    let from_a = k.h.a.ipv4.mib.get(Ip::OutRequests) - out0;
    k.h.b.ipv4.mib.get(Ip::InReceives) - in0 - from_a
}

fn ip_mark(k: &Conn) -> (u64, u64) {
    (
        k.h.b.ipv4.mib.get(Ip::InReceives),
        k.h.a.ipv4.mib.get(Ip::OutRequests),
    )
}

/// The same frame with its first `head` bytes linear and the rest in `pieces` fragments.
fn in_pieces(f: &usnet::skb::Skb, head: usize, pieces: usize) -> usnet::skb::Skb {
    let d = f.data();
    let mut out = usnet::skb::Skb::from_slice(&d[..head], 64);
    let body = bytes::Bytes::copy_from_slice(&d[head..]);
    let step = body.len().div_ceil(pieces);
    for i in (0..body.len()).step_by(step) {
        out.push_frag(body.slice(i..(i + step).min(body.len())))
            .expect("room for the fragments");
    }
    out
}

fn expect(idx: std::ops::Range<usize>) -> Vec<u8> {
    idx.flat_map(payload).collect()
}

#[test]
fn in_order_segments_of_one_poll_reach_tcp_as_one_skb() {
    let k = conn(1);
    let (skbs0, pkts0) = gro(&k);
    let mark = ip_mark(&k);
    burst(
        &k,
        &[(0, ACK, 64), (1, ACK, 64), (2, ACK, 64), (3, ACK, 64)],
    );
    let (skbs, pkts) = gro(&k);
    assert_eq!(
        (skbs - skbs0, pkts - pkts0),
        (1, 4),
        "one skb of four segments"
    );
    // IP saw one datagram: the merged header's length and checksum were right.
    assert_eq!(ip_datagrams_since(&k, mark), 1);
    assert_eq!(k.read_all(), expect(0..4));
    // tcp_measure_rcv_mss saw the segment size, not the merged length.
    assert_eq!(k.s.with_tcb(|t| t.ack.rcv_mss), SEG as u32);
}

#[test]
fn a_gap_flushes_the_held_skb_and_order_is_kept() {
    let k = conn(2);
    let (skbs0, pkts0) = gro(&k);
    // 0 1 | 3 4: two merged skbs; 3-4 wait out of order for 2.
    burst(
        &k,
        &[(0, ACK, 64), (1, ACK, 64), (3, ACK, 64), (4, ACK, 64)],
    );
    let (skbs, pkts) = gro(&k);
    assert_eq!((skbs - skbs0, pkts - pkts0), (2, 4));
    assert_eq!(k.read_all(), expect(0..2));
    burst(&k, &[(2, ACK, 64)]);
    assert_eq!(k.read_all(), expect(2..5));
}

#[test]
fn psh_ends_the_merge_and_the_rest_flushes_at_the_end_of_the_poll() {
    let k = conn(3);
    let (skbs0, pkts0) = gro(&k);
    let mark = ip_mark(&k);
    burst(
        &k,
        &[(0, ACK, 64), (1, ACK | PSH, 64), (2, ACK, 64), (3, ACK, 64)],
    );
    let (skbs, pkts) = gro(&k);
    // 0+1 delivered at the PSH, 2+3 held until napi_complete_done flushed them.
    assert_eq!((skbs - skbs0, pkts - pkts0), (2, 4));
    assert_eq!(ip_datagrams_since(&k, mark), 2);
    assert_eq!(k.read_all(), expect(0..4));
}

/// Segments whose payloads come in three fragments each: a merged skb runs out of
/// fragment slots (MAX_SKB_FRAGS) after five, and the next segment starts a new one
/// instead of losing its payload.
#[test]
fn a_merge_that_runs_out_of_fragment_slots_flushes_and_loses_nothing() {
    let k = conn(8);
    let (skbs0, pkts0) = gro(&k);
    let segs: Vec<(usize, u8, u8)> = (0..20).map(|i| (i, ACK, 64)).collect();
    burst_in_pieces(&k, &segs, 3);
    let got = k.read_all();
    assert!(
        got == expect(0..20),
        "{} of 20000 bytes, or out of order",
        got.len()
    );
    assert_eq!(k.h.b.tcp.mib.get(usnet::tcp::TcpExt::TCPOFOQueue), 0);
    let (skbs, pkts) = gro(&k);
    assert_eq!(pkts - pkts0, 20);
    assert!(skbs - skbs0 >= 4, "{} merged skbs", skbs - skbs0);
}

#[test]
fn a_fin_joins_the_merge_and_ends_it() {
    let k = conn(6);
    let (skbs0, pkts0) = gro(&k);
    let mark = ip_mark(&k);
    burst(&k, &[(0, ACK, 64), (1, ACK, 64), (2, ACK | FIN, 64)]);
    assert_eq!(gro(&k).0 - skbs0, 1);
    assert_eq!(gro(&k).1 - pkts0, 3);
    assert_eq!(ip_datagrams_since(&k, mark), 1);
    assert_eq!(k.s.state(), usnet::tcp::TcpState::CloseWait);
    assert_eq!(k.read_all(), expect(0..3));
}

#[test]
fn segments_whose_ip_headers_differ_are_not_merged() {
    let k = conn(4);
    let (skbs0, _) = gro(&k);
    let mark = ip_mark(&k);
    // Same flow, in order, but the TTL changes (inet_gro_receive flushes on TTL/TOS).
    burst(&k, &[(0, ACK, 64), (1, ACK, 63)]);
    assert_eq!(gro(&k).0 - skbs0, 0);
    assert_eq!(ip_datagrams_since(&k, mark), 2);
    assert_eq!(k.read_all(), expect(0..2));
}

#[test]
fn a_bulk_transfer_is_merged_and_arrives_intact() {
    // RX rings deep enough for a line-rate burst of the autotuned window (`ethtool -G
    // rx 4096`): with the default 256 the NIC drops part of it (rx_no_buffer_count),
    // and this test is about what GRO does with what arrives.
    let k = Conn::with_nic(
        5,
        |c| {
            c.rx_ring = 4096;
            // Frames one by one: the NIC's own coalescing would leave GRO nothing to do.
            c.features = c.features - usnet::dev::Features::GRO_HW;
        },
        |h: &TwoHosts| {
            for n in [0, 1] {
                h.wire.set_netem(n, usnet::link::Netem::default());
            }
        },
    );
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 1 << 16];
    k.h.sim.run_while(
        || {
            if sent < data.len() {
                if let Ok(n) = k.c.send(&data[sent..]) {
                    sent += n;
                }
            }
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got.len() < data.len()
        },
        Duration::from_secs(30),
    );
    assert!(
        got == data,
        "{} of {} bytes, intact: no",
        got.len(),
        data.len()
    );
    // Nothing lost on a clean wire: no hole at the receiver, nothing resent (a merge
    // that ran out of fragment slots once dropped payload silently).
    assert_eq!(k.h.b.tcp.mib.get(usnet::tcp::TcpExt::TCPOFOQueue), 0);
    assert_eq!(k.c.info().total_retrans, 0);
    let (skbs, pkts) = gro(&k);
    let rx: HashMap<_, _> = k.h.db.link_stats().into_iter().collect();
    assert!(
        skbs > 0 && pkts >= 4 * skbs,
        "{pkts} segments in {skbs} skbs"
    );
    assert!(
        k.h.b.ipv4.mib.get(Ip::InReceives) * 2 < rx["rx_packets"],
        "IP saw fewer datagrams than the NIC received frames"
    );
}

#[test]
fn ethtool_gro_off_passes_every_segment_up_alone() {
    let k = conn(7);
    k.h.db
        .set_features(k.h.db.features() - usnet::dev::Features::GRO);
    let (skbs0, _) = gro(&k);
    let mark = ip_mark(&k);
    burst(&k, &[(0, ACK, 64), (1, ACK, 64), (2, ACK, 64)]);
    assert_eq!(gro(&k).0 - skbs0, 0);
    assert_eq!(ip_datagrams_since(&k, mark), 3);
    assert_eq!(k.read_all(), expect(0..3));
}
