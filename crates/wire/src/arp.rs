//! The Address Resolution Protocol (RFC 826).
//!
//! [`ArpPacket`] views a packet of any hardware and protocol type; the
//! addresses are as long as its `hlen` and `plen` fields say. [`ArpRepr`]
//! handles the one combination the stack uses, Ethernet and IPv4 (as
//! Linux's `arp_rcv` does for an Ethernet device); any other is
//! [`Error::Unsupported`].
//!
//! Contract: once [`ArpPacket::new_checked`] has succeeded, no accessor
//! panics.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use usnet_wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};
//!
//! let repr = ArpRepr::EthernetIpv4 {
//!     operation: ArpOperation::Request,
//!     source_hardware_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
//!     source_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
//!     target_hardware_addr: EthernetAddress([0; 6]),
//!     target_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
//! };
//! let mut buf = vec![0u8; repr.buffer_len()];
//! repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
//! let packet = ArpPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(ArpRepr::parse(&packet).unwrap(), repr);
//! ```

use core::fmt;
use std::net::Ipv4Addr;

use crate::ethernet::{EtherType, EthernetAddress};
use crate::{Error, Result};

/// The hardware type of an ARP packet (RFC 826; IANA "Hardware Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpHardware {
    /// Ethernet (10Mb), `1` (`ARPHRD_ETHER`).
    Ethernet,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for ArpHardware {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpHardware::Ethernet,
            other => ArpHardware::Unknown(other),
        }
    }
}

impl From<ArpHardware> for u16 {
    fn from(h: ArpHardware) -> u16 {
        match h {
            ArpHardware::Ethernet => 1,
            ArpHardware::Unknown(v) => v,
        }
    }
}

/// The operation of an ARP packet (RFC 826, "ar$op").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// `1`, `ARPOP_REQUEST`.
    Request,
    /// `2`, `ARPOP_REPLY`.
    Reply,
    /// Any other value (RARP, InARP, ...).
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

mod field {
    pub type Field = core::ops::Range<usize>;
    /// RFC 826 "ar$hrd".
    pub const HTYPE: Field = 0..2;
    /// RFC 826 "ar$pro".
    pub const PTYPE: Field = 2..4;
    /// RFC 826 "ar$hln".
    pub const HLEN: usize = 4;
    /// RFC 826 "ar$pln".
    pub const PLEN: usize = 5;
    /// RFC 826 "ar$op".
    pub const OPER: Field = 6..8;
    /// Start of the variable-length addresses.
    pub const ADDRS: usize = 8;
}

/// The fixed part of an ARP header, before the addresses.
pub const FIXED_HEADER_LEN: usize = field::ADDRS;

/// The length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

/// A read/write view of an ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps a buffer and checks that it holds the fixed header and the four
    /// addresses whose lengths the header gives.
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Returns [`Error::Truncated`] if the buffer is shorter than the fixed
    /// header plus `2 * (hlen + plen)` bytes of addresses. Trailing bytes
    /// (Ethernet padding) are allowed.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_HEADER_LEN || len < self.packet_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The length of the packet the header describes:
    /// `8 + 2 * (hlen + plen)`. Needs the fixed header to be present.
    pub fn packet_len(&self) -> usize {
        let b = self.buffer.as_ref();
        match (b.get(field::HLEN), b.get(field::PLEN)) {
            (Some(&h), Some(&p)) => FIXED_HEADER_LEN + 2 * (usize::from(h) + usize::from(p)),
            _ => FIXED_HEADER_LEN,
        }
    }

    /// The hardware type ("ar$hrd").
    pub fn hardware_type(&self) -> ArpHardware {
        let b = &self.buffer.as_ref()[field::HTYPE];
        ArpHardware::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The protocol type ("ar$pro"), an EtherType.
    pub fn protocol_type(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::PTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The hardware address length ("ar$hln").
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The protocol address length ("ar$pln").
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation ("ar$op").
    pub fn operation(&self) -> ArpOperation {
        let b = &self.buffer.as_ref()[field::OPER];
        ArpOperation::from(u16::from_be_bytes([b[0], b[1]]))
    }

    fn sha_range(&self) -> core::ops::Range<usize> {
        let start = field::ADDRS;
        start..start + usize::from(self.hardware_len())
    }

    fn spa_range(&self) -> core::ops::Range<usize> {
        let start = self.sha_range().end;
        start..start + usize::from(self.protocol_len())
    }

    fn tha_range(&self) -> core::ops::Range<usize> {
        let start = self.spa_range().end;
        start..start + usize::from(self.hardware_len())
    }

    fn tpa_range(&self) -> core::ops::Range<usize> {
        let start = self.tha_range().end;
        start..start + usize::from(self.protocol_len())
    }

    /// The sender hardware address ("ar$sha").
    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.sha_range()]
    }

    /// The sender protocol address ("ar$spa").
    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.spa_range()]
    }

    /// The target hardware address ("ar$tha").
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.tha_range()]
    }

    /// The target protocol address ("ar$tpa").
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.tpa_range()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, v: ArpHardware) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&u16::from(v).to_be_bytes());
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, v: EtherType) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&u16::from(v).to_be_bytes());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, v: ArpOperation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(v).to_be_bytes());
    }

    /// Sets the sender hardware address; `addr` must be `hardware_len()` long.
    pub fn set_source_hardware_addr(&mut self, addr: &[u8]) {
        let r = self.sha_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// Sets the sender protocol address; `addr` must be `protocol_len()` long.
    pub fn set_source_protocol_addr(&mut self, addr: &[u8]) {
        let r = self.spa_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// Sets the target hardware address; `addr` must be `hardware_len()` long.
    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let r = self.tha_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// Sets the target protocol address; `addr` must be `protocol_len()` long.
    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let r = self.tpa_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for ArpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpRepr {
    /// An ARP packet for IPv4 over Ethernet (`hrd` 1, `pro` 0x0800, `hln` 6,
    /// `pln` 4).
    EthernetIpv4 {
        /// Request, reply, or another operation.
        operation: ArpOperation,
        /// "ar$sha".
        source_hardware_addr: EthernetAddress,
        /// "ar$spa".
        source_protocol_addr: Ipv4Addr,
        /// "ar$tha" (all zero in a request, by custom).
        target_hardware_addr: EthernetAddress,
        /// "ar$tpa".
        target_protocol_addr: Ipv4Addr,
    },
}

impl ArpRepr {
    /// Parses an ARP packet.
    ///
    /// Fails with [`Error::Truncated`] if the buffer is too short, and with
    /// [`Error::Unsupported`] for anything but Ethernet hardware with IPv4
    /// protocol addresses of the standard lengths.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &ArpPacket<&T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != ArpHardware::Ethernet
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let ipv4 = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        Ok(ArpRepr::EthernetIpv4 {
            operation: packet.operation(),
            source_hardware_addr: EthernetAddress::from_bytes(packet.source_hardware_addr())?,
            source_protocol_addr: ipv4(packet.source_protocol_addr()),
            target_hardware_addr: EthernetAddress::from_bytes(packet.target_hardware_addr())?,
            target_protocol_addr: ipv4(packet.target_protocol_addr()),
        })
    }

    /// The length of the packet, [`ETHERNET_IPV4_LEN`].
    pub const fn buffer_len(&self) -> usize {
        match self {
            ArpRepr::EthernetIpv4 { .. } => ETHERNET_IPV4_LEN,
        }
    }

    /// Writes the packet into `packet`, whose buffer must hold at least
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut ArpPacket<&mut T>) {
        match *self {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => {
                packet.set_hardware_type(ArpHardware::Ethernet);
                packet.set_protocol_type(EtherType::Ipv4);
                packet.set_hardware_len(6);
                packet.set_protocol_len(4);
                packet.set_operation(operation);
                packet.set_source_hardware_addr(&source_hardware_addr.0);
                packet.set_source_protocol_addr(&source_protocol_addr.octets());
                packet.set_target_hardware_addr(&target_hardware_addr.0);
                packet.set_target_protocol_addr(&target_protocol_addr.octets());
            }
        }
    }
}

impl fmt::Display for ArpRepr {
    /// Like tcpdump: `Request who-has 10.0.0.2 tell 10.0.0.1`,
    /// `Reply 10.0.0.2 is-at 52:54:00:12:34:56`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            } => match operation {
                ArpOperation::Request => write!(
                    f,
                    "Request who-has {target_protocol_addr} tell {source_protocol_addr}"
                ),
                ArpOperation::Reply => {
                    write!(f, "Reply {source_protocol_addr} is-at {source_hardware_addr}")
                }
                ArpOperation::Unknown(op) => write!(
                    f,
                    "op {op} {source_protocol_addr} ({source_hardware_addr}) > {target_protocol_addr}"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linux's reply to a who-has 10.0.2.2: 10.0.2.2 is-at 52:55:0a:00:02:02.
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
        0x52, 0x55, 0x0a, 0x00, 0x02, 0x02, 0x0a, 0x00, 0x02, 0x02, //
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0a, 0x00, 0x02, 0x0f,
    ];

    fn reply_repr() -> ArpRepr {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]),
            source_protocol_addr: Ipv4Addr::new(10, 0, 2, 2),
            target_hardware_addr: EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            target_protocol_addr: Ipv4Addr::new(10, 0, 2, 15),
        }
    }

    #[test]
    fn parse_real_reply() {
        let packet = ArpPacket::new_checked(&REPLY[..]).unwrap();
        assert_eq!(packet.hardware_type(), ArpHardware::Ethernet);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), ArpOperation::Reply);
        assert_eq!(packet.target_protocol_addr(), &[10, 0, 2, 15]);
        assert_eq!(ArpRepr::parse(&packet).unwrap(), reply_repr());
        assert_eq!(
            reply_repr().to_string(),
            "Reply 10.0.2.2 is-at 52:55:0a:00:02:02"
        );
    }

    #[test]
    fn emit_real_reply() {
        let mut buf = [0xaau8; 28];
        reply_repr().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REPLY);
    }

    #[test]
    fn padded_is_accepted() {
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REPLY);
        let packet = ArpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet).unwrap(), reply_repr());
    }

    #[test]
    fn truncated_and_unsupported() {
        for n in 0..28 {
            assert_eq!(
                ArpPacket::new_checked(&REPLY[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
        }
        let mut other = REPLY;
        other[1] = 6; // IEEE 802 hardware
        let p = ArpPacket::new_checked(&other[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(Error::Unsupported));
        let mut other = REPLY;
        other[2] = 0x86;
        other[3] = 0xdd;
        let p = ArpPacket::new_checked(&other[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(Error::Unsupported));
        // A longer hardware address needs a longer packet.
        let mut other = REPLY;
        other[4] = 8;
        assert_eq!(
            ArpPacket::new_checked(&other[..]).unwrap_err(),
            Error::Truncated
        );
        // An unknown operation still parses.
        let mut other = REPLY;
        other[7] = 3;
        let p = ArpPacket::new_checked(&other[..]).unwrap();
        match ArpRepr::parse(&p).unwrap() {
            ArpRepr::EthernetIpv4 { operation, .. } => {
                assert_eq!(operation, ArpOperation::Unknown(3))
            }
        }
        // A view built unchecked over a short buffer is caught by parse.
        let short = ArpPacket::new_unchecked(&REPLY[..10]);
        assert_eq!(ArpRepr::parse(&short), Err(Error::Truncated));
    }
}
