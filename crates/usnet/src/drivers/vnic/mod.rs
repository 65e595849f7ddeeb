//! `vnic`: an emulated multi-queue Ethernet NIC modelled on Intel's igb, and its
//! driver, written as seed 004 walks `igb`:
//!
//! * **open** (`__igb_open`): allocate N transmit and N receive rings of 256
//!   descriptors, each with its descriptor array and buffer array
//!   ([`ring::TxRing`], [`ring::RxRing`]), post receive buffers, register one
//!   interrupt vector with a NAPI context per queue pair, start the queues.
//! * **transmit** (`Vnic::xmit_frame_ring`, `igb_xmit_frame_ring`): count the
//!   descriptors the skb needs (one per 32 KiB of head and of each fragment), stop the
//!   queue and answer BUSY when too few are free (`igb_maybe_stop_tx`), write a context
//!   descriptor for TSO/checksum offload and data descriptors with EOP|RS on the last,
//!   account bytes to BQL, stop the queue early when fewer than `DESC_NEEDED` remain,
//!   and ring the doorbell unless more packets follow (`xmit_more`).
//! * **hardware** ([`hw`]): on the doorbell, fetch descriptors, segment TSO packets,
//!   put frames on the wire, write back DD and raise the interrupt. On the receive side,
//!   take frames off the wire into posted descriptors (or drop them if none is posted),
//!   verify checksums, compute the RSS hash and raise the interrupt.
//! * **interrupt + NAPI** ([`QVector`], `igb_msix_ring` / `igb_poll`): the interrupt
//!   masks itself and schedules NAPI; the poll cleans transmit completions
//!   (`igb_clean_tx_irq`: DD bit, free, BQL completed, wake the queue) and receives
//!   up to the budget (`igb_clean_rx_irq`), then completes and unmasks.

pub mod hw;
pub mod ring;

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use usnet_wire::EthernetAddress;

use crate::dev::napi::{napi_complete_done, napi_schedule, Napi, NapiPoll};
use crate::dev::rx::eth_type_trans;
use crate::dev::{
    Features, NetDevice, NetDeviceConfig, NetDeviceOps, NetdevQueue, NetdevTx, Softnet,
};
use crate::link::{PortId, Wire};
use crate::skb::{IpSummed, Skb, MAX_SKB_FRAGS};
use crate::stack::WeakStack;
use crate::timer::Timer;
use crate::trace::Stage;
use crate::Stack;

use ring::{cmd, status, txd_use_count, RxRing, TxDesc, TxDescKind, TxRing};

/// Descriptors a worst-case packet needs (`DESC_NEEDED` = `MAX_SKB_FRAGS + 4`).
pub const DESC_NEEDED: usize = MAX_SKB_FRAGS + 4;
/// Free descriptors needed before a stopped queue is woken (`TX_WAKE_THRESHOLD`).
pub const TX_WAKE_THRESHOLD: usize = DESC_NEEDED * 2;
/// Receive descriptors cleaned between refills (`IGB_RX_BUFFER_WRITE`).
pub const RX_BUFFER_WRITE: usize = 16;
/// Size of the RSS indirection table.
pub const RETA_SIZE: usize = 128;

/// How to build a vnic.
#[derive(Clone, Debug)]
pub struct VnicConfig {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    pub mac: EthernetAddress,
    /// MTU.
    pub mtu: u32,
    /// Queue pairs (transmit + receive rings, one interrupt vector each).
    pub queues: usize,
    /// Transmit descriptors per ring (256).
    pub tx_ring: usize,
    /// Receive descriptors per ring (256).
    pub rx_ring: usize,
    /// Offloads turned on (the hardware has SG, checksum, TSO, RXCSUM; GSO and GRO are
    /// software and always available).
    pub features: Features,
    /// Transmit completions cleaned per interrupt (`IGB_DEFAULT_TX_WORK`, 128).
    pub tx_work_limit: usize,
    /// `txqueuelen`.
    pub tx_queue_len: u32,
    /// Line rate in bits per second (0: as fast as the CPU goes). At a finite rate the
    /// hardware fetches a packet only when the PHY is free, so a fast sender fills the
    /// ring and meets back-pressure as on a real NIC.
    pub line_rate_bps: u64,
}

impl VnicConfig {
    /// Defaults: one queue pair, 256-descriptor rings, every offload on, MTU 1500.
    pub fn new(name: &str, mac: EthernetAddress) -> VnicConfig {
        VnicConfig {
            name: name.to_string(),
            mac,
            mtu: 1500,
            queues: 1,
            tx_ring: 256,
            rx_ring: 256,
            features: Vnic::hw_features(),
            tx_work_limit: 128,
            tx_queue_len: 1000,
            line_rate_bps: 0,
        }
    }
}

/// Driver-wide counters (`ethtool -S` globals).
#[derive(Debug, Default)]
pub struct VnicStats {
    /// Frames dropped because no receive descriptor was posted.
    pub rx_no_buffer_count: AtomicU64,
    /// Frames the hardware put on the wire.
    pub hw_tx_frames: AtomicU64,
    /// Frames the hardware took off the wire.
    pub hw_rx_frames: AtomicU64,
    /// Packets hardware GRO handed up coalesced (Linux's `rx-hw-gro-packets` queue
    /// statistic).
    pub rx_hw_gro_packets: AtomicU64,
    /// Wire frames those packets were made of (`rx-hw-gro-wire-packets`).
    pub rx_hw_gro_wire_packets: AtomicU64,
}

const IRQ_MASKED: u8 = 1;
const IRQ_PENDING: u8 = 2;

/// One interrupt vector with its NAPI context, serving one queue pair
/// (`struct igb_q_vector`).
pub struct QVector {
    napi: Napi,
    idx: usize,
    irq: AtomicU8,
    vnic: Weak<VnicShared>,
    softnet: Arc<Softnet>,
    me: Weak<QVector>,
    rx_batch: Mutex<Vec<Skb>>,
    interrupts: AtomicU64,
    latched: AtomicU64,
}

impl QVector {
    /// Raise this vector's interrupt: if unmasked, mask it and schedule NAPI
    /// (`igb_msix_ring`); if masked, latch it for when it is unmasked.
    pub fn raise(&self) {
        let mut cur = self.irq.load(Ordering::Acquire);
        if cur == IRQ_MASKED | IRQ_PENDING {
            return; // already latched
        }
        loop {
            let new = if cur & IRQ_MASKED != 0 {
                cur | IRQ_PENDING
            } else {
                IRQ_MASKED
            };
            match self
                .irq
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        if cur & IRQ_MASKED != 0 {
            self.latched.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.interrupts.fetch_add(1, Ordering::Relaxed);
        self.schedule();
    }

    fn schedule(&self) {
        if let Some(me) = self.me.upgrade() {
            let n: Arc<dyn NapiPoll> = me;
            napi_schedule(&self.softnet, &n);
        }
    }

    /// Unmask (`igb_ring_irq_enable`): a latched interrupt fires now.
    fn enable(&self) {
        let mut cur = self.irq.load(Ordering::Acquire);
        loop {
            let new = if cur & IRQ_PENDING != 0 {
                IRQ_MASKED
            } else {
                0
            };
            match self
                .irq
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        if cur & IRQ_PENDING != 0 {
            self.interrupts.fetch_add(1, Ordering::Relaxed);
            self.schedule();
        }
    }

    /// Interrupts raised (and delivered).
    pub fn interrupts(&self) -> u64 {
        self.interrupts.load(Ordering::Relaxed)
    }

    /// Interrupts raised while masked (latched, delivered on unmask).
    pub fn interrupts_latched(&self) -> u64 {
        self.latched.load(Ordering::Relaxed)
    }

    /// Whether the interrupt is masked.
    pub fn masked(&self) -> bool {
        self.irq.load(Ordering::Acquire) & IRQ_MASKED != 0
    }
}

impl NapiPoll for QVector {
    fn napi(&self) -> &Napi {
        &self.napi
    }

    /// `igb_poll`.
    fn poll(&self, stack: &Stack, budget: usize) -> usize {
        let Some(v) = self.vnic.upgrade() else {
            return 0;
        };
        v.hw_rx_if_kicked(stack.now());
        let clean_complete = v.clean_tx_irq(stack, self.idx);
        let work = v.clean_rx_irq(stack, self, budget);
        if !clean_complete || work >= budget {
            return budget;
        }
        if napi_complete_done(stack, &self.napi, work) {
            self.enable();
        }
        work.min(budget.saturating_sub(1))
    }
}

/// The NIC's PHY as the wire sees it: told when frames arrive, it sets the receive
/// kick and raises queue 0's interrupt (or arms a timer for a later arrival). It holds
/// no reference back to the wire, so the wire may own it.
#[derive(Default)]
pub struct VnicPhy {
    rx_pending: std::sync::atomic::AtomicBool,
    qv0: OnceLock<Arc<QVector>>,
    clock: OnceLock<Arc<dyn crate::time::Clock>>,
    rx_timer: OnceLock<Timer>,
    stack: OnceLock<WeakStack>,
    dev: OnceLock<Weak<NetDevice>>,
}

impl VnicPhy {
    /// Frames are waiting at the port: set the receive kick and raise an interrupt, so
    /// the next poll runs the receive engine.
    fn kick(&self) {
        if self.rx_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(qv) = self.qv0.get() {
            qv.raise();
        }
    }
}

impl crate::link::Endpoint for VnicPhy {
    fn frame_arriving(&self, at: crate::time::Instant) {
        let Some(clock) = self.clock.get() else {
            return;
        };
        if at <= clock.now() {
            self.kick();
        } else if let (Some(t), Some(stack)) = (
            self.rx_timer.get(),
            self.stack.get().and_then(|s| s.upgrade()),
        ) {
            stack.timers.arm_earliest(t, at);
        }
    }

    fn accepts_coalesced(&self, ip_len: usize) -> bool {
        // As skb_gro_receive: a packet reaching gro_ipv4_max_size is not built.
        self.dev.get().and_then(Weak::upgrade).is_some_and(|d| {
            d.features().contains(Features::GRO_HW) && ip_len < d.gro_ipv4_max_size() as usize
        })
    }
}

/// The NIC's shared state: rings, vectors, wire port.
pub struct VnicShared {
    cfg: VnicConfig,
    tx: Box<[Mutex<TxRing>]>,
    rx: Box<[Mutex<RxRing>]>,
    qv: OnceLock<Box<[Arc<QVector>]>>,
    dev: OnceLock<Weak<NetDevice>>,
    stack: OnceLock<WeakStack>,
    trace: OnceLock<Arc<crate::trace::Tracer>>,
    clock: OnceLock<Arc<dyn crate::time::Clock>>,
    port: OnceLock<(Wire, PortId)>,
    phy: Arc<VnicPhy>,
    tx_timers: OnceLock<Box<[Timer]>>,
    reta: [u8; RETA_SIZE],
    /// Counters.
    pub stats: VnicStats,
    me: Weak<VnicShared>,
}

/// The vnic driver handle (implements [`NetDeviceOps`]). Clones share the NIC.
#[derive(Clone)]
pub struct Vnic {
    shared: Arc<VnicShared>,
}

impl std::fmt::Debug for Vnic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vnic")
            .field("name", &self.shared.cfg.name)
            .finish()
    }
}

impl Vnic {
    /// What the emulated hardware can do.
    pub fn hw_features() -> Features {
        Features::SG
            | Features::IP_CSUM
            | Features::RXCSUM
            | Features::TSO
            | Features::GSO
            | Features::GRO
            | Features::GSO_UDP_L4
            | Features::GRO_HW
    }

    /// Create the NIC (not yet registered or attached).
    pub fn new(cfg: VnicConfig) -> Vnic {
        let queues = cfg.queues.clamp(1, 64);
        let tx_n = cfg.tx_ring.clamp(DESC_NEEDED * 2, 4096);
        let rx_n = cfg.rx_ring.clamp(8, 4096);
        let mut reta = [0u8; RETA_SIZE];
        for (i, r) in reta.iter_mut().enumerate() {
            *r = (i % queues) as u8;
        }
        let shared = Arc::new_cyclic(|me| VnicShared {
            tx: (0..queues).map(|_| Mutex::new(TxRing::new(tx_n))).collect(),
            rx: (0..queues).map(|_| Mutex::new(RxRing::new(rx_n))).collect(),
            cfg: VnicConfig {
                queues,
                tx_ring: tx_n,
                rx_ring: rx_n,
                ..cfg
            },
            qv: OnceLock::new(),
            dev: OnceLock::new(),
            stack: OnceLock::new(),
            trace: OnceLock::new(),
            clock: OnceLock::new(),
            port: OnceLock::new(),
            phy: Arc::new(VnicPhy::default()),
            tx_timers: OnceLock::new(),
            reta,
            stats: VnicStats::default(),
            me: me.clone(),
        });
        Vnic { shared }
    }

    /// Create, register and open a vnic on `stack`, plugged into `wire`. Returns the
    /// device.
    pub fn create(stack: &Stack, cfg: VnicConfig, wire: &Wire) -> io::Result<Arc<NetDevice>> {
        let vnic = Vnic::new(cfg);
        vnic.attach(wire);
        let dev = stack
            .devs
            .register(stack, vnic.netdev_config(), Arc::new(vnic.clone()))?;
        crate::dev::dev_open(stack, &dev)?;
        Ok(dev)
    }

    /// The device configuration this NIC registers with.
    pub fn netdev_config(&self) -> NetDeviceConfig {
        let c = &self.shared.cfg;
        let mut d = NetDeviceConfig::ethernet(&c.name, c.mac);
        d.mtu = c.mtu;
        d.max_mtu = 9216;
        d.num_tx_queues = c.queues;
        d.hw_features = Vnic::hw_features();
        d.features = c.features;
        d.tx_queue_len = c.tx_queue_len;
        d.gso_max_size = crate::dev::GSO_LEGACY_MAX_SIZE;
        d.gso_max_segs = 65535;
        // As veth: the engine cuts any size, so BIG TCP can be turned on.
        d.tso_max_size = crate::dev::GSO_MAX_SIZE;
        d
    }

    /// Plug the NIC into a wire port (`usize::MAX` if the wire had no free port).
    pub fn attach(&self, wire: &Wire) -> PortId {
        if let Some((_, p)) = self.shared.port.get() {
            return *p;
        }
        let ep: Arc<dyn crate::link::Endpoint> = self.shared.phy.clone();
        let port = wire.attach(ep).unwrap_or(usize::MAX);
        let _ = self.shared.port.set((wire.clone(), port));
        port
    }

    /// The wire port, once attached.
    pub fn port(&self) -> Option<PortId> {
        self.shared.port.get().map(|(_, p)| *p)
    }

    /// The shared NIC state (rings and counters), for tests and `ethtool`.
    pub fn shared(&self) -> &Arc<VnicShared> {
        &self.shared
    }
}

impl VnicShared {
    /// Queue pairs.
    pub fn queues(&self) -> usize {
        self.cfg.queues
    }

    /// A transmit ring (for inspection).
    pub fn tx_ring(&self, q: usize) -> Option<&Mutex<TxRing>> {
        self.tx.get(q)
    }

    /// A receive ring (for inspection).
    pub fn rx_ring(&self, q: usize) -> Option<&Mutex<RxRing>> {
        self.rx.get(q)
    }

    /// An interrupt vector (for inspection).
    pub fn q_vector(&self, q: usize) -> Option<&Arc<QVector>> {
        self.qv.get().and_then(|v| v.get(q))
    }

    fn device(&self) -> Option<Arc<NetDevice>> {
        self.dev.get().and_then(|d| d.upgrade())
    }

    /// `igb_maybe_stop_tx`: stop the queue if fewer than `size` descriptors are free;
    /// answer true (BUSY) if that is still so after the stop.
    fn maybe_stop_tx(ring: &mut TxRing, txq: &NetdevQueue, size: usize) -> bool {
        if ring.unused() >= size {
            return false;
        }
        txq.stop();
        // Completion cannot run concurrently (we hold the ring), but mirror the
        // kernel's re-check after the barrier.
        if ring.unused() < size {
            return true;
        }
        txq.start();
        ring.stats.restart_queue += 1;
        false
    }

    /// `igb_xmit_frame_ring`.
    fn xmit_frame_ring(&self, skb: Skb, dev: &NetDevice, txq: &NetdevQueue) -> NetdevTx {
        let q = usize::from(txq.index).min(self.tx.len() - 1);
        let mut ring = self.tx[q].lock();
        let mut count = txd_use_count(skb.headlen());
        for f in skb.frags() {
            count += txd_use_count(f.len());
        }
        if Self::maybe_stop_tx(&mut ring, txq, count + 3) {
            ring.stats.busy += 1;
            return NetdevTx::Busy(skb);
        }
        if let (Some(t), Some(c)) = (self.trace.get(), self.clock.get()) {
            if t.enabled() {
                t.hit(Stage::DriverXmit, skb.trace_id, skb.len(), c.now());
            }
        }
        let first = ring.next_to_use;
        let tso = skb.is_gso();
        let csum = skb.ip_summed == IpSummed::Partial;
        let hdr_len = tso_header_len(&skb);
        let segs = u32::from(skb.gso_segs.max(1));
        let bytecount = skb.len() as u32 + (segs - 1) * hdr_len as u32;
        let mut i = first;
        // Context descriptor (igb_tso / igb_tx_csum).
        let mut base_cmd = 0;
        if tso || csum {
            ring.desc[i] = TxDesc {
                kind: TxDescKind::Context {
                    mss: skb.gso_size,
                    hdr_len: hdr_len as u16,
                },
                cmd: 0,
                status: 0,
            };
            i = ring.next(i);
            if tso {
                base_cmd |= cmd::TSE;
                ring.stats.tso += 1;
            }
            base_cmd |= cmd::TXSM;
        }
        // Data descriptors (igb_tx_map): the head, then each fragment, split at
        // MAX_DATA_PER_TXD.
        let mut last = i;
        let mut emit = |ring: &mut TxRing, len: usize, i: &mut usize| {
            let mut left = len;
            loop {
                let n = left.min(ring::MAX_DATA_PER_TXD);
                ring.desc[*i] = TxDesc {
                    kind: TxDescKind::Data { len: n as u32 },
                    cmd: base_cmd,
                    status: 0,
                };
                last = *i;
                *i = ring.next(*i);
                left -= n;
                if left == 0 {
                    break;
                }
            }
        };
        emit(&mut ring, skb.headlen(), &mut i);
        for f in skb.frags() {
            emit(&mut ring, f.len(), &mut i);
        }
        ring.desc[last].cmd |= cmd::EOP | cmd::RS;
        let more = skb.xmit_more;
        {
            let b = &mut ring.buf[first];
            b.bytecount = bytecount;
            b.gso_segs = segs as u16;
            b.trace_id = skb.trace_id;
            b.skb = Some(skb);
            b.next_to_watch = Some(last as u16);
        }
        txq.sent_queue(bytecount);
        ring.next_to_use = i;
        Self::maybe_stop_tx(&mut ring, txq, DESC_NEEDED);
        if txq.xmit_stopped() || !more {
            // Ring the doorbell: the hardware fetches everything up to the tail.
            ring.tail = ring.next_to_use;
            ring.stats.doorbells += 1;
            self.hw_tx(q, &mut ring);
        }
        let _ = dev;
        NetdevTx::Ok
    }

    /// `igb_clean_tx_irq`: reclaim descriptors the hardware finished (DD on the packet's
    /// last descriptor), in order, up to the work limit. Returns whether it finished
    /// (did not hit the limit).
    fn clean_tx_irq(&self, stack: &Stack, q: usize) -> bool {
        let Some(dev) = self.device() else {
            return true;
        };
        let Some(txq) = dev.txqs.get(q) else {
            return true;
        };
        let mut budget = self.cfg.tx_work_limit;
        let (mut pkts, mut bytes) = (0u32, 0u32);
        let mut freed: [Option<crate::skb::SkbCharge>; 16] = Default::default();
        let mut nfreed = 0;
        let unused;
        {
            let mut ring = self.tx[q].lock();
            let mut i = ring.next_to_clean;
            while budget > 0 {
                let Some(eop) = ring.buf[i].next_to_watch else {
                    break;
                };
                let eop = usize::from(eop);
                if ring.desc[eop].status & status::DD == 0 {
                    break;
                }
                let b = &mut ring.buf[i];
                b.next_to_watch = None;
                pkts += u32::from(b.gso_segs);
                bytes += b.bytecount;
                let trace_id = b.trace_id;
                b.trace_id = 0;
                if let Some(c) = b.charge.take() {
                    if nfreed == freed.len() {
                        for f in freed.iter_mut() {
                            drop(f.take());
                        }
                        nfreed = 0;
                    }
                    freed[nfreed] = Some(c);
                    nfreed += 1;
                }
                drop(b.skb.take());
                if trace_id != 0 {
                    stack.trace.hit(Stage::CleanTxIrq, trace_id, 0, stack.now());
                }
                // Clear every descriptor of the packet.
                loop {
                    ring.desc[i] = TxDesc::default();
                    let at_eop = i == eop;
                    i = ring.next(i);
                    if at_eop {
                        break;
                    }
                }
                budget -= 1;
            }
            ring.next_to_clean = i;
            ring.stats.packets += u64::from(pkts);
            ring.stats.bytes += u64::from(bytes);
            if budget == 0 {
                ring.stats.clean_limited += 1;
            }
            unused = ring.unused();
        }
        // Release socket charges outside the ring lock (TSQ may send more from here).
        for f in freed.iter_mut().take(nfreed) {
            drop(f.take());
        }
        if pkts > 0 {
            dev.stats
                .tx_packets
                .fetch_add(u64::from(pkts), Ordering::Relaxed);
            dev.stats
                .tx_bytes
                .fetch_add(u64::from(bytes), Ordering::Relaxed);
        }
        txq.completed_queue(pkts, bytes, stack.now());
        if pkts > 0 && dev.carrier_ok() && unused >= TX_WAKE_THRESHOLD && txq.stopped() {
            self.tx[q].lock().stats.restart_queue += 1;
            txq.wake();
        }
        budget > 0
    }

    /// `igb_clean_rx_irq`: take up to `budget` filled descriptors, repost them, and
    /// hand the frames to GRO.
    fn clean_rx_irq(&self, stack: &Stack, qv: &QVector, budget: usize) -> usize {
        let q = qv.idx;
        let Some(dev) = self.device() else {
            return 0;
        };
        let mut batch = std::mem::take(&mut *qv.rx_batch.lock());
        let rxcsum = dev.features().contains(Features::RXCSUM);
        let (mut pkts, mut bytes) = (0u64, 0u64);
        {
            let mut ring = self.rx[q].lock();
            let mut cleaned = 0;
            while batch.len() < budget {
                let i = ring.next_to_clean;
                let d = ring.desc[i];
                if d.status & status::DD == 0 {
                    break;
                }
                ring.desc[i] = Default::default();
                let Some(mut skb) = ring.buf[i].take() else {
                    break;
                };
                ring.next_to_clean = ring.next(i);
                cleaned += 1;
                if cleaned == RX_BUFFER_WRITE {
                    ring.refill(cleaned);
                    cleaned = 0;
                }
                // igb_rx_checksum / igb_rx_hash.
                skb.ip_summed = if !rxcsum {
                    IpSummed::None
                } else if d.status & status::PARTIAL != 0 {
                    IpSummed::Partial
                } else if d.status & status::L4_OK != 0 {
                    IpSummed::Unnecessary
                } else {
                    if d.status & status::L4_ERR != 0 {
                        ring.stats.csum_err += 1;
                    }
                    IpSummed::None
                };
                skb.hash = d.rss_hash;
                skb.queue_mapping = q as u16;
                // Coalesced by the hardware or not: count the frames that arrived.
                pkts += u64::from(skb.pcount());
                bytes += u64::from(d.len);
                batch.push(skb);
            }
            ring.refill(cleaned);
            ring.stats.packets += pkts;
            ring.stats.bytes += bytes;
        }
        let work = batch.len();
        if work > 0 {
            dev.stats.rx_packets.fetch_add(pkts, Ordering::Relaxed);
            dev.stats.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        let now = stack.now();
        for mut skb in batch.drain(..) {
            stack
                .trace
                .hit(Stage::CleanRxIrq, skb.trace_id, skb.len(), now);
            skb.ifindex = dev.ifindex;
            if eth_type_trans(&mut skb, &dev).is_none() {
                dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            crate::dev::gro::napi_gro_receive(stack, &qv.napi, &dev, skb);
        }
        *qv.rx_batch.lock() = batch;
        work
    }
}

/// Header bytes TSO repeats in every segment: up to the end of the TCP/UDP header.
fn tso_header_len(skb: &Skb) -> usize {
    match (skb.transport_header_offset(), skb.is_gso()) {
        (Some(th), true) => {
            let t = skb.transport_header();
            let l4 = if t.len() >= 13 && skb.gso_type == crate::skb::GsoType::TcpV4 {
                usize::from(t[12] >> 4) * 4
            } else {
                8
            };
            th.saturating_sub(skb.data_offset()) + l4
        }
        _ => 0,
    }
}

impl NetDeviceOps for Vnic {
    /// `__igb_open`.
    fn open(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        let s = &self.shared;
        let _ = s.dev.set(Arc::downgrade(dev));
        let _ = s.stack.set(stack.downgrade());
        let _ = s.trace.set(stack.trace.clone());
        let _ = s.clock.set(stack.clock.clone());
        let weight = stack.sysctl.dev_weight().max(1) as usize;
        s.qv.get_or_init(|| {
            (0..s.cfg.queues)
                .map(|idx| {
                    Arc::new_cyclic(|me| QVector {
                        napi: Napi::new(weight),
                        idx,
                        irq: AtomicU8::new(0),
                        vnic: s.me.clone(),
                        softnet: stack.softnet.clone(),
                        me: me.clone(),
                        rx_batch: Mutex::new(Vec::with_capacity(weight)),
                        interrupts: AtomicU64::new(0),
                        latched: AtomicU64::new(0),
                    })
                })
                .collect()
        });
        if let Some(qvs) = s.qv.get() {
            for qv in qvs.iter() {
                qv.napi.enable();
                qv.irq.store(0, Ordering::Release);
            }
        }
        let phy = Arc::downgrade(&s.phy);
        let _ = s.phy.rx_timer.set(Timer::new_hr(move |_stack, _now| {
            if let Some(p) = phy.upgrade() {
                p.kick();
            }
        }));
        let _ = s.phy.clock.set(stack.clock.clone());
        let _ = s.phy.stack.set(stack.downgrade());
        let _ = s.phy.dev.set(Arc::downgrade(dev));
        if let Some(qv) = s.q_vector(0) {
            let _ = s.phy.qv0.set(qv.clone());
        }
        let _ = s.tx_timers.set(
            (0..s.cfg.queues)
                .map(|q| {
                    let me = s.me.clone();
                    Timer::new_hr(move |_stack, _now| {
                        if let Some(v) = me.upgrade() {
                            let mut ring = v.tx[q].lock();
                            v.hw_tx(q, &mut ring);
                        }
                    })
                })
                .collect(),
        );
        for q in dev.txqs.iter() {
            q.start();
        }
        if s.port.get().is_some() {
            dev.carrier_on();
        }
        Ok(())
    }

    /// `igb_close`: stop queues, drop what the rings hold.
    fn stop(&self, _stack: &Stack, dev: &Arc<NetDevice>) {
        let s = &self.shared;
        for q in dev.txqs.iter() {
            q.stop();
        }
        dev.carrier_off();
        if let Some(qvs) = s.qv.get() {
            for qv in qvs.iter() {
                qv.napi.disable();
            }
        }
        for r in s.tx.iter() {
            let mut r = r.lock();
            let n = r.count();
            *r = TxRing::new(n);
        }
        for r in s.rx.iter() {
            let mut r = r.lock();
            let n = r.count();
            *r = RxRing::new(n);
        }
    }

    fn start_xmit(&self, skb: Skb, dev: &NetDevice, txq: &NetdevQueue) -> NetdevTx {
        self.shared.xmit_frame_ring(skb, dev, txq)
    }

    fn ethtool_stats(&self) -> Vec<(String, u64)> {
        let s = &self.shared;
        let mut out = Vec::new();
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push((
            "rx_no_buffer_count".to_string(),
            l(&s.stats.rx_no_buffer_count),
        ));
        let (mut irqs, mut latched) = (0, 0);
        if let Some(qvs) = s.qv.get() {
            for qv in qvs.iter() {
                irqs += l(&qv.interrupts);
                latched += l(&qv.latched);
            }
        }
        out.push(("interrupts".to_string(), irqs));
        out.push(("interrupts_latched".to_string(), latched));
        out.push(("hw_tx_frames".to_string(), l(&s.stats.hw_tx_frames)));
        out.push(("hw_rx_frames".to_string(), l(&s.stats.hw_rx_frames)));
        out.push((
            "rx_hw_gro_packets".to_string(),
            l(&s.stats.rx_hw_gro_packets),
        ));
        out.push((
            "rx_hw_gro_wire_packets".to_string(),
            l(&s.stats.rx_hw_gro_wire_packets),
        ));
        for (i, r) in s.tx.iter().enumerate() {
            let st = r.lock().stats;
            out.push((format!("tx_queue_{i}_packets"), st.packets));
            out.push((format!("tx_queue_{i}_bytes"), st.bytes));
            out.push((format!("tx_queue_{i}_restart"), st.restart_queue));
            out.push((format!("tx_queue_{i}_busy"), st.busy));
            out.push((format!("tx_queue_{i}_doorbells"), st.doorbells));
            out.push((format!("tx_queue_{i}_tso"), st.tso));
        }
        for (i, r) in s.rx.iter().enumerate() {
            let st = r.lock().stats;
            out.push((format!("rx_queue_{i}_packets"), st.packets));
            out.push((format!("rx_queue_{i}_bytes"), st.bytes));
            out.push((format!("rx_queue_{i}_drops"), st.drops));
            out.push((format!("rx_queue_{i}_csum_err"), st.csum_err));
            out.push((format!("rx_queue_{i}_alloc_failed"), st.alloc_failed));
        }
        out
    }

    fn driver_name(&self) -> &'static str {
        "vnic"
    }
}

#[cfg(test)]
mod tests;
