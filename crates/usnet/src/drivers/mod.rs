//! Drivers: the emulated igb-like NIC ([`vnic`]) over the in-memory wire. Real-link
//! drivers (TAP, AF_PACKET) sit beside it.

pub mod loopback;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod tap;
pub mod vnic;
