//! ICMP for IPv4 (RFC 792, RFC 1122 § 3.2.2, RFC 1191 § 4).
//!
//! [`Icmpv4Packet`] views an ICMP message (the payload of an IPv4 datagram
//! with protocol 1); [`Icmpv4Repr`] is the parsed message for the kinds the
//! stack acts on (echo, destination unreachable, time exceeded), and
//! [`Icmpv4Repr::Other`] for the rest.
//!
//! Contract: once [`Icmpv4Packet::new_checked`] has succeeded, no accessor
//! panics. The checksum covers the whole message (RFC 792), so the packet's
//! buffer must be exactly the IPv4 payload.
//!
//! ```
//! use usnet_wire::{ChecksumCheck, Icmpv4Packet, Icmpv4Repr};
//!
//! let repr = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 1, data_len: 4 };
//! let mut buf = vec![0u8; repr.buffer_len()];
//! let mut packet = Icmpv4Packet::new_unchecked(&mut buf[..]);
//! packet.data_mut().copy_from_slice(b"ping");
//! repr.emit(&mut packet, true);
//! let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
//! assert_eq!(Icmpv4Repr::parse(&packet, ChecksumCheck::Verify).unwrap(), repr);
//! assert_eq!(packet.data(), b"ping");
//! ```

use core::fmt;

use crate::checksum::{self, ChecksumCheck};
use crate::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::{Error, Result};

/// ICMP message types (RFC 792; RFC 1256 for router discovery).
pub mod msg_type {
    /// Echo Reply (RFC 792).
    pub const ECHO_REPLY: u8 = 0;
    /// Destination Unreachable (RFC 792).
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source Quench (RFC 792; deprecated by RFC 6633).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect (RFC 792).
    pub const REDIRECT: u8 = 5;
    /// Echo Request (RFC 792).
    pub const ECHO_REQUEST: u8 = 8;
    /// Router Advertisement (RFC 1256).
    pub const ROUTER_ADVERT: u8 = 9;
    /// Router Solicitation (RFC 1256).
    pub const ROUTER_SOLICIT: u8 = 10;
    /// Time Exceeded (RFC 792).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter Problem (RFC 792).
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp (RFC 792).
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp Reply (RFC 792).
    pub const TIMESTAMP_REPLY: u8 = 14;
}

/// ICMP codes of Destination Unreachable and Time Exceeded messages
/// (RFC 792; 4 is RFC 1191's "fragmentation needed and DF set"; 5 to 12 are
/// RFC 1122 § 3.2.2.1; 13 to 15 are RFC 1812 § 5.2.7.1).
pub mod code {
    /// Net unreachable (RFC 792).
    pub const NET_UNREACHABLE: u8 = 0;
    /// Host unreachable (RFC 792).
    pub const HOST_UNREACHABLE: u8 = 1;
    /// Protocol unreachable (RFC 792).
    pub const PROTO_UNREACHABLE: u8 = 2;
    /// Port unreachable (RFC 792).
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Fragmentation needed and DF set (RFC 792, RFC 1191).
    pub const FRAG_REQUIRED: u8 = 4;
    /// Source route failed (RFC 792).
    pub const SRC_ROUTE_FAILED: u8 = 5;
    /// Destination network unknown (RFC 1122).
    pub const DST_NET_UNKNOWN: u8 = 6;
    /// Destination host unknown (RFC 1122).
    pub const DST_HOST_UNKNOWN: u8 = 7;
    /// Source host isolated (RFC 1122).
    pub const SRC_HOST_ISOLATED: u8 = 8;
    /// Communication with destination network administratively prohibited
    /// (RFC 1122).
    pub const NET_PROHIBITED: u8 = 9;
    /// Communication with destination host administratively prohibited
    /// (RFC 1122).
    pub const HOST_PROHIBITED: u8 = 10;
    /// Network unreachable for type of service (RFC 1122).
    pub const NET_UNREACHABLE_TOS: u8 = 11;
    /// Host unreachable for type of service (RFC 1122).
    pub const HOST_UNREACHABLE_TOS: u8 = 12;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
    /// Host precedence violation (RFC 1812).
    pub const HOST_PRECEDENCE_VIOLATION: u8 = 14;
    /// Precedence cutoff in effect (RFC 1812).
    pub const PRECEDENCE_CUTOFF: u8 = 15;
    /// Time to live exceeded in transit (RFC 792, Time Exceeded code 0).
    pub const TTL_EXPIRED: u8 = 0;
    /// Fragment reassembly time exceeded (RFC 792, Time Exceeded code 1).
    pub const FRAG_REASSEMBLY: u8 = 1;
}

/// The code of a Destination Unreachable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: net unreachable.
    NetUnreachable,
    /// 1: host unreachable.
    HostUnreachable,
    /// 2: protocol unreachable.
    ProtoUnreachable,
    /// 3: port unreachable.
    PortUnreachable,
    /// 4: fragmentation needed and DF set; the message carries the next-hop
    /// MTU (RFC 1191 § 4).
    FragRequired,
    /// 5: source route failed.
    SrcRouteFailed,
    /// 6: destination network unknown.
    DstNetUnknown,
    /// 7: destination host unknown.
    DstHostUnknown,
    /// 8: source host isolated.
    SrcHostIsolated,
    /// 9: network administratively prohibited.
    NetProhibited,
    /// 10: host administratively prohibited.
    HostProhibited,
    /// 11: network unreachable for TOS.
    NetUnreachableTos,
    /// 12: host unreachable for TOS.
    HostUnreachableTos,
    /// 13: communication administratively prohibited (a filter).
    AdminProhibited,
    /// 14: host precedence violation.
    HostPrecedenceViolation,
    /// 15: precedence cutoff in effect.
    PrecedenceCutoff,
    /// Any other code. Build it with `DstUnreachable::from(u8)` so that a
    /// known code never ends up here.
    Unknown(u8),
}

impl From<u8> for DstUnreachable {
    fn from(v: u8) -> Self {
        use DstUnreachable::*;
        match v {
            code::NET_UNREACHABLE => NetUnreachable,
            code::HOST_UNREACHABLE => HostUnreachable,
            code::PROTO_UNREACHABLE => ProtoUnreachable,
            code::PORT_UNREACHABLE => PortUnreachable,
            code::FRAG_REQUIRED => FragRequired,
            code::SRC_ROUTE_FAILED => SrcRouteFailed,
            code::DST_NET_UNKNOWN => DstNetUnknown,
            code::DST_HOST_UNKNOWN => DstHostUnknown,
            code::SRC_HOST_ISOLATED => SrcHostIsolated,
            code::NET_PROHIBITED => NetProhibited,
            code::HOST_PROHIBITED => HostProhibited,
            code::NET_UNREACHABLE_TOS => NetUnreachableTos,
            code::HOST_UNREACHABLE_TOS => HostUnreachableTos,
            code::ADMIN_PROHIBITED => AdminProhibited,
            code::HOST_PRECEDENCE_VIOLATION => HostPrecedenceViolation,
            code::PRECEDENCE_CUTOFF => PrecedenceCutoff,
            other => Unknown(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(r: DstUnreachable) -> u8 {
        use DstUnreachable::*;
        match r {
            NetUnreachable => code::NET_UNREACHABLE,
            HostUnreachable => code::HOST_UNREACHABLE,
            ProtoUnreachable => code::PROTO_UNREACHABLE,
            PortUnreachable => code::PORT_UNREACHABLE,
            FragRequired => code::FRAG_REQUIRED,
            SrcRouteFailed => code::SRC_ROUTE_FAILED,
            DstNetUnknown => code::DST_NET_UNKNOWN,
            DstHostUnknown => code::DST_HOST_UNKNOWN,
            SrcHostIsolated => code::SRC_HOST_ISOLATED,
            NetProhibited => code::NET_PROHIBITED,
            HostProhibited => code::HOST_PROHIBITED,
            NetUnreachableTos => code::NET_UNREACHABLE_TOS,
            HostUnreachableTos => code::HOST_UNREACHABLE_TOS,
            AdminProhibited => code::ADMIN_PROHIBITED,
            HostPrecedenceViolation => code::HOST_PRECEDENCE_VIOLATION,
            PrecedenceCutoff => code::PRECEDENCE_CUTOFF,
            Unknown(v) => v,
        }
    }
}

impl fmt::Display for DstUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DstUnreachable::*;
        let s = match self {
            NetUnreachable => "net unreachable",
            HostUnreachable => "host unreachable",
            ProtoUnreachable => "protocol unreachable",
            PortUnreachable => "port unreachable",
            FragRequired => "need to frag",
            SrcRouteFailed => "source route failed",
            DstNetUnknown => "net unknown",
            DstHostUnknown => "host unknown",
            SrcHostIsolated => "source host isolated",
            NetProhibited => "net prohibited",
            HostProhibited => "host prohibited",
            NetUnreachableTos => "net unreachable for tos",
            HostUnreachableTos => "host unreachable for tos",
            AdminProhibited => "administratively prohibited",
            HostPrecedenceViolation => "host precedence violation",
            PrecedenceCutoff => "precedence cutoff",
            Unknown(c) => return write!(f, "code {c}"),
        };
        f.write_str(s)
    }
}

/// The code of a Time Exceeded message (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: time to live exceeded in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragReassembly,
}

impl TimeExceeded {
    /// The code for `v`, if it is one of the two RFC 792 defines.
    pub const fn from_code(v: u8) -> Option<TimeExceeded> {
        match v {
            code::TTL_EXPIRED => Some(TimeExceeded::TtlExpired),
            code::FRAG_REASSEMBLY => Some(TimeExceeded::FragReassembly),
            _ => None,
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(t: TimeExceeded) -> u8 {
        match t {
            TimeExceeded::TtlExpired => code::TTL_EXPIRED,
            TimeExceeded::FragReassembly => code::FRAG_REASSEMBLY,
        }
    }
}

mod field {
    pub type Field = core::ops::Range<usize>;
    /// Type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier (RFC 792 "Identifier").
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number (RFC 792 "Sequence Number").
    pub const ECHO_SEQNO: Field = 6..8;
    /// Unused half of a Destination Unreachable (RFC 1191 § 4).
    pub const UNUSED: Field = 4..6;
    /// Next-hop MTU of "fragmentation needed" (RFC 1191 § 4).
    pub const MTU: Field = 6..8;
    /// The four bytes after the checksum.
    pub const REST: Field = 4..8;
    /// Data: the echo payload or the quoted datagram.
    pub const DATA: usize = 8;
}

/// The length of the ICMP header: type, code, checksum and four bytes.
pub const HEADER_LEN: usize = field::DATA;

/// A read/write view of an ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer and checks that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
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

    fn read_u16(&self, f: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[f];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The message type (see [`msg_type`]).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The message code (see [`code`]).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        self.read_u16(field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        self.read_u16(field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a "fragmentation needed" message (RFC 1191 § 4);
    /// zero from a router that predates RFC 1191.
    pub fn next_hop_mtu(&self) -> u16 {
        self.read_u16(field::MTU)
    }

    /// The four bytes after the checksum, whatever the type.
    pub fn rest_of_header(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::REST];
        [b[0], b[1], b[2], b[3]]
    }

    /// Whether the checksum over the whole buffer is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// The data after the header: an echo's payload, or the quoted datagram
    /// of an error message.
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn write_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.write_u16(field::ECHO_IDENT, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.write_u16(field::ECHO_SEQNO, v);
    }

    /// Sets the next-hop MTU, and zeroes the unused half-word before it.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.write_u16(field::UNUSED, 0);
        self.write_u16(field::MTU, v);
    }

    /// Sets the four bytes after the checksum.
    pub fn set_rest_of_header(&mut self, v: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v);
    }

    /// The data after the header, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes the checksum over the whole buffer and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The number of bytes of the offending datagram's payload an ICMP error
/// must quote (RFC 792: "the first 64 bits of the original datagram's
/// data"); Linux's `icmp_socket_deliver` drops an error with fewer.
pub const QUOTED_DATA_MIN: usize = 8;

/// A parsed ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr {
    /// Echo Request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Length of the echo data after the header.
        data_len: usize,
    },
    /// Echo Reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Length of the echo data after the header.
        data_len: usize,
    },
    /// Destination Unreachable (type 3). The data is the offending
    /// datagram's IP header and at least 8 bytes of its payload.
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// The next-hop MTU (RFC 1191 § 4; meaningful for
        /// [`DstUnreachable::FragRequired`], otherwise usually zero).
        next_hop_mtu: u16,
        /// The header of the offending datagram. Its `payload_len` is that
        /// of the original datagram, not of the quoted part.
        header: Ipv4Repr,
        /// How many bytes of the original payload follow the quoted header.
        data_len: usize,
    },
    /// Time Exceeded (type 11, codes 0 and 1).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The header of the offending datagram.
        header: Ipv4Repr,
        /// How many bytes of the original payload follow the quoted header.
        data_len: usize,
    },
    /// Any other message; only its type and code are kept, and
    /// [`emit`](Icmpv4Repr::emit) writes just the 8-byte header with zeros
    /// after the checksum.
    Other {
        /// The type.
        msg_type: u8,
        /// The code.
        code: u8,
    },
}

impl Icmpv4Repr {
    /// Parses an ICMP message.
    ///
    /// Fails with [`Error::Truncated`] for a buffer shorter than 8 bytes,
    /// with [`Error::Checksum`] if `checksum_caps` asks to verify and the
    /// checksum is wrong, and for error messages if the quoted datagram does
    /// not parse ([`Ipv4Repr::parse_quoted`]) or carries fewer than
    /// [`QUOTED_DATA_MIN`] bytes of payload ([`Error::Truncated`]). The
    /// code of an echo is ignored, as Linux does. A Time Exceeded with a code
    /// other than 0 or 1 parses as [`Icmpv4Repr::Other`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&T>,
        checksum_caps: ChecksumCheck,
    ) -> Result<Icmpv4Repr> {
        packet.check_len()?;
        if checksum_caps.verify() && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let data_len = packet.data().len();
        let repr = match (packet.msg_type(), packet.msg_code()) {
            (msg_type::ECHO_REQUEST, _) => Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data_len,
            },
            (msg_type::ECHO_REPLY, _) => Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data_len,
            },
            (msg_type::DST_UNREACHABLE, code) => {
                let (header, data_len) = parse_quoted(packet.data())?;
                Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::from(code),
                    next_hop_mtu: packet.next_hop_mtu(),
                    header,
                    data_len,
                }
            }
            (msg_type::TIME_EXCEEDED, code) => match TimeExceeded::from_code(code) {
                Some(reason) => {
                    let (header, data_len) = parse_quoted(packet.data())?;
                    Icmpv4Repr::TimeExceeded {
                        reason,
                        header,
                        data_len,
                    }
                }
                None => Icmpv4Repr::Other {
                    msg_type: msg_type::TIME_EXCEEDED,
                    code,
                },
            },
            (msg_type, code) => Icmpv4Repr::Other { msg_type, code },
        };
        Ok(repr)
    }

    /// The length of the message: the 8-byte header, the quoted header of an
    /// error, and the data.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data_len, .. } | Icmpv4Repr::EchoReply { data_len, .. } => {
                HEADER_LEN + *data_len
            }
            Icmpv4Repr::DstUnreachable {
                header, data_len, ..
            }
            | Icmpv4Repr::TimeExceeded {
                header, data_len, ..
            } => HEADER_LEN + header.header_len() + *data_len,
            Icmpv4Repr::Other { .. } => HEADER_LEN,
        }
    }

    /// The length of the part [`emit`](Self::emit) writes: the 8-byte header
    /// and, for an error, the quoted IP header. The rest of
    /// [`buffer_len`](Self::buffer_len) is the data, which the caller copies.
    pub const fn header_len(&self) -> usize {
        match self {
            Icmpv4Repr::DstUnreachable { header, .. } | Icmpv4Repr::TimeExceeded { header, .. } => {
                HEADER_LEN + header.header_len()
            }
            _ => HEADER_LEN,
        }
    }

    /// Writes the message header (and an error's quoted IP header, with its
    /// checksum filled) into `packet`.
    ///
    /// The data (echo payload, or the quoted payload bytes after the quoted
    /// header) is the caller's to copy, before this call if `fill_checksum`
    /// is set, since the checksum covers the whole buffer, which must then be
    /// exactly [`buffer_len`](Self::buffer_len) long. Without
    /// `fill_checksum` the checksum field is zero, to be filled later with
    /// [`Icmpv4Packet::fill_checksum`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Icmpv4Packet<&mut T>,
        fill_checksum: bool,
    ) {
        packet.set_checksum(0);
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => {
                packet.set_msg_type(msg_type::ECHO_REQUEST);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                packet.set_msg_type(msg_type::ECHO_REPLY);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                ..
            } => {
                packet.set_msg_type(msg_type::DST_UNREACHABLE);
                packet.set_msg_code(u8::from(reason));
                packet.set_next_hop_mtu(next_hop_mtu);
                header.emit(&mut Ipv4Packet::new_unchecked(packet.data_mut()), true);
            }
            Icmpv4Repr::TimeExceeded { reason, header, .. } => {
                packet.set_msg_type(msg_type::TIME_EXCEEDED);
                packet.set_msg_code(u8::from(reason));
                packet.set_rest_of_header([0; 4]);
                header.emit(&mut Ipv4Packet::new_unchecked(packet.data_mut()), true);
            }
            Icmpv4Repr::Other { msg_type, code } => {
                packet.set_msg_type(msg_type);
                packet.set_msg_code(code);
                packet.set_rest_of_header([0; 4]);
            }
        }
        if fill_checksum {
            packet.fill_checksum();
        }
    }
}

/// Parses the datagram quoted by an ICMP error: its header and the number
/// of payload bytes present.
fn parse_quoted(data: &[u8]) -> Result<(Ipv4Repr, usize)> {
    let header = Ipv4Repr::parse_quoted(&Ipv4Packet::new_unchecked(data))?;
    let data_len = data.len() - header.header_len();
    if data_len < QUOTED_DATA_MIN {
        return Err(Error::Truncated);
    }
    Ok((header, data_len))
}

impl fmt::Display for Icmpv4Repr {
    /// Like tcpdump: `ICMP echo request, id 1, seq 2, length 64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.buffer_len();
        match self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => write!(
                f,
                "ICMP echo request, id {ident}, seq {seq_no}, length {len}"
            ),
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                write!(f, "ICMP echo reply, id {ident}, seq {seq_no}, length {len}")
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                ..
            } => {
                write!(f, "ICMP {} unreachable - {reason}", header.dst_addr)?;
                if *reason == DstUnreachable::FragRequired {
                    write!(f, ", mtu {next_hop_mtu}")?;
                }
                write!(f, ", length {len}")
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                let what = match reason {
                    TimeExceeded::TtlExpired => "in-transit",
                    TimeExceeded::FragReassembly => "fragment reassembly",
                };
                write!(f, "ICMP time exceeded {what}, length {len}")
            }
            Icmpv4Repr::Other { msg_type, code } => {
                write!(f, "ICMP type {msg_type}, code {code}, length {len}")
            }
        }
    }
}

#[cfg(test)]
mod tests;
