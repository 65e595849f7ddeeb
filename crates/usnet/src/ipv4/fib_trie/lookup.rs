//! The fast longest-prefix match: descend, then at most one fallback leaf.
//!
//! A walk advances one memory read at a time: [`Walk::need`] names the word it reads
//! next and [`Walk::step`] reads it and runs until the following read. A single lookup
//! steps one walk to the end; [`FibTrie::lookup_many`] keeps many in flight, touching
//! every walk's next line (and the next 64 addresses' top-node slots) before stepping
//! any, so their cache misses overlap.
//!
//! The walk never backtracks (see the module docs on fallbacks):
//!
//! * descending, a node's header and the slot of the address share a cache line
//!   (nodes of up to eight children), so each level is one read;
//! * an empty slot ends the walk: its fallback word is the answer (the prefix is the
//!   address masked to the fallback's length, the value `values[id]`), no read more;
//! * the leaf reached answers with its longest prefix covering the address, or with
//!   its fallback — every prefix in the leaf is longer than the fallback;
//! * a node whose skipped bits differ from the address can still hold prefixes that
//!   cover it, all in the leaf keyed like the node (down child 0); failing that, the
//!   node's own fallback answers.

use std::hint::black_box;

use super::{fb_decode, mask, FibTrie, HDR, H_FB, H_KEY, H_PB, LEAF, S_LOW};

/// Addresses [`FibTrie::lookup_many`] starts per step.
const CHUNK: usize = 64;

/// Marks a leaf index in [`Walk::need`] (arena word offsets stay below 2^30).
const NEED_LEAF: u32 = 1 << 31;

/// The result: (prefix, length, value).
type Found<'a, V> = Option<(u32, u8, &'a V)>;

#[derive(Clone, Copy)]
enum St {
    /// Read the slot word at `at` on the way down.
    Slot(u32),
    /// Read the header at `base` of the node the walk entered.
    Hdr(u32),
    /// Read slot word `at` going down child 0 of a node whose skipped bits differ.
    Chain(u32),
    /// Read leaf `id`; `chain` when reached down child 0.
    Leaf { id: u32, chain: bool },
}

/// The node under the pseudo-root, read once per batch.
#[derive(Clone, Copy)]
struct Top {
    base: u32,
    key: u32,
    pos: u32,
    /// 0 when the top is not a tnode (walks then start at the pseudo-root).
    bits: u32,
}

/// One lookup in progress.
struct Walk {
    key: u32,
    st: St,
    /// While going down child 0: the fallback of the node left behind.
    fb: u32,
}

impl Walk {
    /// The pseudo-root's only slot (its header is at word 0).
    const ROOT_SLOT: u32 = HDR;

    /// A walk already past the top node (whose header every lookup reads, so it
    /// stays in cache): at the address's slot in it.
    #[inline]
    fn at_top(key: u32, top: Top) -> Walk {
        Walk {
            key,
            st: St::Slot(Self::top_slot(key, top)),
            fb: 0,
        }
    }

    /// The word a lookup of `key` reads first: its slot in the top node, or the
    /// pseudo-root's slot when the top is not a tnode or its skipped bits differ.
    #[inline]
    fn top_slot(key: u32, top: Top) -> u32 {
        let index = u64::from(key ^ top.key) >> top.pos;
        if top.bits == 0 || index >= 1u64 << top.bits {
            Self::ROOT_SLOT
        } else {
            top.base + HDR + index as u32
        }
    }

    /// The arena word the walk reads next, or its leaf index with [`NEED_LEAF`].
    #[inline]
    fn need(&self) -> u32 {
        match self.st {
            St::Slot(w) | St::Hdr(w) | St::Chain(w) => w,
            St::Leaf { id, .. } => id | NEED_LEAF,
        }
    }

    /// The state after slot word `w`, or the fallback word that answers;
    /// `chain` while going down child 0.
    #[inline]
    fn slot(&self, w: u32, chain: bool) -> Result<St, u32> {
        let low = w & S_LOW;
        match w >> 30 {
            1 => Ok(St::Leaf { id: low, chain }),
            2 if chain => Ok(St::Chain(low + HDR)),
            2 => Ok(St::Hdr(low)),
            // Empty: its own fallback, or going down child 0 the node's.
            _ => Err(if chain { self.fb } else { low }),
        }
    }

    /// Do the pending read and run to the next one; true when the walk is over and
    /// `out` holds its result.
    #[inline]
    fn step<'a, V: Default>(&mut self, t: &'a FibTrie<V>, out: &mut Found<'a, V>) -> bool {
        loop {
            let next = match self.st {
                St::Slot(at) => self.slot(t.word(at), false),
                St::Chain(at) => self.slot(t.word(at), true),
                St::Hdr(base) => {
                    let tkey = t.word(base + H_KEY);
                    let pb = t.word(base + H_PB);
                    let (pos, bits) = (pb & 0xff, (pb >> 8) & 0xff);
                    let index = u64::from(self.key ^ tkey) >> pos;
                    if index < 1u64 << bits {
                        self.st = St::Slot(base + HDR + index as u32);
                        if bits <= 3 {
                            // The slot shares the header's cache line.
                            continue;
                        }
                        return false;
                    }
                    // The skipped bits differ: only the leaf keyed like this node can
                    // hold a prefix covering the address; else the node's fallback.
                    self.fb = t.word(base + H_FB);
                    self.st = St::Chain(base + HDR);
                    continue;
                }
                St::Leaf { id, chain } => {
                    *out = t.leaf_answer(id, self.key, chain.then_some(self.fb));
                    return true;
                }
            };
            match next {
                Ok(st) => {
                    self.st = st;
                    return false;
                }
                Err(fb) => {
                    *out = t.fallback(self.key, fb);
                    return true;
                }
            }
        }
    }
}

impl<V: Default> FibTrie<V> {
    /// The longest prefix containing `addr`: (prefix, length, value).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<(u32, u8, &V)> {
        let mut w = Walk::at_top(addr, self.top());
        let mut out = None;
        while !w.step(self, &mut out) {}
        out
    }

    /// The node under the pseudo-root.
    #[inline]
    fn top(&self) -> Top {
        let w = self.word(Walk::ROOT_SLOT);
        if w >> 30 != 2 {
            return Top {
                base: 0,
                key: 0,
                pos: 0,
                bits: 0,
            };
        }
        let base = w & S_LOW;
        let pb = self.word(base + H_PB);
        Top {
            base,
            key: self.word(base + H_KEY),
            pos: pb & 0xff,
            bits: (pb >> 8) & 0xff,
        }
    }

    /// The answer a fallback word gives for `key`.
    #[inline]
    fn fallback(&self, key: u32, fb: u32) -> Found<'_, V> {
        fb_decode(fb).map(|(slen, r)| {
            let len = 32 - slen;
            (key & mask(len), len, &self.values[r as usize])
        })
    }

    /// The answer at leaf `id`: its longest prefix covering `key`, else the fallback
    /// (the leaf's own, or `fb` when reached down child 0 of another node).
    #[inline]
    fn leaf_answer(&self, id: u32, key: u32, fb: Option<u32>) -> Found<'_, V> {
        let l = &self.leaves[id as usize];
        match self.covering(id | LEAF, key, |_, _| true) {
            Some((slen, r)) => Some((l.key, 32 - slen, &self.values[r as usize])),
            None => self.fallback(key, fb.unwrap_or(l.fb)),
        }
    }

    /// [`lookup`](Self::lookup) for every address in `keys`, results into `out`
    /// (up to the shorter of the two), as packet-vector forwarders look routes up:
    /// software-pipelined over chunks of 64 addresses so that cache misses overlap.
    /// Each step reads, in one burst of independent loads, every address of the next
    /// chunk's slot in the top node and the next line of every walk still going from
    /// earlier chunks; then it advances those walks by one read (their lines now in
    /// cache) and sorts the new chunk: empty slots answer from their fallback words,
    /// leaves and deeper nodes join the walks in flight. So every burst carries
    /// dozens of misses, where stage-by-stage batches would end each chunk with a few
    /// dependent reads, each paying the memory latency alone.
    pub fn lookup_many<'a>(&'a self, keys: &[u32], out: &mut [Found<'a, V>]) {
        let n = keys.len().min(out.len());
        let top = self.top();
        // Every address has a slot in the top node (the usual case): slot addresses
        // are a shift and an add.
        let whole = top.bits != 0 && top.pos + top.bits == 32;
        let mut at = [0u32; CHUNK];
        let mut words = [0u32; CHUNK];
        let mut fl = Flight::new(top);
        for start in (0..n).step_by(CHUNK) {
            let m = (n - start).min(CHUNK);
            let ks = &keys[start..start + m];
            if whole {
                for (a, &k) in at.iter_mut().zip(ks) {
                    *a = top.base + HDR + ((k ^ top.key) >> top.pos);
                }
            } else {
                for (a, &k) in at.iter_mut().zip(ks) {
                    *a = Walk::top_slot(k, top);
                }
            }
            while fl.live > FLIGHT - CHUNK {
                self.round(&mut fl, out);
            }
            // The burst: loads that do little else, so many misses fit in the
            // core's window at once.
            let arena = self.words();
            for (w, &a) in words.iter_mut().zip(&at[..m]) {
                *w = arena[a as usize];
            }
            self.round(&mut fl, out);
            for (i, (&w, &k)) in words[..m].iter().zip(ks).enumerate() {
                let st = match w >> 30 {
                    0 => {
                        out[start + i] = self.fallback(k, w & S_LOW);
                        continue;
                    }
                    1 => St::Leaf {
                        id: w & S_LOW,
                        chain: false,
                    },
                    _ => St::Hdr(w & S_LOW),
                };
                fl.walks[fl.live] = Walk { key: k, st, fb: 0 };
                fl.out_at[fl.live] = (start + i) as u32;
                fl.live += 1;
            }
        }
        while fl.live > 0 {
            self.round(&mut fl, out);
        }
    }

    /// Touch every walk's next line, then advance each by one read; finished walks
    /// leave the flight.
    fn round<'a>(&'a self, fl: &mut Flight, out: &mut [Found<'a, V>]) {
        let mut acc = 0u32;
        for w in &fl.walks[..fl.live] {
            let p = w.need();
            acc ^= if p & NEED_LEAF != 0 {
                self.leaves[(p & !NEED_LEAF) as usize].key
            } else {
                self.word(p)
            };
        }
        black_box(acc);
        let mut k = 0;
        while k < fl.live {
            if fl.walks[k].step(self, &mut out[fl.out_at[k] as usize]) {
                fl.live -= 1;
                fl.walks.swap(k, fl.live);
                fl.out_at.swap(k, fl.live);
            } else {
                k += 1;
            }
        }
    }
}

/// Walks most a batch holds in flight (a chunk can add [`CHUNK`]); unit tests keep
/// few, so the flight fills up and drains early.
const FLIGHT: usize = if cfg!(test) { CHUNK + 8 } else { 4 * CHUNK };

/// The walks of [`FibTrie::lookup_many`] past their top-node slot, with where each
/// result goes.
struct Flight {
    walks: [Walk; FLIGHT],
    out_at: [u32; FLIGHT],
    live: usize,
}

impl Flight {
    fn new(top: Top) -> Flight {
        Flight {
            walks: std::array::from_fn(|_| Walk::at_top(0, top)),
            out_at: [0; FLIGHT],
            live: 0,
        }
    }
}
