//! The emulated NIC hardware: what igb's silicon does between the doorbell and the
//! interrupt.
//!
//! Transmit (`VnicShared::hw_tx`): on a tail write, walk descriptors from the
//! hardware head to the tail packet by packet (a context descriptor, then data
//! descriptors up to EOP), put the packets on the wire — a TSO packet as the train of
//! frames its MSS cuts it into, which the wire keeps whole for a receiver that
//! coalesces in hardware and cuts otherwise ([`crate::link`]) — write DD back into the
//! EOP descriptor and raise the queue's interrupt.
//! The driver keeps the socket's charge until it cleans the descriptor, exactly when
//! igb would free the skb; the buffer itself travels on (the emulated DMA does not copy).
//!
//! Receive (`VnicShared::hw_rx`): when frames arrive at the port, verify their
//! checksums (RXCSUM), hash them (RSS, through a 128-entry indirection table) onto a
//! queue, and write each into the next posted descriptor of that queue's ring — or drop
//! it and count `rx_no_buffer_count` when the driver has not posted one — then raise the
//! interrupts of the queues that got frames. With `rx-gro-hw` on, a TSO train that
//! crossed the wire whole is written as the one coalesced packet hardware GRO would
//! build from its frames (GSO size and type kept, so TCP and forwarding see what they
//! would see after software GRO).

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use usnet_wire::checksum::{self, Accumulator};

use super::ring::{cmd, status, TxDescKind, TxRing};
use super::{VnicShared, RETA_SIZE};
use crate::dev::flow::flow_hash_ipv4;
use crate::dev::gso::{skb_checksum, skb_checksum_help};
use crate::dev::Features;
use crate::skb::{IpSummed, Skb};
use crate::time::Instant;
use crate::trace::Stage;

impl VnicShared {
    /// The hardware's transmit engine, run at a doorbell with the ring held.
    pub(super) fn hw_tx(&self, q: usize, ring: &mut TxRing) {
        let mut frames = std::mem::take(&mut ring.hw_scratch);
        let mut sent_frames = 0u64;
        let mut done_any = false;
        let rate = self.cfg.line_rate_bps;
        let stack = if rate > 0 {
            self.stack.get().and_then(|s| s.upgrade())
        } else {
            None
        };
        let now = match &stack {
            Some(s) => s.now(),
            None => Instant::ZERO,
        };
        while ring.hw_head != ring.tail {
            if rate > 0 && ring.phy_busy_until > now {
                // The PHY is still sending: come back when it is free.
                if let (Some(s), Some(t)) = (&stack, self.tx_timers.get().and_then(|t| t.get(q))) {
                    s.timers.arm_earliest(t, ring.phy_busy_until);
                }
                break;
            }
            let first = ring.hw_head;
            let mut i = first;
            let eop = loop {
                let d = ring.desc[i];
                if matches!(d.kind, TxDescKind::Data { .. }) && d.cmd & cmd::EOP != 0 {
                    break Some(i);
                }
                i = ring.next(i);
                if i == ring.tail {
                    break None;
                }
            };
            let Some(eop) = eop else {
                break;
            };
            ring.hw_head = ring.next(eop);
            if let Some(mut skb) = ring.buf[first].skb.take() {
                sent_frames += u64::from(ring.buf[first].gso_segs.max(1));
                ring.buf[first].charge = skb.take_owner();
                if rate > 0 {
                    // Serialization of every frame this packet becomes, with preamble,
                    // FCS and inter-frame gap (24 bytes each).
                    let wire_bytes = u64::from(ring.buf[first].bytecount)
                        + 24 * u64::from(ring.buf[first].gso_segs.max(1));
                    let ns = (u128::from(wire_bytes) * 8 * 1_000_000_000 / u128::from(rate)) as u64;
                    ring.phy_busy_until =
                        ring.phy_busy_until.max(now) + std::time::Duration::from_nanos(ns);
                }
                frames.push(skb);
            }
            if ring.desc[eop].cmd & cmd::RS != 0 {
                ring.desc[eop].status |= status::DD;
            }
            done_any = true;
        }
        if done_any {
            if let Some(qv) = self.q_vector(q) {
                qv.raise();
            }
        }
        self.stats
            .hw_tx_frames
            .fetch_add(sent_frames, Ordering::Relaxed);
        if let (Some(t), Some(c)) = (self.trace.get(), self.clock.get()) {
            if t.enabled() {
                let now = c.now();
                for f in &frames {
                    t.hit(Stage::HwTx, f.trace_id, f.len(), now);
                }
            }
        }
        match self.port.get() {
            Some((wire, port)) => wire.transmit(*port, &mut frames),
            None => frames.clear(),
        }
        ring.hw_scratch = frames;
    }

    /// The hardware's receive engine: move every frame that has arrived by `now` from
    /// the port into posted descriptors, and raise the interrupts of the queues that got
    /// frames. Runs when an interrupt-driven poll finds the receive kick set (the frames
    /// were DMA'd since the last poll) — between polls the driver frees no descriptor,
    /// so deciding drops here is the same as deciding them at each arrival.
    pub(super) fn hw_rx(&self, now: Instant) {
        let Some((wire, port)) = self.port.get() else {
            return;
        };
        let dev = self.device();
        let rxcsum = dev
            .as_ref()
            .is_some_and(|d| d.features().contains(Features::RXCSUM));
        let tracer = self.trace.get().filter(|t| t.enabled());
        let mut raised: u64 = 0;
        let (mut got, mut missed, mut coalesced, mut coalesced_frames) = (0u64, 0u64, 0u64, 0u64);
        let mut cur: Option<(usize, parking_lot::MutexGuard<'_, super::ring::RxRing>)> = None;
        let next = wire.pull(*port, now, |mut frame, frames, wire_bytes| {
            if let Some(t) = tracer {
                t.hit(Stage::Wire, frame.trace_id, frame.len(), now);
            }
            let (hash, csum) = self.classify(&mut frame, rxcsum);
            let q = if self.cfg.queues > 1 {
                usize::from(self.reta[hash as usize % RETA_SIZE])
            } else {
                0
            };
            let trace_id = frame.trace_id;
            // The descriptor's length counts what arrived on the wire: for a whole TSO
            // train, the packet hardware GRO builds from its frames, every frame.
            let len = wire_bytes.min(u64::from(u32::MAX)) as u32;
            if frame.is_gso() {
                frame.reset_for_rx_keep_csum(now);
                frame.gso_segs = frames.min(u64::from(u16::MAX)) as u16;
            } else {
                frame.reset_for_rx(now);
            }
            if cur.as_ref().is_none_or(|(cq, _)| *cq != q) {
                cur = None;
                cur = Some((q, self.rx[q].lock()));
            }
            let Some((_, ring)) = cur.as_mut() else {
                return;
            };
            if ring.hw_free() == 0 {
                ring.stats.drops += frames;
                missed += frames;
                return;
            }
            let i = ring.hw_next;
            ring.buf[i] = Some(frame);
            ring.desc[i].status = status::DD | status::EOP | csum;
            ring.desc[i].len = len;
            ring.desc[i].rss_hash = hash;
            ring.hw_next = ring.next(i);
            got += frames;
            if frames > 1 {
                coalesced += 1;
                coalesced_frames += frames;
            }
            if let Some(t) = tracer {
                t.hit(Stage::HwRx, trace_id, len as usize, now);
            }
            raised |= 1 << q;
        });
        drop(cur);
        if got > 0 {
            self.stats.hw_rx_frames.fetch_add(got, Ordering::Relaxed);
        }
        if coalesced > 0 {
            self.stats
                .rx_hw_gro_packets
                .fetch_add(coalesced, Ordering::Relaxed);
            self.stats
                .rx_hw_gro_wire_packets
                .fetch_add(coalesced_frames, Ordering::Relaxed);
        }
        if missed > 0 {
            self.stats
                .rx_no_buffer_count
                .fetch_add(missed, Ordering::Relaxed);
            if let Some(d) = &dev {
                d.stats
                    .rx_missed_errors
                    .fetch_add(missed, Ordering::Relaxed);
            }
        }
        for q in 0..self.cfg.queues {
            if raised & (1 << q) != 0 {
                if let Some(qv) = self.q_vector(q) {
                    qv.raise();
                }
            }
        }
        if let (Some(t), Some(timer)) = (next, self.phy.rx_timer.get()) {
            if let Some(stack) = self.stack.get().and_then(|s| s.upgrade()) {
                stack.timers.arm_earliest(timer, t);
            }
        }
    }

    /// Run the receive engine if frames were kicked in.
    pub(super) fn hw_rx_if_kicked(&self, now: Instant) {
        if self.phy.rx_pending.swap(false, Ordering::AcqRel) {
            self.hw_rx(now);
        }
    }

    /// RSS hash and checksum status of an arriving frame. A frame whose checksum was
    /// offloaded by the sender crossed intact: good. Otherwise verify the IPv4 header
    /// and TCP/UDP checksums when RXCSUM is on; when it is off, finish any offloaded
    /// checksum so the stack can verify the bytes itself.
    fn classify(&self, frame: &mut Skb, rxcsum: bool) -> (u32, u8) {
        let data = frame.data();
        let is_ip = data.len() >= 34 && data[12] == 0x08 && data[13] == 0x00;
        let hash = if is_ip {
            flow_hash_ipv4(&data[14..])
        } else {
            0
        };
        if !rxcsum {
            if frame.ip_summed == IpSummed::Partial {
                skb_checksum_help(frame);
            }
            return (hash, 0);
        }
        if frame.ip_summed == IpSummed::Partial {
            return (hash, status::L4_OK | status::PARTIAL);
        }
        if !is_ip {
            return (hash, 0);
        }
        (hash, verify_l4(frame))
    }
}

/// Verify the IPv4 header checksum and the TCP/UDP checksum of an Ethernet frame.
fn verify_l4(frame: &Skb) -> u8 {
    let d = frame.data();
    let ip = &d[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return 0;
    }
    if checksum::checksum(&ip[..ihl]) != 0 {
        return status::L4_ERR;
    }
    let proto = ip[9];
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if frag || (proto != 6 && proto != 17) {
        return 0;
    }
    // A coalesced BIG TCP packet's total length reads 0: its length is the frame's.
    let tot = crate::ipv4::iph_totlen_at(frame, 14);
    if tot < ihl || 14 + tot > frame.len() {
        return status::L4_ERR;
    }
    let l4_len = tot - ihl;
    if proto == 17 && ip.len() >= ihl + 8 && ip[ihl + 6] == 0 && ip[ihl + 7] == 0 {
        return status::L4_OK; // UDP without checksum
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let mut acc =
        Accumulator::with_initial(checksum::pseudo_header_v4(&src, &dst, proto, l4_len as u32));
    skb_checksum(frame, 14 + ihl, l4_len, &mut acc);
    if acc.finish() == 0 {
        status::L4_OK
    } else {
        status::L4_ERR
    }
}
