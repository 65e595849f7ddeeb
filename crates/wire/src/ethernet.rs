//! Ethernet II frames (IEEE 802.3, RFC 894).
//!
//! [`EthernetFrame`] is a view over a buffer holding a frame without its
//! preamble and FCS, as a NIC hands it over; [`EthernetRepr`] is its parsed
//! header.
//!
//! Contract: once [`EthernetFrame::new_checked`] has succeeded, no accessor
//! panics (as long as the buffer is not shrunk or the header rewritten into
//! something inconsistent through a setter).
//!
//! ```
//! use usnet_wire::{EthernetAddress, EthernetFrame, EthernetRepr, EtherType};
//!
//! let repr = EthernetRepr {
//!     src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
//!     dst_addr: EthernetAddress::BROADCAST,
//!     ethertype: EtherType::Arp,
//! };
//! let mut buf = vec![0u8; repr.buffer_len() + 28];
//! repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
//! let frame = EthernetFrame::new_checked(&buf[..]).unwrap();
//! assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
//! assert_eq!(frame.payload().len(), 28);
//! ```

use core::fmt;
use core::str::FromStr;

use crate::{Error, Result};

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// Builds an address from the first six bytes of `data`.
    ///
    /// Returns [`Error::Truncated`] if `data` is shorter than six bytes.
    pub fn from_bytes(data: &[u8]) -> Result<EthernetAddress> {
        match data.get(..6) {
            Some(b) => Ok(EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]])),
            None => Err(Error::Truncated),
        }
    }

    /// The six address bytes.
    pub const fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether this is a group address (the I/G bit, the least significant
    /// bit of the first octet, is set; IEEE 802 § 8.2). Broadcast is a group
    /// address.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the address is locally administered (the U/L bit is set).
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for EthernetAddress {
    type Err = Error;

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators), two hex digits
    /// per octet, either case. Anything else is [`Error::Malformed`].
    fn from_str(s: &str) -> Result<EthernetAddress> {
        let bytes = s.as_bytes();
        if bytes.len() != 17 {
            return Err(Error::Malformed);
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(Error::Malformed);
        }
        let mut out = [0u8; 6];
        for (i, octet) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && bytes[at - 1] != sep {
                return Err(Error::Malformed);
            }
            let hi = hex_digit(bytes[at])?;
            let lo = hex_digit(bytes[at + 1])?;
            *octet = (hi << 4) | lo;
        }
        Ok(EthernetAddress(out))
    }
}

fn hex_digit(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::Malformed),
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(b: [u8; 6]) -> Self {
        EthernetAddress(b)
    }
}

/// The EtherType of an Ethernet II frame (IEEE 802.3 § 3.2.6; values from
/// the IEEE registry, as in Linux's `include/uapi/linux/if_ether.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, `0x0800` (RFC 894).
    Ipv4,
    /// ARP, `0x0806` (RFC 826).
    Arp,
    /// IPv6, `0x86DD` (RFC 2464).
    Ipv6,
    /// Any other value. Build it with `EtherType::from(u16)` so that a known
    /// value never ends up here.
    Unknown(u16),
}

impl EtherType {
    /// `ETH_P_IP`.
    pub const IPV4: u16 = 0x0800;
    /// `ETH_P_ARP`.
    pub const ARP: u16 = 0x0806;
    /// `ETH_P_IPV6`.
    pub const IPV6: u16 = 0x86dd;
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            EtherType::IPV4 => EtherType::Ipv4,
            EtherType::ARP => EtherType::Arp,
            EtherType::IPV6 => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => EtherType::IPV4,
            EtherType::Arp => EtherType::ARP,
            EtherType::Ipv6 => EtherType::IPV6,
            EtherType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// The length of an Ethernet II header: two addresses and the EtherType.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer and checks that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Returns [`Error::Truncated`] if the buffer is shorter than
    /// [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header length, [`HEADER_LEN`].
    pub const fn header_len() -> usize {
        HEADER_LEN
    }

    /// The destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        let b = &self.buffer.as_ref()[field::DESTINATION];
        EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The source address.
    pub fn src_addr(&self) -> EthernetAddress {
        let b = &self.buffer.as_ref()[field::SOURCE];
        EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The EtherType.
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The payload: everything after the header (including any padding
    /// that brought a short frame up to the 60-byte minimum).
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed header of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source MAC address.
    pub src_addr: EthernetAddress,
    /// Destination MAC address.
    pub dst_addr: EthernetAddress,
    /// EtherType of the payload.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses the header of `frame`.
    ///
    /// Fails with [`Error::Truncated`] if the frame is shorter than its
    /// header. Any EtherType is accepted ([`EtherType::Unknown`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &EthernetFrame<&T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// The header length, [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The number of bytes [`emit`](Self::emit) writes, [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `frame`, whose buffer must hold at least
    /// [`HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, frame: &mut EthernetFrame<&mut T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

impl fmt::Display for EthernetRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} > {}, ethertype {}",
            self.src_addr, self.dst_addr, self.ethertype
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A broadcast ARP request as a Linux host sends it, padded to 60 bytes.
    const FRAME: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, //
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, //
        0x0a, 0x00, 0x02, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x02, 0x02, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parse_real_frame() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(
            frame.src_addr(),
            EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        );
        assert_eq!(frame.ethertype(), EtherType::Arp);
        assert_eq!(frame.payload().len(), 46);
        let repr = EthernetRepr::parse(&frame).unwrap();
        let mut out = [0u8; 60];
        out[14..].copy_from_slice(&FRAME[14..]);
        repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(out, FRAME);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).unwrap_err(),
            Error::Truncated
        );
        assert!(EthernetFrame::new_checked(&FRAME[..14]).is_ok());
        let short = EthernetFrame::new_unchecked(&FRAME[..5]);
        assert_eq!(EthernetRepr::parse(&short), Err(Error::Truncated));
    }

    #[test]
    fn address_kinds() {
        let bc = EthernetAddress::BROADCAST;
        assert!(bc.is_broadcast() && bc.is_multicast() && !bc.is_unicast());
        let mc = EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert!(!mc.is_broadcast() && mc.is_multicast() && !mc.is_unicast());
        let uc = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert!(!uc.is_broadcast() && !uc.is_multicast() && uc.is_unicast());
        assert!(uc.is_local());
    }

    #[test]
    fn address_text() {
        let a = EthernetAddress([0x52, 0x54, 0x00, 0xab, 0xCD, 0x0f]);
        assert_eq!(a.to_string(), "52:54:00:ab:cd:0f");
        assert_eq!("52:54:00:ab:cd:0f".parse::<EthernetAddress>(), Ok(a));
        assert_eq!("52-54-00-AB-CD-0F".parse::<EthernetAddress>(), Ok(a));
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "52:54-00:ab:cd:0f",
            "52:54:00:ab:cd:0g",
            "5:54:00:ab:cd:0f0",
            "52.54.00.ab.cd.0f",
            "52:54:00:ab:cd:é",
        ] {
            assert_eq!(
                bad.parse::<EthernetAddress>(),
                Err(Error::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn ethertype_conversions() {
        for v in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x88cc), EtherType::Unknown(0x88cc));
        assert_eq!(EtherType::Unknown(0x88cc).to_string(), "0x88cc");
    }
}
