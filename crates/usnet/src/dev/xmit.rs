//! The transmit half of `net/core/dev.c`: `dev_queue_xmit` → `netdev_pick_tx` →
//! `__dev_xmit_skb` (in [`super::sched`]) → `validate_xmit_skb` →
//! `dev_hard_start_xmit` → `xmit_one` → the driver's `ndo_start_xmit`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::flow::{flow_hash_ipv4, reciprocal_scale};
use super::gso;
use super::rx::{deliver_taps, TapDir, ETH_P_IP};
use super::sched::dev_xmit_skb;
use super::{Features, NetDevice, NetXmit, NetdevQueue, NetdevTx};
use crate::skb::{GsoType, IpSummed, Skb};
use crate::trace::Stage;
use crate::Stack;

/// `dev_queue_xmit`: queue an skb whose `data` starts at its link-layer header for
/// transmission on `dev`.
pub fn dev_queue_xmit(stack: &Stack, dev: &Arc<NetDevice>, mut skb: Skb) -> NetXmit {
    stack
        .trace
        .hit(Stage::DevQueueXmit, skb.trace_id, skb.len(), stack.now());
    skb.ifindex = dev.ifindex;
    if skb.mac_header_offset().is_none() {
        skb.reset_mac_header();
    }
    let q = netdev_pick_tx(dev, &mut skb);
    skb.queue_mapping = q as u16;
    let txq = &dev.txqs[q];
    dev_xmit_skb(stack, skb, &txq.qdisc, dev, txq)
}

/// `netdev_pick_tx`: the transmit queue for this skb. One queue: 0. Several: the flow
/// hash scaled onto the queues (`skb_tx_hash`), so one flow always uses one queue and
/// its packets stay in order.
pub fn netdev_pick_tx(dev: &NetDevice, skb: &mut Skb) -> usize {
    let n = dev.txqs.len();
    if n <= 1 {
        return 0;
    }
    if skb.hash == 0 {
        skb.hash = if skb.protocol == ETH_P_IP || skb.protocol == 0 {
            flow_hash_ipv4(skb.network_header())
        } else {
            1
        };
    }
    reciprocal_scale(skb.hash, n as u32) as usize
}

/// `validate_xmit_skb` over a batch: segment GSO skbs the device cannot take (no TSO,
/// or more segments than `gso_max_segs`) and finish checksums it cannot offload. Skbs
/// that cannot be fixed are dropped and counted.
pub fn validate_xmit_skb(stack: &Stack, dev: &NetDevice, batch: &mut Vec<Skb>) {
    let features = dev.features();
    let needs_work = batch.iter().any(|s| needs_fixup(s, dev, features));
    if !needs_work {
        return;
    }
    let now = stack.now();
    let input = std::mem::take(batch);
    for mut skb in input {
        stack
            .trace
            .hit(Stage::ValidateXmitSkb, skb.trace_id, skb.len(), now);
        if skb.is_gso() && !gso_ok(&skb, dev, features) {
            let hw_csum = features.contains(Features::IP_CSUM);
            match gso::segment(skb, hw_csum, batch) {
                Ok(()) => continue,
                Err((_bad, _e)) => {
                    dev.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        if skb.ip_summed == IpSummed::Partial
            && !features.contains(Features::IP_CSUM)
            && !gso::skb_checksum_help(&mut skb)
        {
            dev.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if skb.is_nonlinear() && !features.contains(Features::SG) {
            skb.linearize();
        }
        batch.push(skb);
    }
}

fn gso_ok(skb: &Skb, dev: &NetDevice, f: Features) -> bool {
    let kind_ok = match skb.gso_type {
        GsoType::TcpV4 => f.contains(Features::TSO),
        GsoType::UdpL4 => f.contains(Features::GSO_UDP_L4),
        GsoType::None => true,
    };
    // gso_features_check: too many segments, or (as since Linux 6.8, against the IPv4
    // size since 6.12) a packet, link header included, not under the device's
    // gso_ipv4_max_size, is segmented in software.
    kind_ok && skb.gso_segs <= dev.gso_max_segs && (skb.len() as u32) < dev.gso_ipv4_max_size()
}

fn needs_fixup(skb: &Skb, dev: &NetDevice, f: Features) -> bool {
    (skb.is_gso() && !gso_ok(skb, dev, f))
        || (skb.ip_summed == IpSummed::Partial && !f.contains(Features::IP_CSUM))
        || (skb.is_nonlinear() && !f.contains(Features::SG))
}

/// `dev_hard_start_xmit`: hand each skb of the batch to `xmit_one`, telling the driver
/// when more follow (`xmit_more`). Stops at a BUSY driver or a stopped queue; what was
/// not sent is left in `batch` (in order) for requeueing.
pub fn dev_hard_start_xmit(
    stack: &Stack,
    dev: &NetDevice,
    txq: &NetdevQueue,
    batch: &mut Vec<Skb>,
) {
    let n = batch.len();
    let mut input = std::mem::take(batch);
    let mut it = input.drain(..);
    let mut sent = 0;
    while let Some(mut skb) = it.next() {
        skb.xmit_more = sent + 1 < n;
        match xmit_one(stack, dev, txq, skb) {
            NetdevTx::Ok => sent += 1,
            NetdevTx::Busy(back) => {
                batch.push(back);
                batch.extend(it.by_ref());
                break;
            }
        }
        if txq.stopped() && sent < n {
            batch.extend(it.by_ref());
            break;
        }
    }
    drop(it);
    if batch.capacity() < input.capacity() {
        std::mem::swap(batch, &mut input);
        batch.append(&mut input);
    }
}

/// `xmit_one`: show the packet to the taps, then call the driver.
pub fn xmit_one(stack: &Stack, dev: &NetDevice, txq: &NetdevQueue, skb: Skb) -> NetdevTx {
    stack
        .trace
        .hit(Stage::XmitOne, skb.trace_id, skb.len(), stack.now());
    deliver_taps(stack, dev, &skb, TapDir::Outgoing);
    dev.ops.start_xmit(skb, dev, txq)
}
