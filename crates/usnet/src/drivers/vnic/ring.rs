//! Descriptor rings of the emulated NIC, shaped like igb's: each ring is two arrays of
//! the same length — descriptors for the hardware and buffer bookkeeping for the driver
//! (seed 004 §2: `e1000_adv_tx_desc[]` and `igb_tx_buffer[]`) — with `next_to_use` and
//! `next_to_clean` indices.

use crate::skb::{Skb, SkbCharge};

/// Bytes one transmit data descriptor may describe (`IGB_MAX_DATA_PER_TXD`).
pub const MAX_DATA_PER_TXD: usize = 1 << 15;

/// Descriptors a packet needs for `len` bytes of one buffer (`TXD_USE_COUNT`).
pub fn txd_use_count(len: usize) -> usize {
    len.div_ceil(MAX_DATA_PER_TXD).max(1)
}

/// Command bits of a transmit descriptor.
pub mod cmd {
    /// End of packet.
    pub const EOP: u8 = 1 << 0;
    /// Report status (write back DD when done).
    pub const RS: u8 = 1 << 1;
    /// TCP segmentation enable (context says MSS and header length).
    pub const TSE: u8 = 1 << 2;
    /// Insert the TCP/UDP checksum.
    pub const TXSM: u8 = 1 << 3;
}

/// Status bits written back by hardware.
pub mod status {
    /// Descriptor done.
    pub const DD: u8 = 1 << 0;
    /// End of packet (receive).
    pub const EOP: u8 = 1 << 1;
    /// Receive: L4 checksum verified good.
    pub const L4_OK: u8 = 1 << 2;
    /// Receive: L4 checksum verified bad.
    pub const L4_ERR: u8 = 1 << 3;
    /// Receive: the checksum was offloaded by the sender and is still unfinished (the
    /// frame crossed intact); the skb stays `CHECKSUM_PARTIAL`, as over veth.
    pub const PARTIAL: u8 = 1 << 4;
}

/// What a transmit descriptor describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxDescKind {
    /// Unused.
    #[default]
    Free,
    /// A context descriptor: offload parameters for the packet that follows.
    Context {
        /// Segment size for TSO.
        mss: u16,
        /// Length of the headers TSO repeats.
        hdr_len: u16,
    },
    /// A data descriptor: `len` bytes of the packet.
    Data {
        /// Bytes.
        len: u32,
    },
}

/// A transmit descriptor (the hardware's array).
#[derive(Clone, Copy, Debug, Default)]
pub struct TxDesc {
    /// What it describes.
    pub kind: TxDescKind,
    /// Command bits.
    pub cmd: u8,
    /// Status bits (DD written back by hardware).
    pub status: u8,
}

/// The driver's bookkeeping for one transmit descriptor (`struct igb_tx_buffer`).
#[derive(Default)]
pub struct TxBuffer {
    /// The skb, held from `xmit_frame_ring` until the hardware fetches it.
    pub skb: Option<Skb>,
    /// The socket's charge for it, released at completion (`napi_consume_skb`).
    pub charge: Option<SkbCharge>,
    /// Bytes on the wire for the packet (headers repeated per segment).
    pub bytecount: u32,
    /// Segments on the wire.
    pub gso_segs: u16,
    /// Index of the packet's last descriptor (`next_to_watch`); set on the first.
    pub next_to_watch: Option<u16>,
    /// Traced skb id (for the completion trace point).
    pub trace_id: u32,
}

/// A transmit ring.
pub struct TxRing {
    /// Hardware descriptors.
    pub desc: Vec<TxDesc>,
    /// Driver bookkeeping.
    pub buf: Vec<TxBuffer>,
    /// Next descriptor the driver fills.
    pub next_to_use: usize,
    /// Next descriptor the driver cleans.
    pub next_to_clean: usize,
    /// Next descriptor the hardware fetches.
    pub hw_head: usize,
    /// The tail register (last doorbell value).
    pub tail: usize,
    /// Counters.
    pub stats: TxRingStats,
    /// The hardware's scratch list of frames fetched at one doorbell.
    pub(crate) hw_scratch: Vec<Skb>,
    /// When the PHY finishes sending what it has (line-rate pacing).
    pub phy_busy_until: crate::time::Instant,
}

/// Per-queue transmit counters (`ethtool -S`: `tx_queue_N_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxRingStats {
    /// Packets (segments) completed.
    pub packets: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// Times the queue was restarted after being stopped.
    pub restart_queue: u64,
    /// Times `start_xmit` answered BUSY.
    pub busy: u64,
    /// Doorbell (tail) writes.
    pub doorbells: u64,
    /// TSO packets handed to hardware.
    pub tso: u64,
    /// Completions processed by `clean_tx_irq` runs that hit the work limit.
    pub clean_limited: u64,
}

impl TxRing {
    /// A ring of `count` descriptors (`igb_setup_tx_resources`).
    pub fn new(count: usize) -> TxRing {
        TxRing {
            desc: vec![TxDesc::default(); count],
            buf: (0..count).map(|_| TxBuffer::default()).collect(),
            next_to_use: 0,
            next_to_clean: 0,
            hw_head: 0,
            tail: 0,
            stats: TxRingStats::default(),
            hw_scratch: Vec::new(),
            phy_busy_until: crate::time::Instant::ZERO,
        }
    }

    /// Ring size.
    pub fn count(&self) -> usize {
        self.desc.len()
    }

    /// Free descriptors (`igb_desc_unused`): one slot always stays empty.
    pub fn unused(&self) -> usize {
        let (ntc, ntu, n) = (self.next_to_clean, self.next_to_use, self.count());
        (if ntc > ntu { 0 } else { n }) + ntc - ntu - 1
    }

    /// The index after `i`.
    pub fn next(&self, i: usize) -> usize {
        if i + 1 == self.count() {
            0
        } else {
            i + 1
        }
    }
}

/// A receive descriptor (written back by hardware).
#[derive(Clone, Copy, Debug, Default)]
pub struct RxDesc {
    /// Status bits.
    pub status: u8,
    /// Frame length.
    pub len: u32,
    /// RSS hash of the frame.
    pub rss_hash: u32,
}

/// A receive ring.
pub struct RxRing {
    /// Hardware descriptors.
    pub desc: Vec<RxDesc>,
    /// Buffers the hardware filled (taken by `clean_rx_irq`).
    pub buf: Vec<Option<Skb>>,
    /// Descriptors posted to hardware up to (not including) this index (the tail).
    pub next_to_use: usize,
    /// Next descriptor the driver cleans.
    pub next_to_clean: usize,
    /// Next descriptor the hardware fills.
    pub hw_next: usize,
    /// Counters.
    pub stats: RxRingStats,
}

/// Per-queue receive counters (`ethtool -S`: `rx_queue_N_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxRingStats {
    /// Packets received.
    pub packets: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Frames dropped for lack of a posted descriptor.
    pub drops: u64,
    /// Frames with a bad checksum.
    pub csum_err: u64,
    /// Buffer allocation failures.
    pub alloc_failed: u64,
}

impl RxRing {
    /// A ring of `count` descriptors with all but one posted (`igb_alloc_rx_buffers`
    /// at open).
    pub fn new(count: usize) -> RxRing {
        RxRing {
            desc: vec![RxDesc::default(); count],
            buf: (0..count).map(|_| None).collect(),
            next_to_use: count - 1,
            next_to_clean: 0,
            hw_next: 0,
            stats: RxRingStats::default(),
        }
    }

    /// Ring size.
    pub fn count(&self) -> usize {
        self.desc.len()
    }

    /// The index after `i`.
    pub fn next(&self, i: usize) -> usize {
        if i + 1 == self.count() {
            0
        } else {
            i + 1
        }
    }

    /// Descriptors the hardware may still fill.
    pub fn hw_free(&self) -> usize {
        let n = self.count();
        (self.next_to_use + n - self.hw_next) % n
    }

    /// `igb_alloc_rx_buffers`: post `cleaned` descriptors back to hardware.
    pub fn refill(&mut self, cleaned: usize) {
        let n = self.count();
        self.next_to_use = (self.next_to_use + cleaned) % n;
    }
}
