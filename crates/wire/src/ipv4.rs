//! IPv4 datagrams (RFC 791).
//!
//! [`Ipv4Packet`] is a view over the bytes of a datagram, [`Ipv4Repr`] its
//! validated header, and [`Ipv4Options`] / [`Ipv4Option`] its options
//! (RFC 791 § 3.1).
//!
//! Contract: once [`Ipv4Packet::new_checked`] has succeeded, no accessor
//! panics: the header length is at least 20 and at most the total length,
//! and the total length is at most the buffer length. A longer buffer is
//! fine (an Ethernet frame pads a short datagram to 46 bytes of payload):
//! [`Ipv4Packet::payload`] ends at the total length, as Linux's `ip_rcv_core`
//! trims the skb with `pskb_trim_rcsum`.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use usnet_wire::{ChecksumCheck, IpProtocol, Ipv4Options, Ipv4Packet, Ipv4Repr};
//!
//! let repr = Ipv4Repr {
//!     src_addr: Ipv4Addr::new(10, 0, 0, 1),
//!     dst_addr: Ipv4Addr::new(10, 0, 0, 2),
//!     next_header: IpProtocol::Udp,
//!     payload_len: 8,
//!     hop_limit: 64,
//!     dscp_ecn: 0,
//!     ident: 0x1234,
//!     dont_frag: true,
//!     more_frags: false,
//!     frag_offset: 0,
//!     options: Ipv4Options::new(),
//! };
//! let mut buf = vec![0u8; repr.buffer_len()];
//! repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
//! let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
//! assert!(packet.verify_checksum());
//! assert_eq!(Ipv4Repr::parse(&packet, ChecksumCheck::Verify).unwrap(), repr);
//! ```

use core::fmt;
use std::net::Ipv4Addr;

use crate::checksum;
pub use crate::checksum::ChecksumCheck;
use crate::{Error, Result};

mod options;
pub use options::{Ipv4Option, Ipv4Options, Ipv4OptionsIter};

/// The protocol carried by an IPv4 datagram (RFC 791 § 3.1 "Protocol";
/// numbers from the IANA "Assigned Internet Protocol Numbers" registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// ICMP, `1` (RFC 792).
    Icmp,
    /// TCP, `6` (RFC 9293).
    Tcp,
    /// UDP, `17` (RFC 768).
    Udp,
    /// Any other protocol. Build it with `IpProtocol::from(u8)` so that a
    /// known number never ends up here.
    Unknown(u8),
}

impl IpProtocol {
    /// `IPPROTO_ICMP`.
    pub const ICMP: u8 = 1;
    /// `IPPROTO_TCP`.
    pub const TCP: u8 = 6;
    /// `IPPROTO_UDP`.
    pub const UDP: u8 = 17;
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            IpProtocol::ICMP => IpProtocol::Icmp,
            IpProtocol::TCP => IpProtocol::Tcp,
            IpProtocol::UDP => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => IpProtocol::ICMP,
            IpProtocol::Tcp => IpProtocol::TCP,
            IpProtocol::Udp => IpProtocol::UDP,
            IpProtocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for IpProtocol {
    /// As tcpdump -v prints it: `TCP (6)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = u8::from(*self);
        match self {
            IpProtocol::Icmp => write!(f, "ICMP ({n})"),
            IpProtocol::Tcp => write!(f, "TCP ({n})"),
            IpProtocol::Udp => write!(f, "UDP ({n})"),
            IpProtocol::Unknown(_) => write!(f, "unknown ({n})"),
        }
    }
}

mod field {
    pub type Field = core::ops::Range<usize>;
    /// Version (high nibble) and IHL (low nibble), RFC 791 § 3.1.
    pub const VER_IHL: usize = 0;
    /// Type of service: DSCP (RFC 2474) and ECN (RFC 3168).
    pub const DSCP_ECN: usize = 1;
    /// Total length.
    pub const LENGTH: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits, in 8-byte units).
    pub const FLG_OFF: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC_ADDR: Field = 12..16;
    /// Destination address.
    pub const DST_ADDR: Field = 16..20;
    /// Options start here (when IHL > 5).
    pub const OPTIONS: usize = 20;
}

/// The length of an IPv4 header without options (RFC 791 § 3.1: IHL 5).
pub const HEADER_LEN: usize = field::OPTIONS;

/// The largest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

/// Flag bits in the flags/fragment-offset word (RFC 791 § 3.1).
mod flags {
    /// Reserved, must be zero ("evil bit", RFC 3514).
    pub const RESERVED: u16 = 0x8000;
    /// Don't Fragment.
    pub const DF: u16 = 0x4000;
    /// More Fragments.
    pub const MF: u16 = 0x2000;
    /// The fragment offset, in units of 8 bytes.
    pub const OFFSET: u16 = 0x1fff;
}

/// A read/write view of an IPv4 datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer and checks its lengths with
    /// [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length fields against the buffer, as Linux's
    /// `ip_rcv_core` does:
    ///
    /// * the buffer holds a 20-byte header, else [`Error::Truncated`];
    /// * IHL is at least 5, else [`Error::Malformed`];
    /// * the buffer holds the whole header, else [`Error::Truncated`];
    /// * the total length is at least the header length, else
    ///   [`Error::Malformed`];
    /// * the buffer holds the total length, else [`Error::Truncated`].
    ///
    /// The version is not checked here but in [`Ipv4Repr::parse`].
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if total_len > len {
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

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Differentiated Services Code Point (RFC 2474 § 3).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The ECN field (RFC 3168 § 5).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The whole type-of-service byte (DSCP and ECN), Linux's `iph->tos`.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The total length of the datagram, header included.
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENT)
    }

    /// The reserved flag (must be zero; RFC 791 § 3.1).
    pub fn reserved_flag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & flags::RESERVED != 0
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & flags::DF != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLG_OFF) & flags::MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.read_u16(field::FLG_OFF) & flags::OFFSET) << 3
    }

    /// Whether this datagram is a fragment (MF set or a non-zero offset),
    /// Linux's `ip_is_fragment`.
    pub fn is_fragment(&self) -> bool {
        self.read_u16(field::FLG_OFF) & (flags::MF | flags::OFFSET) != 0
    }

    /// The time to live.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The time to live; the same as [`hop_limit`](Self::hop_limit).
    pub fn ttl(&self) -> u8 {
        self.hop_limit()
    }

    /// The protocol of the payload.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The protocol of the payload; the same as
    /// [`next_header`](Self::next_header).
    pub fn protocol(&self) -> IpProtocol {
        self.next_header()
    }

    /// The header checksum.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The options: the header bytes after the first 20.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..usize::from(self.header_len())]
    }

    /// An iterator over the parsed options.
    pub fn options_iter(&self) -> Ipv4OptionsIter<'_> {
        Ipv4OptionsIter::new(self.options())
    }

    /// Whether the header checksum is right (RFC 791 § 3.1: the header sums
    /// to -0 with the checksum in it).
    pub fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..usize::from(self.header_len())];
        checksum::fold(checksum::sum(header)) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &'a [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn write_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the version field.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the header length in bytes; it must be a multiple of 4.
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) & 0x0f);
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    /// Sets the ECN field (2 bits).
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }

    /// Sets the whole type-of-service byte.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        self.write_u16(field::LENGTH, v);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, v: u16) {
        self.write_u16(field::IDENT, v);
    }

    /// Clears the three flag bits, keeping the fragment offset.
    pub fn clear_flags(&mut self) {
        let v = self.read_u16(field::FLG_OFF) & flags::OFFSET;
        self.write_u16(field::FLG_OFF, v);
    }

    fn set_flag(&mut self, flag: u16, on: bool) {
        let v = self.read_u16(field::FLG_OFF);
        self.write_u16(field::FLG_OFF, if on { v | flag } else { v & !flag });
    }

    /// Sets the Don't Fragment flag.
    pub fn set_dont_frag(&mut self, on: bool) {
        self.set_flag(flags::DF, on);
    }

    /// Sets the More Fragments flag.
    pub fn set_more_frags(&mut self, on: bool) {
        self.set_flag(flags::MF, on);
    }

    /// Sets the fragment offset in bytes; it must be a multiple of 8 (the low
    /// three bits are dropped).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.read_u16(field::FLG_OFF) & !flags::OFFSET;
        self.write_u16(field::FLG_OFF, v | (bytes >> 3));
    }

    /// Sets the time to live.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the time to live; the same as
    /// [`set_hop_limit`](Self::set_hop_limit).
    pub fn set_ttl(&mut self, v: u8) {
        self.set_hop_limit(v);
    }

    /// Sets the protocol.
    pub fn set_next_header(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(p);
    }

    /// Sets the protocol; the same as
    /// [`set_next_header`](Self::set_next_header).
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.set_next_header(p);
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The options, mutably (as long as the header length says).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.header_len());
        &mut self.buffer.as_mut()[field::OPTIONS..end]
    }

    /// The payload, mutably: from the end of the header to the total length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }

    /// Computes the header checksum and stores it (Linux's `ip_send_check`).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let c = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(c);
    }

    /// Decrements the TTL and patches the checksum incrementally (RFC 1624),
    /// as Linux's `ip_decrease_ttl` does when forwarding. The caller checks
    /// first that the TTL is above 1 (a TTL of 0 would wrap to 255).
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_ref();
        let old = u16::from_be_bytes([b[field::TTL], b[field::PROTOCOL]]);
        let new = old.wrapping_sub(0x0100);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_hop_limit((new >> 8) as u8);
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The validated header of an IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub next_header: IpProtocol,
    /// Length of the payload (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub hop_limit: u8,
    /// The type-of-service byte: DSCP (high 6 bits) and ECN (low 2 bits).
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes, a multiple of 8.
    pub frag_offset: u16,
    /// Options (at most 40 bytes, padded to a multiple of 4).
    pub options: Ipv4Options,
}

impl Ipv4Repr {
    /// Parses and validates the header of `packet`.
    ///
    /// Checks the lengths ([`Ipv4Packet::check_len`]), that the version is 4
    /// ([`Error::Malformed`]), the checksum if `checksum_caps` says so
    /// ([`Error::Checksum`]) and that the options are well formed
    /// ([`Error::Malformed`]). The reserved flag is ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Ipv4Packet<&T>,
        checksum_caps: ChecksumCheck,
    ) -> Result<Ipv4Repr> {
        packet.check_len()?;
        let repr = Self::parse_header(packet)?;
        if checksum_caps.verify() && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(repr)
    }

    /// Parses the header of a datagram whose payload may be cut short, as in
    /// the copy that an ICMP error message quotes (RFC 792: "Internet Header
    /// + 64 bits of Data Datagram").
    ///
    /// Only the header has to be in the buffer; the total length must be at
    /// least the header length but may exceed the buffer. The checksum is
    /// not verified. [`payload_len`](Self::payload_len) is that of the
    /// original datagram.
    pub fn parse_quoted<T: AsRef<[u8]> + ?Sized>(packet: &Ipv4Packet<&T>) -> Result<Ipv4Repr> {
        let len = packet.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(packet.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        if usize::from(packet.total_len()) < header_len {
            return Err(Error::Malformed);
        }
        Self::parse_header(packet)
    }

    /// Reads the header fields; the caller has checked that the header is in
    /// the buffer and that the total length covers it.
    fn parse_header<T: AsRef<[u8]> + ?Sized>(packet: &Ipv4Packet<&T>) -> Result<Ipv4Repr> {
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        let options = Ipv4Options::from_bytes(packet.options())?;
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len()) - usize::from(packet.header_len()),
            hop_limit: packet.hop_limit(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options,
        })
    }

    /// The header length: 20 plus the options.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// The length of the whole datagram: header and payload.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header into `packet`, whose buffer must hold at least
    /// [`header_len`](Self::header_len) bytes; the payload is left alone.
    ///
    /// `buffer_len()` must fit in the 16-bit total length (the stack
    /// fragments or segments before that). With `fill_checksum` the header
    /// checksum is computed, otherwise it is left zero (for a NIC that fills
    /// it in).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Ipv4Packet<&mut T>,
        fill_checksum: bool,
    ) {
        debug_assert!(self.buffer_len() <= usize::from(u16::MAX));
        packet.set_version(4);
        packet.set_header_len(self.header_len() as u8);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(self.buffer_len() as u16);
        packet.set_ident(self.ident);
        let mut flg_off = (self.frag_offset >> 3) & flags::OFFSET;
        if self.dont_frag {
            flg_off |= flags::DF;
        }
        if self.more_frags {
            flg_off |= flags::MF;
        }
        packet.write_u16(field::FLG_OFF, flg_off);
        packet.set_hop_limit(self.hop_limit);
        packet.set_next_header(self.next_header);
        packet.set_checksum(0);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet
            .options_mut()
            .copy_from_slice(self.options.as_bytes());
        if fill_checksum {
            packet.fill_checksum();
        }
    }
}

impl fmt::Display for Ipv4Repr {
    /// Like tcpdump -v: `IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF],
    /// proto TCP (6), length 60) 10.0.0.1 > 10.0.0.2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = match (self.dont_frag, self.more_frags) {
            (false, false) => "none",
            (true, false) => "DF",
            (false, true) => "+",
            (true, true) => "DF+",
        };
        write!(
            f,
            "IP (tos 0x{:x}, ttl {}, id {}, offset {}, flags [{}], proto {}, length {}",
            self.dscp_ecn,
            self.hop_limit,
            self.ident,
            self.frag_offset,
            flags,
            self.next_header,
            self.buffer_len()
        )?;
        if !self.options.is_empty() {
            write!(f, ", options ({} bytes)", self.options.len())?;
        }
        write!(f, ") {} > {}", self.src_addr, self.dst_addr)
    }
}

#[cfg(test)]
mod tests;
