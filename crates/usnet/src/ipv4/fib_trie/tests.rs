//! LC-trie tests: the longest-prefix rules, a differential test against a naive table,
//! and proof that the trie is level-compressed (it inflates) and shrinks back.

use super::*;
use std::collections::BTreeMap;

fn a(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

/// The obvious implementation: every stored prefix, scanned.
#[derive(Default)]
struct Naive(BTreeMap<(u32, u8), u32>);

impl Naive {
    fn lookup(&self, addr: u32) -> Option<(u32, u8, &u32)> {
        self.0
            .iter()
            .filter(|((p, l), _)| addr & mask(*l) == *p)
            .max_by_key(|((_, l), _)| *l)
            .map(|((p, l), v)| (*p, *l, v))
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn longest_prefix_wins_and_removal_falls_back() {
    let mut t = FibTrie::new();
    assert_eq!(t.lookup(a("1.2.3.4")), None);
    t.insert(0, 0, "default");
    t.insert(a("10.0.0.0"), 8, "ten");
    t.insert(a("10.1.0.0"), 16, "ten-one");
    t.insert(a("10.1.2.0"), 24, "ten-one-two");
    t.insert(a("10.1.2.3"), 32, "host");
    assert_eq!(t.len(), 5);
    assert_eq!(t.lookup(a("10.1.2.3")).map(|r| *r.2), Some("host"));
    assert_eq!(
        t.lookup(a("10.1.2.4")),
        Some((a("10.1.2.0"), 24, &"ten-one-two"))
    );
    assert_eq!(t.lookup(a("10.1.3.4")).map(|r| *r.2), Some("ten-one"));
    assert_eq!(t.lookup(a("10.2.3.4")).map(|r| *r.2), Some("ten"));
    assert_eq!(t.lookup(a("11.0.0.1")), Some((0, 0, &"default")));
    assert_eq!(t.remove(a("10.1.2.0"), 24), Some("ten-one-two"));
    assert_eq!(t.lookup(a("10.1.2.4")).map(|r| *r.2), Some("ten-one"));
    assert_eq!(t.remove(a("10.1.2.0"), 24), None);
    assert_eq!(t.remove(0, 0), Some("default"));
    assert_eq!(t.lookup(a("11.0.0.1")), None);
}

#[test]
fn shared_keys_insert_get_and_host_bits() {
    let mut t = FibTrie::new();
    // 10.0.0.0/8 and 10.0.0.0/24 share one leaf.
    assert_eq!(t.insert(a("10.0.0.0"), 8, 1), None);
    assert_eq!(t.insert(a("10.0.0.0"), 24, 2), None);
    assert_eq!(
        t.insert(a("10.9.9.9"), 8, 3),
        Some(1),
        "host bits are ignored"
    );
    assert_eq!(t.get(a("10.0.0.0"), 8), Some(&3));
    assert_eq!(t.get(a("10.0.0.0"), 16), None);
    *t.get_mut(a("10.0.0.0"), 24).unwrap() = 7;
    assert_eq!(t.lookup(a("10.0.0.5")).map(|r| *r.2), Some(7));
    assert_eq!(t.lookup(a("10.0.1.5")).map(|r| *r.2), Some(3));
    assert_eq!(t.stats().leaves, 1);
    assert_eq!(t.stats().prefixes, 2);
}

#[test]
fn lookup_filter_skips_to_a_shorter_prefix() {
    let mut t = FibTrie::new();
    t.insert(a("192.168.0.0"), 16, ("eth0", 1));
    t.insert(a("192.168.1.0"), 24, ("eth1", 2));
    let r = t.lookup_filter(a("192.168.1.9"), |v| v.0 == "eth0");
    assert_eq!(r.map(|r| (r.1, r.2 .1)), Some((16, 1)));
    assert!(t.lookup_filter(a("192.168.1.9"), |_| false).is_none());
}

#[test]
fn iter_is_sorted() {
    let mut t = FibTrie::new();
    for (p, l) in [
        ("10.0.0.0", 8),
        ("1.0.0.0", 8),
        ("10.0.0.0", 16),
        ("0.0.0.0", 0),
    ] {
        t.insert(a(p), l, ());
    }
    let v: Vec<_> = t.iter().map(|(p, l, _)| (p, l)).collect();
    assert_eq!(
        v,
        vec![
            (0, 0),
            (a("1.0.0.0"), 8),
            (a("10.0.0.0"), 8),
            (a("10.0.0.0"), 16)
        ]
    );
}

#[test]
fn differential_against_a_naive_table() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut t = FibTrie::new();
    let mut n = Naive::default();
    let mut keys: Vec<(u32, u8)> = Vec::new();
    for i in 0..30_000u32 {
        let r = rng.next();
        let op = r % 10;
        // Addresses clustered in a few /8s so prefixes nest and collide.
        let addr = ((r >> 8) as u32 & 0x03ff_ffff) | ((r >> 40) as u32 % 4) << 26;
        let len = [0u8, 8, 12, 16, 20, 22, 24, 24, 24, 28, 30, 32][(r >> 50) as usize % 12];
        if op < 5 {
            let p = addr & mask(len);
            assert_eq!(
                t.insert(p, len, i),
                n.0.insert((p, len), i),
                "insert {p:#x}/{len}"
            );
            keys.push((p, len));
        } else if op < 7 && !keys.is_empty() {
            let (p, l) = keys.swap_remove((r >> 20) as usize % keys.len());
            assert_eq!(t.remove(p, l), n.0.remove(&(p, l)), "remove {p:#x}/{l}");
        } else {
            assert_eq!(t.lookup(addr), n.lookup(addr), "lookup {addr:#x}");
            assert_eq!(
                t.lookup_filter(addr, |_| true),
                n.lookup(addr),
                "lookup_filter {addr:#x}"
            );
        }
        assert_eq!(t.len(), n.0.len());
        if i % 1000 == 0 {
            t.check_slots();
        }
    }
    t.check_slots();
    // The interleaved lookups agree with single ones (and the naive table).
    let probes: Vec<u32> = (0..5_000)
        .map(|_| {
            let r = rng.next();
            ((r >> 8) as u32 & 0x03ff_ffff) | ((r >> 40) as u32 % 4) << 26
        })
        .collect();
    let mut many = vec![None; probes.len()];
    t.lookup_many(&probes, &mut many);
    for (addr, got) in probes.iter().zip(&many) {
        assert_eq!(*got, n.lookup(*addr), "lookup_many {addr:#x}");
    }
    // Every stored prefix is found, and iteration agrees.
    let all: Vec<_> = t.iter().map(|(p, l, v)| ((p, l), *v)).collect();
    let want: Vec<_> = n.0.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(all, want);
    // Remove everything: the trie returns to empty.
    for (p, l) in n.0.keys().copied().collect::<Vec<_>>() {
        assert!(t.remove(p, l).is_some());
    }
    assert!(t.is_empty());
    assert_eq!(t.stats().tnodes, 0);
    assert_eq!(t.lookup(a("10.0.0.1")), None);
}

/// `lookup_many` over a table where most addresses go past the top node's slot (a
/// dense cluster of host routes and /24s), so many walks are in flight at once, carry
/// over from one chunk of addresses to the next and fill the flight up: every answer
/// still matches a single lookup's.
#[test]
fn batched_lookups_with_many_deep_walks_match_single_ones() {
    let mut rng = Rng(0xdee9_0000_0001);
    let mut t = FibTrie::new();
    t.insert(a("10.0.0.0"), 8, 0);
    for i in 0..40_000u32 {
        let r = rng.next();
        let host = a("10.0.0.0") | (r as u32 & 0xffff);
        let len = if r >> 40 & 7 == 0 { 24 } else { 32 };
        t.insert(host, len, i + 1);
    }
    t.check_slots();
    let probes: Vec<u32> = (0..20_000)
        .map(|_| a("10.0.0.0") | (rng.next() as u32 & 0x1_ffff))
        .collect();
    let mut many = vec![None; probes.len()];
    t.lookup_many(&probes, &mut many);
    let mut deep = 0;
    for (addr, got) in probes.iter().zip(&many) {
        assert_eq!(*got, t.lookup(*addr), "lookup_many {addr:#x}");
        deep += usize::from(got.is_some_and(|(_, l, _)| l > 8));
    }
    assert!(
        deep > probes.len() / 4,
        "{deep} answers came from the cluster"
    );
}

#[test]
fn dense_tables_inflate_into_wide_nodes() {
    let mut rng = Rng(99);
    let mut t = FibTrie::new();
    let mut n = Naive::default();
    for i in 0..65_536u32 {
        let p = (rng.next() as u32) & mask(24);
        t.insert(p, 24, i);
        n.0.insert((p, 24), i);
    }
    let s = t.stats();
    // The root inflates at 24% used (Linux's root: 60%): 65,536 random /24s fill 39%
    // of 2^17 slots and 22% of 2^18, so usnet's root has 18 bits (Linux's, 17).
    let root_bits = s.nodes_by_bits.iter().rposition(|&c| c > 0);
    assert_eq!(root_bits, Some(18), "{s}");
    // A binary trie would be ~16 levels deep here; level compression keeps it shallow
    // with multi-bit nodes.
    assert!(s.max_depth <= 8, "{s}");
    assert!(s.nodes_by_bits.iter().skip(4).sum::<usize>() > 0, "{s}");
    // (The naive oracle scans every prefix: a few thousand probes suffice.)
    for _ in 0..2_000 {
        let addr = rng.next() as u32;
        assert_eq!(
            t.lookup(addr).map(|r| (r.0, r.1)),
            n.lookup(addr).map(|r| (r.0, r.1))
        );
    }
    let mem = t.memory_bytes() / t.len();
    assert!(mem < 200, "{mem} bytes per prefix");
    // Removing most prefixes halves nodes back down (the root once under 5% of its
    // slots are used).
    let keys: Vec<_> = n.0.keys().copied().collect();
    for (p, l) in &keys[..63_500] {
        t.remove(*p, *l);
    }
    t.check_slots();
    let after = t.stats();
    assert!(after.tnodes < s.tnodes / 4, "{after}");
    for _ in 0..5_000 {
        let addr = rng.next() as u32;
        let want = keys[63_500..].iter().any(|(p, _)| addr & mask(24) == *p);
        assert_eq!(t.lookup(addr).is_some(), want);
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_naive(ops in proptest::collection::vec((any::<u32>(), 0u8..=33, any::<bool>()), 1..300),
                         probes in proptest::collection::vec(any::<u32>(), 1..50)) {
            let mut t = FibTrie::new();
            let mut n = Naive::default();
            for (i, (addr, len, ins)) in ops.into_iter().enumerate() {
                let l = len.min(32);
                let p = addr & mask(l);
                if ins {
                    prop_assert_eq!(t.insert(addr, len, i as u32), n.0.insert((p, l), i as u32));
                } else {
                    prop_assert_eq!(t.remove(addr, len), n.0.remove(&(p, l)));
                }
            }
            t.check_slots();
            let mut many = vec![None; probes.len()];
            t.lookup_many(&probes, &mut many);
            for (addr, got) in probes.iter().zip(many) {
                prop_assert_eq!(t.lookup(*addr), n.lookup(*addr));
                prop_assert_eq!(t.lookup_filter(*addr, |_| true), n.lookup(*addr));
                prop_assert_eq!(got, n.lookup(*addr));
            }
        }
    }
}
