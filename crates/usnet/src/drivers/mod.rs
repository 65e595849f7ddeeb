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
