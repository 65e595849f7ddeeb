//! Trace points at every stage the seeds name, so `usnet trace` can show one segment's
//! journey from `tcp_sendmsg` to the driver's ring, across the wire and back to TX
//! completion, with the time spent in each function.
//!
//! Tracing is off by default and costs one relaxed atomic load per trace point. When on,
//! every skb carrying a nonzero `trace_id` records an [`Event`] at each stage it passes
//! (clones and GSO segments inherit the id), and every stage also counts hits for the
//! whole-run histogram.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::time::Instant;

macro_rules! stages {
    ($( $(#[$doc:meta])* $name:ident = $label:literal, )*) => {
        /// A stage of the send or receive path, named for the Linux function it mirrors.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Stage { $( $(#[$doc])* $name, )* }

        impl Stage {
            /// Every stage, in declaration order (which is path order).
            pub const ALL: &'static [Stage] = &[ $( Stage::$name, )* ];
            /// The Linux function name.
            pub fn name(self) -> &'static str {
                match self { $( Stage::$name => $label, )* }
            }
        }
    };
}

stages! {
    /// `tcp_sendmsg`: user data copied into skbs on the write queue.
    TcpSendmsg = "tcp_sendmsg",
    /// `tcp_push` / `__tcp_push_pending_frames` / `tcp_push_one`.
    TcpPush = "tcp_push",
    /// `tcp_write_xmit`: the cwnd / window / Nagle / TSQ loop.
    TcpWriteXmit = "tcp_write_xmit",
    /// `tcp_transmit_skb`: clone, header, checksum.
    TcpTransmitSkb = "tcp_transmit_skb",
    /// `udp_sendmsg`.
    UdpSendmsg = "udp_sendmsg",
    /// `ip_queue_xmit`: route and IP header.
    IpQueueXmit = "ip_queue_xmit",
    /// `ip_local_out` (+ NF_INET_LOCAL_OUT).
    IpLocalOut = "ip_local_out",
    /// `ip_output` (+ NF_INET_POST_ROUTING).
    IpOutput = "ip_output",
    /// `ip_finish_output` (GSO / fragmentation decision).
    IpFinishOutput = "ip_finish_output",
    /// `ip_fragment`.
    IpFragment = "ip_fragment",
    /// `ip_finish_output2`: next hop and neighbour.
    IpFinishOutput2 = "ip_finish_output2",
    /// `neigh_resolve_output`: queued on `arp_queue` while resolving.
    NeighResolveOutput = "neigh_resolve_output",
    /// `neigh_hh_output`: cached hardware header.
    NeighHhOutput = "neigh_hh_output",
    /// `dev_queue_xmit`.
    DevQueueXmit = "dev_queue_xmit",
    /// `__dev_xmit_skb`: enqueued on the qdisc.
    QdiscEnqueue = "qdisc_enqueue",
    /// `__dev_xmit_skb`: empty qdisc bypassed straight to the driver.
    QdiscBypass = "qdisc_bypass",
    /// `qdisc_restart`: dequeued from the qdisc.
    QdiscRestart = "qdisc_restart",
    /// `dev_requeue_skb`: the driver said BUSY.
    DevRequeueSkb = "dev_requeue_skb",
    /// `validate_xmit_skb`: software GSO / checksum.
    ValidateXmitSkb = "validate_xmit_skb",
    /// `xmit_one` (+ packet taps).
    XmitOne = "xmit_one",
    /// The driver's `ndo_start_xmit` (`igb_xmit_frame_ring`): descriptors filled.
    DriverXmit = "igb_xmit_frame_ring",
    /// The emulated NIC fetched the descriptors and put frames on the wire.
    HwTx = "hw_tx",
    /// The frame crossed the wire (delay, rate, impairments).
    Wire = "wire",
    /// The peer NIC wrote the frame into its RX ring and raised the interrupt.
    HwRx = "hw_rx",
    /// `igb_clean_rx_irq`: NAPI took the frame off the RX ring.
    CleanRxIrq = "igb_clean_rx_irq",
    /// `napi_gro_receive`.
    GroReceive = "napi_gro_receive",
    /// `__netif_receive_skb`: protocol handlers.
    NetifReceiveSkb = "netif_receive_skb",
    /// `ip_rcv` (+ NF_INET_PRE_ROUTING).
    IpRcv = "ip_rcv",
    /// `ip_local_deliver` (+ NF_INET_LOCAL_IN).
    IpLocalDeliver = "ip_local_deliver",
    /// `tcp_v4_rcv`.
    TcpV4Rcv = "tcp_v4_rcv",
    /// `tcp_ack`: the ACK for the traced segment was processed.
    TcpAck = "tcp_ack",
    /// `udp_rcv`.
    UdpRcv = "udp_rcv",
    /// `igb_clean_tx_irq`: TX completion freed the skb.
    CleanTxIrq = "igb_clean_tx_irq",
}

/// One recorded trace event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The traced skb's id.
    pub id: u32,
    /// Where it was.
    pub stage: Stage,
    /// Wall-clock nanoseconds since tracing was enabled (what the CPU spent).
    pub real_ns: u64,
    /// The stack's clock (virtual time under the simulator).
    pub at: Instant,
    /// Bytes in the skb at that point.
    pub len: u32,
}

/// Per-stack trace state.
#[derive(Debug)]
pub struct Tracer {
    enabled: AtomicBool,
    next_id: AtomicU32,
    base: Mutex<Option<std::time::Instant>>,
    events: Mutex<Vec<Event>>,
    hits: [AtomicU64; 64],
    max_events: usize,
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer {
            enabled: AtomicBool::new(false),
            next_id: AtomicU32::new(1),
            base: Mutex::new(None),
            events: Mutex::new(Vec::new()),
            hits: std::array::from_fn(|_| AtomicU64::new(0)),
            max_events: 1 << 20,
        }
    }
}

impl Tracer {
    /// Start recording (and reset earlier events).
    pub fn enable(&self) {
        *self.base.lock() = Some(std::time::Instant::now());
        self.events.lock().clear();
        for h in &self.hits {
            h.store(0, Ordering::Relaxed);
        }
        self.enabled.store(true, Ordering::Release);
    }

    /// Stop recording.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
    }

    /// Whether recording is on.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// A fresh id for an skb to be followed.
    pub fn new_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Record that an skb with `id` (0 = not followed) of `len` bytes reached `stage`.
    #[inline]
    pub fn hit(&self, stage: Stage, id: u32, len: usize, at: Instant) {
        if !self.enabled() {
            return;
        }
        self.record(stage, id, len, at);
    }

    #[cold]
    fn record(&self, stage: Stage, id: u32, len: usize, at: Instant) {
        self.hits[stage as usize].fetch_add(1, Ordering::Relaxed);
        if id == 0 {
            return;
        }
        let real_ns = self
            .base
            .lock()
            .map(|b| b.elapsed().as_nanos() as u64)
            .unwrap_or(0);
        let mut ev = self.events.lock();
        if ev.len() < self.max_events {
            ev.push(Event {
                id,
                stage,
                real_ns,
                at,
                len: len as u32,
            });
        }
    }

    /// Events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// Hit count per stage since [`Tracer::enable`].
    pub fn hits(&self) -> Vec<(Stage, u64)> {
        Stage::ALL
            .iter()
            .map(|&s| (s, self.hits[s as usize].load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}
