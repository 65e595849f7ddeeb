//! The `tap` driver: a Linux TAP device (`/dev/net/tun` with `IFF_TAP | IFF_NO_PI`), so
//! usnet's frames reach the Linux kernel's own stack and real programs.
//!
//! With offloads ([`Tap::open_offload`]: `IFF_VNET_HDR` and `TUNSETOFFLOAD` with
//! `TUN_F_CSUM | TUN_F_TSO4`) every frame carries a `virtio_net_hdr`, as between a
//! virtio-net guest and its host: usnet hands the kernel whole 64 KiB TSO skbs with
//! the TCP checksum left to finish (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, `GSO_TCPV4`), and
//! the kernel hands usnet its GSO packets unsegmented. Without offloads the device has
//! none, so `validate_xmit_skb` segments GSO skbs and finishes checksums in software
//! first, and the kernel segments what it sends.
//!
//! With several queues ([`Tap::open_multiqueue`], `IFF_MULTI_QUEUE`) each queue is a
//! descriptor of its own with its own reader thread and transmit queue: the kernel
//! spreads the flows it sends over them by flow hash, usnet its own by
//! `netdev_pick_tx`.
//!
//! Transmit writes each frame with one `writev` (the virtio header, the skb's linear
//! part and page fragments as the iovec, no copy). Receive is a reader thread — the
//! "hardware" — that polls the descriptor and reads frames straight into receive
//! buffers carved from large chunks (as a driver's page-fragment allocator): headers
//! are copied into a small linear skb, the payload stays where `read` put it as a page
//! fragment, and short frames are copied whole (`rx_copybreak`) so their chunk space
//! is reused. The skbs go to the stack through `netif_rx` (the input backlog NAPI),
//! which wakes the softirq thread. The stack must run in real time
//! ([`crate::Stack::start`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use usnet_wire::EthernetAddress;

use super::relay::FramePort;
use crate::dev::backlog::netif_rx;
use crate::dev::rx::eth_type_trans;
use crate::dev::{Features, NetDevice, NetDeviceConfig, NetDeviceOps, NetdevQueue, NetdevTx};
use crate::skb::{GsoType, IpSummed, Skb, MAX_SKB_FRAGS};
use crate::stack::WeakStack;
use crate::time::Instant;
use crate::Stack;

/// Largest frame read or written.
const MAX_FRAME: usize = 65536 + 14;
/// Receive buffers are carved from chunks of this size.
const RX_CHUNK: usize = 256 * 1024;
/// Frames up to this long are copied into a small skb (`rx_copybreak`).
const RX_COPYBREAK: usize = 256;
/// At least this much of a longer frame is copied into the linear part (headers).
const RX_HDR_COPY: usize = 128;
/// Frames read per wakeup before the reader polls again.
const RX_BATCH: usize = 64;

/// `struct virtio_net_hdr` (10 bytes, native byte order on a legacy TAP).
const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: finish the checksum at csum_start + csum_offset.
const VNET_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
const VNET_F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const VNET_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_ECN` (or'ed into the GSO type).
const VNET_GSO_ECN: u8 = 0x80;

/// The fields of a `virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct VnetHdr {
    flags: u8,
    gso_type: u8,
    hdr_len: u16,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
}

impl VnetHdr {
    fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// The header describing an outgoing skb (`virtio_net_hdr_from_skb`): where its
    /// checksum is to be finished, and how a TSO skb is to be cut.
    fn for_skb(skb: &Skb) -> VnetHdr {
        let mut h = VnetHdr::default();
        let base = skb.data_offset();
        if skb.ip_summed == IpSummed::Partial {
            h.flags = VNET_F_NEEDS_CSUM;
            h.csum_start = (usize::from(skb.csum_start).saturating_sub(base)) as u16;
            h.csum_offset = skb.csum_offset;
        }
        if skb.is_gso() && skb.gso_type == GsoType::TcpV4 {
            h.gso_type = VNET_GSO_TCPV4;
            h.gso_size = skb.gso_size;
            let th = skb.transport_header_offset().unwrap_or(base);
            let doff = skb
                .transport_header()
                .get(12)
                .map_or(20, |b| usize::from(b >> 4) * 4);
            h.hdr_len = (th.saturating_sub(base) + doff) as u16;
        }
        h
    }
}

/// Why a received frame was refused.
#[derive(Debug, PartialEq, Eq)]
enum RxError {
    /// Shorter than an Ethernet header, or the virtio header.
    Short,
    /// A checksum position outside the frame.
    BadCsum,
    /// A GSO type or size usnet did not offer to take.
    BadGso,
}

/// Turn `n` bytes just read into `rx` (after the virtio header `h`, when there is
/// one) into an skb: copied whole when short, else headers copied and the payload
/// split off the chunk as a page fragment.
fn rx_frame_to_skb(rx: &mut BytesMut, n: usize, h: Option<VnetHdr>) -> Result<Skb, RxError> {
    if n < 14 || rx.len() < n {
        rx.clear();
        return Err(RxError::Short);
    }
    let mut skb = if n <= RX_COPYBREAK {
        let skb = Skb::from_slice(&rx[..n], 64);
        rx.clear();
        skb
    } else {
        let hdr = h.map_or(0, |h| usize::from(h.hdr_len));
        let lin = hdr.max(RX_HDR_COPY).min(n);
        let mut skb = Skb::alloc(lin, 64);
        skb.put_slice(&rx[..lin]);
        let payload = rx.split_to(n).freeze().slice(lin..);
        // One fragment: cannot exceed MAX_SKB_FRAGS.
        let _ = skb.push_frag(payload);
        skb
    };
    skb.reset_for_rx(Instant::ZERO);
    let Some(h) = h else {
        return Ok(skb);
    };
    if h.flags & VNET_F_NEEDS_CSUM != 0 {
        if usize::from(h.csum_start) + usize::from(h.csum_offset) + 2 > n {
            return Err(RxError::BadCsum);
        }
        skb.ip_summed = IpSummed::Partial;
        skb.csum_start = (skb.data_offset() + usize::from(h.csum_start)) as u16;
        skb.csum_offset = h.csum_offset;
    } else if h.flags & VNET_F_DATA_VALID != 0 {
        skb.ip_summed = IpSummed::Unnecessary;
    }
    match h.gso_type & !VNET_GSO_ECN {
        0 => {}
        VNET_GSO_TCPV4 if h.gso_size > 0 => {
            let payload = n.saturating_sub(usize::from(h.hdr_len)).max(1);
            skb.gso_type = GsoType::TcpV4;
            skb.gso_size = h.gso_size;
            skb.gso_segs = payload.div_ceil(usize::from(h.gso_size)).min(0xffff) as u16;
        }
        _ => return Err(RxError::BadGso),
    }
    Ok(skb)
}

/// Counters (`ethtool -S`).
#[derive(Default, Debug)]
struct TapStats {
    tx_frames: AtomicU64,
    tx_errors: AtomicU64,
    /// Frames written as one TSO frame for the kernel to segment.
    tx_tso_frames: AtomicU64,
    rx_frames: AtomicU64,
    rx_errors: AtomicU64,
    /// GSO frames the kernel handed over unsegmented.
    rx_gso_frames: AtomicU64,
}

/// One queue of a TAP device: a descriptor (with `IFF_MULTI_QUEUE`, one per queue of
/// the same interface), its reader thread and counters.
struct TapQueue {
    fd: OwnedFd,
    reader: super::RxThread,
    tx_frames: AtomicU64,
    rx_frames: Arc<AtomicU64>,
}

/// A TAP device driver instance.
pub struct Tap {
    /// The queues; the first is the descriptor of a single-queue TAP.
    queues: Vec<TapQueue>,
    name: String,
    /// `IFF_VNET_HDR` with checksum and TSO offloads.
    offload: bool,
    stack: OnceLock<WeakStack>,
    stats: Arc<TapStats>,
}

fn last_err(what: &str, hint: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}{hint}"))
}

impl Tap {
    /// Open (creating if needed) TAP interface `name` on the host, without offloads.
    /// Needs CAP_NET_ADMIN (root) and `/dev/net/tun`.
    pub fn open(name: &str) -> io::Result<Arc<Tap>> {
        Tap::open_with(name, false, 1)
    }

    /// As [`Tap::open`], with offloads: frames carry a `virtio_net_hdr`, usnet sends
    /// 64 KiB TSO frames with checksums left to finish, and the kernel sends its GSO
    /// packets unsegmented (`TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN`).
    pub fn open_offload(name: &str) -> io::Result<Arc<Tap>> {
        Tap::open_with(name, true, 1)
    }

    /// A multiqueue TAP (`IFF_MULTI_QUEUE`): `queues` descriptors on one interface,
    /// each with its own reader thread and transmit queue; the kernel spreads the
    /// flows it sends over the queues by their hash, usnet its own by `netdev_pick_tx`.
    pub fn open_multiqueue(name: &str, queues: usize, offload: bool) -> io::Result<Arc<Tap>> {
        Tap::open_with(name, offload, queues)
    }

    fn open_with(name: &str, offload: bool, queues: usize) -> io::Result<Arc<Tap>> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TAP name {name:?} must be 1..{} bytes", libc::IFNAMSIZ - 1),
            ));
        }
        if !(1..=256).contains(&queues) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{queues} TAP queues: 1 to 256 (tun's MAX_TAP_QUEUES)"),
            ));
        }
        let queues = (0..queues)
            .map(|_| {
                Ok(TapQueue {
                    fd: open_queue(name, offload, queues > 1)?,
                    reader: super::RxThread::default(),
                    tx_frames: AtomicU64::new(0),
                    rx_frames: Arc::new(AtomicU64::new(0)),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Arc::new(Tap {
            queues,
            name: name.to_string(),
            offload,
            stack: OnceLock::new(),
            stats: Arc::new(TapStats::default()),
        }))
    }

    /// Open TAP interface `name` inside the network namespace at `netns` (a path such
    /// as `/var/run/netns/NAME`, as `ip netns add` makes): the interface lives there,
    /// the descriptor works from anywhere.
    pub fn open_in_netns(name: &str, netns: &std::path::Path) -> io::Result<Arc<Tap>> {
        super::in_netns(netns, || Tap::open(name))
    }

    /// [`Tap::open_offload`] inside the network namespace at `netns`.
    pub fn open_offload_in_netns(name: &str, netns: &std::path::Path) -> io::Result<Arc<Tap>> {
        super::in_netns(netns, || Tap::open_offload(name))
    }

    /// [`Tap::open_multiqueue`] inside the network namespace at `netns`.
    pub fn open_multiqueue_in_netns(
        name: &str,
        queues: usize,
        offload: bool,
        netns: &std::path::Path,
    ) -> io::Result<Arc<Tap>> {
        super::in_netns(netns, || Tap::open_multiqueue(name, queues, offload))
    }

    /// Number of queues.
    pub fn queues(&self) -> usize {
        self.queues.len()
    }

    /// Whether the device was opened with offloads.
    pub fn offloads(&self) -> bool {
        self.offload
    }

    /// The interface name on the host.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Register and open the device on `stack` as `ifname` with `mac`.
    pub fn create(
        stack: &Stack,
        tap: &Arc<Tap>,
        ifname: &str,
        mac: EthernetAddress,
    ) -> io::Result<Arc<NetDevice>> {
        let mut cfg = NetDeviceConfig::ethernet(ifname, mac);
        cfg.mtu = 1500;
        let f = if tap.offload {
            Features(Features::SG.0 | Features::IP_CSUM.0 | Features::TSO.0 | Features::RXCSUM.0)
        } else {
            Features::SG
        };
        cfg.hw_features = f;
        cfg.features = f;
        cfg.num_tx_queues = tap.queues.len();
        let _ = tap.stack.set(stack.downgrade());
        let dev = stack.devs.register(stack, cfg, tap.clone())?;
        crate::dev::dev_open(stack, &dev)?;
        Ok(dev)
    }

    fn start_readers(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        for (i, q) in self.queues.iter().enumerate() {
            self.start_reader(stack, dev, i, q)?;
        }
        Ok(())
    }

    fn start_reader(
        &self,
        stack: &Stack,
        dev: &Arc<NetDevice>,
        i: usize,
        q: &TapQueue,
    ) -> io::Result<()> {
        let raw = q.fd.as_raw_fd();
        let offload = self.offload;
        let stats = self.stats.clone();
        let rx_frames = q.rx_frames.clone();
        let weak = stack.downgrade();
        let dev = Arc::downgrade(dev);
        q.reader
            .start(format!("tap-rx/{}/{i}", self.name), move |stop| {
                let mut rx = BytesMut::with_capacity(RX_CHUNK);
                while !stop.load(Ordering::Acquire) {
                    let mut pfd = libc::pollfd {
                        fd: raw,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for the duration of the call.
                    let r = unsafe { libc::poll(&mut pfd, 1, 100) };
                    if r <= 0 {
                        continue;
                    }
                    let (Some(stack), Some(dev)) = (weak.upgrade(), dev.upgrade()) else {
                        return;
                    };
                    // As after a NIC's interrupt (irq_exit → invoke_softirq), the
                    // NET_RX this batch raises runs here when the batch is in, unless
                    // ksoftirqd is already running: no wake-up of another thread per
                    // batch.
                    let _bh = crate::dev::softnet::local_bh_disable();
                    for _ in 0..RX_BATCH {
                        let got = read_frame(raw, &mut rx, offload);
                        let (n, h) = match got {
                            Ok(Some(x)) => x,
                            Ok(None) => break,
                            Err(()) => {
                                stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        };
                        let mut skb = match rx_frame_to_skb(&mut rx, n, h) {
                            Ok(skb) => skb,
                            Err(_) => {
                                stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                                dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        };
                        skb.tstamp = stack.now();
                        if skb.is_gso() {
                            stats.rx_gso_frames.fetch_add(1, Ordering::Relaxed);
                        }
                        dev.stats
                            .rx_packets
                            .fetch_add(u64::from(skb.pcount()), Ordering::Relaxed);
                        dev.stats.rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        stats.rx_frames.fetch_add(1, Ordering::Relaxed);
                        rx_frames.fetch_add(1, Ordering::Relaxed);
                        if eth_type_trans(&mut skb, &dev).is_none() {
                            dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        netif_rx(&stack, &dev, skb);
                    }
                }
            })
    }
}

/// Open one descriptor of TAP interface `name` (creating it if needed).
fn open_queue(name: &str, offload: bool, multi: bool) -> io::Result<OwnedFd> {
    let path = CString::new("/dev/net/tun").expect("no NUL");
    // SAFETY: a valid NUL-terminated path and flags; the result is checked.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(last_err(
            "open /dev/net/tun",
            " (needs root or CAP_NET_ADMIN; in a container, --device /dev/net/tun)",
        ));
    }
    // SAFETY: `raw` is a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let vnet = if offload { libc::IFF_VNET_HDR } else { 0 };
    let mq = if multi { libc::IFF_MULTI_QUEUE } else { 0 };
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | vnet | mq) as libc::c_short;
    // SAFETY: TUNSETIFF takes a pointer to an ifreq that lives across the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
    if r < 0 {
        return Err(last_err(
            &format!("TUNSETIFF {name}"),
            " (needs CAP_NET_ADMIN; is the name taken by a non-TAP device?)",
        ));
    }
    if offload {
        let hdr_sz = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads a c_int that lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_sz) } < 0 {
            return Err(last_err("TUNSETVNETHDRSZ", ""));
        }
        let off = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO_ECN;
        // SAFETY: TUNSETOFFLOAD takes the flags as the argument value.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, off as libc::c_ulong) } < 0 {
            return Err(last_err("TUNSETOFFLOAD", " (kernel without TAP offloads?)"));
        }
    }
    // Reads never block: the reader polls first, the relay drains in batches.
    // SAFETY: fcntl on a descriptor we own; the results are checked.
    let r = unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK)
    };
    if r < 0 {
        return Err(last_err("fcntl O_NONBLOCK", ""));
    }
    Ok(fd)
}

/// Read one frame into `rx`'s spare room (a fresh chunk when too little is left), the
/// virtio header into a separate buffer. `Ok(None)`: nothing waiting.
fn read_frame(
    fd: RawFd,
    rx: &mut BytesMut,
    offload: bool,
) -> Result<Option<(usize, Option<VnetHdr>)>, ()> {
    if rx.capacity() - rx.len() < MAX_FRAME {
        *rx = BytesMut::with_capacity(RX_CHUNK);
    }
    rx.clear();
    let mut hdr = [0u8; VNET_HDR_LEN];
    let spare = rx.spare_capacity_mut();
    let mut iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: VNET_HDR_LEN,
        },
        libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        },
    ];
    let iov = if offload { &mut iov[..] } else { &mut iov[1..] };
    // SAFETY: each iovec points at writable memory of its length (the header array,
    // the BytesMut's spare capacity), both alive across the call.
    let n = unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int) };
    if n < 0 {
        return match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(()),
        };
    }
    let skip = if offload { VNET_HDR_LEN } else { 0 };
    let Some(n) = (n as usize).checked_sub(skip) else {
        return Err(());
    };
    // SAFETY: readv initialised the first `n` bytes of the spare capacity.
    unsafe { rx.set_len(n) };
    Ok(Some((n, offload.then(|| VnetHdr::parse(&hdr)))))
}

impl NetDeviceOps for Tap {
    fn open(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        self.start_readers(stack, dev)?;
        for q in dev.txqs.iter() {
            q.start();
        }
        dev.carrier_on();
        Ok(())
    }

    fn stop(&self, _stack: &Stack, _dev: &Arc<NetDevice>) {
        for q in &self.queues {
            q.reader.halt(|| {});
        }
    }

    /// Write the frame: one `writev` of the virtio header (with offloads) and the
    /// skb's pieces, no copy and no allocation.
    fn start_xmit(&self, skb: Skb, dev: &NetDevice, txq: &NetdevQueue) -> NetdevTx {
        let q = &self.queues[usize::from(txq.index) % self.queues.len()];
        let hdr = VnetHdr::for_skb(&skb).emit();
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut iov = [empty; 2 + MAX_SKB_FRAGS];
        let mut k = 0;
        if self.offload {
            iov[0] = libc::iovec {
                iov_base: hdr.as_ptr() as *mut libc::c_void,
                iov_len: VNET_HDR_LEN,
            };
            k = 1;
        }
        let mut fits = true;
        for c in skb.chunks().filter(|c| !c.is_empty()) {
            let Some(slot) = iov.get_mut(k) else {
                fits = false;
                break;
            };
            *slot = libc::iovec {
                iov_base: c.as_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            };
            k += 1;
        }
        let n = if fits {
            // SAFETY: every iovec points into `hdr` or `skb`, both alive until after
            // the call; the kernel only reads them.
            unsafe { libc::writev(q.fd.as_raw_fd(), iov.as_ptr(), k as libc::c_int) }
        } else {
            -1
        };
        if n < 0 {
            self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
            dev.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
            q.tx_frames.fetch_add(1, Ordering::Relaxed);
            if skb.is_gso() {
                self.stats.tx_tso_frames.fetch_add(1, Ordering::Relaxed);
            }
            dev.stats
                .tx_packets
                .fetch_add(u64::from(skb.pcount()), Ordering::Relaxed);
            dev.stats
                .tx_bytes
                .fetch_add(skb.len() as u64, Ordering::Relaxed);
        }
        // The frame left with the write: "TX completion" is immediate.
        drop(skb);
        NetdevTx::Ok
    }

    fn ethtool_stats(&self) -> Vec<(String, u64)> {
        let s = &self.stats;
        [
            ("tx_frames".into(), s.tx_frames.load(Ordering::Relaxed)),
            (
                "tx_tso_frames".into(),
                s.tx_tso_frames.load(Ordering::Relaxed),
            ),
            ("tx_errors".into(), s.tx_errors.load(Ordering::Relaxed)),
            ("rx_frames".into(), s.rx_frames.load(Ordering::Relaxed)),
            (
                "rx_gso_frames".into(),
                s.rx_gso_frames.load(Ordering::Relaxed),
            ),
            ("rx_errors".into(), s.rx_errors.load(Ordering::Relaxed)),
        ]
        .into_iter()
        .chain(self.queues.iter().enumerate().flat_map(|(i, q)| {
            [
                (
                    format!("tx_queue_{i}_frames"),
                    q.tx_frames.load(Ordering::Relaxed),
                ),
                (
                    format!("rx_queue_{i}_frames"),
                    q.rx_frames.load(Ordering::Relaxed),
                ),
            ]
        }))
        .collect()
    }

    fn driver_name(&self) -> &'static str {
        "tap"
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.queues[0].fd.as_raw_fd()
    }
}

/// A TAP descriptor not attached to a stack is a frame port of its own (the relay's,
/// smoltcp's in `usnet bench`). Open it without offloads: with them, each frame read or
/// written here would need its virtio header.
impl FramePort for Tap {
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call.
        let n = unsafe {
            libc::read(
                self.queues[0].fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn send_frame(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes during the call.
        let n = unsafe {
            libc::write(
                self.queues[0].fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn port_name(&self) -> String {
        format!("tap:{}", self.name)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        for q in &self.queues {
            q.reader.halt(|| {});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP headers (54 bytes, TCP data offset 5) and `payload` bytes.
    fn frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 54 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[34 + 12] = 5 << 4;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        f
    }

    fn rx_with(f: &[u8]) -> BytesMut {
        let mut rx = BytesMut::with_capacity(RX_CHUNK);
        rx.extend_from_slice(f);
        rx
    }

    #[test]
    fn virtio_header_round_trips() {
        let h = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.emit()), h);
    }

    #[test]
    fn a_tso_skb_is_described_for_the_kernel_to_cut() {
        let f = frame(4 * 1448);
        let mut skb = Skb::alloc(f.len(), 64);
        skb.put_slice(&f);
        skb.set_network_header(14);
        skb.set_transport_header(34);
        skb.ip_summed = IpSummed::Partial;
        skb.csum_start = (skb.data_offset() + 34) as u16;
        skb.csum_offset = 16;
        skb.gso_type = GsoType::TcpV4;
        skb.gso_size = 1448;
        skb.gso_segs = 4;
        let h = VnetHdr::for_skb(&skb);
        assert_eq!(h.flags, VNET_F_NEEDS_CSUM);
        assert_eq!((h.csum_start, h.csum_offset), (34, 16));
        assert_eq!(
            (h.gso_type, h.gso_size, h.hdr_len),
            (VNET_GSO_TCPV4, 1448, 54)
        );
        // A plain frame with its checksum done: an all-zero header.
        let plain = Skb::from_slice(&frame(10), 64);
        assert_eq!(VnetHdr::for_skb(&plain), VnetHdr::default());
    }

    #[test]
    fn short_frames_are_copied_and_their_buffer_reused() {
        let f = frame(20);
        let mut rx = rx_with(&f);
        let cap = rx.capacity();
        let skb = rx_frame_to_skb(&mut rx, f.len(), None).unwrap();
        assert!(!skb.is_nonlinear());
        assert_eq!(skb.to_vec(), f);
        assert_eq!(rx.capacity(), cap, "the chunk space is reused");
    }

    #[test]
    fn long_frames_keep_their_payload_where_read_put_it() {
        let f = frame(9000);
        let mut rx = rx_with(&f);
        let at = rx.as_ptr() as usize;
        let skb = rx_frame_to_skb(&mut rx, f.len(), None).unwrap();
        assert_eq!(skb.headlen(), RX_HDR_COPY);
        assert_eq!(skb.frags().len(), 1);
        assert_eq!(
            skb.frags()[0].as_ptr() as usize,
            at + RX_HDR_COPY,
            "no copy of the payload"
        );
        assert_eq!(skb.to_vec(), f);
        assert_eq!(rx.capacity(), RX_CHUNK - f.len(), "the chunk moves on");
    }

    #[test]
    fn the_kernels_gso_packets_arrive_whole_with_their_checksum_trusted() {
        let f = frame(44 * 1448);
        let h = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4 | VNET_GSO_ECN,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut rx = rx_with(&f);
        let skb = rx_frame_to_skb(&mut rx, f.len(), Some(h)).unwrap();
        assert_eq!(skb.ip_summed, IpSummed::Partial);
        assert_eq!(usize::from(skb.csum_start), skb.data_offset() + 34);
        assert_eq!(
            (skb.gso_type, skb.gso_size, skb.gso_segs),
            (GsoType::TcpV4, 1448, 44)
        );
        assert_eq!(skb.len(), f.len());
        let valid = VnetHdr {
            flags: VNET_F_DATA_VALID,
            ..VnetHdr::default()
        };
        let mut rx = rx_with(&frame(100));
        let skb = rx_frame_to_skb(&mut rx, 154, Some(valid)).unwrap();
        assert_eq!(skb.ip_summed, IpSummed::Unnecessary);
        assert!(!skb.is_gso());
    }

    #[test]
    fn bad_virtio_headers_and_runts_are_refused() {
        let f = frame(100);
        let bad_csum = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: 150,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let udp_gso = VnetHdr {
            gso_type: 3,
            gso_size: 1000,
            ..VnetHdr::default()
        };
        let zero_mss = VnetHdr {
            gso_type: VNET_GSO_TCPV4,
            ..VnetHdr::default()
        };
        for (h, want) in [
            (bad_csum, RxError::BadCsum),
            (udp_gso, RxError::BadGso),
            (zero_mss, RxError::BadGso),
        ] {
            let mut rx = rx_with(&f);
            assert_eq!(rx_frame_to_skb(&mut rx, f.len(), Some(h)).err(), Some(want));
        }
        let mut rx = rx_with(&f[..10]);
        assert_eq!(
            rx_frame_to_skb(&mut rx, 10, None).err(),
            Some(RxError::Short)
        );
    }
}
