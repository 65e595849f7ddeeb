//! Drivers: the emulated igb-like NIC ([`vnic`]) over the in-memory wire. Real-link
//! drivers (TAP, AF_PACKET) sit beside it.

pub mod loopback;
pub mod vnic;
