//! Reassembly tests: every arrival order, duplicates, overlaps (the queue dies), timeouts
//! with and without the first fragment, and the memory bounds.

use super::*;
use proptest::prelude::*;
use std::time::Duration;
use usnet_wire::checksum;

const SRC: [u8; 4] = [10, 0, 0, 1];
const DST: [u8; 4] = [10, 0, 0, 2];

/// The datagram's payload byte at `i` (distinct across offsets, so misplacement shows).
fn byte(i: usize) -> u8 {
    (i * 7 + i / 251) as u8
}

/// One fragment of datagram `id`: payload bytes [off, off+len) of a `total`-byte payload.
fn frag(id: u16, off: usize, len: usize, more: bool) -> Skb {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    let fo = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
    h[6..8].copy_from_slice(&fo.to_be_bytes());
    h[8] = 64;
    h[9] = 17;
    h[12..16].copy_from_slice(&SRC);
    h[16..20].copy_from_slice(&DST);
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut skb = Skb::alloc(20 + len, 64);
    skb.put_slice(&h);
    let payload: Vec<u8> = (off..off + len).map(byte).collect();
    skb.put_slice(&payload);
    skb
}

/// Cut a `total`-byte payload into fragments of `step` bytes (a multiple of 8).
fn cut(id: u16, total: usize, step: usize) -> Vec<Skb> {
    let mut v = Vec::new();
    let mut off = 0;
    while off < total {
        let n = step.min(total - off);
        v.push(frag(id, off, n, off + n < total));
        off += n;
    }
    v
}

fn check_datagram(skb: &Skb, total: usize) {
    let d = skb.to_vec();
    assert_eq!(d.len(), 20 + total);
    assert_eq!(u16::from_be_bytes([d[2], d[3]]) as usize, 20 + total);
    assert_eq!(
        u16::from_be_bytes([d[6], d[7]]) & 0x3fff,
        0,
        "MF and offset cleared"
    );
    assert_eq!(
        checksum::checksum(&d[..20]),
        0,
        "header checksum recomputed"
    );
    for (i, b) in d[20..].iter().enumerate() {
        assert_eq!(*b, byte(i), "payload byte {i}");
    }
}

fn feed(f: &IpFrags, frags: Vec<Skb>, now: Instant) -> Option<Skb> {
    let mut out = None;
    for s in frags {
        match f.ip_defrag(s, now) {
            DefragResult::Complete(skb) => {
                assert!(out.is_none(), "completed twice");
                out = Some(skb);
            }
            DefragResult::Queued => {}
            DefragResult::Dropped(r) => panic!("unexpected drop {r:?}"),
        }
    }
    out
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn every_order_of_four_fragments_reassembles() {
    let perms = permutations(4);
    assert_eq!(perms.len(), 24);
    for (k, p) in perms.iter().enumerate() {
        let f = IpFrags::new(FragConfig::default());
        let mut frags: Vec<Option<Skb>> = cut(k as u16, 1000, 256).into_iter().map(Some).collect();
        let order: Vec<Skb> = p.iter().map(|&i| frags[i].take().unwrap()).collect();
        let skb = feed(&f, order, Instant::ZERO).expect("complete");
        check_datagram(&skb, 1000);
        assert_eq!(f.mem(), 0, "memory released after reassembly");
        assert_eq!(f.queues(), 0);
        let s = f.stats();
        assert_eq!((s.reasm_reqds, s.reasm_oks, s.reasm_fails), (4, 1, 0));
    }
}

#[test]
fn eight_kib_shuffled_with_duplicates() {
    let f = IpFrags::new(FragConfig::default());
    let mut frags = cut(7, 8192, 1480);
    // Duplicate two fragments and reverse the order (last first).
    let d1 = frag(7, 1480, 1480, true);
    let d2 = frag(7, 0, 1480, true);
    frags.reverse();
    frags.insert(2, d1);
    let mut done = None;
    let mut dups = 0;
    for s in frags.into_iter().chain(std::iter::once(d2)) {
        match f.ip_defrag(s, Instant::ZERO) {
            DefragResult::Complete(skb) => done = Some(skb),
            DefragResult::Queued => {}
            DefragResult::Dropped(DropReason::Duplicate) => dups += 1,
            DefragResult::Dropped(r) => panic!("{r:?}"),
        }
    }
    check_datagram(&done.expect("complete"), 8192);
    // d2 arrived after completion: it starts a new queue (as in Linux).
    assert_eq!(dups, 1);
    assert_eq!(f.queues(), 1);
}

#[test]
fn overlap_kills_the_queue() {
    let f = IpFrags::new(FragConfig::default());
    assert!(matches!(
        f.ip_defrag(frag(1, 0, 800, true), Instant::ZERO),
        DefragResult::Queued
    ));
    assert!(f.mem() > 0);
    // Overlaps bytes 400..800 of the first.
    let r = f.ip_defrag(frag(1, 400, 800, true), Instant::ZERO);
    assert!(matches!(r, DefragResult::Dropped(DropReason::Overlap)));
    assert_eq!(f.queues(), 0);
    assert_eq!(f.mem(), 0);
    let s = f.stats();
    assert_eq!(s.reasm_overlaps, 1);
    assert_eq!(s.reasm_fails, 1);
    // The rest of the original datagram can no longer complete it.
    assert!(matches!(
        f.ip_defrag(frag(1, 800, 200, false), Instant::ZERO),
        DefragResult::Queued
    ));
    assert_eq!(f.queues(), 1);
}

#[test]
fn inconsistent_ends_are_malformed() {
    let f = IpFrags::new(FragConfig::default());
    assert!(matches!(
        f.ip_defrag(frag(2, 800, 200, false), Instant::ZERO),
        DefragResult::Queued
    ));
    // Another "last" fragment with a different end.
    let r = f.ip_defrag(frag(2, 800, 400, false), Instant::ZERO);
    assert!(matches!(r, DefragResult::Dropped(DropReason::Malformed)));
    assert_eq!(f.queues(), 0);
    // Data past a known end.
    assert!(matches!(
        f.ip_defrag(frag(3, 800, 200, false), Instant::ZERO),
        DefragResult::Queued
    ));
    let r = f.ip_defrag(frag(3, 1000, 80, true), Instant::ZERO);
    assert!(matches!(r, DefragResult::Dropped(DropReason::Malformed)));
}

#[test]
fn beyond_65535_is_too_big() {
    let f = IpFrags::new(FragConfig::default());
    let r = f.ip_defrag(frag(4, 65528, 100, false), Instant::ZERO);
    assert!(matches!(r, DefragResult::Dropped(DropReason::TooBig)));
    assert_eq!(f.queues(), 0);
}

#[test]
fn timeout_returns_first_fragment_only_when_it_arrived() {
    let f = IpFrags::new(FragConfig::default());
    let t0 = Instant::from_millis(1000);
    assert!(matches!(
        f.ip_defrag(frag(5, 0, 800, true), t0),
        DefragResult::Queued
    ));
    assert!(matches!(
        f.ip_defrag(frag(6, 800, 800, true), t0),
        DefragResult::Queued
    ));
    assert_eq!(f.next_expiry(), Some(t0 + Duration::from_secs(30)));
    // Not yet.
    assert!(f.expire(t0 + Duration::from_millis(29_999)).is_empty());
    let gone = f.expire(t0 + Duration::from_secs(30));
    assert_eq!(gone.len(), 2);
    let with_first = gone.iter().filter(|q| q.first_fragment.is_some()).count();
    assert_eq!(
        with_first, 1,
        "ICMP time exceeded only for the queue holding offset 0"
    );
    let first = gone.iter().find_map(|q| q.first_fragment.as_ref()).unwrap();
    assert_eq!(u16::from_be_bytes([first.data()[4], first.data()[5]]), 5);
    assert_eq!(f.mem(), 0);
    assert_eq!(f.next_expiry(), None);
    let s = f.stats();
    assert_eq!((s.reasm_timeout, s.reasm_fails), (2, 2));
}

#[test]
fn memory_over_high_threshold_evicts_oldest_to_low() {
    let cfg = FragConfig {
        high_thresh: 64 * 1024,
        low_thresh: 48 * 1024,
        ..FragConfig::default()
    };
    let f = IpFrags::new(cfg);
    let mut id = 0u16;
    // Fill with incomplete datagrams until the next one is refused or evicts.
    while f.mem() <= cfg.high_thresh {
        id += 1;
        let r = f.ip_defrag(frag(id, 0, 1480, true), Instant::from_millis(u64::from(id)));
        assert!(matches!(r, DefragResult::Queued));
    }
    let queues_before = f.queues();
    let peak = f.mem();
    assert!(peak > cfg.high_thresh);
    // The next fragment triggers eviction of the oldest queues down to low_thresh.
    id += 1;
    let r = f.ip_defrag(frag(id, 0, 1480, true), Instant::from_millis(u64::from(id)));
    assert!(matches!(r, DefragResult::Queued), "{r:?}");
    assert!(
        f.mem() <= cfg.low_thresh + 4096,
        "mem {} after eviction",
        f.mem()
    );
    assert!(f.queues() < queues_before);
    // The oldest queue (id 1) was evicted: its last fragment now starts a new queue
    // instead of completing.
    let r = f.ip_defrag(frag(1, 1480, 8, false), Instant::from_millis(9999));
    assert!(matches!(r, DefragResult::Queued));
    // The newest survived: completing it works.
    let r = f.ip_defrag(frag(id, 1480, 8, false), Instant::from_millis(9999));
    assert!(matches!(r, DefragResult::Complete(_)));
    assert!(f.stats().reasm_fails > 0);
}

#[test]
fn stale_queue_restarts_after_max_dist() {
    let f = IpFrags::new(FragConfig {
        max_dist: 4,
        ..FragConfig::default()
    });
    assert!(matches!(
        f.ip_defrag(frag(9, 0, 800, true), Instant::ZERO),
        DefragResult::Queued
    ));
    // Five fragments of other datagrams from the same source.
    for id in 100..105 {
        let _ = f.ip_defrag(frag(id, 0, 8, true), Instant::ZERO);
    }
    // The tail of datagram 9 now finds its queue stale: restarted, so incomplete.
    let r = f.ip_defrag(frag(9, 800, 200, false), Instant::ZERO);
    assert!(matches!(r, DefragResult::Queued));
}

#[test]
fn truncated_header_is_malformed() {
    let f = IpFrags::new(FragConfig::default());
    let r = f.ip_defrag(Skb::from_slice(&[0x45, 0, 0], 0), Instant::ZERO);
    assert!(matches!(r, DefragResult::Dropped(DropReason::Malformed)));
}

proptest! {
    /// Arbitrary fragments never panic, memory stays bounded, and expiry frees it all.
    #[test]
    fn arbitrary_fragments_are_bounded(
        frags in proptest::collection::vec((0u16..4, 0usize..9000, 0usize..1600, any::<bool>()), 0..200),
    ) {
        let cfg = FragConfig { high_thresh: 32 * 1024, low_thresh: 24 * 1024, ..FragConfig::default() };
        let f = IpFrags::new(cfg);
        for (id, off, len, more) in frags {
            let _ = f.ip_defrag(frag(id, off & !7, len, more), Instant::ZERO);
            prop_assert!(f.mem() <= cfg.high_thresh + 8 * 1024);
        }
        f.expire(Instant::ZERO + Duration::from_secs(31));
        prop_assert_eq!(f.mem(), 0);
        prop_assert_eq!(f.queues(), 0);
    }
}
