//! Linux's `fib_table_lookup` with backtracking, for lookups with a filter and for
//! computing fallbacks (the fast path in `lookup.rs` never backtracks).

use super::{is_leaf, FibTrie, NULL, ROOT};

impl<V: Default> FibTrie<V> {
    /// The longest prefix containing `addr` whose value satisfies `f` (as
    /// `fib_table_lookup` skips aliases that do not fit the flow).
    pub fn lookup_filter(&self, key: u32, mut f: impl FnMut(&V) -> bool) -> Option<(u32, u8, &V)> {
        self.walk_slow(key, |_, r| f(&self.values[r as usize]))
            .map(|(n, (slen, r))| (self.leaf(n).key, 32 - slen, &self.values[r as usize]))
    }

    /// Linux's `fib_table_lookup` with backtracking: the longest prefix containing
    /// `key` that passes `f(slen, value)`, with its leaf.
    pub(super) fn walk_slow(
        &self,
        key: u32,
        mut f: impl FnMut(u8, u32) -> bool,
    ) -> Option<(u32, (u8, u32))> {
        enum St {
            Descend,
            Prefix,
            Backtrace,
        }
        let mut n = self.child(ROOT, 0);
        if n == NULL {
            return None;
        }
        let mut pn = ROOT;
        let mut cindex = 0usize;
        let mut st = St::Descend;
        loop {
            match st {
                St::Descend => {
                    if is_leaf(n) {
                        if self.leaf(n).key != key {
                            st = St::Prefix;
                            continue;
                        }
                        if let Some(e) = self.covering(n, key, &mut f) {
                            return Some((n, e));
                        }
                        st = St::Backtrace;
                        continue;
                    }
                    let t = self.tn(n);
                    let index = u64::from(key ^ t.key) >> t.pos;
                    if index >= 1u64 << t.bits {
                        st = St::Prefix;
                        continue;
                    }
                    if t.slen > t.pos {
                        pn = n;
                        cindex = index as usize;
                    }
                    n = self.child(n, index as usize);
                    if n == NULL {
                        st = St::Backtrace;
                    }
                }
                St::Prefix => {
                    // Could `n`'s key (zeros below its lowest set bit) prefix `key`?
                    let nk = self.key_of(n);
                    let mismatch = (key ^ nk) & (nk | nk.wrapping_neg()) != 0;
                    let (slen, pos) = if is_leaf(n) {
                        (self.leaf(n).slen, 0)
                    } else {
                        (self.tn(n).slen, self.tn(n).pos)
                    };
                    if mismatch || slen == pos {
                        st = St::Backtrace;
                        continue;
                    }
                    if is_leaf(n) {
                        if let Some(e) = self.covering(n, key, &mut f) {
                            return Some((n, e));
                        }
                        st = St::Backtrace;
                        continue;
                    }
                    // Shorter prefixes have zeros here: follow child 0.
                    let c = self.child(n, 0);
                    if c == NULL {
                        st = St::Backtrace;
                    } else {
                        n = c;
                    }
                }
                St::Backtrace => {
                    while cindex == 0 {
                        if pn == ROOT {
                            return None;
                        }
                        let pkey = self.tn(pn).key;
                        pn = self.tn(pn).parent;
                        cindex = self.get_index(pkey, pn);
                    }
                    // Strip the lowest set bit: the next candidate with more low zeros.
                    cindex &= cindex - 1;
                    let c = self.child(pn, cindex);
                    if c != NULL {
                        n = c;
                        st = St::Prefix;
                    }
                }
            }
        }
    }
}
