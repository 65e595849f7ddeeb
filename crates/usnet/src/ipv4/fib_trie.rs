//! The FIB's longest-prefix match: a level-compressed trie, as Linux's
//! `net/ipv4/fib_trie.c` (after Nilsson and Karlsson's LC-trie).
//!
//! * **Leaves** hold one key — a prefix address with its host bits zero — and every
//!   prefix length stored under it (`10.0.0.0/8` and `10.0.0.0/24` share a leaf), longest
//!   first, each with its *suffix length* `slen = 32 - len`.
//! * **Internal nodes** (`tnode`) index their children with `bits` bits of the key
//!   starting at bit `pos`; the bits above `pos + bits` are the node's prefix, the same
//!   for everything below it. Bits between a node and its parent's window are *skipped*
//!   (path compression); a node with `2^bits` children replaces `bits` levels of a binary
//!   trie (level compression).
//! * **Resizing**: after every change the nodes on the path are `inflate`d (one more
//!   bit: children double) while more than half the slots are used — counting a
//!   child that itself indexes the next bits as two — and `halve`d while fewer than a
//!   quarter are (the root uses 30% and 15%, to stay larger), and a node left with one
//!   child collapses into it: Linux's `should_inflate`, `should_halve`, `should_collapse`.
//! * **Lookup** (`fib_table_lookup`) first descends along the key to the deepest node;
//!   if that fails it *backtracks*: at the nearest node whose subtree holds a prefix
//!   short enough (`slen > pos`), it clears the lowest set bit of the child index and
//!   descends in "prefix mode" through child 0, which enumerates exactly the candidates
//!   whose low bits are zero — longest first.
//!
//! Nodes live in arenas and are named by `u32` indices (the top bit marks a leaf), so a
//! lookup touches no reference counts and the structure has no per-node boxes.

use std::fmt;

const NULL: u32 = u32::MAX;
const LEAF: u32 = 1 << 31;
/// Index of the pseudo-root (Linux's `trie` key vector: pos 32, bits 0, one child).
const ROOT: u32 = 0;

fn is_leaf(n: u32) -> bool {
    n != NULL && n & LEAF != 0
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

struct Tnode {
    /// The prefix: bits below `pos + bits` are zero.
    key: u32,
    pos: u8,
    bits: u8,
    /// Largest suffix length of any prefix below (at least `pos`).
    slen: u8,
    parent: u32,
    /// Null child slots.
    empty: u32,
    /// Children that are tnodes indexing the bits right below this node's window.
    full: u32,
    children: Vec<u32>,
}

struct Leaf<V> {
    key: u32,
    /// Largest suffix length of its prefixes (shortest prefix).
    slen: u8,
    parent: u32,
    /// (suffix length, value), ascending suffix length: longest prefix first.
    entries: Vec<(u8, V)>,
}

/// Trie statistics, as `/proc/net/fib_triestat` reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrieStats {
    /// Deepest leaf (internal nodes above it).
    pub max_depth: u32,
    /// Average leaf depth × 100.
    pub avg_depth_x100: u32,
    /// Leaves.
    pub leaves: usize,
    /// Prefixes (a leaf holds one or more).
    pub prefixes: usize,
    /// Internal nodes.
    pub tnodes: usize,
    /// Empty child slots.
    pub null_pointers: usize,
    /// Internal nodes by `bits` (index = bits).
    pub nodes_by_bits: Vec<usize>,
}

impl fmt::Display for TrieStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\tAver depth:     {}.{:02}",
            self.avg_depth_x100 / 100,
            self.avg_depth_x100 % 100
        )?;
        writeln!(f, "\tMax depth:      {}", self.max_depth)?;
        writeln!(f, "\tLeaves:         {}", self.leaves)?;
        writeln!(f, "\tPrefixes:       {}", self.prefixes)?;
        writeln!(f, "\tInternal nodes: {}", self.tnodes)?;
        let sizes: Vec<String> = self
            .nodes_by_bits
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| format!("{b}: {n}"))
            .collect();
        writeln!(f, "\t  {}", sizes.join("  "))?;
        write!(f, "\tNull ptrs: {}", self.null_pointers)
    }
}

/// A longest-prefix-match table of IPv4 prefixes (a level-compressed trie).
pub struct FibTrie<V> {
    tnodes: Vec<Tnode>,
    free_tnodes: Vec<u32>,
    leaves: Vec<Leaf<V>>,
    free_leaves: Vec<u32>,
    len: usize,
}

impl<V> Default for FibTrie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> FibTrie<V> {
    /// An empty table.
    pub fn new() -> Self {
        let root = Tnode {
            key: 0,
            pos: 32,
            bits: 0,
            slen: 32,
            parent: NULL,
            empty: 1,
            full: 0,
            children: vec![NULL],
        };
        FibTrie {
            tnodes: vec![root],
            free_tnodes: Vec::new(),
            leaves: Vec::new(),
            free_leaves: Vec::new(),
            len: 0,
        }
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    // ----- node accessors -----

    fn leaf(&self, n: u32) -> &Leaf<V> {
        &self.leaves[(n & !LEAF) as usize]
    }

    fn leaf_mut(&mut self, n: u32) -> &mut Leaf<V> {
        &mut self.leaves[(n & !LEAF) as usize]
    }

    fn tn(&self, n: u32) -> &Tnode {
        &self.tnodes[n as usize]
    }

    fn tn_mut(&mut self, n: u32) -> &mut Tnode {
        &mut self.tnodes[n as usize]
    }

    fn key_of(&self, n: u32) -> u32 {
        if is_leaf(n) {
            self.leaf(n).key
        } else {
            self.tn(n).key
        }
    }

    fn slen_of(&self, n: u32) -> u8 {
        if is_leaf(n) {
            self.leaf(n).slen
        } else {
            self.tn(n).slen
        }
    }

    fn set_parent(&mut self, n: u32, p: u32) {
        if is_leaf(n) {
            self.leaf_mut(n).parent = p;
        } else {
            self.tn_mut(n).parent = p;
        }
    }

    /// A tnode child that indexes the bits right below `pos` (no skipped bits).
    fn is_full(&self, pos: u8, n: u32) -> bool {
        n != NULL && !is_leaf(n) && {
            let t = self.tn(n);
            t.pos + t.bits == pos
        }
    }

    /// The child slot of `key` in tnode `tn` (the caller knows the prefix matches).
    fn get_index(&self, key: u32, tn: u32) -> usize {
        let t = self.tn(tn);
        (u64::from(key ^ t.key) >> t.pos) as usize
    }

    fn new_tnode(&mut self, key: u32, pos: u8, bits: u8) -> u32 {
        let shift = u32::from(pos) + u32::from(bits);
        let node = Tnode {
            key: if shift < 32 {
                (key >> shift) << shift
            } else {
                0
            },
            pos,
            bits,
            slen: pos,
            parent: NULL,
            empty: 1 << bits,
            full: 0,
            children: vec![NULL; 1 << bits],
        };
        match self.free_tnodes.pop() {
            Some(i) => {
                self.tnodes[i as usize] = node;
                i
            }
            None => {
                self.tnodes.push(node);
                (self.tnodes.len() - 1) as u32
            }
        }
    }

    fn free_tnode(&mut self, n: u32) {
        let t = self.tn_mut(n);
        t.children = Vec::new();
        t.parent = NULL;
        self.free_tnodes.push(n);
    }

    fn new_leaf(&mut self, key: u32, slen: u8, v: V) -> u32 {
        // Exactly one slot: most leaves hold one prefix.
        let entries = vec![(slen, v)];
        let leaf = Leaf {
            key,
            slen,
            parent: NULL,
            entries,
        };
        let i = match self.free_leaves.pop() {
            Some(i) => {
                self.leaves[i as usize] = leaf;
                i
            }
            None => {
                self.leaves.push(leaf);
                (self.leaves.len() - 1) as u32
            }
        };
        i | LEAF
    }

    /// `put_child`: set slot `i` of `tn`, keeping the empty/full counts and the suffix.
    fn put_child(&mut self, tn: u32, i: usize, n: u32) {
        let pos = self.tn(tn).pos;
        let old = self.tn(tn).children[i];
        let old_full = self.is_full(pos, old);
        let new_full = self.is_full(pos, n);
        let nslen = if n != NULL { self.slen_of(n) } else { 0 };
        let t = self.tn_mut(tn);
        if old == NULL && n != NULL {
            t.empty -= 1;
        } else if old != NULL && n == NULL {
            t.empty += 1;
        }
        if old_full {
            t.full -= 1;
        }
        if new_full {
            t.full += 1;
        }
        if nslen > t.slen {
            t.slen = nslen;
        }
        t.children[i] = n;
        if n != NULL {
            self.set_parent(n, tn);
        }
    }

    /// Put `n` in the slot of `key` under `tp` (`put_child_root`).
    fn put_child_key(&mut self, tp: u32, key: u32, n: u32) {
        let i = self.get_index(key, tp);
        self.put_child(tp, i, n);
    }

    /// `fib_find_node`: the leaf holding exactly `key`, and the last tnode visited.
    fn find_node(&self, key: u32) -> (Option<u32>, u32) {
        let mut tp = ROOT;
        let mut n = self.tn(ROOT).children[0];
        loop {
            if n == NULL {
                return (None, tp);
            }
            if is_leaf(n) {
                return ((self.leaf(n).key == key).then_some(n), tp);
            }
            let t = self.tn(n);
            let index = u64::from(key ^ t.key) >> t.pos;
            if index >= 1u64 << t.bits {
                return (None, tp);
            }
            tp = n;
            n = t.children[index as usize];
        }
    }

    /// `node_push_suffix`.
    fn push_suffix(&mut self, mut tn: u32, slen: u8) {
        while tn != NULL && self.tn(tn).slen < slen {
            self.tn_mut(tn).slen = slen;
            tn = self.tn(tn).parent;
        }
    }

    /// `update_suffix`: recompute a node's suffix from its children. A child can have
    /// a suffix above `pos + k` only at an index with `k` low zero bits, so the scan
    /// strides over the rest (and stops at the largest possible value).
    fn update_suffix(&mut self, tn: u32) -> u8 {
        let t = self.tn(tn);
        let mut slen = t.pos;
        let max = (t.pos + t.bits).saturating_sub(1).min(t.slen);
        let len = t.children.len();
        let mut stride = 2usize;
        let mut i = 0usize;
        while i < len {
            let c = t.children[i];
            if c != NULL {
                let cs = self.slen_of(c);
                if cs > slen {
                    stride = stride
                        .checked_shl(u32::from(cs - slen))
                        .unwrap_or(usize::MAX);
                    slen = cs;
                    i &= !(stride.wrapping_sub(1));
                    if slen >= max {
                        break;
                    }
                }
            }
            i = i.saturating_add(stride);
        }
        self.tn_mut(tn).slen = slen;
        slen
    }

    /// `node_pull_suffix`: after a removal left `slen` as the largest suffix that
    /// could remain, shrink suffixes up the path.
    fn pull_suffix(&mut self, mut tn: u32, mut slen: u8) {
        while tn != NULL {
            let node_slen = self.tn(tn).slen;
            if node_slen <= self.tn(tn).pos || node_slen <= slen {
                break;
            }
            slen = self.update_suffix(tn);
            if slen == node_slen {
                break;
            }
            tn = self.tn(tn).parent;
        }
    }

    // ----- resizing -----

    fn should_inflate(&self, tp: u32, tn: u32) -> bool {
        let t = self.tn(tn);
        let len = 1u64 << t.bits;
        let threshold = len * if tp == ROOT { 30 } else { 50 };
        let used = len - u64::from(t.empty) + u64::from(t.full);
        used > 1 && t.pos > 0 && t.bits < 24 && 50 * used >= threshold
    }

    fn should_halve(&self, tp: u32, tn: u32) -> bool {
        let t = self.tn(tn);
        let len = 1u64 << t.bits;
        let threshold = len * if tp == ROOT { 15 } else { 25 };
        let used = len - u64::from(t.empty);
        used > 1 && t.bits > 1 && 100 * used < threshold
    }

    fn should_collapse(&self, tn: u32) -> bool {
        let t = self.tn(tn);
        (1u64 << t.bits) - u64::from(t.empty) < 2
    }

    /// `inflate`: one more index bit; full children give up a bit each.
    fn inflate(&mut self, old: u32) -> u32 {
        let (okey, opos, obits, tp) = {
            let t = self.tn(old);
            (t.key, t.pos, t.bits, t.parent)
        };
        let tn = self.new_tnode(okey, opos - 1, obits + 1);
        self.tn_mut(tn).parent = tp;
        for i in (0..1usize << obits).rev() {
            let inode = self.tn(old).children[i];
            if inode == NULL {
                continue;
            }
            if !self.is_full(opos, inode) {
                let k = self.key_of(inode);
                self.put_child_key(tn, k, inode);
                continue;
            }
            let (ikey, ipos, ibits) = {
                let t = self.tn(inode);
                (t.key, t.pos, t.bits)
            };
            if ibits == 1 {
                let (c0, c1) = (self.tn(inode).children[0], self.tn(inode).children[1]);
                self.put_child(tn, 2 * i + 1, c1);
                self.put_child(tn, 2 * i, c0);
                self.free_tnode(inode);
                continue;
            }
            // Split the child into two halves one bit further down.
            let m = 1u32 << (ipos + ibits - 1);
            let node1 = self.new_tnode(ikey | m, ipos, ibits - 1);
            let node0 = self.new_tnode(ikey, ipos, ibits - 1);
            let half = 1usize << (ibits - 1);
            for j in (0..half).rev() {
                let c1 = self.tn(inode).children[j + half];
                let c0 = self.tn(inode).children[j];
                if c1 != NULL {
                    self.put_child(node1, j, c1);
                }
                if c0 != NULL {
                    self.put_child(node0, j, c0);
                }
            }
            self.put_child(tn, 2 * i + 1, node1);
            self.put_child(tn, 2 * i, node0);
            self.free_tnode(inode);
        }
        self.put_child_key(tp, okey, tn);
        self.free_tnode(old);
        tn
    }

    /// `halve`: one index bit fewer; slot pairs merge under a binary node.
    fn halve(&mut self, old: u32) -> u32 {
        let (okey, opos, obits, tp) = {
            let t = self.tn(old);
            (t.key, t.pos, t.bits, t.parent)
        };
        let tn = self.new_tnode(okey, opos + 1, obits - 1);
        self.tn_mut(tn).parent = tp;
        for i in (0..1usize << obits).step_by(2).rev() {
            let n1 = self.tn(old).children[i + 1];
            let n0 = self.tn(old).children[i];
            if n1 == NULL || n0 == NULL {
                let n = if n1 != NULL { n1 } else { n0 };
                if n != NULL {
                    self.put_child(tn, i / 2, n);
                }
                continue;
            }
            let k0 = self.key_of(n0);
            let inode = self.new_tnode(k0, opos, 1);
            self.put_child(inode, 1, n1);
            self.put_child(inode, 0, n0);
            self.put_child(tn, i / 2, inode);
        }
        self.put_child_key(tp, okey, tn);
        self.free_tnode(old);
        tn
    }

    /// `collapse`: replace a node with its only child (or nothing).
    fn collapse(&mut self, old: u32) -> u32 {
        let (okey, tp) = (self.tn(old).key, self.tn(old).parent);
        let n = self
            .tn(old)
            .children
            .iter()
            .rev()
            .copied()
            .find(|c| *c != NULL)
            .unwrap_or(NULL);
        self.put_child_key(tp, okey, n);
        self.free_tnode(old);
        tp
    }

    /// `resize`: inflate, halve or collapse `tn`; returns its parent.
    fn resize(&mut self, mut tn: u32) -> u32 {
        const MAX_WORK: u32 = 10;
        let tp = self.tn(tn).parent;
        let mut work = MAX_WORK;
        while work > 0 && self.should_inflate(tp, tn) {
            tn = self.inflate(tn);
            work -= 1;
            // Children that became full may need inflating too.
            let pos = self.tn(tn).pos;
            for i in (0..self.tn(tn).children.len()).rev() {
                let c = self.tn(tn).children[i];
                if self.is_full(pos, c) {
                    self.resize(c);
                }
            }
        }
        if work != MAX_WORK {
            return tp;
        }
        while work > 0 && self.should_halve(tp, tn) {
            tn = self.halve(tn);
            work -= 1;
        }
        if self.should_collapse(tn) {
            return self.collapse(tn);
        }
        tp
    }

    /// `trie_rebalance`: resize every node from `tn` up to the root.
    fn rebalance(&mut self, mut tn: u32) {
        while tn != ROOT && tn != NULL {
            tn = self.resize(tn);
        }
    }

    // ----- public operations -----

    /// Insert `prefix/len` (host bits ignored; `len` above 32 is 32); returns the
    /// previous value for the same prefix.
    pub fn insert(&mut self, prefix: u32, len: u8, v: V) -> Option<V> {
        let len = len.min(32);
        let key = prefix & mask(len);
        let slen = 32 - len;
        let (found, mut tp) = self.find_node(key);
        if let Some(l) = found {
            let leaf = self.leaf_mut(l);
            match leaf.entries.binary_search_by_key(&slen, |e| e.0) {
                Ok(i) => return Some(std::mem::replace(&mut leaf.entries[i].1, v)),
                Err(i) => leaf.entries.insert(i, (slen, v)),
            }
            if slen > leaf.slen {
                leaf.slen = slen;
                let p = leaf.parent;
                self.push_suffix(p, slen);
            }
            self.len += 1;
            return None;
        }
        let l = self.new_leaf(key, slen, v);
        let idx = self.get_index(key, tp);
        let n = self.tn(tp).children[idx];
        if n != NULL {
            // Split where the new key and the occupant first differ.
            let diff = key ^ self.key_of(n);
            let pos = (31 - diff.leading_zeros()) as u8;
            let tn = self.new_tnode(key, pos, 1);
            let nk = self.key_of(n);
            let ni = self.get_index(nk, tn);
            self.put_child(tn, ni, n);
            self.put_child(tp, idx, tn);
            tp = tn;
        }
        // Raise the suffix up the path first: put_child raises only `tp` itself.
        self.push_suffix(tp, slen);
        self.put_child_key(tp, key, l);
        self.len += 1;
        self.rebalance(tp);
        None
    }

    /// Remove `prefix/len`.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Option<V> {
        let len = len.min(32);
        let key = prefix & mask(len);
        let slen = 32 - len;
        let (found, tp) = self.find_node(key);
        let l = found?;
        let leaf = self.leaf_mut(l);
        let i = leaf.entries.binary_search_by_key(&slen, |e| e.0).ok()?;
        let (_, v) = leaf.entries.remove(i);
        let old_slen = leaf.slen;
        let new_slen;
        if leaf.entries.is_empty() {
            leaf.entries = Vec::new();
            self.put_child_key(tp, key, NULL);
            self.free_leaves.push(l & !LEAF);
            new_slen = self.tn(tp).pos;
        } else {
            leaf.slen = leaf.entries.last().map_or(0, |e| e.0);
            new_slen = leaf.slen;
        }
        self.len -= 1;
        if new_slen < old_slen && self.tn(tp).slen == old_slen {
            self.pull_suffix(tp, new_slen);
        }
        self.rebalance(tp);
        Some(v)
    }

    /// The value stored for exactly `prefix/len`.
    pub fn get(&self, prefix: u32, len: u8) -> Option<&V> {
        let len = len.min(32);
        let key = prefix & mask(len);
        let l = self.find_node(key).0?;
        let e = &self.leaf(l).entries;
        e.binary_search_by_key(&(32 - len), |e| e.0)
            .ok()
            .map(|i| &e[i].1)
    }

    /// The value stored for exactly `prefix/len`, mutably.
    pub fn get_mut(&mut self, prefix: u32, len: u8) -> Option<&mut V> {
        let len = len.min(32);
        let key = prefix & mask(len);
        let l = self.find_node(key).0?;
        let e = &mut self.leaf_mut(l).entries;
        let i = e.binary_search_by_key(&(32 - len), |e| e.0).ok()?;
        Some(&mut e[i].1)
    }

    /// The longest prefix containing `addr`: (prefix, length, value).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<(u32, u8, &V)> {
        self.lookup_filter(addr, |_| true)
    }

    /// The longest prefix containing `addr` whose value satisfies `f` (as
    /// `fib_table_lookup` skips aliases that do not fit the flow).
    pub fn lookup_filter(&self, key: u32, mut f: impl FnMut(&V) -> bool) -> Option<(u32, u8, &V)> {
        enum St {
            Descend,
            Prefix,
            Backtrace,
        }
        let mut n = self.tn(ROOT).children[0];
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
                        if let Some(r) = self.check_leaf(n, key, &mut f) {
                            return Some(r);
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
                    n = t.children[index as usize];
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
                        if let Some(r) = self.check_leaf(n, key, &mut f) {
                            return Some(r);
                        }
                        st = St::Backtrace;
                        continue;
                    }
                    // Shorter prefixes have zeros here: follow child 0.
                    let c = self.tn(n).children[0];
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
                    let c = self.tn(pn).children[cindex];
                    if c != NULL {
                        n = c;
                        st = St::Prefix;
                    }
                }
            }
        }
    }

    /// The leaf's longest prefix that contains `key` and passes `f`.
    fn check_leaf(
        &self,
        l: u32,
        key: u32,
        f: &mut impl FnMut(&V) -> bool,
    ) -> Option<(u32, u8, &V)> {
        let leaf = self.leaf(l);
        let diff = u64::from(key ^ leaf.key);
        leaf.entries
            .iter()
            .find(|(slen, v)| diff < (1u64 << slen) && f(v))
            .map(|(slen, v)| (leaf.key, 32 - slen, v))
    }

    /// Every prefix in ascending (prefix, length) order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, &V)> {
        let mut out = Vec::with_capacity(self.len);
        self.walk(self.tn(ROOT).children[0], 0, &mut |_, l: &Leaf<V>| {
            for (slen, v) in l.entries.iter().rev() {
                out.push((l.key, 32 - slen, v));
            }
        });
        out.sort_by_key(|(p, l, _)| (*p, *l));
        out.into_iter()
    }

    /// Visit every leaf with its depth.
    fn walk<'a>(&'a self, n: u32, depth: u32, f: &mut impl FnMut(u32, &'a Leaf<V>)) {
        if n == NULL {
            return;
        }
        if is_leaf(n) {
            f(depth, self.leaf(n));
            return;
        }
        for &c in &self.tn(n).children {
            self.walk(c, depth + 1, f);
        }
    }

    /// Approximate heap bytes used (arenas, child arrays, prefix lists).
    pub fn memory_bytes(&self) -> usize {
        let tn = self.tnodes.capacity() * std::mem::size_of::<Tnode>()
            + self
                .tnodes
                .iter()
                .map(|t| t.children.capacity() * 4)
                .sum::<usize>();
        let lf = self.leaves.capacity() * std::mem::size_of::<Leaf<V>>()
            + self
                .leaves
                .iter()
                .map(|l| l.entries.capacity() * std::mem::size_of::<(u8, V)>())
                .sum::<usize>();
        tn + lf + (self.free_tnodes.capacity() + self.free_leaves.capacity()) * 4
    }

    /// Depth, node counts and sizes (`/proc/net/fib_triestat`).
    pub fn stats(&self) -> TrieStats {
        let mut s = TrieStats::default();
        let mut depth_sum = 0u64;
        self.walk(self.tn(ROOT).children[0], 0, &mut |d, l| {
            s.leaves += 1;
            s.prefixes += l.entries.len();
            s.max_depth = s.max_depth.max(d);
            depth_sum += u64::from(d);
        });
        if s.leaves > 0 {
            s.avg_depth_x100 = (depth_sum * 100 / s.leaves as u64) as u32;
        }
        let mut stack = vec![self.tn(ROOT).children[0]];
        while let Some(n) = stack.pop() {
            if n == NULL || is_leaf(n) {
                continue;
            }
            let t = self.tn(n);
            s.tnodes += 1;
            s.null_pointers += t.empty as usize;
            let b = t.bits as usize;
            if s.nodes_by_bits.len() <= b {
                s.nodes_by_bits.resize(b + 1, 0);
            }
            s.nodes_by_bits[b] += 1;
            stack.extend(t.children.iter().copied());
        }
        s
    }
}

#[cfg(test)]
mod tests;
