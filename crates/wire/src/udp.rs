//! UDP datagrams (RFC 768).
//!
//! [`UdpPacket`] views a datagram (the payload of an IPv4 datagram with
//! protocol 17); [`UdpRepr`] holds its ports. The payload length comes from
//! the UDP length field, so the repr is just the two ports.
//!
//! Contract: once [`UdpPacket::new_checked`] has succeeded, no accessor
//! panics: the length field is at least 8 and at most the buffer length.
//!
//! The checksum covers a pseudo header, the UDP header and the payload
//! (RFC 768). A zero checksum on the wire means the sender computed none
//! (RFC 768: "all zero ... means that the transmitter generated no
//! checksum"), so a computed zero is sent as `0xffff`.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use usnet_wire::{ChecksumCheck, UdpPacket, UdpRepr};
//!
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let repr = UdpRepr { src_port: 5353, dst_port: 53 };
//! let mut buf = vec![0u8; repr.buffer_len(5)];
//! let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
//! packet.payload_mut_unchecked()[..5].copy_from_slice(b"hello");
//! repr.emit(&mut packet, &src, &dst, 5, true);
//! let packet = UdpPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(UdpRepr::parse(&packet, &src, &dst, ChecksumCheck::Verify).unwrap(), repr);
//! assert_eq!(packet.payload(), b"hello");
//! ```

use core::fmt;
use std::net::Ipv4Addr;

use crate::checksum::{self, ChecksumCheck};
use crate::ipv4::IpProtocol;
use crate::{Error, Result};

mod field {
    pub type Field = core::ops::Range<usize>;
    /// Source port (RFC 768).
    pub const SRC_PORT: Field = 0..2;
    /// Destination port (RFC 768).
    pub const DST_PORT: Field = 2..4;
    /// Length of header and data (RFC 768).
    pub const LENGTH: Field = 4..6;
    /// Checksum (RFC 768).
    pub const CHECKSUM: Field = 6..8;
    /// Data.
    pub const PAYLOAD: usize = 8;
}

/// The length of the UDP header (RFC 768).
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length field against the buffer, as Linux's
    /// `__udp4_lib_rcv` does: a buffer shorter than 8 bytes or than the
    /// length field is [`Error::Truncated`], a length field below 8 is
    /// [`Error::Malformed`]. A longer buffer is fine; the datagram ends at
    /// its length field.
    pub fn check_len(&self) -> Result<()> {
        let buffer_len = self.buffer.as_ref().len();
        if buffer_len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len > buffer_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, f: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[f];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The length field: header and payload.
    pub fn len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// Whether the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field (zero: none was computed).
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// Whether the checksum is right, or absent (zero). The sum covers the
    /// datagram up to its length field.
    pub fn verify_checksum(&self, src_addr: &Ipv4Addr, dst_addr: &Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let pseudo =
            checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::UDP, u32::from(self.len()));
        checksum::fold(checksum::combine(pseudo, checksum::sum(self.datagram()))) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload, up to the length field.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn write_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.write_u16(field::SRC_PORT, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.write_u16(field::DST_PORT, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        self.write_u16(field::LENGTH, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v);
    }

    /// The payload up to the length field, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Everything after the header, mutably, whatever the length field says
    /// (to fill in the payload before [`UdpRepr::emit`] sets the length).
    pub fn payload_mut_unchecked(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the pseudo header and the datagram (up to
    /// its length field) and stores it; a computed zero is stored as
    /// `0xffff` (RFC 768).
    pub fn fill_checksum(&mut self, src_addr: &Ipv4Addr, dst_addr: &Ipv4Addr) {
        self.set_checksum(0);
        let pseudo =
            checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::UDP, u32::from(self.len()));
        let c = !checksum::fold(checksum::combine(pseudo, checksum::sum(self.datagram())));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed header of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a UDP header.
    ///
    /// Checks the lengths ([`UdpPacket::check_len`]) and, if
    /// `checksum_caps` asks and the checksum is not zero, the checksum
    /// ([`Error::Checksum`]). Port 0 is not refused here.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &UdpPacket<&T>,
        src_addr: &Ipv4Addr,
        dst_addr: &Ipv4Addr,
        checksum_caps: ChecksumCheck,
    ) -> Result<UdpRepr> {
        packet.check_len()?;
        if checksum_caps.verify() && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// The header length, [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of a datagram with `payload_len` bytes of payload.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header for `payload_len` bytes of payload into `packet`.
    ///
    /// With `fill_checksum` the checksum is computed over the payload
    /// already in the buffer, so copy it in first (through
    /// [`UdpPacket::payload_mut_unchecked`]); otherwise the checksum field is
    /// zero ("no checksum", or for a NIC or a later
    /// [`UdpPacket::fill_checksum`] to fill). `buffer_len(payload_len)` must
    /// fit in 16 bits and in the buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut UdpPacket<&mut T>,
        src_addr: &Ipv4Addr,
        dst_addr: &Ipv4Addr,
        payload_len: usize,
        fill_checksum: bool,
    ) {
        debug_assert!(self.buffer_len(payload_len) <= usize::from(u16::MAX));
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(self.buffer_len(payload_len) as u16);
        packet.set_checksum(0);
        if fill_checksum {
            packet.fill_checksum(src_addr, dst_addr);
        }
    }
}

impl fmt::Display for UdpRepr {
    /// Like tcpdump: `5353 > 53: UDP`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {}: UDP", self.src_port, self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);

    /// A DNS query for `example.com A` from 192.168.0.10:40000 to
    /// 192.168.0.1:53, as `dig` sends it (no EDNS).
    const DNS: [u8; 37] = [
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x25, 0x00, 0x31, //
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, b'e', b'x',
        b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    #[test]
    fn parse_dns_query() {
        let p = UdpPacket::new_checked(&DNS[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 37);
        assert_eq!(p.checksum(), 0x0031);
        assert!(p.verify_checksum(&SRC, &DST));
        assert!(!p.verify_checksum(&DST, &Ipv4Addr::new(1, 1, 1, 1)));
        assert_eq!(p.payload().len(), 29);
        let repr = UdpRepr::parse(&p, &SRC, &DST, ChecksumCheck::Verify).unwrap();
        assert_eq!(
            repr,
            UdpRepr {
                src_port: 40000,
                dst_port: 53
            }
        );
        assert_eq!(repr.to_string(), "40000 > 53: UDP");
    }

    #[test]
    fn emit_dns_query_byte_exact() {
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: 53,
        };
        let mut buf = [0u8; 37];
        buf[8..].copy_from_slice(&DNS[8..]);
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            &SRC,
            &DST,
            29,
            true,
        );
        assert_eq!(buf, DNS);
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            &SRC,
            &DST,
            29,
            false,
        );
        assert_eq!(&buf[6..8], &[0, 0]);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut buf = DNS;
        buf[6] = 0;
        buf[7] = 0;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(&SRC, &DST));
        assert!(UdpRepr::parse(&p, &SRC, &DST, ChecksumCheck::Verify).is_ok());
        buf[20] ^= 0xff;
        buf[7] = 1;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, &SRC, &DST, ChecksumCheck::Verify),
            Err(Error::Checksum)
        );
        assert!(UdpRepr::parse(&p, &SRC, &DST, ChecksumCheck::Ignore).is_ok());
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose a payload word that makes the sum -0: the checksum would be
        // 0x0000, and goes on the wire as 0xffff.
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
        };
        let mut buf = [0u8; 10];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            &SRC,
            &DST,
            2,
            true,
        );
        let c = u16::from_be_bytes([buf[6], buf[7]]);
        // Adding the checksum value to the payload makes the total sum -0.
        buf[8..10].copy_from_slice(&c.to_be_bytes());
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.fill_checksum(&SRC, &DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn length_checks() {
        for n in 0..8 {
            assert_eq!(UdpPacket::new_checked(&DNS[..n]), Err(Error::Truncated));
        }
        assert_eq!(UdpPacket::new_checked(&DNS[..36]), Err(Error::Truncated));
        let mut bad = DNS;
        bad[5] = 7;
        assert_eq!(UdpPacket::new_checked(&bad[..]), Err(Error::Malformed));
        // A longer buffer (IP padding) is trimmed to the length field.
        let mut long = DNS.to_vec();
        long.extend_from_slice(&[0; 9]);
        let p = UdpPacket::new_checked(&long[..]).unwrap();
        assert_eq!(p.payload().len(), 29);
        assert!(p.verify_checksum(&SRC, &DST));
        let p = UdpPacket::new_unchecked(&DNS[..4]);
        assert_eq!(
            UdpRepr::parse(&p, &SRC, &DST, ChecksumCheck::Ignore),
            Err(Error::Truncated)
        );
    }
}
