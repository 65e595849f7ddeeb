//! The `afpacket` driver: an `AF_PACKET` socket with memory-mapped rings
//! (`PACKET_RX_RING` / `PACKET_TX_RING`, `TPACKET_V3`) on a veth end or a real
//! interface. The kernel's ring buffer plays the NIC's descriptor ring: a status word
//! in shared memory says who owns each slot, as the DD ("descriptor done") bit does on
//! an igb ring, and nothing is copied through `read`/`write`.
//!
//! # Ring layout
//!
//! One socket carries both rings, and one `mmap` covers them, receive ring first:
//!
//! ```text
//!  offset 0                                   RX_BLOCKS × RX_BLOCK         + TX ring
//!  ┌──────────┬──────────┬─────┬──────────┬──────┬──────┬──────┬─────┬──────┐
//!  │ RX blk 0 │ RX blk 1 │ ... │ RX blk15 │ TX 0 │ TX 1 │ TX 2 │ ... │ TX n │
//!  └──────────┴──────────┴─────┴──────────┴──────┴──────┴──────┴─────┴──────┘
//!    256 KiB each (TPACKET_V3 blocks)        2 KiB frames (tpacket3_hdr + frame)
//! ```
//!
//! **Receive** (`TPACKET_V3`): the kernel packs packets into the current block
//! (`tpacket_block_desc`, then one `tpacket3_hdr` + frame per packet, chained by
//! `tp_next_offset`) and *retires* the block when it is full or when the retire timer
//! (`tp_retire_blk_tov`, 1 ms) fires with packets in it: it then sets
//! `block_status = TP_STATUS_USER` — the DD bit — and wakes `poll`. The reader thread
//! (this driver's "interrupt") walks blocks in ring order while their status has
//! `TP_STATUS_USER`, turns each packet into an skb (`eth_type_trans`, `netif_rx`), and
//! hands the block back with `block_status = TP_STATUS_KERNEL` (a release store: every
//! read of the block happens before the kernel may refill it). Lengths and offsets in
//! a block are checked against the block's size before use; a block that does not
//! add up is counted in `rx_errors`, never trusted.
//!
//! **Transmit** (`TPACKET_V3` TX ring, fixed-size frames — Linux ≥ 4.11; the driver
//! needs ≥ 4.20 anyway for `PACKET_IGNORE_OUTGOING`): `start_xmit` takes the next
//! frame in ring order whose `tp_status` is `TP_STATUS_AVAILABLE` (the descriptor is
//! free), copies the skb's pieces after the 48-byte header, sets `tp_len`, and
//! publishes it with a release store of `TP_STATUS_SEND_REQUEST` (the tail bump). The
//! doorbell is `send(fd, NULL, 0, MSG_DONTWAIT)`, rung once per batch (not while
//! `skb.xmit_more` says more follow). The kernel builds skbs around the frame's pages
//! (`TP_STATUS_SENDING`) and, when the last reference is freed, sets the frame back
//! to `TP_STATUS_AVAILABLE` — the transmit completion. When the next frame is not free
//! the queue is stopped (`netif_tx_stop_queue`, counted in `tx_ring_full`) and the
//! reader thread, woken through an eventfd, watches the ring and wakes the queue once a
//! quarter of it is free again. A frame the kernel could not take at the kick (socket
//! send buffer exhausted) stays `TP_STATUS_SEND_REQUEST`; the thread rings again.
//! `PACKET_LOSS` is set so a frame the kernel refuses is skipped (marked available)
//! instead of stalling the ring with `TP_STATUS_WRONG_FORMAT`.
//!
//! Frames the socket sends are not read back (`PACKET_IGNORE_OUTGOING`), and the
//! interface is put in promiscuous mode for the socket's lifetime
//! (`PACKET_MR_PROMISC`): usnet has its own MAC address, which a real NIC would
//! otherwise filter out.
//!
//! The device has no offloads but scatter-gather: the kernel on the other side must
//! send MTU-sized frames (on a veth: `ethtool -K vk0 tso off gso off`). Frames whose
//! checksum the sending kernel left to an offload (`TP_STATUS_CSUMNOTREADY`, veth with
//! `tx` checksumming on) arrive as `CHECKSUM_PARTIAL` with the checksum position
//! filled in, as Linux hands them to its own stack. The stack must run in real time
//! ([`crate::Stack::start`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet_wire::EthernetAddress;

use crate::dev::backlog::netif_rx;
use crate::dev::rx::eth_type_trans;
use crate::dev::{Features, NetDevice, NetDeviceConfig, NetDeviceOps, NetdevQueue, NetdevTx};
use crate::skb::{IpSummed, Skb};
use crate::time::Instant;
use crate::Stack;

// ----- linux/if_packet.h (defined here: older `libc` releases lack them) -----

/// `PACKET_ADD_MEMBERSHIP`.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
/// `PACKET_RX_RING`.
const PACKET_RX_RING: libc::c_int = 5;
/// `PACKET_STATISTICS`.
const PACKET_STATISTICS: libc::c_int = 6;
/// `PACKET_VERSION`.
const PACKET_VERSION: libc::c_int = 10;
/// `PACKET_TX_RING`.
const PACKET_TX_RING: libc::c_int = 13;
/// `PACKET_LOSS`.
const PACKET_LOSS: libc::c_int = 14;
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `PACKET_MR_PROMISC`.
const PACKET_MR_PROMISC: libc::c_ushort = 1;
/// `TPACKET_V3` (enum tpacket_versions).
const TPACKET_V3: libc::c_int = 2;

/// `TP_STATUS_KERNEL`: the block (RX) belongs to the kernel.
const TP_STATUS_KERNEL: u32 = 0;
/// `TP_STATUS_USER`: the block (RX) was retired to user space — the DD bit.
const TP_STATUS_USER: u32 = 1;
/// `TP_STATUS_CSUMNOTREADY`: the packet's transport checksum is left to an offload.
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `TP_STATUS_VLAN_VALID`: a VLAN tag was stripped into the header.
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_GSO_TCP` (Linux 6.3): the packet is a TCP GSO packet (GRO built it), whose
/// IPv4 total length may read 0 (BIG TCP).
const TP_STATUS_GSO_TCP: u32 = 1 << 8;
/// `TP_STATUS_AVAILABLE`: the TX frame is free.
const TP_STATUS_AVAILABLE: u32 = 0;
/// `TP_STATUS_SEND_REQUEST`: the TX frame waits for the kernel.
const TP_STATUS_SEND_REQUEST: u32 = 1;

/// `sizeof(struct tpacket_block_desc)`: where a block's packets may start at the
/// earliest. Fields used: `block_status` at 8, `num_pkts` at 12,
/// `offset_to_first_pkt` at 16.
const BLOCK_DESC_LEN: usize = 48;
const BLOCK_STATUS_OFF: usize = 8;
const BLOCK_NUM_PKTS_OFF: usize = 12;
const BLOCK_FIRST_PKT_OFF: usize = 16;
/// `sizeof(struct tpacket3_hdr)`, and `TPACKET_ALIGN` of it: where a TX frame's data
/// starts (`tp_hdrlen - sizeof(struct sockaddr_ll)`).
const TP3_HDR_LEN: usize = 48;
/// `tpacket3_hdr` field offsets.
const TP3_NEXT_OFFSET: usize = 0;
const TP3_SNAPLEN: usize = 12;
const TP3_LEN: usize = 16;
const TP3_STATUS: usize = 20;
const TP3_MAC: usize = 24;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TpacketReq3 {
    tp_block_size: libc::c_uint,
    tp_block_nr: libc::c_uint,
    tp_frame_size: libc::c_uint,
    tp_frame_nr: libc::c_uint,
    tp_retire_blk_tov: libc::c_uint,
    tp_sizeof_priv: libc::c_uint,
    tp_feature_req_word: libc::c_uint,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TpacketStatsV3 {
    tp_packets: libc::c_uint,
    tp_drops: libc::c_uint,
    tp_freeze_q_cnt: libc::c_uint,
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

// ----- ring geometry -----

/// Receive block size: 256 KiB (a multiple of any page size Linux uses).
const RX_BLOCK: usize = 256 * 1024;
/// Receive blocks: 16 (4 MiB of ring).
const RX_BLOCKS: usize = 16;
/// Nominal receive frame size (`tp_frame_size`; V3 packs packets by their length).
const RX_FRAME: usize = 2048;
/// A receive block is retired after this many milliseconds with packets in it.
const RX_RETIRE_TOV_MS: u32 = 1;
/// Transmit frames wanted (the ring's depth, as a NIC's TX descriptor count).
const TX_FRAMES: usize = 128;
/// Transmit block size (frames are fixed-size inside blocks).
const TX_BLOCK: usize = 128 * 1024;
/// Socket send buffer asked for: the kernel charges every frame in flight to it, and
/// a full ring must fit or frames wait for a second kick.
const TX_SNDBUF: libc::c_int = 1 << 20;
/// Packets handed to the stack between checks of its input backlog.
const RX_BACKLOG_CHECK: usize = 32;
/// How long the reader sleeps when the input backlog is more than half full (the ring
/// holds the rest, as a NIC's ring holds frames while NAPI is behind).
const RX_BACKLOG_WAIT: Duration = Duration::from_micros(50);
/// At most this long waiting for the backlog per block, then deliver anyway (drops are
/// counted by `netif_rx`).
const RX_BACKLOG_MAX_WAIT: Duration = Duration::from_millis(20);
/// Poll timeout while the transmit ring needs watching (queue stopped, frames waiting).
const TX_WATCH: Duration = Duration::from_micros(200);
/// Poll timeout otherwise.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Sizes of both rings, as requested from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    rx_block: usize,
    rx_blocks: usize,
    tx_block: usize,
    tx_blocks: usize,
    tx_frame: usize,
}

impl Geometry {
    /// Rings for an interface with `mtu`: TX frames hold a header and one MTU-sized
    /// Ethernet frame (with room for a VLAN tag), rounded up to a power of two.
    fn for_mtu(mtu: usize) -> Geometry {
        let tx_frame = (TP3_HDR_LEN + 14 + 4 + mtu)
            .next_power_of_two()
            .clamp(2048, 64 * 1024);
        let tx_block = TX_BLOCK.max(tx_frame);
        let tx_blocks = (TX_FRAMES * tx_frame).div_ceil(tx_block).max(1);
        let rx_block = RX_BLOCK.max((tx_frame * 2).next_power_of_two());
        Geometry {
            rx_block,
            rx_blocks: RX_BLOCKS,
            tx_block,
            tx_blocks,
            tx_frame,
        }
    }

    fn rx_len(&self) -> usize {
        self.rx_block * self.rx_blocks
    }

    fn tx_len(&self) -> usize {
        self.tx_block * self.tx_blocks
    }

    fn map_len(&self) -> usize {
        self.rx_len() + self.tx_len()
    }

    fn frames_per_tx_block(&self) -> usize {
        self.tx_block / self.tx_frame
    }

    fn tx_frames(&self) -> usize {
        self.frames_per_tx_block() * self.tx_blocks
    }

    /// Largest Ethernet frame a TX slot holds.
    fn tx_room(&self) -> usize {
        self.tx_frame - TP3_HDR_LEN
    }

    /// Offset of receive block `b` in the mapping.
    fn rx_block_off(&self, b: usize) -> usize {
        b * self.rx_block
    }

    /// Offset of transmit frame `i` in the mapping (as the kernel's
    /// `packet_lookup_frame`: block, then frame within it).
    fn tx_frame_off(&self, i: usize) -> usize {
        let fpb = self.frames_per_tx_block();
        self.rx_len() + (i / fpb) * self.tx_block + (i % fpb) * self.tx_frame
    }

    fn rx_req(&self) -> TpacketReq3 {
        TpacketReq3 {
            tp_block_size: self.rx_block as u32,
            tp_block_nr: self.rx_blocks as u32,
            tp_frame_size: RX_FRAME as u32,
            tp_frame_nr: (self.rx_block / RX_FRAME * self.rx_blocks) as u32,
            tp_retire_blk_tov: RX_RETIRE_TOV_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        }
    }

    /// The TX ring request: V3 transmit rings take no retire timer, private area or
    /// feature word (the kernel refuses them).
    fn tx_req(&self) -> TpacketReq3 {
        TpacketReq3 {
            tp_block_size: self.tx_block as u32,
            tp_block_nr: self.tx_blocks as u32,
            tp_frame_size: self.tx_frame as u32,
            tp_frame_nr: self.tx_frames() as u32,
            ..TpacketReq3::default()
        }
    }
}

// ----- the shared mapping -----

/// The socket, its mapped rings and the reader's wakeup eventfd. Shared by the driver
/// and its reader thread; unmapped when the last holder goes.
struct Ring {
    fd: OwnedFd,
    /// eventfd the transmit path and `stop` write to wake the reader.
    efd: OwnedFd,
    base: *mut u8,
    geo: Geometry,
    /// Index of the last TX frame handed to the kernel (`usize::MAX`: none yet).
    tx_last: AtomicUsize,
    /// The next RX block to look at (the kernel's order), kept across reader restarts.
    rx_next: AtomicUsize,
}

// SAFETY: `base` points at a MAP_SHARED mapping that lives as long as the Ring. All
// access to shared words (block and frame status) goes through atomics; packet bytes
// are only touched by the side that owns the slot by its status word, and the TX
// producer is serialised by the driver's `tx` mutex.
unsafe impl Send for Ring {}
// SAFETY: as for Send: concurrent users coordinate through the status atomics.
unsafe impl Sync for Ring {}

impl Ring {
    /// The status word at byte `off` of the mapping.
    fn status_at(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.geo.map_len());
        // SAFETY: in bounds of the live mapping (checked above) and 4-byte aligned (the
        // mapping is page-aligned); AtomicU32 has the layout of u32, and the kernel
        // side updates these words with WRITE_ONCE/READ_ONCE.
        unsafe { &*self.base.add(off).cast::<AtomicU32>() }
    }

    /// `block_status` of receive block `b`.
    fn rx_status(&self, b: usize) -> &AtomicU32 {
        self.status_at(self.geo.rx_block_off(b) + BLOCK_STATUS_OFF)
    }

    /// `tp_status` of transmit frame `i`.
    fn tx_status(&self, i: usize) -> &AtomicU32 {
        self.status_at(self.geo.tx_frame_off(i) + TP3_STATUS)
    }

    /// Receive block `b`'s bytes. The caller must own the block (its status has
    /// `TP_STATUS_USER`) for as long as it holds the slice.
    fn rx_block(&self, b: usize) -> &[u8] {
        let off = self.geo.rx_block_off(b);
        assert!(off + self.geo.rx_block <= self.geo.map_len());
        // SAFETY: in bounds of the live mapping. The block was retired to us (status
        // TP_STATUS_USER, read with acquire); the kernel does not write it until we
        // store TP_STATUS_KERNEL, which the caller does only after the slice is gone.
        unsafe { std::slice::from_raw_parts(self.base.add(off), self.geo.rx_block) }
    }

    /// Whether `count` transmit frames from `from` on are all free.
    fn tx_free_ahead(&self, from: usize, count: usize) -> bool {
        let n = self.geo.tx_frames();
        (0..count.min(n))
            .all(|k| self.tx_status((from + k) % n).load(Ordering::Acquire) == TP_STATUS_AVAILABLE)
    }

    /// The next TX frame to use, after the last one handed over.
    fn tx_next(&self) -> usize {
        match self.tx_last.load(Ordering::Acquire) {
            usize::MAX => 0,
            i => (i + 1) % self.geo.tx_frames(),
        }
    }

    /// Whether the last frame handed over still waits for the kernel to take it.
    fn tx_waiting(&self) -> bool {
        match self.tx_last.load(Ordering::Acquire) {
            usize::MAX => false,
            i => self.tx_status(i).load(Ordering::Acquire) == TP_STATUS_SEND_REQUEST,
        }
    }

    /// Ring the doorbell: the kernel sends every frame marked `TP_STATUS_SEND_REQUEST`
    /// from its head on, without waiting for completions.
    fn kick(&self) -> io::Result<()> {
        // SAFETY: a zero-length send with no buffer; the kernel reads the TX ring.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Wake the reader thread.
    fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd (an eventfd write);
        // failure (counter saturated) still leaves it readable.
        let _ = unsafe { libc::write(self.efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clear the eventfd's counter.
    fn drain_notify(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
        let _ = unsafe { libc::read(self.efd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `AfPacket::open`; no reference
        // into it outlives the Ring (the reader thread holds the Ring itself).
        unsafe {
            libc::munmap(self.base.cast(), self.geo.map_len());
        }
    }
}

// ----- receive-side parsing (pure, over a block's bytes) -----

/// Why a received packet (or the rest of its block) was refused.
#[derive(Debug, PartialEq, Eq)]
enum RxError {
    /// A header or frame offset outside the block: the rest of the block is skipped.
    BadLayout,
    /// Only part of the packet is in the ring (`tp_snaplen < tp_len`).
    Truncated,
    /// Shorter than an Ethernet header.
    Short,
    /// The checksum is left to finish, but not in a place this driver can describe.
    BadCsum,
    /// A stripped VLAN tag: traffic of a VLAN usnet is not on.
    Vlan,
}

/// One packet in a retired block: its frame's position and the per-packet status.
#[derive(Debug, PartialEq, Eq)]
struct RxPacket {
    start: usize,
    len: usize,
    status: u32,
}

fn rd32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn rd16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

/// Walk the packets of a retired block, calling `f` for each (or for the layout error
/// that ends the walk). Every offset and length is checked against the block.
fn walk_block(block: &[u8], mut f: impl FnMut(Result<RxPacket, RxError>)) {
    let (Some(num), Some(first)) = (
        rd32(block, BLOCK_NUM_PKTS_OFF),
        rd32(block, BLOCK_FIRST_PKT_OFF),
    ) else {
        f(Err(RxError::BadLayout));
        return;
    };
    // Each packet takes at least its header: bound the loop by the block's size.
    let num = (num as usize).min(block.len() / TP3_HDR_LEN);
    let mut off = first as usize;
    for k in 0..num {
        if off < BLOCK_DESC_LEN || off.saturating_add(TP3_HDR_LEN) > block.len() {
            f(Err(RxError::BadLayout));
            return;
        }
        let (Some(next), Some(snaplen), Some(len), Some(status), Some(mac)) = (
            rd32(block, off + TP3_NEXT_OFFSET),
            rd32(block, off + TP3_SNAPLEN),
            rd32(block, off + TP3_LEN),
            rd32(block, off + TP3_STATUS),
            rd16(block, off + TP3_MAC),
        ) else {
            f(Err(RxError::BadLayout));
            return;
        };
        let start = off + usize::from(mac);
        let end = start.checked_add(snaplen as usize);
        match end {
            Some(end) if usize::from(mac) >= TP3_HDR_LEN && end <= block.len() => {
                if snaplen < len {
                    f(Err(RxError::Truncated));
                } else {
                    f(Ok(RxPacket {
                        start,
                        len: snaplen as usize,
                        status,
                    }));
                }
            }
            _ => {
                f(Err(RxError::BadLayout));
                return;
            }
        }
        if k + 1 < num {
            if next == 0 {
                f(Err(RxError::BadLayout));
                return;
            }
            off = off.saturating_add(next as usize);
        }
    }
}

/// Where an IPv4 TCP or UDP frame's checksum is: (start from the frame's first byte,
/// offset of the field from there).
fn partial_csum_position(frame: &[u8]) -> Option<(usize, u16)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let off = match *frame.get(14 + 9)? {
        6 => 16,
        17 => 6,
        _ => return None,
    };
    let start = 14 + ihl;
    (start + usize::from(off) + 2 <= frame.len()).then_some((start, off))
}

/// Copy one received frame into an skb, as a NIC driver's copy-break: the block goes
/// back to the kernel right after.
fn rx_frame_to_skb(frame: &[u8], status: u32, now: Instant) -> Result<Skb, RxError> {
    if frame.len() < 14 {
        return Err(RxError::Short);
    }
    if status & TP_STATUS_VLAN_VALID != 0 {
        return Err(RxError::Vlan);
    }
    let mut skb = Skb::from_slice(frame, 64);
    skb.reset_for_rx(now);
    if status & TP_STATUS_CSUMNOTREADY != 0 {
        // The sender's kernel left the checksum to an offload that never ran (a veth
        // with tx checksumming): the frame is CHECKSUM_PARTIAL, as Linux's own stack
        // takes it. Non-IPv4 frames are left for software to judge.
        if frame[12..14] == [0x08, 0x00] {
            let (start, off) = partial_csum_position(frame).ok_or(RxError::BadCsum)?;
            skb.ip_summed = IpSummed::Partial;
            skb.csum_start = (skb.data_offset() + start) as u16;
            skb.csum_offset = off;
        }
    }
    Ok(skb)
}

/// A frame the kernel flagged `TP_STATUS_GSO_TCP` becomes a TCP GSO skb, with the
/// segment size a sender on this link of `mtu` would use (the ring carries no
/// `gso_size`), so IP takes a BIG TCP packet's length from the frame (`iph_totlen`)
/// and TCP counts its segments.
fn mark_gso_tcp(skb: &mut Skb, status: u32, mtu: u32) {
    if status & TP_STATUS_GSO_TCP == 0 {
        return;
    }
    let d = skb.data();
    if d.len() < 14 + 40 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 || d[14 + 9] != 6 {
        return;
    }
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let Some(thl) = d.get(14 + ihl + 12).map(|b| usize::from(b >> 4) * 4) else {
        return;
    };
    let mss = (mtu as usize).saturating_sub(ihl + thl);
    let payload = skb.len().saturating_sub(14 + ihl + thl);
    if mss == 0 || payload == 0 {
        return;
    }
    skb.gso_type = crate::skb::GsoType::TcpV4;
    skb.gso_size = mss.min(usize::from(u16::MAX)) as u16;
    skb.gso_segs = payload.div_ceil(mss).min(0xffff) as u16;
}

/// Copy `chunks` into `dst`; `None` when they do not fit.
fn copy_chunks<'a>(dst: &mut [u8], chunks: impl Iterator<Item = &'a [u8]>) -> Option<usize> {
    let mut at = 0usize;
    for c in chunks {
        let end = at.checked_add(c.len())?;
        dst.get_mut(at..end)?.copy_from_slice(c);
        at = end;
    }
    Some(at)
}

// ----- the driver -----

/// Counters (`ethtool -S`).
#[derive(Default, Debug)]
struct AfpStats {
    rx_frames: AtomicU64,
    rx_blocks: AtomicU64,
    rx_errors: AtomicU64,
    /// Frames that arrived with their checksum left to finish (`TP_STATUS_CSUMNOTREADY`).
    rx_csum_partial: AtomicU64,
    /// Times the reader waited for the stack's input backlog to drain.
    rx_backlog_waits: AtomicU64,
    tx_frames: AtomicU64,
    /// Times the TX ring was full (queue stopped or a transmit refused).
    tx_ring_full: AtomicU64,
    tx_errors: AtomicU64,
    /// Doorbells rung (`send`).
    tx_kicks: AtomicU64,
    /// Doorbells the reader rang again for frames the kernel had not taken.
    tx_rekicks: AtomicU64,
    /// Times the reader woke the stopped queue.
    tx_wakes: AtomicU64,
    /// The kernel's `PACKET_STATISTICS`, accumulated (reading them resets them).
    tp_packets: AtomicU64,
    tp_drops: AtomicU64,
    tp_freeze_q_cnt: AtomicU64,
}

/// Transmit producer state (the ring's tail), under the driver's lock.
#[derive(Debug, Default)]
struct TxState {
    /// Next frame to fill.
    next: usize,
}

/// An `AF_PACKET` driver instance: one socket with mmap'd `TPACKET_V3` rings, bound to
/// one interface.
pub struct AfPacket {
    ring: Arc<Ring>,
    name: String,
    mtu: u32,
    tx: parking_lot::Mutex<TxState>,
    reader: super::RxThread,
    stats: Arc<AfpStats>,
}

impl std::fmt::Debug for AfPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacket")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("geometry", &self.ring.geo)
            .finish()
    }
}

fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// `setsockopt(fd, level, opt, &val)`.
fn setopt<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, val: &T) -> libc::c_int {
    // SAFETY: `val` is a live, initialised value of the size we pass; the kernel only
    // reads it.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

impl AfPacket {
    /// Open interface `ifname` of the calling thread's network namespace: an
    /// `AF_PACKET` socket with its rings set up and mapped, bound to the interface.
    /// Needs CAP_NET_RAW.
    pub fn open(ifname: &str) -> io::Result<Arc<AfPacket>> {
        let cname = CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "interface name {ifname:?} must be 1..{} bytes",
                    libc::IFNAMSIZ - 1
                ),
            ));
        }
        // SAFETY: a NUL-terminated name; the call only reads it.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {ifname:?} (see ip link)"),
            ));
        }
        // Protocol 0: no packets are queued until the rings exist and `bind` names
        // the protocol and the interface.
        // SAFETY: plain socket(2); the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET) (needs root or CAP_NET_RAW)"));
        }
        // SAFETY: `raw` is a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mtu = if_mtu(raw, ifname)?;
        let geo = Geometry::for_mtu(mtu as usize);

        let v3: libc::c_int = TPACKET_V3;
        if setopt(raw, libc::SOL_PACKET, PACKET_VERSION, &v3) < 0 {
            return Err(os_err("PACKET_VERSION TPACKET_V3"));
        }
        // A frame the kernel refuses is skipped rather than left WRONG_FORMAT, which
        // would stop the TX ring for good. Must precede the rings.
        let one: libc::c_int = 1;
        if setopt(raw, libc::SOL_PACKET, PACKET_LOSS, &one) < 0 {
            return Err(os_err("PACKET_LOSS"));
        }
        if setopt(raw, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one) < 0 {
            return Err(os_err("PACKET_IGNORE_OUTGOING (Linux >= 4.20 needed)"));
        }
        // Room for the whole TX ring in flight: SO_SNDBUFFORCE as root, else what
        // wmem_max allows. Either failing only means an extra doorbell at times.
        if setopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &TX_SNDBUF) < 0 {
            let _ = setopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, &TX_SNDBUF);
        }
        let rx = geo.rx_req();
        if setopt(raw, libc::SOL_PACKET, PACKET_RX_RING, &rx) < 0 {
            return Err(os_err(&format!("PACKET_RX_RING {rx:?}")));
        }
        let tx = geo.tx_req();
        if setopt(raw, libc::SOL_PACKET, PACKET_TX_RING, &tx) < 0 {
            return Err(os_err(&format!(
                "PACKET_TX_RING {tx:?} (TPACKET_V3 TX needs Linux >= 4.11)"
            )));
        }
        // SAFETY: maps the socket's rings (RX then TX, the size the kernel expects);
        // the result is checked and unmapped by Ring's Drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                geo.map_len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_err("mmap PACKET rings"));
        }
        // SAFETY: eventfd(2) with valid flags; the result is checked.
        let e = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if e < 0 {
            let err = os_err("eventfd");
            // SAFETY: unmaps the mapping just made; nothing refers to it yet.
            unsafe { libc::munmap(base, geo.map_len()) };
            return Err(err);
        }
        let ring = Arc::new(Ring {
            fd,
            // SAFETY: `e` is a descriptor we just opened and own.
            efd: unsafe { OwnedFd::from_raw_fd(e) },
            base: base.cast(),
            geo,
            tx_last: AtomicUsize::new(usize::MAX),
            rx_next: AtomicUsize::new(0),
        });
        let mreq = PacketMreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: PACKET_MR_PROMISC,
            ..PacketMreq::default()
        };
        if setopt(raw, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq) < 0 {
            return Err(os_err(&format!("PACKET_MR_PROMISC on {ifname}")));
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: a sockaddr_ll of the size we pass, alive across the call.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(os_err(&format!("bind AF_PACKET to {ifname}")));
        }
        Ok(Arc::new(AfPacket {
            ring,
            name: ifname.to_string(),
            mtu: mtu.min((geo.tx_room() - 14) as u32),
            tx: parking_lot::Mutex::new(TxState::default()),
            reader: super::RxThread::default(),
            stats: Arc::new(AfpStats::default()),
        }))
    }

    /// Open interface `ifname` inside the network namespace at `netns` (a path such as
    /// `/var/run/netns/NAME`, as `ip netns add` makes): the socket and its rings work
    /// from any thread afterwards.
    pub fn open_in_netns(ifname: &str, netns: &std::path::Path) -> io::Result<Arc<AfPacket>> {
        super::in_netns(netns, || AfPacket::open(ifname))
    }

    /// The interface the socket is bound to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MTU the device takes: the interface's, as far as a TX frame holds it.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Receive ring: (block size, blocks); transmit ring: (frame size, frames).
    pub fn ring_sizes(&self) -> ((usize, usize), (usize, usize)) {
        let g = &self.ring.geo;
        ((g.rx_block, g.rx_blocks), (g.tx_frame, g.tx_frames()))
    }

    /// Register and open the device on `stack` as `ifname` with `mac`.
    pub fn create(
        stack: &Stack,
        afp: &Arc<AfPacket>,
        ifname: &str,
        mac: EthernetAddress,
    ) -> io::Result<Arc<NetDevice>> {
        let mut cfg = NetDeviceConfig::ethernet(ifname, mac);
        cfg.mtu = afp.mtu;
        cfg.max_mtu = afp.mtu;
        cfg.min_mtu = cfg.min_mtu.min(afp.mtu);
        // No offloads: scatter-gather only. Software GSO may be turned on
        // (`set_features`): TCP then hands over GSO skbs, segmented just before the
        // driver into batches whose doorbell rings once (`xmit_more`).
        cfg.hw_features = Features::SG | Features::GSO;
        cfg.features = Features::SG;
        let dev = stack.devs.register(stack, cfg, afp.clone())?;
        crate::dev::dev_open(stack, &dev)?;
        Ok(dev)
    }

    fn start_reader(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        let ring = self.ring.clone();
        let stats = self.stats.clone();
        let weak = stack.downgrade();
        let dev = Arc::downgrade(dev);
        self.reader
            .start(format!("afp-rx/{}", self.name), move |stop| {
                while !stop.load(Ordering::Acquire) {
                    let watch = dev.upgrade().is_some_and(|d| {
                        d.txqs.first().is_some_and(|q| q.stopped()) || ring.tx_waiting()
                    });
                    wait_events(&ring, if watch { TX_WATCH } else { IDLE_POLL });
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let (Some(stack), Some(dev)) = (weak.upgrade(), dev.upgrade()) else {
                        return;
                    };
                    let b = rx_clean(
                        &ring,
                        &stats,
                        &stack,
                        &dev,
                        &stop,
                        ring.rx_next.load(Ordering::Relaxed),
                    );
                    ring.rx_next.store(b, Ordering::Relaxed);
                    tx_clean(&ring, &stats, &dev);
                }
            })
    }

    /// Read the kernel's `PACKET_STATISTICS` (which resets them) into the totals.
    fn collect_kernel_stats(&self) {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `st`, which lives across
        // the call, and updates `len`.
        let r = unsafe {
            libc::getsockopt(
                self.ring.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            let s = &self.stats;
            s.tp_packets
                .fetch_add(u64::from(st.tp_packets), Ordering::Relaxed);
            s.tp_drops
                .fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
            s.tp_freeze_q_cnt
                .fetch_add(u64::from(st.tp_freeze_q_cnt), Ordering::Relaxed);
        }
    }

    /// Ring the doorbell, counting it (and a real failure).
    fn kick(&self, dev: &NetDevice) {
        self.stats.tx_kicks.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.ring.kick() {
            match e.kind() {
                // Send buffer full: frames stay SEND_REQUEST; the reader rings again.
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {}
                _ if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                _ => {
                    self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                    dev.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if self.ring.tx_waiting() {
            // The kernel did not take everything: have the reader ring again.
            self.ring.notify();
        }
    }
}

/// `SIOCGIFMTU` on `ifname`.
fn if_mtu(fd: RawFd, ifname: &str) -> io::Result<u32> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU fills the ifreq, which lives across the call.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut ifr) } < 0 {
        return Err(os_err(&format!("SIOCGIFMTU {ifname}")));
    }
    // SAFETY: SIOCGIFMTU succeeded, so the union holds the MTU.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    Ok(u32::try_from(mtu).unwrap_or(1500).max(68))
}

/// Sleep in `poll` until a block is retired, the eventfd is written, or `timeout`.
fn wait_events(ring: &Ring, timeout: Duration) {
    let mut pfd = [
        libc::pollfd {
            fd: ring.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: ring.efd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: two valid pollfds and a timespec, all alive across the call; no signal
    // mask.
    let r = unsafe { libc::ppoll(pfd.as_mut_ptr(), 2, &ts, std::ptr::null()) };
    if r > 0 && pfd[1].revents & libc::POLLIN != 0 {
        ring.drain_notify();
    }
}

/// The receive "interrupt": hand every retired block's packets to the stack, in ring
/// order, and give the blocks back. Returns the next block to look at.
fn rx_clean(
    ring: &Ring,
    stats: &AfpStats,
    stack: &Stack,
    dev: &Arc<NetDevice>,
    stop: &AtomicBool,
    mut b: usize,
) -> usize {
    let max_backlog = stack.sysctl.netdev_max_backlog().max(2) as usize;
    for _ in 0..ring.geo.rx_blocks {
        // Acquire pairs with the kernel's smp_wmb before it sets the status: the
        // block's contents are visible once TP_STATUS_USER is.
        if ring.rx_status(b).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            break;
        }
        let now = stack.now();
        let mut delivered = 0usize;
        let blk = ring.rx_block(b);
        walk_block(blk, |p| {
            let p = match p {
                Ok(p) => p,
                Err(_) => {
                    stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                    dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            // walk_block checked start + len against the block.
            let frame = &blk[p.start..p.start + p.len];
            let mut skb = match rx_frame_to_skb(frame, p.status, now) {
                Ok(skb) => skb,
                Err(RxError::Vlan) => {
                    dev.stats.rx_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(_) => {
                    stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                    dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            if skb.ip_summed == IpSummed::Partial {
                stats.rx_csum_partial.fetch_add(1, Ordering::Relaxed);
            }
            mark_gso_tcp(&mut skb, p.status, dev.mtu());
            stats.rx_frames.fetch_add(1, Ordering::Relaxed);
            dev.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
            dev.stats
                .rx_bytes
                .fetch_add(p.len as u64, Ordering::Relaxed);
            if eth_type_trans(&mut skb, dev).is_none() {
                dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if delivered % RX_BACKLOG_CHECK == 0 {
                backlog_wait(stack, stats, stop, max_backlog);
            }
            delivered += 1;
            netif_rx(stack, dev, skb);
        });
        // Release: every read of the block above happens before the kernel may see
        // it as its own again.
        ring.rx_status(b).store(TP_STATUS_KERNEL, Ordering::Release);
        stats.rx_blocks.fetch_add(1, Ordering::Relaxed);
        b = (b + 1) % ring.geo.rx_blocks;
    }
    b
}

/// Hold off while the stack's input backlog is more than half full (bounded), so a
/// full block does not overflow it: the ring keeps the frames meanwhile.
fn backlog_wait(stack: &Stack, stats: &AfpStats, stop: &AtomicBool, max_backlog: usize) {
    let t0 = std::time::Instant::now();
    let mut waited = false;
    while stack.backlog.len() > max_backlog / 2
        && !stop.load(Ordering::Relaxed)
        && t0.elapsed() < RX_BACKLOG_MAX_WAIT
    {
        waited = true;
        std::thread::sleep(RX_BACKLOG_WAIT);
    }
    if waited {
        stats.rx_backlog_waits.fetch_add(1, Ordering::Relaxed);
    }
}

/// The transmit "interrupt": ring again for frames the kernel did not take, and wake
/// the stopped queue once a quarter of the ring is free.
fn tx_clean(ring: &Ring, stats: &AfpStats, dev: &NetDevice) {
    if ring.tx_waiting() {
        stats.tx_rekicks.fetch_add(1, Ordering::Relaxed);
        let _ = ring.kick();
    }
    let Some(txq) = dev.txqs.first() else {
        return;
    };
    // Pairs with the fence in `maybe_stop`: either we see the queue stopped, or the
    // transmit path sees the frames we saw free.
    fence(Ordering::SeqCst);
    if txq.stopped() && ring.tx_free_ahead(ring.tx_next(), ring.geo.tx_frames() / 4) {
        stats.tx_wakes.fetch_add(1, Ordering::Relaxed);
        txq.wake();
    }
}

impl AfPacket {
    /// Stop the queue when frame `next` is not free (`netif_tx_stop_queue`), then look
    /// again in case the completion came meanwhile. Returns whether it stays stopped.
    fn maybe_stop(&self, txq: &NetdevQueue, next: usize) -> bool {
        let free = |r: &Ring| r.tx_status(next).load(Ordering::Acquire) == TP_STATUS_AVAILABLE;
        if free(&self.ring) {
            return false;
        }
        txq.stop();
        fence(Ordering::SeqCst);
        if free(&self.ring) {
            txq.start();
            return false;
        }
        self.stats.tx_ring_full.fetch_add(1, Ordering::Relaxed);
        // The reader watches the ring while the queue is stopped.
        self.ring.notify();
        true
    }
}

impl NetDeviceOps for AfPacket {
    fn open(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        self.start_reader(stack, dev)?;
        for q in dev.txqs.iter() {
            q.start();
        }
        dev.carrier_on();
        Ok(())
    }

    fn stop(&self, _stack: &Stack, _dev: &Arc<NetDevice>) {
        self.reader.halt(|| self.ring.notify());
    }

    /// Copy the frame into the next free TX frame, mark it `TP_STATUS_SEND_REQUEST`,
    /// and ring the doorbell unless more follow. BUSY (requeue) when the ring is full.
    fn start_xmit(&self, skb: Skb, dev: &NetDevice, txq: &NetdevQueue) -> NetdevTx {
        let len = skb.len();
        let geo = self.ring.geo;
        if !(14..=geo.tx_room()).contains(&len) {
            self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
            dev.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
            return NetdevTx::Ok;
        }
        let mut tx = self.tx.lock();
        let i = tx.next;
        if self.maybe_stop(txq, i) {
            // Frames queued earlier in this batch must not wait for a doorbell.
            self.kick(dev);
            return NetdevTx::Busy(skb);
        }
        let off = geo.tx_frame_off(i);
        // The frame is ours: its status is TP_STATUS_AVAILABLE (acquire, above), and
        // the kernel does not touch it until we store SEND_REQUEST below.
        // SAFETY: [off + TP3_HDR_LEN, off + tx_frame) lies inside the TX ring of the
        // live mapping, and nothing else accesses it while the frame is free (the
        // kernel reads only the status word of a free frame).
        let data = unsafe {
            std::slice::from_raw_parts_mut(self.ring.base.add(off + TP3_HDR_LEN), geo.tx_room())
        };
        let copied = copy_chunks(data, skb.chunks());
        debug_assert_eq!(copied, Some(len));
        // SAFETY: the header words are inside the same owned frame, 4-byte aligned
        // (frames are 16-byte aligned), and written before the release store below.
        unsafe {
            let h = self.ring.base.add(off);
            h.add(TP3_NEXT_OFFSET).cast::<u32>().write_volatile(0);
            h.add(TP3_SNAPLEN).cast::<u32>().write_volatile(len as u32);
            h.add(TP3_LEN).cast::<u32>().write_volatile(len as u32);
        }
        // Release: the frame's bytes are visible before the kernel sees the request.
        self.ring
            .tx_status(i)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.ring.tx_last.store(i, Ordering::Release);
        let next = (i + 1) % geo.tx_frames();
        tx.next = next;
        self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
        dev.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
        dev.stats.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
        let stopped = self.maybe_stop(txq, next);
        if !skb.xmit_more || stopped {
            self.kick(dev);
        }
        drop(tx);
        // The bytes are in the ring: the skb (and its socket charge) is done.
        drop(skb);
        NetdevTx::Ok
    }

    fn ethtool_stats(&self) -> Vec<(String, u64)> {
        self.collect_kernel_stats();
        let s = &self.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("rx_frames".into(), l(&s.rx_frames)),
            ("rx_blocks".into(), l(&s.rx_blocks)),
            ("rx_errors".into(), l(&s.rx_errors)),
            ("rx_csum_partial".into(), l(&s.rx_csum_partial)),
            ("rx_backlog_waits".into(), l(&s.rx_backlog_waits)),
            ("tx_frames".into(), l(&s.tx_frames)),
            ("tx_ring_full".into(), l(&s.tx_ring_full)),
            ("tx_errors".into(), l(&s.tx_errors)),
            ("tx_kicks".into(), l(&s.tx_kicks)),
            ("tx_rekicks".into(), l(&s.tx_rekicks)),
            ("tx_wakes".into(), l(&s.tx_wakes)),
            ("tp_packets".into(), l(&s.tp_packets)),
            ("tp_drops".into(), l(&s.tp_drops)),
            ("tp_freeze_q_cnt".into(), l(&s.tp_freeze_q_cnt)),
        ]
    }

    fn driver_name(&self) -> &'static str {
        "afpacket"
    }
}

impl AsRawFd for AfPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.fd.as_raw_fd()
    }
}

impl Drop for AfPacket {
    fn drop(&mut self) {
        self.reader.halt(|| self.ring.notify());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A V3 block with `frames` packed as the kernel packs them: the block header,
    /// then per packet a 48-byte `tpacket3_hdr`, the frame at `tp_mac`, 8-byte aligned.
    fn block(frames: &[(&[u8], u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 8192];
        let w32 = |b: &mut [u8], o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_ne_bytes());
        w32(&mut b, BLOCK_NUM_PKTS_OFF, frames.len() as u32);
        w32(&mut b, BLOCK_FIRST_PKT_OFF, BLOCK_DESC_LEN as u32);
        let mut off = BLOCK_DESC_LEN;
        for (k, (f, status)) in frames.iter().enumerate() {
            let mac = 82usize;
            let total = (mac + f.len()).div_ceil(8) * 8;
            let next = if k + 1 < frames.len() { total } else { 0 };
            w32(&mut b, off + TP3_NEXT_OFFSET, next as u32);
            w32(&mut b, off + TP3_SNAPLEN, f.len() as u32);
            w32(&mut b, off + TP3_LEN, f.len() as u32);
            w32(&mut b, off + TP3_STATUS, *status);
            b[off + TP3_MAC..off + TP3_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            b[off + mac..off + mac + f.len()].copy_from_slice(f);
            off += total;
        }
        b
    }

    fn collect(b: &[u8]) -> Vec<Result<Vec<u8>, RxError>> {
        let mut out = Vec::new();
        walk_block(b, |p| {
            out.push(p.map(|p| b[p.start..p.start + p.len].to_vec()))
        });
        out
    }

    /// Ethernet + IPv4 (protocol `proto`) + 20 bytes of transport header and payload.
    fn ipv4_frame(proto: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 34 + 20 + payload];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = proto;
        f
    }

    #[test]
    fn geometry_is_what_the_kernel_accepts() {
        for mtu in [1500usize, 9000, 68] {
            let g = Geometry::for_mtu(mtu);
            assert_eq!(g.rx_block % 65536, 0, "page multiple: {g:?}");
            assert_eq!(g.tx_block % 65536, 0, "page multiple: {g:?}");
            assert_eq!(g.tx_frame % 16, 0);
            assert_eq!(g.tx_block % g.tx_frame, 0);
            assert!(g.tx_room() >= 14 + mtu, "{g:?}");
            assert!(g.tx_frames() >= TX_FRAMES, "{g:?}");
            let rx = g.rx_req();
            assert_eq!(rx.tp_frame_nr as usize, g.rx_block / RX_FRAME * g.rx_blocks);
            let tx = g.tx_req();
            assert_eq!(
                (
                    tx.tp_retire_blk_tov,
                    tx.tp_sizeof_priv,
                    tx.tp_feature_req_word
                ),
                (0, 0, 0)
            );
            let last = g.tx_frame_off(g.tx_frames() - 1);
            assert_eq!(last + g.tx_frame, g.map_len());
            assert_eq!(g.tx_frame_off(0), g.rx_len());
        }
        let g = Geometry::for_mtu(1500);
        assert_eq!((g.rx_block, g.rx_blocks), (256 * 1024, 16));
        assert_eq!((g.tx_frame, g.tx_frames()), (2048, 128));
    }

    #[test]
    fn a_block_yields_its_packets_in_order() {
        let a = ipv4_frame(6, 100);
        let c = ipv4_frame(17, 7);
        let b = block(&[(&a, 1), (&c, 1), (&a[..60], 1)]);
        let got = collect(&b);
        assert_eq!(got, vec![Ok(a.clone()), Ok(c), Ok(a[..60].to_vec())]);
    }

    #[test]
    fn malformed_blocks_are_refused_not_trusted() {
        let a = ipv4_frame(6, 100);
        // A count larger than the packets chained: the walk stops at next == 0.
        let mut b = block(&[(&a, 1)]);
        b[BLOCK_NUM_PKTS_OFF..BLOCK_NUM_PKTS_OFF + 4].copy_from_slice(&5u32.to_ne_bytes());
        assert_eq!(collect(&b), vec![Ok(a.clone()), Err(RxError::BadLayout)]);
        // A snap length past the block's end.
        let mut b = block(&[(&a, 1)]);
        let o = BLOCK_DESC_LEN + TP3_SNAPLEN;
        b[o..o + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        b[o + 4..o + 8].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(collect(&b), vec![Err(RxError::BadLayout)]);
        // A first-packet offset inside the block header, or past the end.
        for first in [0u32, 8, 1 << 30] {
            let mut b = block(&[(&a, 1)]);
            b[BLOCK_FIRST_PKT_OFF..BLOCK_FIRST_PKT_OFF + 4].copy_from_slice(&first.to_ne_bytes());
            assert_eq!(collect(&b), vec![Err(RxError::BadLayout)], "first {first}");
        }
        // A next offset jumping out of the block.
        let mut b = block(&[(&a, 1), (&a, 1)]);
        b[BLOCK_DESC_LEN..BLOCK_DESC_LEN + 4].copy_from_slice(&(1u32 << 31).to_ne_bytes());
        assert_eq!(collect(&b), vec![Ok(a.clone()), Err(RxError::BadLayout)]);
        // A huge packet count in a tiny block ends, bounded by the block size.
        let mut b = vec![0u8; 96];
        b[BLOCK_NUM_PKTS_OFF..BLOCK_NUM_PKTS_OFF + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        b[BLOCK_FIRST_PKT_OFF..BLOCK_FIRST_PKT_OFF + 4].copy_from_slice(&48u32.to_ne_bytes());
        assert_eq!(collect(&b).last(), Some(&Err(RxError::BadLayout)));
        // A truncated packet (snaplen < len) is refused, the next one still read.
        let mut b = block(&[(&a, 1), (&a, 1)]);
        let o = BLOCK_DESC_LEN + TP3_LEN;
        b[o..o + 4].copy_from_slice(&65000u32.to_ne_bytes());
        assert_eq!(collect(&b), vec![Err(RxError::Truncated), Ok(a)]);
        // Too short for the header fields at all.
        assert_eq!(collect(&[0u8; 10]), vec![Err(RxError::BadLayout)]);
    }

    #[test]
    fn a_frame_flagged_gso_tcp_becomes_a_tcp_gso_skb() {
        // A BIG TCP packet as GRO built it: 100,000 bytes of payload, total length 0.
        let mut f = ipv4_frame(6, 100_000);
        f[46] = 0x50; // TCP header of 20 bytes
        let mut big = rx_frame_to_skb(&f, TP_STATUS_USER, Instant::ZERO).unwrap();
        mark_gso_tcp(&mut big, TP_STATUS_USER | TP_STATUS_GSO_TCP, 1500);
        assert_eq!(big.gso_type, crate::skb::GsoType::TcpV4);
        assert_eq!(big.gso_size, 1460);
        assert_eq!(big.gso_segs, 69);
        let _ = big.pull(14);
        assert_eq!(crate::ipv4::iph_totlen(&big), f.len() - 14);
        // Without the flag, or on anything but TCP, nothing changes.
        let mut plain = rx_frame_to_skb(&f, TP_STATUS_USER, Instant::ZERO).unwrap();
        mark_gso_tcp(&mut plain, TP_STATUS_USER, 1500);
        assert!(!plain.is_gso());
        let mut udp = rx_frame_to_skb(&ipv4_frame(17, 100), 0, Instant::ZERO).unwrap();
        mark_gso_tcp(&mut udp, TP_STATUS_GSO_TCP, 1500);
        assert!(!udp.is_gso());
        let mut short = rx_frame_to_skb(&f[..40], 0, Instant::ZERO).unwrap();
        mark_gso_tcp(&mut short, TP_STATUS_GSO_TCP, 1500);
        assert!(!short.is_gso());
    }

    #[test]
    fn unfinished_checksums_become_checksum_partial() {
        let tcp = ipv4_frame(6, 10);
        let skb = rx_frame_to_skb(&tcp, TP_STATUS_CSUMNOTREADY, Instant::ZERO).unwrap();
        assert_eq!(skb.ip_summed, IpSummed::Partial);
        assert_eq!(usize::from(skb.csum_start), skb.data_offset() + 34);
        assert_eq!(skb.csum_offset, 16);
        let udp = ipv4_frame(17, 0);
        let skb = rx_frame_to_skb(&udp, TP_STATUS_CSUMNOTREADY, Instant::ZERO).unwrap();
        assert_eq!(skb.csum_offset, 6);
        // Finished checksums are left for software to verify.
        let skb = rx_frame_to_skb(&tcp, TP_STATUS_USER, Instant::ZERO).unwrap();
        assert_eq!(skb.ip_summed, IpSummed::None);
        assert_eq!(skb.to_vec(), tcp);
        // An unfinished checksum in an unknown protocol, or cut off: refused.
        let icmp = ipv4_frame(1, 10);
        assert_eq!(
            rx_frame_to_skb(&icmp, TP_STATUS_CSUMNOTREADY, Instant::ZERO).err(),
            Some(RxError::BadCsum)
        );
        assert_eq!(
            rx_frame_to_skb(&tcp[..40], TP_STATUS_CSUMNOTREADY, Instant::ZERO).err(),
            Some(RxError::BadCsum)
        );
        assert_eq!(
            rx_frame_to_skb(&tcp[..10], 0, Instant::ZERO).err(),
            Some(RxError::Short)
        );
        assert_eq!(
            rx_frame_to_skb(&tcp, TP_STATUS_VLAN_VALID, Instant::ZERO).err(),
            Some(RxError::Vlan)
        );
    }

    #[test]
    fn chunks_are_copied_only_when_they_fit() {
        let mut dst = [0u8; 8];
        let parts: [&[u8]; 3] = [b"ab", b"", b"cde"];
        assert_eq!(copy_chunks(&mut dst, parts.into_iter()), Some(5));
        assert_eq!(&dst[..5], b"abcde");
        let big: [&[u8]; 2] = [b"12345", b"6789"];
        assert_eq!(copy_chunks(&mut dst, big.into_iter()), None);
    }
}
