//! The skb allocator: size classes, per-thread magazines and a shared depot, so that
//! steady-state traffic allocates nothing per packet (as the kernel's
//! `skbuff_head_cache` slab plus the NAPI skb cache).
//!
//! Each class keeps whole [`SkbInner`]s (metadata, linear buffer and fragment vector
//! together). A thread allocates from and frees into its own magazine; when it holds too
//! many it hands a full magazine to the depot, and when it runs dry it takes one back. The
//! magazines themselves are recycled, so moving skbs between a sending thread and a
//! softirq thread costs a lock only once per [`MAGAZINE`] skbs and never an allocation.

// The pools hold boxed bodies on purpose: an `Skb` is a pointer to its body, and the
// pool hands out and takes back those very allocations.
#![allow(clippy::vec_box)]

use std::cell::RefCell;

use parking_lot::Mutex;

use super::SkbInner;

/// Linear buffer sizes of the classes: header-only skbs (TCP clones, ACKs), one
/// Ethernet frame with headroom, and a jumbo frame with headroom.
pub const CLASS_SIZES: [usize; 3] = [256, 2048 + 256, 16 * 1024 + 256];

/// How many skbs move between a thread and the depot at once.
pub const MAGAZINE: usize = 64;

/// At most this many full magazines wait in the depot per class; beyond it freed skbs go
/// back to the system allocator (bounded memory).
pub const DEPOT_MAX: usize = 512;

struct Depot {
    full: Vec<Vec<Box<SkbInner>>>,
    empty: Vec<Vec<Box<SkbInner>>>,
}

static DEPOTS: [Mutex<Depot>; 3] = [
    Mutex::new(Depot {
        full: Vec::new(),
        empty: Vec::new(),
    }),
    Mutex::new(Depot {
        full: Vec::new(),
        empty: Vec::new(),
    }),
    Mutex::new(Depot {
        full: Vec::new(),
        empty: Vec::new(),
    }),
];

struct Local {
    classes: [Vec<Box<SkbInner>>; 3],
}

impl Drop for Local {
    fn drop(&mut self) {
        for (class, cache) in self.classes.iter_mut().enumerate() {
            if cache.is_empty() {
                continue;
            }
            let mut depot = DEPOTS[class].lock();
            if depot.full.len() < DEPOT_MAX {
                depot.full.push(std::mem::take(cache));
            }
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            classes: [Vec::new(), Vec::new(), Vec::new()],
        })
    };
}

/// The smallest class whose buffer holds `size` bytes, or `None` when larger than all.
pub fn class_for(size: usize) -> Option<usize> {
    CLASS_SIZES.iter().position(|&c| c >= size)
}

/// Take a recycled skb body of class `class`, or make a new one.
pub(super) fn get(class: usize) -> Box<SkbInner> {
    let recycled = LOCAL
        .try_with(|l| {
            let mut l = l.borrow_mut();
            let cache = &mut l.classes[class];
            if cache.is_empty() {
                let mut depot = DEPOTS[class].lock();
                if let Some(mut mag) = depot.full.pop() {
                    if cache.capacity() < 2 * MAGAZINE {
                        cache.reserve(2 * MAGAZINE - cache.len());
                    }
                    cache.append(&mut mag);
                    depot.empty.push(mag);
                }
            }
            cache.pop()
        })
        .ok()
        .flatten();
    recycled.unwrap_or_else(|| SkbInner::new_boxed(CLASS_SIZES[class], class as u8))
}

/// Give a reset skb body back to its class.
pub(super) fn put(body: Box<SkbInner>) {
    let class = body.class as usize;
    if class >= CLASS_SIZES.len() {
        return; // an odd-sized buffer: freed to the system
    }
    let mut body = Some(body);
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let cache = &mut l.classes[class];
        if cache.capacity() < 2 * MAGAZINE {
            cache.reserve(2 * MAGAZINE - cache.len());
        }
        if let Some(b) = body.take() {
            cache.push(b);
        }
        if cache.len() >= 2 * MAGAZINE {
            let mut depot = DEPOTS[class].lock();
            if depot.full.len() >= DEPOT_MAX {
                cache.truncate(MAGAZINE);
                return;
            }
            let mut mag = depot.empty.pop().unwrap_or_default();
            mag.extend(cache.drain(MAGAZINE..));
            depot.full.push(mag);
        }
    });
}

/// How many skb bodies of each class wait in the shared depot (for tests and `usnet
/// stats`).
pub fn depot_len() -> [usize; 3] {
    let mut out = [0; 3];
    for (i, d) in DEPOTS.iter().enumerate() {
        out[i] = d.lock().full.iter().map(Vec::len).sum();
    }
    out
}
