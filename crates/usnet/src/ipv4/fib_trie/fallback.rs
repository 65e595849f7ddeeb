//! Keeping every slot's fallback exact: painting a new node's slots, an inserted
//! prefix over the slots it covers, and a removed prefix's slots with the next
//! shorter one (see the module docs on fallbacks).

use super::{fb_slen, fb_word, is_leaf, FibTrie, NULL, ROOT};

impl<V: Default> FibTrie<V> {
    /// The first address of slot `j` of `tn`.
    pub(super) fn slot_addr(&self, tn: u32, j: usize) -> u32 {
        let t = self.tn(tn);
        if t.pos >= 32 {
            t.key
        } else {
            t.key | (j as u32) << t.pos
        }
    }

    /// The leaf keyed exactly `target`, found from `n` down child 0.
    pub(super) fn chain_leaf(&self, mut n: u32, target: u32) -> Option<u32> {
        loop {
            if n == NULL {
                return None;
            }
            if is_leaf(n) {
                return (self.leaf(n).key == target).then_some(n);
            }
            let t = self.tn(n);
            if u64::from(target ^ t.key) >> (t.pos + t.bits) != 0 {
                return None;
            }
            n = self.child(n, 0);
        }
    }

    /// Compute the fallback of every slot of `n` (a node a resize or split just made)
    /// from the fallback of the slot `n` sits in and the prefixes in its other slots.
    pub(super) fn paint_node(&mut self, n: u32) {
        let (pos, bits) = (self.tn(n).pos, self.tn(n).bits);
        let inherited = self.node_fb(n);
        let size = 1usize << bits;
        let mut best = vec![(fb_slen(inherited), inherited); size];
        for c in 0..size {
            let ch = self.child(n, c);
            if ch == NULL || self.slen_of(ch) <= pos {
                continue;
            }
            // Prefixes reaching beyond slot `c` sit in the leaf keyed like the slot.
            let Some(z) = self.chain_leaf(ch, self.slot_addr(n, c)) else {
                continue;
            };
            for (slen, rid) in self.entries(z) {
                if slen <= pos {
                    continue;
                }
                let width = (slen - pos).min(bits);
                let lo = c & !((1usize << width) - 1);
                for (j, b) in best.iter_mut().enumerate().skip(lo).take(1 << width) {
                    if j != c && slen < b.0 {
                        *b = (slen, fb_word(slen, rid));
                    }
                }
            }
        }
        for (j, (_, fb)) in best.into_iter().enumerate() {
            self.set_slot_fb(n, j, fb);
        }
    }

    /// Visit the slots a prefix `k/(32 - s)` covers from outside their subtrees:
    /// along the path to `k`, every other slot of a node the prefix spans, and whole
    /// subtrees below those. `visit(trie, node, slot)` returns whether to go below.
    pub(super) fn for_covered_slots(
        &mut self,
        k: u32,
        s: u8,
        visit: &mut impl FnMut(&mut Self, u32, usize) -> bool,
    ) {
        let mut a = ROOT;
        loop {
            let (pos, bits) = (self.tn(a).pos, self.tn(a).bits);
            let jk = self.get_index(k, a);
            if s > pos {
                let width = (s - pos).min(bits);
                let lo = jk & !((1usize << width) - 1);
                for j in lo..lo + (1usize << width) {
                    if j != jk {
                        self.covered_subtree(a, j, visit);
                    }
                }
            }
            let c = self.child(a, jk);
            if c == NULL || is_leaf(c) {
                return;
            }
            let t = self.tn(c);
            let diff = u64::from(k ^ t.key);
            if diff >> (t.pos + t.bits) == 0 {
                a = c;
                continue;
            }
            if diff >> s == 0 {
                // `c`'s region lies inside the prefix but not around `k`.
                for j in 0..1usize << t.bits {
                    self.covered_subtree(c, j, visit);
                }
            }
            return;
        }
    }

    pub(super) fn covered_subtree(
        &mut self,
        a: u32,
        j: usize,
        visit: &mut impl FnMut(&mut Self, u32, usize) -> bool,
    ) {
        if !visit(self, a, j) {
            return;
        }
        let c = self.child(a, j);
        if c != NULL && !is_leaf(c) {
            for i in 0..1usize << self.tn(c).bits {
                self.covered_subtree(c, i, visit);
            }
        }
    }

    /// Prefix `k/(32 - s)` (route `rid`) was added: it becomes the fallback of every
    /// slot it covers from outside whose fallback was shorter.
    pub(super) fn paint_insert(&mut self, k: u32, s: u8, rid: u32) {
        let fb = fb_word(s, rid);
        self.for_covered_slots(k, s, &mut |t, a, j| {
            if fb_slen(t.slot_fb(a, j)) < s {
                // A longer prefix covers this slot, and everything below it.
                return false;
            }
            t.set_slot_fb(a, j, fb);
            true
        });
    }

    /// Prefix `k/(32 - s)` (route `rid`) was removed: the slots that fell back to it
    /// fall back to the longest prefix strictly containing it.
    pub(super) fn repair_remove(&mut self, k: u32, s: u8, rid: u32) {
        let old = fb_word(s, rid);
        let new = self
            .walk_slow(k, |slen, _| slen > s)
            .map_or(0, |(_, (slen, r))| fb_word(slen, r));
        self.for_covered_slots(k, s, &mut |t, a, j| {
            if t.slot_fb(a, j) != old {
                // A longer prefix: here and everywhere below.
                return false;
            }
            t.set_slot_fb(a, j, new);
            true
        });
    }
}
