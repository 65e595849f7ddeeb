//! Drivers: the emulated igb-like NIC ([`vnic`]) over the in-memory wire, loopback, and
//! the real-link drivers — a Linux TAP device ([`tap`], with virtio-net offloads),
//! `AF_PACKET` rings on an interface ([`afpacket`]), plain `AF_PACKET` sockets
//! ([`packet`]) — with the [`relay`] that impairs a real link in userspace.

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod afpacket;
pub mod loopback;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod packet;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod relay;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod tap;
pub mod vnic;

/// Run `f` on a short-lived thread that has joined the network namespace at `netns`
/// (a path such as `/var/run/netns/NAME`, as `ip netns add` makes): descriptors it
/// opens (TAP, `AF_PACKET`) belong to that namespace and work from any thread.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn in_netns<T: Send>(
    netns: &std::path::Path,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(netns).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "open {}: {e} (create it with ip netns add)",
                netns.display()
            ),
        )
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a namespace descriptor we hold; it changes only this
            // short-lived thread's network namespace.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                let e = std::io::Error::last_os_error();
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("setns: {e} (needs CAP_SYS_ADMIN)"),
                ));
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("setns thread panicked")))
    })
}

/// A real-link driver's receive thread — its "hardware": started when the device
/// opens, told to stop and joined when it stops or the driver goes. The thread polls
/// [`RxThread::flag`] between waits of at most ~100 ms.
#[derive(Debug, Default)]
pub(crate) struct RxThread {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl RxThread {
    /// Start `body` (given the stop flag) on a thread called `name`, unless one runs.
    pub(crate) fn start(
        &self,
        name: String,
        body: impl FnOnce(std::sync::Arc<std::sync::atomic::AtomicBool>) + Send + 'static,
    ) -> std::io::Result<()> {
        let mut h = self.handle.lock();
        self.stop.store(false, std::sync::atomic::Ordering::Release);
        if h.is_none() {
            let stop = self.stop.clone();
            *h = Some(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || body(stop))?,
            );
        }
        Ok(())
    }

    /// Tell the thread to stop (the caller wakes it if it may be sleeping), then join
    /// it — unless this is the thread itself, holding the driver's last reference.
    pub(crate) fn halt(&self, wake: impl FnOnce()) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        wake();
        let h = self.handle.lock().take();
        if let Some(h) = h {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}
