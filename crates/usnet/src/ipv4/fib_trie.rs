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
//!   quarter are (the root inflates at 24% used and halves below 5% — Linux's root
//!   uses 60% and 15%; see "resizing" in the source), and a node left with one
//!   child collapses into it: Linux's `should_inflate`, `should_halve`, `should_collapse`.
//! * **Lookup with a filter** ([`FibTrie::lookup_filter`], Linux's `fib_table_lookup`)
//!   descends along the key to the deepest node; if that fails it *backtracks*: at the
//!   nearest node whose subtree holds a prefix short enough (`slen > pos`), it clears
//!   the lowest set bit of the child index and descends in "prefix mode" through child 0,
//!   which enumerates exactly the candidates whose low bits are zero — longest first.
//!
//! ## Fallbacks: lookups without backtracking
//!
//! On an Internet-sized table most addresses are covered only by a short prefix stored
//! far from where the descent ends, and backtracking to it costs a chain of dependent
//! cache misses. So every child slot also records its **fallback**: the leaf holding the
//! longest prefix that covers the slot's whole address range but is stored outside the
//! slot's subtree (the slot's own best "covering route", as leaf-pushing tries and
//! DIR-24-8 tables precompute). A slot's range is `r0/(32 - pos)`; the prefixes stored
//! outside it that cover it are exactly those strictly containing
//! `Q = r0/(32 - pos - tz(r0 >> pos))`. [`FibTrie::lookup`] descends, and if the leaf it
//! reaches does not cover the address it reads the fallback of the last slot — at most
//! one more leaf, no backtracking. Updates keep fallbacks exact: an insert paints its
//! prefix over the slots it covers whose fallback is shorter, a removal repaints the
//! slots that fell back to it with the next shorter prefix, and nodes made by a resize
//! are painted from their parent's fallback and their own children.
//!
//! ## Memory layout
//!
//! A node's header (key, id, fallback, pos and bits) and its child slots are one run of
//! 32-bit words in a cache-line-aligned arena: a node of up to four children is half a
//! line, of eight one line. A slot word names an empty slot's fallback, a leaf, or a
//! child node's header. The fields only updates need (parent, empty and full counts,
//! suffix lengths) live apart, in per-node records. Past a huge page, the arena and
//! the leaves sit in memory advised for transparent huge pages ([`crate::mem`]), as
//! the kernel's FIB sits in its huge-page direct map. [`FibTrie::lookup_many`]
//! pipelines lookups: each step reads the next 64 addresses' top-node slots together
//! with the next line of every lookup still going, so the cache misses of independent
//! lookups overlap (as packet-vector forwarders batch route lookups).

use crate::hash::HashMap;
use std::fmt;

mod backtrack;
mod fallback;
mod lookup;

const NULL: u32 = u32::MAX;
const LEAF: u32 = 1 << 31;
/// The root's inflate threshold (Linux's `inflate_threshold_root` is 30; see
/// "resizing").
const INFLATE_ROOT: u64 = 12;
/// The root's halve threshold (Linux's `halve_threshold_root` is 15).
const HALVE_ROOT: u64 = 5;
/// Id of the pseudo-root (Linux's `trie` key vector: pos 32, bits 0, one child).
const ROOT: u32 = 0;

#[inline]
fn is_leaf(n: u32) -> bool {
    n != NULL && n & LEAF != 0
}

/// The netmask of a prefix length (lengths past 32 count as 32).
#[inline]
fn mask(len: u8) -> u32 {
    // Shifting in 64 bits makes /0 (a shift by 32) come out 0 without a branch.
    (u64::from(u32::MAX) << (32 - u32::from(len.min(32)))) as u32
}

// ----- arena words -----
//
// Slot word: kind in bits 30..32 (0 empty, 1 leaf, 2 tnode), then 30 bits: an empty
// slot's fallback (leaf index + 1, 0 for none), a leaf index, or a tnode's header offset.
// Header: [key, tnode id, fallback (leaf index + 1), pos | bits << 8], then the slots.

const S_LEAF: u32 = 1 << 30;
const S_TNODE: u32 = 2 << 30;
const S_LOW: u32 = (1 << 30) - 1;
const H_KEY: u32 = 0;
const H_ID: u32 = 1;
const H_FB: u32 = 2;
const H_PB: u32 = 3;
/// Header words before the slots.
const HDR: u32 = 4;

/// One cache line of the arena.
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u32; 16]);

/// A tnode's fields for updates (lookups read the arena instead).
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
    /// Arena word offset of the header (the slots follow it).
    base: u32,
}

/// A leaf: 16 bytes, aligned, four to a cache line; a lookup reads one. What only
/// updates need (its parent, prefixes beyond the first) lives apart.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Leaf {
    key: u32,
    /// Fallback of the slot it sits in (a fallback word).
    fb: u32,
    /// The longest prefix's route id.
    rid: u32,
    /// The longest prefix's suffix length.
    hslen: u8,
    /// Largest suffix length of its prefixes (shortest prefix).
    slen: u8,
    /// More prefixes in [`FibTrie::more`].
    more: bool,
}

impl Leaf {
    fn head(&self) -> (u8, u32) {
        (self.hslen, self.rid)
    }

    fn set_head(&mut self, (slen, rid): (u8, u32)) {
        self.hslen = slen;
        self.rid = rid;
    }
}

// ----- fallback words -----
//
// A fallback names one prefix: its suffix length in bits 24..30 and its route id + 1
// in bits 0..24 (0: no fallback). The lookup answers from the word alone: the prefix is
// the address masked to the length, the value is `values[id]`.

/// Most prefixes a table may hold (route ids fit a fallback word's 24 bits).
pub const MAX_PREFIXES: usize = (1 << 24) - 2;

fn fb_word(slen: u8, rid: u32) -> u32 {
    u32::from(slen) << 24 | (rid + 1)
}

/// (suffix length, route id) of a fallback word.
#[inline]
fn fb_decode(w: u32) -> Option<(u8, u32)> {
    let r = w & 0xff_ffff;
    (r != 0).then(|| (((w >> 24) & 63) as u8, r - 1))
}

/// A fallback's suffix length (64 for none: shorter than any prefix).
fn fb_slen(w: u32) -> u8 {
    fb_decode(w).map_or(64, |f| f.0)
}

/// Grow a vector by a quarter (not double) when full: tables are large and long-lived.
fn reserve_quarter<T>(v: &mut Vec<T>, more: usize) {
    if v.len() + more > v.capacity() {
        v.reserve_exact((v.capacity() / 4).max(more).max(16));
    }
}

/// [`reserve_quarter`] for the arrays lookups read at random (arena lines, leaves):
/// once past a huge page, in memory backed by huge pages ([`crate::mem`]).
fn reserve_quarter_huge<T: Copy>(v: &mut Vec<T>, more: usize) {
    if v.len() + more > v.capacity() {
        let cap = v.capacity() + (v.capacity() / 4).max(more).max(16);
        crate::mem::grow_huge(v, cap);
    }
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
    /// Node headers and child slots.
    lines: Vec<Line>,
    /// Arena units (8 words) handed out so far.
    top: u32,
    /// Freed arena runs by length in units.
    free_units: HashMap<u32, Vec<u32>>,
    tnodes: Vec<Tnode>,
    free_tnodes: Vec<u32>,
    /// Leaves by index (freed ones stay, emptied, until reused).
    leaves: Vec<Leaf>,
    /// Each leaf's parent tnode.
    leaf_parent: Vec<u32>,
    /// A leaf's prefixes after its first (ascending suffix length), by leaf index.
    more: HashMap<u32, Vec<(u8, u32)>>,
    free_leaves: Vec<u32>,
    /// Route values by id.
    values: Vec<V>,
    free_values: Vec<u32>,
    len: usize,
}

impl<V: Default> Default for FibTrie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Default> FibTrie<V> {
    /// An empty table.
    pub fn new() -> Self {
        let mut t = FibTrie {
            lines: Vec::new(),
            top: 0,
            free_units: HashMap::default(),
            tnodes: Vec::new(),
            free_tnodes: Vec::new(),
            leaves: Vec::new(),
            leaf_parent: Vec::new(),
            more: HashMap::default(),
            free_leaves: Vec::new(),
            values: Vec::new(),
            free_values: Vec::new(),
            len: 0,
        };
        let root = t.new_tnode(0, 32, 0);
        debug_assert_eq!(root, ROOT);
        t.tn_mut(ROOT).slen = 32;
        t
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    // ----- arena -----

    #[inline]
    fn word(&self, w: u32) -> u32 {
        self.words()[w as usize]
    }

    /// The arena as words.
    #[inline]
    fn words(&self) -> &[u32] {
        bytemuck::cast_slice(&self.lines)
    }

    fn set_word(&mut self, w: u32, v: u32) {
        self.lines[(w >> 4) as usize].0[(w & 15) as usize] = v;
    }

    /// Arena units (8 words) for a node of `bits`: one for up to 4 children, else
    /// whole cache lines.
    fn node_units(bits: u8) -> u32 {
        let u = (HDR + (1u32 << bits)).div_ceil(8);
        if u > 1 {
            u + (u & 1)
        } else {
            1
        }
    }

    /// A zeroed run of `u` units (line-aligned when more than one); its first word.
    fn alloc_units(&mut self, u: u32) -> u32 {
        if let Some(x) = self.free_units.get_mut(&u).and_then(Vec::pop) {
            for w in x * 8..(x + u) * 8 {
                self.set_word(w, 0);
            }
            return x * 8;
        }
        if u > 1 && self.top % 2 == 1 {
            self.free_units.entry(1).or_default().push(self.top);
            self.top += 1;
        }
        let x = self.top;
        self.top += u;
        let lines = self.top.div_ceil(2) as usize;
        if lines > self.lines.len() {
            let more = lines - self.lines.len();
            reserve_quarter_huge(&mut self.lines, more);
            self.lines.resize(lines, Line::default());
        }
        x * 8
    }

    // ----- node accessors -----

    #[inline]
    fn leaf(&self, n: u32) -> &Leaf {
        &self.leaves[(n & !LEAF) as usize]
    }

    fn leaf_mut(&mut self, n: u32) -> &mut Leaf {
        &mut self.leaves[(n & !LEAF) as usize]
    }

    /// Leaf `n`'s prefixes, ascending suffix length: (suffix length, route id).
    fn entries(&self, n: u32) -> impl Iterator<Item = (u8, u32)> + '_ {
        let l = self.leaf(n);
        let more = if l.more {
            self.more.get(&(n & !LEAF)).map_or(&[][..], Vec::as_slice)
        } else {
            &[]
        };
        std::iter::once(l.head()).chain(more.iter().copied())
    }

    /// Leaf `n`'s longest prefix covering `key` that passes `f`.
    #[inline]
    fn covering(&self, n: u32, key: u32, mut f: impl FnMut(u8, u32) -> bool) -> Option<(u8, u32)> {
        let l = self.leaf(n);
        let diff = u64::from(key ^ l.key);
        if diff < 1u64 << l.hslen && f(l.hslen, l.rid) {
            return Some(l.head());
        }
        if !l.more {
            return None;
        }
        self.entries(n)
            .skip(1)
            .find(|&(slen, r)| diff < (1u64 << slen) && f(slen, r))
    }

    /// Take leaf `n`'s prefixes after the first.
    fn take_tail(&mut self, n: u32) -> Vec<(u8, u32)> {
        self.leaf_mut(n).more = false;
        self.more.remove(&(n & !LEAF)).unwrap_or_default()
    }

    fn set_tail(&mut self, n: u32, v: Vec<(u8, u32)>) {
        self.leaf_mut(n).more = !v.is_empty();
        if !v.is_empty() {
            self.more.insert(n & !LEAF, v);
        }
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

    /// Child `i` of tnode `tn`.
    fn child(&self, tn: u32, i: usize) -> u32 {
        let w = self.word(self.tn(tn).base + HDR + i as u32);
        match w >> 30 {
            1 => (w & S_LOW) | LEAF,
            2 => self.word((w & S_LOW) + H_ID),
            _ => NULL,
        }
    }

    /// The fallback of slot `i` of `tn` (leaf index + 1, 0 for none).
    fn slot_fb(&self, tn: u32, i: usize) -> u32 {
        let w = self.word(self.tn(tn).base + HDR + i as u32);
        match w >> 30 {
            1 => self.leaves[(w & S_LOW) as usize].fb,
            2 => self.word((w & S_LOW) + H_FB),
            _ => w & S_LOW,
        }
    }

    /// Set the fallback of slot `i` of `tn`, wherever it is kept.
    fn set_slot_fb(&mut self, tn: u32, i: usize, fb: u32) {
        let at = self.tn(tn).base + HDR + i as u32;
        let w = self.word(at);
        match w >> 30 {
            1 => {
                self.leaves[(w & S_LOW) as usize].fb = fb;
            }
            2 => self.set_word((w & S_LOW) + H_FB, fb),
            _ => self.set_word(at, fb),
        }
    }

    /// The fallback `n` carries for the slot it sits in.
    fn node_fb(&self, n: u32) -> u32 {
        if is_leaf(n) {
            self.leaf(n).fb
        } else {
            self.word(self.tn(n).base + H_FB)
        }
    }

    fn set_node_fb(&mut self, n: u32, fb: u32) {
        if is_leaf(n) {
            self.leaf_mut(n).fb = fb;
        } else {
            let b = self.tn(n).base;
            self.set_word(b + H_FB, fb);
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
        let key = if shift < 32 {
            (key >> shift) << shift
        } else {
            0
        };
        let base = self.alloc_units(Self::node_units(bits));
        let node = Tnode {
            key,
            pos,
            bits,
            slen: pos,
            parent: NULL,
            empty: 1 << bits,
            full: 0,
            base,
        };
        let id = match self.free_tnodes.pop() {
            Some(i) => {
                self.tnodes[i as usize] = node;
                i
            }
            None => {
                reserve_quarter(&mut self.tnodes, 1);
                self.tnodes.push(node);
                (self.tnodes.len() - 1) as u32
            }
        };
        self.set_word(base + H_KEY, key);
        self.set_word(base + H_ID, id);
        self.set_word(base + H_PB, u32::from(pos) | u32::from(bits) << 8);
        id
    }

    fn free_tnode(&mut self, n: u32) {
        let (base, bits) = (self.tn(n).base, self.tn(n).bits);
        self.free_units
            .entry(Self::node_units(bits))
            .or_default()
            .push(base / 8);
        let t = self.tn_mut(n);
        t.parent = NULL;
        t.base = NULL;
        self.free_tnodes.push(n);
    }

    /// Store a route value; its id.
    fn new_value(&mut self, v: V) -> u32 {
        match self.free_values.pop() {
            Some(r) => {
                self.values[r as usize] = v;
                r
            }
            None => {
                reserve_quarter(&mut self.values, 1);
                self.values.push(v);
                (self.values.len() - 1) as u32
            }
        }
    }

    /// Take a route value out; its id is free again.
    fn take_value(&mut self, r: u32) -> V {
        self.free_values.push(r);
        std::mem::take(&mut self.values[r as usize])
    }

    fn new_leaf(&mut self, key: u32, slen: u8, rid: u32) -> u32 {
        let leaf = Leaf {
            key,
            fb: 0,
            rid,
            hslen: slen,
            slen,
            more: false,
        };
        let i = match self.free_leaves.pop() {
            Some(i) => {
                self.leaves[i as usize] = leaf;
                self.leaf_parent[i as usize] = NULL;
                i
            }
            None => {
                reserve_quarter_huge(&mut self.leaves, 1);
                reserve_quarter(&mut self.leaf_parent, 1);
                self.leaves.push(leaf);
                self.leaf_parent.push(NULL);
                (self.leaves.len() - 1) as u32
            }
        };
        i | LEAF
    }

    /// `put_child`: set slot `i` of `tn`, keeping the empty/full counts and the suffix.
    /// An emptied slot has no fallback until the caller sets one.
    fn put_child(&mut self, tn: u32, i: usize, n: u32) {
        let pos = self.tn(tn).pos;
        let old = self.child(tn, i);
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
        let at = t.base + HDR + i as u32;
        let w = if n == NULL {
            0
        } else if is_leaf(n) {
            self.leaf_parent[(n & !LEAF) as usize] = tn;
            (n & !LEAF) | S_LEAF
        } else {
            self.tn_mut(n).parent = tn;
            self.tn(n).base | S_TNODE
        };
        self.set_word(at, w);
    }

    /// Put `n` in the slot of `key` under `tp` (`put_child_root`).
    fn put_child_key(&mut self, tp: u32, key: u32, n: u32) {
        let i = self.get_index(key, tp);
        self.put_child(tp, i, n);
    }

    /// `fib_find_node`: the leaf holding exactly `key`, and the last tnode visited.
    fn find_node(&self, key: u32) -> (Option<u32>, u32) {
        let mut tp = ROOT;
        let mut n = self.child(ROOT, 0);
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
            n = self.child(n, index as usize);
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
        let len = 1usize << t.bits;
        let mut stride = 2usize;
        let mut i = 0usize;
        while i < len {
            let c = self.child(tn, i);
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
    //
    // Thresholds in percent as Linux writes them (`inflate_threshold` 50: inflate when
    // `50 × used ≥ 50 × slots`, counting children that index the next bits twice;
    // `halve_threshold` 25), except the root's. Linux keeps the root larger with 30
    // and 15 (inflate at 60 % used); usnet keeps it larger still, 12 and 5 (inflate at
    // 24 %): one more level in the node every lookup starts at. On an Internet-sized
    // table (1 M prefixes) that is 2^22 slots instead of 2^21 for 2 MiB more in all
    // (fewer nodes below it), half the lookups that read a leaf past the root, and
    // ~1.4× the batched lookup rate (`benches/fib.rs`). Lookups answer the same.

    fn should_inflate(&self, tp: u32, tn: u32) -> bool {
        let t = self.tn(tn);
        let len = 1u64 << t.bits;
        let threshold = len * if tp == ROOT { INFLATE_ROOT } else { 50 };
        let used = len - u64::from(t.empty) + u64::from(t.full);
        used > 1 && t.pos > 0 && t.bits < 24 && 50 * used >= threshold
    }

    fn should_halve(&self, tp: u32, tn: u32) -> bool {
        let t = self.tn(tn);
        let len = 1u64 << t.bits;
        let threshold = len * if tp == ROOT { HALVE_ROOT } else { 25 };
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
        self.set_node_fb(tn, self.node_fb(old));
        let mut halves = Vec::new();
        for i in (0..1usize << obits).rev() {
            let inode = self.child(old, i);
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
                let (c0, c1) = (self.child(inode, 0), self.child(inode, 1));
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
                let c1 = self.child(inode, j + half);
                let c0 = self.child(inode, j);
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
            halves.extend([node1, node0]);
        }
        self.put_child_key(tp, okey, tn);
        self.free_tnode(old);
        self.paint_node(tn);
        for h in halves {
            self.paint_node(h);
        }
        tn
    }

    /// `halve`: one index bit fewer; slot pairs merge under a binary node.
    fn halve(&mut self, old: u32) -> u32 {
        let (okey, opos, obits, tp) = {
            let t = self.tn(old);
            (t.key, t.pos, t.bits, t.parent)
        };
        let tn = self.new_tnode(okey, opos + 1, obits - 1);
        self.set_node_fb(tn, self.node_fb(old));
        let mut pairs = Vec::new();
        for i in (0..1usize << obits).step_by(2).rev() {
            let n1 = self.child(old, i + 1);
            let n0 = self.child(old, i);
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
            pairs.push(inode);
        }
        self.put_child_key(tp, okey, tn);
        self.free_tnode(old);
        self.paint_node(tn);
        for p in pairs {
            self.paint_node(p);
        }
        tn
    }

    /// `collapse`: replace a node with its only child (or nothing).
    fn collapse(&mut self, old: u32) -> u32 {
        let (okey, tp) = (self.tn(old).key, self.tn(old).parent);
        let n = (0..1usize << self.tn(old).bits)
            .rev()
            .map(|i| self.child(old, i))
            .find(|c| *c != NULL)
            .unwrap_or(NULL);
        // The child takes over the node's slot, and with it the slot's fallback.
        let fb = self.node_fb(old);
        self.put_child_key(tp, okey, n);
        let i = self.get_index(okey, tp);
        self.set_slot_fb(tp, i, fb);
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
            for i in (0..1usize << self.tn(tn).bits).rev() {
                let c = self.child(tn, i);
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
    ///
    /// # Panics
    ///
    /// Past [`MAX_PREFIXES`] prefixes (callers bound their tables below it).
    pub fn insert(&mut self, prefix: u32, len: u8, v: V) -> Option<V> {
        let len = len.min(32);
        let key = prefix & mask(len);
        let slen = 32 - len;
        let (found, mut tp) = self.find_node(key);
        if let Some(l) = found {
            let same = self.entries(l).find(|e| e.0 == slen).map(|e| e.1);
            if let Some(r) = same {
                return Some(std::mem::replace(&mut self.values[r as usize], v));
            }
            assert!(self.len < MAX_PREFIXES, "FIB trie full");
            let rid = self.new_value(v);
            let mut tail = self.take_tail(l);
            let leaf = self.leaf_mut(l);
            if slen < leaf.hslen {
                tail.insert(0, leaf.head());
                leaf.set_head((slen, rid));
            } else {
                let i = tail.partition_point(|e| e.0 < slen);
                tail.insert(i, (slen, rid));
            }
            self.set_tail(l, tail);
            let leaf = self.leaf_mut(l);
            if slen > leaf.slen {
                leaf.slen = slen;
                let p = self.leaf_parent[(l & !LEAF) as usize];
                self.push_suffix(p, slen);
            }
            self.len += 1;
            self.paint_insert(key, slen, rid);
            return None;
        }
        assert!(self.len < MAX_PREFIXES, "FIB trie full");
        let rid = self.new_value(v);
        let l = self.new_leaf(key, slen, rid);
        let idx = self.get_index(key, tp);
        let n = self.child(tp, idx);
        let slot_fb = self.slot_fb(tp, idx);
        if n != NULL {
            // Split where the new key and the occupant first differ.
            let diff = key ^ self.key_of(n);
            let pos = (31 - diff.leading_zeros()) as u8;
            let tn = self.new_tnode(key, pos, 1);
            self.set_node_fb(tn, slot_fb);
            let nk = self.key_of(n);
            let ni = self.get_index(nk, tn);
            self.put_child(tn, ni, n);
            self.put_child(tp, idx, tn);
            tp = tn;
        } else {
            self.leaf_mut(l).fb = slot_fb;
        }
        // Raise the suffix up the path first: put_child raises only `tp` itself.
        self.push_suffix(tp, slen);
        self.put_child_key(tp, key, l);
        if n != NULL {
            self.paint_node(tp);
        }
        self.len += 1;
        self.paint_insert(key, slen, rid);
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
        let (_, rid) = self.entries(l).find(|e| e.0 == slen)?;
        let (is_head, last, old_slen) = {
            let leaf = self.leaf(l);
            (leaf.hslen == slen, !leaf.more, leaf.slen)
        };
        self.len -= 1;
        if is_head && last {
            // The last prefix: the leaf goes, its slot keeps the leaf's fallback.
            let i = self.get_index(key, tp);
            let fb = self.leaf(l).fb;
            self.put_child(tp, i, NULL);
            self.set_slot_fb(tp, i, fb);
            self.take_tail(l);
            self.free_leaves.push(l & !LEAF);
            self.repair_remove(key, slen, rid);
            let new_slen = self.tn(tp).pos;
            if new_slen < old_slen && self.tn(tp).slen == old_slen {
                self.pull_suffix(tp, new_slen);
            }
            self.rebalance(tp);
            return Some(self.take_value(rid));
        }
        let mut tail = self.take_tail(l);
        let leaf = self.leaf_mut(l);
        if is_head {
            leaf.set_head(tail.remove(0));
        } else {
            tail.retain(|e| e.0 != slen);
        }
        let new_slen = tail.last().map_or(leaf.hslen, |e| e.0);
        self.set_tail(l, tail);
        let leaf = self.leaf_mut(l);
        leaf.slen = new_slen;
        self.repair_remove(key, slen, rid);
        if new_slen < old_slen && self.tn(tp).slen == old_slen {
            self.pull_suffix(tp, new_slen);
        }
        self.rebalance(tp);
        Some(self.take_value(rid))
    }

    /// The route id stored for exactly `prefix/len`.
    fn find_route(&self, prefix: u32, len: u8) -> Option<u32> {
        let len = len.min(32);
        let l = self.find_node(prefix & mask(len)).0?;
        self.entries(l).find(|e| e.0 == 32 - len).map(|e| e.1)
    }

    /// The value stored for exactly `prefix/len`.
    pub fn get(&self, prefix: u32, len: u8) -> Option<&V> {
        let r = self.find_route(prefix, len)?;
        Some(&self.values[r as usize])
    }

    /// The value stored for exactly `prefix/len`, mutably.
    pub fn get_mut(&mut self, prefix: u32, len: u8) -> Option<&mut V> {
        let r = self.find_route(prefix, len)?;
        Some(&mut self.values[r as usize])
    }

    /// Every prefix in ascending (prefix, length) order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, &V)> {
        let mut out = Vec::with_capacity(self.len);
        self.walk(self.child(ROOT, 0), 0, &mut |_, l| {
            let key = self.leaf(l).key;
            for (slen, r) in self.entries(l) {
                out.push((key, 32 - slen, &self.values[r as usize]));
            }
        });
        out.sort_by_key(|(p, l, _)| (*p, *l));
        out.into_iter()
    }

    /// Visit every leaf with its depth.
    fn walk(&self, n: u32, depth: u32, f: &mut impl FnMut(u32, u32)) {
        if n == NULL {
            return;
        }
        if is_leaf(n) {
            f(depth, n);
            return;
        }
        for i in 0..1usize << self.tn(n).bits {
            self.walk(self.child(n, i), depth + 1, f);
        }
    }

    /// Heap bytes held (arena, node and leaf records, prefix lists, free lists).
    pub fn memory_bytes(&self) -> usize {
        let arena = self.lines.capacity() * std::mem::size_of::<Line>();
        let tn = self.tnodes.capacity() * std::mem::size_of::<Tnode>();
        let lf = self.leaves.capacity() * std::mem::size_of::<Leaf>()
            + self.leaf_parent.capacity() * 4
            + self.more.capacity() * (4 + std::mem::size_of::<Vec<(u8, u32)>>() + 1)
            + self
                .more
                .values()
                .map(|v| v.capacity() * std::mem::size_of::<(u8, u32)>())
                .sum::<usize>();
        let values = self.values.capacity() * std::mem::size_of::<V>();
        let free = (self.free_tnodes.capacity()
            + self.free_leaves.capacity()
            + self.free_values.capacity())
            * 4
            + self
                .free_units
                .values()
                .map(|v| v.capacity() * 4)
                .sum::<usize>();
        arena + tn + lf + values + free
    }

    /// Depth, node counts and sizes (`/proc/net/fib_triestat`).
    pub fn stats(&self) -> TrieStats {
        let mut s = TrieStats::default();
        let mut depth_sum = 0u64;
        self.walk(self.child(ROOT, 0), 0, &mut |d, l| {
            s.leaves += 1;
            s.prefixes += self.entries(l).count();
            s.max_depth = s.max_depth.max(d);
            depth_sum += u64::from(d);
        });
        if s.leaves > 0 {
            s.avg_depth_x100 = (depth_sum * 100 / s.leaves as u64) as u32;
        }
        let mut stack = vec![self.child(ROOT, 0)];
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
            stack.extend((0..1usize << t.bits).map(|i| self.child(n, i)));
        }
        s
    }

    /// Check every slot: parent links, and the fallback against its definition — the
    /// longest prefix strictly containing `r0/(32 - pos - tz(r0 >> pos))`, found by
    /// the backtracking lookup (tests).
    #[cfg(test)]
    fn check_slots(&self) {
        let mut stack = vec![ROOT];
        while let Some(n) = stack.pop() {
            let t = self.tn(n);
            for i in 0..1usize << t.bits {
                let c = self.child(n, i);
                if c != NULL {
                    let p = if is_leaf(c) {
                        self.leaf_parent[(c & !LEAF) as usize]
                    } else {
                        self.tn(c).parent
                    };
                    assert_eq!(p, n, "parent of {c:#x}");
                    assert_eq!(self.get_index(self.key_of(c), n), i);
                    if !is_leaf(c) {
                        stack.push(c);
                    }
                }
                if n == ROOT {
                    assert_eq!(self.slot_fb(n, i), 0);
                    continue;
                }
                let r0 = self.slot_addr(n, i);
                let tz = (r0 >> t.pos).trailing_zeros().min(32);
                let q = (u32::from(t.pos) + tz).min(32) as u8;
                let want = self
                    .walk_slow(r0, |slen, _| slen > q)
                    .map(|(_, (slen, r))| (slen, r));
                let got = fb_decode(self.slot_fb(n, i));
                assert_eq!(
                    got,
                    want,
                    "fallback of slot {i} of tnode {n} ({r0:#x}/{})",
                    32 - q
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
