//! Generic receive offload (Linux's `net/core/gro.c`): NAPI merges in-order TCP segments
//! of one flow into a single skb before the stack sees them, and flushes at the end of
//! each poll.
//!
//! This module holds the per-NAPI list; the merge itself is added with TCP's fast
//! path. Until a protocol opts in, `napi_gro_receive` delivers each skb at once.

use std::sync::Arc;

use super::NetDevice;
use crate::skb::Skb;
use crate::trace::Stage;
use crate::Stack;

/// Packets held for merging (Linux's `napi->gro_hash`).
#[derive(Default)]
pub struct GroList {
    held: Vec<(Arc<NetDevice>, Skb)>,
}

impl std::fmt::Debug for GroList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroList({} held)", self.held.len())
    }
}

impl GroList {
    /// Number of held packets.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// `napi_gro_receive`: merge `skb` into a held packet of the same flow, hold it, or
/// deliver it.
pub fn napi_gro_receive(stack: &Stack, _napi: &super::napi::Napi, dev: &Arc<NetDevice>, skb: Skb) {
    stack
        .trace
        .hit(Stage::GroReceive, skb.trace_id, skb.len(), stack.now());
    super::rx::netif_receive_skb(stack, dev, skb);
}

/// `napi_gro_flush`: deliver every held packet.
pub fn napi_gro_flush(stack: &Stack, napi: &super::napi::Napi) {
    let held = {
        let mut g = napi.gro.lock();
        if g.held.is_empty() {
            return;
        }
        std::mem::take(&mut g.held)
    };
    for (dev, skb) in held {
        super::rx::netif_receive_skb(stack, &dev, skb);
    }
}
