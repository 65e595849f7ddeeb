//! Wire formats for usnet: Ethernet II, ARP, IPv4, ICMP, UDP and TCP, and
//! the Internet checksum.
//!
//! Each format comes in two layers, as in smoltcp's `wire` module:
//!
//! * a zero-copy view over a buffer, `FooPacket<T: AsRef<[u8]>>`, with
//!   `new_unchecked`, `new_checked` (which checks every length the
//!   accessors rely on), `check_len`, `into_inner`, a getter per field and,
//!   for `T: AsMut<[u8]>`, a setter per field;
//! * a validated plain value, `FooRepr`, with `parse` (from a view),
//!   `emit` (into a view) and `buffer_len` / `header_len`.
//!
//! The contract of every module: once `new_checked` has succeeded, no
//! accessor panics, and every `parse` returns an [`Error`] for malformed
//! input instead of panicking, even on a view built with `new_unchecked`.
//! The [`fuzz`] module runs every parser over arbitrary bytes to hold us to
//! it.
//!
//! This crate has no dependencies and no `unsafe` code. IPv4 addresses are
//! [`std::net::Ipv4Addr`].
//!
//! ```
//! use usnet_wire::*;
//!
//! // Parse a frame layer by layer.
//! # let mut frame_bytes = vec![0u8; 14 + 28];
//! # frame_bytes[12] = 0x08; frame_bytes[13] = 0x06;
//! # frame_bytes[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
//! let frame = EthernetFrame::new_checked(&frame_bytes[..])?;
//! let eth = EthernetRepr::parse(&frame)?;
//! if eth.ethertype == EtherType::Arp {
//!     let arp = ArpRepr::parse(&ArpPacket::new_checked(frame.payload())?)?;
//!     println!("{arp}");
//! }
//! # Ok::<(), Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod fuzz;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

pub use crate::arp::{ArpHardware, ArpOperation, ArpPacket, ArpRepr};
pub use crate::checksum::ChecksumCheck;
pub use crate::error::{Error, Result};
pub use crate::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use crate::icmp::{
    DstUnreachable as Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr,
    TimeExceeded as Icmpv4TimeExceeded,
};
pub use crate::ipv4::{IpProtocol, Ipv4Option, Ipv4Options, Ipv4OptionsIter, Ipv4Packet, Ipv4Repr};
pub use crate::tcp::{
    tcp_option_len, TcpFlags, TcpOption, TcpOptionsIter, TcpPacket, TcpRepr, TcpSeqNumber,
};
pub use crate::udp::{UdpPacket, UdpRepr};
