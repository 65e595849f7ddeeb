//! The device layer (Linux's `net/core/dev.c`): network devices and their registry,
//! transmit queues, `dev_queue_xmit` down to the driver, and receive from NAPI up to
//! the protocol handlers.
//!
//! * [`NetDevice`] is `struct net_device`: name, ifindex, MTU, MAC, flags, feature bits,
//!   transmit queues ([`NetdevQueue`], each with its qdisc and byte queue limits) and the
//!   driver's operations ([`NetDeviceOps`], Linux's `net_device_ops`).
//! * [`xmit`] is the transmit path (seed 000 §五, seed 004 §3.5–§3.6).
//! * [`sched`] is the qdisc layer (`net/sched/sch_generic.c` and friends).
//! * [`napi`] is NAPI and `net_rx_action`; [`rx`] is `__netif_receive_skb`.
//! * [`bql`] is dynamic queue limits (`lib/dynamic_queue_limits.c`).
//! * [`gso`] is software segmentation and checksumming (`skb_gso_segment`,
//!   `skb_checksum_help`).

pub mod backlog;
pub mod bql;
pub mod flow;
pub mod gro;
pub mod gso;
pub mod napi;
pub mod rx;
pub mod sched;
pub mod softnet;
pub mod xmit;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use usnet_wire::EthernetAddress;

use crate::skb::Skb;
use crate::Stack;

pub use softnet::Softnet;

/// Device feature bits (Linux's `NETIF_F_*`).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Features(pub u64);

impl Features {
    /// Scatter-gather: the device can send skbs with page fragments (`NETIF_F_SG`).
    pub const SG: Features = Features(1 << 0);
    /// The device computes TCP/UDP checksums over IPv4 (`NETIF_F_IP_CSUM`).
    pub const IP_CSUM: Features = Features(1 << 1);
    /// The device verifies receive checksums (`NETIF_F_RXCSUM`).
    pub const RXCSUM: Features = Features(1 << 2);
    /// TCP segmentation offload over IPv4 (`NETIF_F_TSO`).
    pub const TSO: Features = Features(1 << 3);
    /// Generic segmentation offload in software, just before the driver (`NETIF_F_GSO`).
    pub const GSO: Features = Features(1 << 4);
    /// Generic receive offload in NAPI (`NETIF_F_GRO`).
    pub const GRO: Features = Features(1 << 5);
    /// UDP segmentation offload (`NETIF_F_GSO_UDP_L4`).
    pub const GSO_UDP_L4: Features = Features(1 << 6);
    /// Hardware receive coalescing (`NETIF_F_GRO_HW`: bnxt's TPA, virtio-net's guest
    /// TSO): the NIC hands the stack one skb for a run of in-order TCP segments, built
    /// so that segmenting it again gives back exactly the frames that arrived.
    pub const GRO_HW: Features = Features(1 << 7);
    /// Nothing.
    pub const NONE: Features = Features(0);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// `ethtool -k` style names and states.
    pub fn describe(self) -> Vec<(&'static str, bool)> {
        [
            ("scatter-gather", Features::SG),
            ("tx-checksum-ipv4", Features::IP_CSUM),
            ("rx-checksumming", Features::RXCSUM),
            ("tcp-segmentation-offload", Features::TSO),
            ("generic-segmentation-offload", Features::GSO),
            ("generic-receive-offload", Features::GRO),
            ("tx-udp-segmentation", Features::GSO_UDP_L4),
            ("rx-gro-hw", Features::GRO_HW),
        ]
        .into_iter()
        .map(|(n, f)| (n, self.contains(f)))
        .collect()
    }

    /// Linux's `netdev_fix_features`: drop features whose prerequisites are missing
    /// (TSO and UDP segmentation need SG and checksum offload; SG needs checksum offload;
    /// hardware GRO needs GRO and receive checksumming).
    pub fn fixed(self) -> Features {
        let mut f = self;
        if !f.contains(Features::GRO) || !f.contains(Features::RXCSUM) {
            f = f - Features::GRO_HW;
        }
        if !f.contains(Features::IP_CSUM) {
            f = f - Features::SG;
        }
        if !f.contains(Features::SG) {
            f = f - Features::TSO - Features::GSO_UDP_L4;
        }
        f
    }
}

impl std::ops::BitOr for Features {
    type Output = Features;
    fn bitor(self, o: Features) -> Features {
        Features(self.0 | o.0)
    }
}

impl std::ops::Sub for Features {
    type Output = Features;
    fn sub(self, o: Features) -> Features {
        Features(self.0 & !o.0)
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<_> = self
            .describe()
            .into_iter()
            .filter(|&(_, on)| on)
            .map(|(n, _)| n)
            .collect();
        write!(f, "Features({})", on.join("|"))
    }
}

/// Interface flags (Linux's `IFF_*`).
pub mod flags {
    /// Administratively up.
    pub const UP: u32 = 1 << 0;
    /// Broadcast-capable.
    pub const BROADCAST: u32 = 1 << 1;
    /// Loopback device.
    pub const LOOPBACK: u32 = 1 << 3;
    /// Carrier present (`IFF_RUNNING` / `IFF_LOWER_UP`).
    pub const RUNNING: u32 = 1 << 6;
    /// No ARP on this link.
    pub const NOARP: u32 = 1 << 7;
    /// Receive all frames.
    pub const PROMISC: u32 = 1 << 8;
    /// Multicast-capable.
    pub const MULTICAST: u32 = 1 << 12;
}

/// Transmit queue state bits (Linux's `__QUEUE_STATE_*`).
pub mod qstate {
    /// The driver stopped the queue (ring full).
    pub const DRV_XOFF: u32 = 1 << 0;
    /// Byte queue limits stopped the queue.
    pub const STACK_XOFF: u32 = 1 << 1;
    /// Frozen (device reconfiguration).
    pub const FROZEN: u32 = 1 << 2;
}

/// What a driver's `start_xmit` answers (Linux's `netdev_tx_t`).
#[derive(Debug)]
pub enum NetdevTx {
    /// The driver took the skb (`NETDEV_TX_OK`).
    Ok,
    /// The ring is full; the skb is handed back to be requeued (`NETDEV_TX_BUSY`).
    Busy(Skb),
}

/// What `dev_queue_xmit` answers (Linux's `NET_XMIT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetXmit {
    /// Queued or sent.
    Success,
    /// Dropped (qdisc full, device down, ...).
    Drop,
    /// Queued, but the qdisc signals congestion (`NET_XMIT_CN`).
    Cn,
}

/// A driver's operations (Linux's `net_device_ops`).
pub trait NetDeviceOps: Send + Sync {
    /// `ndo_open`: allocate rings, register interrupts/NAPI, start the queues.
    fn open(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()>;
    /// `ndo_stop`: stop the queues and free the rings.
    fn stop(&self, stack: &Stack, dev: &Arc<NetDevice>);
    /// `ndo_start_xmit`: put one skb on transmit queue `txq` (`skb.xmit_more` says more
    /// follow at once, so the doorbell may wait).
    fn start_xmit(&self, skb: Skb, dev: &NetDevice, txq: &NetdevQueue) -> NetdevTx;
    /// Driver-specific statistics as `ethtool -S` prints them.
    fn ethtool_stats(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    /// The driver's name (`ethtool -i`).
    fn driver_name(&self) -> &'static str;
}

/// Device counters (Linux's `rtnl_link_stats64`, as `ip -s link` shows them).
#[derive(Debug, Default)]
pub struct DevStats {
    /// Packets received.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Packets sent.
    pub tx_packets: AtomicU64,
    /// Bytes sent.
    pub tx_bytes: AtomicU64,
    /// Receive errors.
    pub rx_errors: AtomicU64,
    /// Transmit errors.
    pub tx_errors: AtomicU64,
    /// Received packets dropped by the stack.
    pub rx_dropped: AtomicU64,
    /// Packets dropped before transmission (device down, no qdisc, failed GSO).
    pub tx_dropped: AtomicU64,
    /// Frames lost because the receive ring had no free descriptor.
    pub rx_missed_errors: AtomicU64,
    /// Received packets with no protocol handler.
    pub rx_nohandler: AtomicU64,
    /// Segments that GRO merged into a larger skb, the first of each included
    /// (`ethtool -S` name as mlx5's `rx_gro_packets`).
    pub rx_gro_packets: AtomicU64,
    /// Merged skbs GRO handed to the stack (`rx_gro_skbs`).
    pub rx_gro_skbs: AtomicU64,
}

/// One transmit queue (Linux's `struct netdev_queue`): its state bits, byte queue
/// limits and qdisc.
pub struct NetdevQueue {
    /// Queue index on the device.
    pub index: u16,
    state: AtomicU32,
    /// Byte queue limits.
    pub dql: bql::Dql,
    /// The qdisc attached to this queue.
    pub qdisc: Arc<sched::QdiscSlot>,
    /// Times the driver stopped this queue.
    pub stops: AtomicU64,
    /// Times it was woken again.
    pub wakes: AtomicU64,
}

impl NetdevQueue {
    /// `netif_tx_stop_queue`: the driver has no room.
    pub fn stop(&self) {
        if self.state.fetch_or(qstate::DRV_XOFF, Ordering::AcqRel) & qstate::DRV_XOFF == 0 {
            self.stops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `netif_tx_start_queue`.
    pub fn start(&self) {
        self.state.fetch_and(!qstate::DRV_XOFF, Ordering::AcqRel);
    }

    /// `netif_tx_wake_queue`: start the queue and reschedule its qdisc if it was stopped.
    pub fn wake(&self) {
        if self.state.fetch_and(!qstate::DRV_XOFF, Ordering::AcqRel) & qstate::DRV_XOFF != 0 {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            sched::netif_schedule(&self.qdisc);
        }
    }

    /// `netif_tx_queue_stopped`: the driver stopped it.
    pub fn stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) & qstate::DRV_XOFF != 0
    }

    /// `netif_xmit_stopped`: the driver or BQL stopped it.
    pub fn xmit_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) & (qstate::DRV_XOFF | qstate::STACK_XOFF) != 0
    }

    /// `netif_xmit_frozen_or_stopped`.
    pub fn frozen_or_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) != 0
    }

    /// `netdev_tx_sent_queue`: the driver queued `bytes` to hardware. Stops the queue
    /// (`STACK_XOFF`) when the byte limit is used up.
    pub fn sent_queue(&self, bytes: u32) {
        self.dql.queued(bytes);
        if self.dql.avail() >= 0 {
            return;
        }
        self.state.fetch_or(qstate::STACK_XOFF, Ordering::AcqRel);
        // Completion may have made room meanwhile (Linux re-checks after a barrier).
        if self.dql.avail() >= 0 {
            self.state.fetch_and(!qstate::STACK_XOFF, Ordering::AcqRel);
        }
    }

    /// `netdev_tx_completed_queue`: hardware finished `pkts` packets of `bytes`.
    /// Restarts a BQL-stopped queue once the limit allows again.
    pub fn completed_queue(&self, pkts: u32, bytes: u32, now: crate::time::Instant) {
        if bytes == 0 && pkts == 0 {
            return;
        }
        self.dql.completed(bytes, now);
        let avail = self.dql.avail();
        if avail < 0 {
            return;
        }
        if self.state.fetch_and(!qstate::STACK_XOFF, Ordering::AcqRel) & qstate::STACK_XOFF != 0 {
            sched::netif_schedule(&self.qdisc);
        }
    }

    /// `netdev_tx_reset_queue`.
    pub fn reset_queue(&self) {
        self.dql.reset();
        self.state.fetch_and(!qstate::STACK_XOFF, Ordering::AcqRel);
    }

    /// Raw state bits (for tests and `ethtool`).
    pub fn state_bits(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }
}

/// The GSO size every device starts with and non-TCP traffic never exceeds
/// (`GSO_LEGACY_MAX_SIZE`): an IPv4 datagram's 16-bit total length.
pub const GSO_LEGACY_MAX_SIZE: u32 = 65_536;
/// The largest GSO packet a stack builds for any device (`GSO_MAX_SIZE`, 8 × 65535).
pub const GSO_MAX_SIZE: u32 = 8 * 65_535;
/// The GRO size every device starts with (`GRO_LEGACY_MAX_SIZE`).
pub const GRO_LEGACY_MAX_SIZE: u32 = 65_536;
/// The largest `gro_ipv4_max_size` a device accepts (`GRO_MAX_SIZE`, 8 × 65535).
pub const GRO_MAX_SIZE: u32 = 8 * 65_535;

/// How a driver describes a new device (what `alloc_etherdev_mq` plus the driver's
/// setup fill in).
#[derive(Clone, Debug)]
pub struct NetDeviceConfig {
    /// Interface name (at most 15 bytes, as `IFNAMSIZ - 1`).
    pub name: String,
    /// Hardware address.
    pub mac: EthernetAddress,
    /// MTU (1500 for Ethernet).
    pub mtu: u32,
    /// Smallest MTU the device accepts (68).
    pub min_mtu: u32,
    /// Largest MTU the device accepts.
    pub max_mtu: u32,
    /// Number of transmit queues.
    pub num_tx_queues: usize,
    /// Features the hardware can do (`hw_features`).
    pub hw_features: Features,
    /// Features turned on (`features`).
    pub features: Features,
    /// `txqueuelen` (1000).
    pub tx_queue_len: u32,
    /// `IFF_*` flags (BROADCAST | MULTICAST for Ethernet).
    pub flags: u32,
    /// Largest GSO skb the device accepts (`gso_max_size`, 65536).
    pub gso_max_size: u32,
    /// Most segments per GSO skb (`gso_max_segs`).
    pub gso_max_segs: u16,
    /// Largest TSO packet the hardware can segment (`tso_max_size`): the ceiling for
    /// `gso_ipv4_max_size` (65536, `TSO_LEGACY_MAX_SIZE`, unless the driver says more).
    pub tso_max_size: u32,
}

impl NetDeviceConfig {
    /// An Ethernet device's defaults (`ether_setup`).
    pub fn ethernet(name: &str, mac: EthernetAddress) -> NetDeviceConfig {
        NetDeviceConfig {
            name: name.to_string(),
            mac,
            mtu: 1500,
            min_mtu: 68,
            max_mtu: 9216,
            num_tx_queues: 1,
            hw_features: Features::NONE,
            features: Features::NONE,
            tx_queue_len: 1000,
            flags: flags::BROADCAST | flags::MULTICAST,
            gso_max_size: GSO_LEGACY_MAX_SIZE,
            gso_max_segs: 65535,
            tso_max_size: GSO_LEGACY_MAX_SIZE,
        }
    }
}

/// A network device (Linux's `struct net_device`).
pub struct NetDevice {
    /// Interface index (1, 2, ... in registration order).
    pub ifindex: u32,
    name: String,
    mtu: AtomicU32,
    /// Smallest acceptable MTU.
    pub min_mtu: u32,
    /// Largest acceptable MTU.
    pub max_mtu: u32,
    mac: AtomicU64,
    flags: AtomicU32,
    features: AtomicU64,
    /// What the hardware can do.
    pub hw_features: Features,
    tx_queue_len: AtomicU32,
    /// Largest GSO skb accepted.
    pub gso_max_size: u32,
    /// Most segments per GSO skb.
    pub gso_max_segs: u16,
    /// Largest TSO packet the hardware segments (`tso_max_size`).
    pub tso_max_size: u32,
    gso_ipv4_max_size: AtomicU32,
    gro_ipv4_max_size: AtomicU32,
    /// Transmit queues.
    pub txqs: Box<[NetdevQueue]>,
    /// The driver.
    pub ops: Arc<dyn NetDeviceOps>,
    /// Counters.
    pub stats: DevStats,
    taps: RwLock<Vec<Arc<dyn rx::PacketTap>>>,
    has_taps: std::sync::atomic::AtomicBool,
    softnet: OnceLock<Arc<Softnet>>,
    /// Per-device IPv4 state (addresses), owned by the IP layer.
    pub ip: RwLock<Vec<crate::dev::IfAddr>>,
}

/// An IPv4 address on an interface (Linux's `struct in_ifaddr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: std::net::Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
}

impl fmt::Debug for NetDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetDevice")
            .field("ifindex", &self.ifindex)
            .field("name", &self.name)
            .field("mtu", &self.mtu())
            .field("mac", &self.mac())
            .field("flags", &format_args!("{:#x}", self.flags()))
            .field("features", &self.features())
            .finish()
    }
}

impl NetDevice {
    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Current MTU.
    #[inline]
    pub fn mtu(&self) -> u32 {
        self.mtu.load(Ordering::Relaxed)
    }

    /// Change the MTU (`dev_set_mtu`): `InvalidInput` outside `[min_mtu, max_mtu]`.
    pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
        if mtu < self.min_mtu || mtu > self.max_mtu {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: MTU {} outside {}..={}",
                    self.name, mtu, self.min_mtu, self.max_mtu
                ),
            ));
        }
        self.mtu.store(mtu, Ordering::Relaxed);
        Ok(())
    }

    /// Hardware address.
    #[inline]
    pub fn mac(&self) -> EthernetAddress {
        let v = self.mac.load(Ordering::Relaxed).to_be_bytes();
        EthernetAddress([v[2], v[3], v[4], v[5], v[6], v[7]])
    }

    /// Change the hardware address (`dev_set_mac_address`): must be unicast.
    pub fn set_mac(&self, mac: EthernetAddress) -> io::Result<()> {
        if !mac.is_unicast() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a device address must be unicast",
            ));
        }
        self.mac.store(mac_to_u64(mac), Ordering::Relaxed);
        Ok(())
    }

    /// `IFF_*` flags.
    #[inline]
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    /// Whether the device is administratively up.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.flags() & flags::UP != 0
    }

    /// Whether this is a loopback device.
    #[inline]
    pub fn is_loopback(&self) -> bool {
        self.flags() & flags::LOOPBACK != 0
    }

    /// `netif_carrier_ok`.
    #[inline]
    pub fn carrier_ok(&self) -> bool {
        self.flags() & flags::RUNNING != 0
    }

    /// `netif_carrier_on`.
    pub fn carrier_on(&self) {
        self.flags.fetch_or(flags::RUNNING, Ordering::AcqRel);
    }

    /// `netif_carrier_off`.
    pub fn carrier_off(&self) {
        self.flags.fetch_and(!flags::RUNNING, Ordering::AcqRel);
    }

    /// Set or clear flags other than UP/RUNNING (e.g. PROMISC, NOARP).
    pub fn set_flag(&self, flag: u32, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::AcqRel);
        } else {
            self.flags.fetch_and(!flag, Ordering::AcqRel);
        }
    }

    /// Active features.
    #[inline]
    pub fn features(&self) -> Features {
        Features(self.features.load(Ordering::Relaxed))
    }

    /// Turn features on or off (`ethtool -K`); only those the hardware has, fixed up
    /// for their prerequisites.
    pub fn set_features(&self, wanted: Features) -> Features {
        let f = Features(wanted.0 & self.hw_features.0).fixed();
        self.features.store(f.0, Ordering::Relaxed);
        f
    }

    /// Largest GSO packet TCP builds for this device over IPv4
    /// (`gso_ipv4_max_size`, 65536). Above 65536 is "BIG TCP": such a packet's IP total
    /// length reads 0 and the receiver takes its length from the skb (`iph_totlen`).
    #[inline]
    pub fn gso_ipv4_max_size(&self) -> u32 {
        self.gso_ipv4_max_size.load(Ordering::Relaxed)
    }

    /// `ip link set DEV gso_ipv4_max_size N`: `InvalidInput` (EINVAL) above the
    /// hardware's `tso_max_size` or below what one TCP header needs. Connections pick
    /// the new size up as they size their next packet.
    ///
    /// BIG TCP on both ends of a vnic link:
    ///
    /// ```
    /// let h = usnet::testutil::TwoHosts::new(1, |_| {}).with_ip();
    /// for d in [&h.da, &h.db] {
    ///     d.set_gso_ipv4_max_size(185_000)?;
    ///     d.set_gro_ipv4_max_size(185_000)?;
    /// }
    /// // Above the hardware's tso_max_size (the vnic's is GSO_MAX_SIZE): refused.
    /// assert!(h.da.set_gso_ipv4_max_size(usnet::dev::GSO_MAX_SIZE + 1).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_gso_ipv4_max_size(&self, size: u32) -> io::Result<()> {
        if size > self.tso_max_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: gso_ipv4_max_size {size} above tso_max_size {}",
                    self.name, self.tso_max_size
                ),
            ));
        }
        if size as usize <= crate::tcp::MAX_TCP_HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: gso_ipv4_max_size {size} must exceed {}",
                    self.name,
                    crate::tcp::MAX_TCP_HEADER
                ),
            ));
        }
        self.gso_ipv4_max_size.store(size, Ordering::Relaxed);
        Ok(())
    }

    /// Largest IPv4 packet GRO (software, or the NIC's `rx-gro-hw`) builds on this
    /// device (`gro_ipv4_max_size`, 65536).
    #[inline]
    pub fn gro_ipv4_max_size(&self) -> u32 {
        self.gro_ipv4_max_size.load(Ordering::Relaxed)
    }

    /// `ip link set DEV gro_ipv4_max_size N`: `InvalidInput` (EINVAL) above
    /// [`GRO_MAX_SIZE`].
    pub fn set_gro_ipv4_max_size(&self, size: u32) -> io::Result<()> {
        if size > GRO_MAX_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: gro_ipv4_max_size {size} above {GRO_MAX_SIZE}",
                    self.name
                ),
            ));
        }
        self.gro_ipv4_max_size.store(size, Ordering::Relaxed);
        Ok(())
    }

    /// `txqueuelen`.
    pub fn tx_queue_len(&self) -> u32 {
        self.tx_queue_len.load(Ordering::Relaxed)
    }

    /// Set `txqueuelen` (takes effect for the pfifo_fast limit at once).
    pub fn set_tx_queue_len(&self, len: u32) {
        self.tx_queue_len.store(len, Ordering::Relaxed);
    }

    /// The softirq state of the stack this device is registered in.
    pub fn softnet(&self) -> Option<&Arc<Softnet>> {
        self.softnet.get()
    }

    /// Add a packet tap (Linux's `ptype_all`: what tcpdump and pcap capture use).
    pub fn add_tap(&self, tap: Arc<dyn rx::PacketTap>) {
        let mut t = self.taps.write();
        t.push(tap);
        self.has_taps.store(true, Ordering::Release);
    }

    /// Remove every tap.
    pub fn clear_taps(&self) {
        let mut t = self.taps.write();
        t.clear();
        self.has_taps.store(false, Ordering::Release);
    }

    pub(crate) fn taps(
        &self,
    ) -> Option<parking_lot::RwLockReadGuard<'_, Vec<Arc<dyn rx::PacketTap>>>> {
        if !self.has_taps.load(Ordering::Acquire) {
            return None;
        }
        let t = self.taps.read();
        if t.is_empty() {
            None
        } else {
            Some(t)
        }
    }

    /// Counters as `ip -s link` names them.
    pub fn link_stats(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("rx_packets", l(&s.rx_packets)),
            ("rx_bytes", l(&s.rx_bytes)),
            ("rx_errors", l(&s.rx_errors)),
            ("rx_dropped", l(&s.rx_dropped)),
            ("rx_missed_errors", l(&s.rx_missed_errors)),
            ("rx_nohandler", l(&s.rx_nohandler)),
            ("tx_packets", l(&s.tx_packets)),
            ("tx_bytes", l(&s.tx_bytes)),
            ("tx_errors", l(&s.tx_errors)),
            ("tx_dropped", l(&s.tx_dropped)),
        ]
    }

    /// Software offload counters, as `ethtool -S` names them.
    pub fn offload_stats(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        vec![
            ("rx_gro_packets", s.rx_gro_packets.load(Ordering::Relaxed)),
            ("rx_gro_skbs", s.rx_gro_skbs.load(Ordering::Relaxed)),
        ]
    }
}

fn mac_to_u64(m: EthernetAddress) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&m.0);
    u64::from_be_bytes(b)
}

/// The stack's devices, by ifindex (Linux's `dev_base` list and name/index hashes).
#[derive(Default)]
pub struct DevRegistry {
    devs: RwLock<Vec<Arc<NetDevice>>>,
    next_ifindex: AtomicU32,
}

impl fmt::Debug for DevRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.devs.read().iter()).finish()
    }
}

fn einval(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Linux's `dev_valid_name`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

impl DevRegistry {
    /// All devices.
    pub fn list(&self) -> Vec<Arc<NetDevice>> {
        self.devs.read().clone()
    }

    /// `dev_get_by_index`.
    pub fn by_index(&self, ifindex: u32) -> Option<Arc<NetDevice>> {
        self.devs
            .read()
            .iter()
            .find(|d| d.ifindex == ifindex)
            .cloned()
    }

    /// `dev_get_by_name`.
    pub fn by_name(&self, name: &str) -> Option<Arc<NetDevice>> {
        self.devs.read().iter().find(|d| d.name == name).cloned()
    }

    /// `register_netdevice`: sanity-check the configuration, assign an ifindex, set up
    /// transmit queues with the default qdisc, and add the device (down).
    pub fn register(
        &self,
        stack: &Stack,
        cfg: NetDeviceConfig,
        ops: Arc<dyn NetDeviceOps>,
    ) -> io::Result<Arc<NetDevice>> {
        if !valid_name(&cfg.name) {
            return Err(einval(format!("invalid interface name {:?}", cfg.name)));
        }
        if cfg.min_mtu > cfg.max_mtu || cfg.mtu < cfg.min_mtu || cfg.mtu > cfg.max_mtu {
            return Err(einval(format!(
                "{}: MTU {} outside {}..={}",
                cfg.name, cfg.mtu, cfg.min_mtu, cfg.max_mtu
            )));
        }
        if cfg.num_tx_queues == 0 || cfg.num_tx_queues > 4096 {
            return Err(einval(format!(
                "{}: {} transmit queues (1..=4096)",
                cfg.name, cfg.num_tx_queues
            )));
        }
        if !cfg.mac.is_unicast() && cfg.flags & flags::LOOPBACK == 0 {
            return Err(einval(format!(
                "{}: address {} is not unicast",
                cfg.name, cfg.mac
            )));
        }
        let mut devs = self.devs.write();
        if devs.iter().any(|d| d.name == cfg.name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("device {} already exists", cfg.name),
            ));
        }
        let ifindex = self.next_ifindex.fetch_add(1, Ordering::Relaxed) + 1;
        let features = Features(cfg.features.0 & cfg.hw_features.0).fixed();
        let dev = Arc::new_cyclic(|weak: &std::sync::Weak<NetDevice>| {
            let txqs = (0..cfg.num_tx_queues)
                .map(|i| NetdevQueue {
                    index: i as u16,
                    state: AtomicU32::new(qstate::DRV_XOFF),
                    dql: bql::Dql::new(),
                    qdisc: sched::QdiscSlot::new(
                        weak.clone(),
                        i as u16,
                        stack.softnet.clone(),
                        sched::default_qdisc(cfg.tx_queue_len),
                    ),
                    stops: AtomicU64::new(0),
                    wakes: AtomicU64::new(0),
                })
                .collect();
            NetDevice {
                ifindex,
                name: cfg.name.clone(),
                mtu: AtomicU32::new(cfg.mtu),
                min_mtu: cfg.min_mtu,
                max_mtu: cfg.max_mtu,
                mac: AtomicU64::new(mac_to_u64(cfg.mac)),
                flags: AtomicU32::new(cfg.flags & !(flags::UP | flags::RUNNING)),
                features: AtomicU64::new(features.0),
                hw_features: cfg.hw_features,
                tx_queue_len: AtomicU32::new(cfg.tx_queue_len),
                gso_max_size: cfg.gso_max_size,
                gso_max_segs: cfg.gso_max_segs,
                tso_max_size: cfg.tso_max_size,
                gso_ipv4_max_size: AtomicU32::new(cfg.gso_max_size.min(GSO_LEGACY_MAX_SIZE)),
                gro_ipv4_max_size: AtomicU32::new(GRO_LEGACY_MAX_SIZE),
                txqs,
                ops,
                stats: DevStats::default(),
                taps: RwLock::new(Vec::new()),
                has_taps: std::sync::atomic::AtomicBool::new(false),
                softnet: OnceLock::new(),
                ip: RwLock::new(Vec::new()),
            }
        });
        let _ = dev.softnet.set(stack.softnet.clone());
        devs.push(dev.clone());
        Ok(dev)
    }

    /// `unregister_netdevice`: close the device if it is up, drop its queued packets and
    /// remove it.
    pub fn unregister(&self, stack: &Stack, ifindex: u32) -> io::Result<()> {
        let dev = self.by_index(ifindex).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no device {ifindex}"))
        })?;
        if dev.is_up() {
            dev_close(stack, &dev);
        }
        self.devs.write().retain(|d| d.ifindex != ifindex);
        Ok(())
    }
}

/// `dev_open`: ask the driver to open, mark the device up and activate its qdiscs.
pub fn dev_open(stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
    if dev.is_up() {
        return Ok(());
    }
    dev.ops.open(stack, dev)?;
    dev.flags.fetch_or(flags::UP, Ordering::AcqRel);
    for q in dev.txqs.iter() {
        q.qdisc.activate();
        q.reset_queue();
    }
    Ok(())
}

/// `dev_close`: deactivate the qdiscs (dropping what they hold), stop the driver, and
/// mark the device down.
pub fn dev_close(stack: &Stack, dev: &Arc<NetDevice>) {
    if !dev.is_up() {
        return;
    }
    for q in dev.txqs.iter() {
        q.qdisc.deactivate();
    }
    dev.ops.stop(stack, dev);
    dev.flags
        .fetch_and(!(flags::UP | flags::RUNNING), Ordering::AcqRel);
    for q in dev.txqs.iter() {
        q.stop();
    }
}
