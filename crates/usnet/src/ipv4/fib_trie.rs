//! Longest-prefix match for the FIB tables.
//!
//! Interim implementation: an ordered map keyed by (masked prefix, length), looked up
//! from /32 down to /0 (at most 33 probes). It is correct but not Linux's structure; the
//! level-compressed trie of `fib_trie.c` replaces it behind the same API.

use std::collections::BTreeMap;

/// A longest-prefix-match table of IPv4 prefixes.
pub struct FibTrie<V> {
    map: BTreeMap<(u32, u8), V>,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl<V> Default for FibTrie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> FibTrie<V> {
    /// An empty table.
    pub fn new() -> Self {
        FibTrie {
            map: BTreeMap::new(),
        }
    }

    /// Insert `prefix/len` (host bits ignored); returns the previous value.
    pub fn insert(&mut self, prefix: u32, len: u8, v: V) -> Option<V> {
        let len = len.min(32);
        self.map.insert((prefix & mask(len), len), v)
    }

    /// Remove `prefix/len`.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Option<V> {
        let len = len.min(32);
        self.map.remove(&(prefix & mask(len), len))
    }

    /// The value stored for exactly `prefix/len`.
    pub fn get(&self, prefix: u32, len: u8) -> Option<&V> {
        let len = len.min(32);
        self.map.get(&(prefix & mask(len), len))
    }

    /// The longest prefix containing `addr`: (prefix, length, value).
    pub fn lookup(&self, addr: u32) -> Option<(u32, u8, &V)> {
        (0..=32u8).rev().find_map(|l| {
            let p = addr & mask(l);
            self.map.get(&(p, l)).map(|v| (p, l, v))
        })
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every prefix in ascending (prefix, length) order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, &V)> {
        self.map.iter().map(|((p, l), v)| (*p, *l, v))
    }
}
