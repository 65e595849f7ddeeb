//! Seeded hashing for the stack's lookup tables (the established and listening hashes,
//! the neighbour table, the route cache, reassembly queues, the wire's forwarding
//! table): the role of Linux's `jhash` with a random boot-time secret
//! (`inet_ehashfn` keys with `net_secret`). Keys come from the wire, so every table
//! gets its own random seed: a sender cannot line up collisions without knowing it.
//! Each word of a key costs one 64×64→128-bit multiply folded to 64 bits, a few
//! instructions where the standard library's SipHash-1-3 spends over a hundred on a
//! four-tuple (which showed in every packet's profile).
//!
//! ```
//! use std::hash::{BuildHasher, Hash, Hasher};
//! use usnet::hash::{HashMap, SeededState};
//! let s = SeededState::default();
//! assert_eq!(s.hash_one(("10.0.0.1", 80)), s.hash_one(("10.0.0.1", 80)));
//! assert_ne!(s.hash_one(1u32), s.hash_one(2u32));
//! let mut m: HashMap<u32, &str> = HashMap::default();
//! m.insert(7, "seven");
//! assert_eq!(m.get(&7), Some(&"seven"));
//! ```

use std::hash::{BuildHasher, Hasher};

/// A `HashMap` keyed with a per-table random seed ([`SeededState`]).
pub type HashMap<K, V> = std::collections::HashMap<K, V, SeededState>;

/// Odd constants from the fractional digits of π, to spread the seed.
const P0: u64 = 0x243f_6a88_85a3_08d3;
const P1: u64 = 0x1319_8a2e_0370_7344;

/// Multiply into 128 bits and fold the halves together: every input bit moves many
/// output bits.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`SeededHasher`]s with one random seed per table.
#[derive(Clone, Copy, Debug)]
pub struct SeededState {
    seed: u64,
    mul: u64,
}

impl Default for SeededState {
    fn default() -> Self {
        // The standard library's per-process random keys, advanced per instance.
        let r = std::collections::hash_map::RandomState::new();
        let a = r.hash_one(P0);
        let b = r.hash_one(P1);
        SeededState {
            seed: a,
            // An odd multiplier keeps the multiply invertible.
            mul: b | 1,
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = SeededHasher;
    #[inline]
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            h: self.seed,
            mul: self.mul,
        }
    }
}

/// The hasher of [`SeededState`].
#[derive(Clone, Debug)]
pub struct SeededHasher {
    h: u64,
    mul: u64,
}

impl SeededHasher {
    #[inline(always)]
    fn mix(&mut self, x: u64) {
        self.h = folded_multiply(self.h ^ x, self.mul ^ P1);
    }
}

impl Hasher for SeededHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length marks how much of the last word is the key's.
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A last round so the high bits (hashbrown's control bytes) depend on all.
        folded_multiply(self.h, P0 ^ self.mul)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn tables_get_different_seeds_and_equal_keys_equal_hashes() {
        let a = SeededState::default();
        let b = SeededState::default();
        let k = (
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
        );
        assert_eq!(a.hash_one(k), a.hash_one(k));
        assert_ne!(a.hash_one(k), b.hash_one(k), "seeds differ per table");
    }

    #[test]
    fn four_tuples_spread_over_buckets() {
        // Fixed seeds, so the check is the same every run (with a fresh random seed
        // the smallest of 1,024 buckets sits at the bound about once in a few hundred
        // runs), several of them, as tables get different ones.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..8 {
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9).rotate_left(31) ^ 0x94d0_49bb_1331_11eb;
            spread_over_buckets(SeededState {
                seed: x,
                mul: x.rotate_left(17) | 1,
            });
        }
    }

    fn spread_over_buckets(s: SeededState) {
        // 65,536 connections from one client address differing only in the source
        // port, as an ehash sees them: the low and the high 7 bits (hashbrown uses
        // both) must be close to uniform.
        let mut low = vec![0u32; 1024];
        let mut top = vec![0u32; 128];
        for port in 0..=u16::MAX {
            let k = (
                SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
                SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port),
            );
            let h = s.hash_one(k);
            low[(h & 1023) as usize] += 1;
            top[(h >> 57) as usize] += 1;
        }
        let max_low = *low.iter().max().unwrap();
        let min_low = *low.iter().min().unwrap();
        assert!(max_low < 64 * 2 && min_low > 64 / 2, "{min_low}..{max_low}");
        let max_top = *top.iter().max().unwrap();
        let min_top = *top.iter().min().unwrap();
        assert!(
            max_top < 512 * 5 / 4 && min_top > 512 * 3 / 4,
            "{min_top}..{max_top}"
        );
    }

    #[test]
    fn byte_strings_of_different_lengths_differ() {
        let s = SeededState::default();
        let h = |b: &[u8]| {
            let mut x = s.build_hasher();
            x.write(b);
            x.finish()
        };
        assert_ne!(h(&[1, 2, 3]), h(&[1, 2, 3, 0]));
        assert_ne!(h(&[]), h(&[0]));
    }
}
