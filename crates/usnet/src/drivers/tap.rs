//! The `tap` driver: a Linux TAP device (`/dev/net/tun` with `IFF_TAP | IFF_NO_PI`), so
//! usnet's frames reach the Linux kernel's own stack and real programs.
//!
//! Transmit writes each frame with one `writev` (the skb's linear part and page
//! fragments as the iovec, no copy); the device has no offloads yet, so
//! `validate_xmit_skb` segments GSO skbs and finishes checksums in software first.
//! Receive is a reader thread — the "hardware" — that polls the descriptor, reads
//! frames into skbs and hands them to the stack through `netif_rx` (the input backlog
//! NAPI), which wakes the softirq thread. The stack must run in real time
//! ([`crate::Stack::start`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use usnet_wire::EthernetAddress;

use super::relay::FramePort;
use crate::dev::backlog::netif_rx;
use crate::dev::rx::eth_type_trans;
use crate::dev::{Features, NetDevice, NetDeviceConfig, NetDeviceOps, NetdevQueue, NetdevTx};
use crate::skb::Skb;
use crate::stack::WeakStack;
use crate::Stack;

/// Largest frame read or written.
const MAX_FRAME: usize = 65536 + 14;

/// Counters (`ethtool -S`).
#[derive(Default, Debug)]
struct TapStats {
    tx_frames: AtomicU64,
    tx_errors: AtomicU64,
    rx_frames: AtomicU64,
    rx_errors: AtomicU64,
}

/// A TAP device driver instance.
pub struct Tap {
    fd: OwnedFd,
    name: String,
    stop: Arc<AtomicBool>,
    reader: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    stack: OnceLock<WeakStack>,
    stats: Arc<TapStats>,
}

fn last_err(what: &str, hint: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}{hint}"))
}

impl Tap {
    /// Open (creating if needed) TAP interface `name` on the host. Needs
    /// CAP_NET_ADMIN (root) and `/dev/net/tun`.
    pub fn open(name: &str) -> io::Result<Arc<Tap>> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TAP name {name:?} must be 1..{} bytes", libc::IFNAMSIZ - 1),
            ));
        }
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
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF takes a pointer to an ifreq that lives across the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
        if r < 0 {
            return Err(last_err(
                &format!("TUNSETIFF {name}"),
                " (needs CAP_NET_ADMIN; is the name taken by a non-TAP device?)",
            ));
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
        Ok(Arc::new(Tap {
            fd,
            name: name.to_string(),
            stop: Arc::new(AtomicBool::new(false)),
            reader: parking_lot::Mutex::new(None),
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
        cfg.hw_features = Features::SG;
        cfg.features = Features::SG;
        let _ = tap.stack.set(stack.downgrade());
        let dev = stack.devs.register(stack, cfg, tap.clone())?;
        crate::dev::dev_open(stack, &dev)?;
        Ok(dev)
    }

    fn start_reader(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        let raw = self.fd.as_raw_fd();
        let stop = self.stop.clone();
        let stats = self.stats.clone();
        let weak = stack.downgrade();
        let dev = Arc::downgrade(dev);
        let h = std::thread::Builder::new()
            .name(format!("tap-rx/{}", self.name))
            .spawn(move || {
                let mut buf = vec![0u8; MAX_FRAME];
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
                    // SAFETY: `buf` is valid for `buf.len()` bytes; `raw` stays open
                    // while the driver (which owns it) lives, and the driver joins
                    // this thread before closing it.
                    let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
                    if n <= 0 {
                        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                            stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let (Some(stack), Some(dev)) = (weak.upgrade(), dev.upgrade()) else {
                        return;
                    };
                    let mut skb = Skb::from_slice(&buf[..n as usize], 64);
                    skb.reset_for_rx(stack.now());
                    dev.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
                    dev.stats.rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    stats.rx_frames.fetch_add(1, Ordering::Relaxed);
                    if eth_type_trans(&mut skb, &dev).is_none() {
                        dev.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    netif_rx(&stack, &dev, skb);
                }
            })?;
        *self.reader.lock() = Some(h);
        Ok(())
    }
}

impl NetDeviceOps for Tap {
    fn open(&self, stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        self.stop.store(false, Ordering::Release);
        if self.reader.lock().is_none() {
            self.start_reader(stack, dev)?;
        }
        for q in dev.txqs.iter() {
            q.start();
        }
        dev.carrier_on();
        Ok(())
    }

    fn stop(&self, _stack: &Stack, _dev: &Arc<NetDevice>) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.reader.lock().take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    /// Write the frame: one `writev` of the skb's pieces.
    fn start_xmit(&self, skb: Skb, dev: &NetDevice, _txq: &NetdevQueue) -> NetdevTx {
        let iov: Vec<libc::iovec> = skb
            .chunks()
            .filter(|c| !c.is_empty())
            .map(|c| libc::iovec {
                iov_base: c.as_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            })
            .collect();
        // SAFETY: every iovec points into `skb`, alive until after the call.
        let n =
            unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
        if n < 0 {
            self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
            dev.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
            dev.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
            dev.stats.tx_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        // The frame left with the write: "TX completion" is immediate.
        drop(skb);
        NetdevTx::Ok
    }

    fn ethtool_stats(&self) -> Vec<(String, u64)> {
        let s = &self.stats;
        vec![
            ("tx_frames".into(), s.tx_frames.load(Ordering::Relaxed)),
            ("tx_errors".into(), s.tx_errors.load(Ordering::Relaxed)),
            ("rx_frames".into(), s.rx_frames.load(Ordering::Relaxed)),
            ("rx_errors".into(), s.rx_errors.load(Ordering::Relaxed)),
        ]
    }

    fn driver_name(&self) -> &'static str {
        "tap"
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A TAP descriptor not attached to a stack is a frame port of its own (the relay's).
impl FramePort for Tap {
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn send_frame(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes during the call.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
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
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.reader.get_mut().take() {
            // The reader may hold the last reference itself: then it just exits.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}
