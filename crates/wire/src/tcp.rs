//! TCP segments (RFC 9293) and their options (RFC 7323, RFC 2018).
//!
//! * [`TcpSeqNumber`]: sequence numbers with modular comparison
//!   (RFC 9293 § 3.4, Linux's `before()` / `after()`).
//! * [`TcpFlags`]: the control bits, printed like tcpdump (`[S.]`).
//! * [`TcpPacket`]: a view over a segment; [`TcpOption`] and
//!   [`TcpOptionsIter`] read its options.
//! * [`TcpRepr`]: a parsed header. Its [`emit`](TcpRepr::emit) lays the
//!   options out byte for byte as Linux's `tcp_options_write`
//!   (`net/ipv4/tcp_output.c`) does, so a trace of usnet reads like one of
//!   Linux.
//!
//! Contract: once [`TcpPacket::new_checked`] has succeeded, no accessor
//! panics: the data offset is at least 5 and the header fits the buffer.
//! The segment is the whole buffer (the IPv4 payload): the payload and the
//! checksum run to its end.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use usnet_wire::{ChecksumCheck, TcpFlags, TcpPacket, TcpRepr, TcpSeqNumber};
//!
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let repr = TcpRepr {
//!     src_port: 40000,
//!     dst_port: 80,
//!     seq_number: TcpSeqNumber(1000),
//!     ack_number: None,
//!     flags: TcpFlags::SYN,
//!     window_len: 64240,
//!     urgent_ptr: 0,
//!     max_seg_size: Some(1460),
//!     window_scale: Some(7),
//!     sack_permitted: true,
//!     sack_ranges: [None; 4],
//!     timestamp: Some((1, 0)),
//!     payload_len: 0,
//! };
//! let mut buf = vec![0u8; repr.buffer_len()];
//! repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), &src, &dst, true);
//! let packet = TcpPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(packet.options(), [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
//! assert_eq!(TcpRepr::parse(&packet, &src, &dst, ChecksumCheck::Verify).unwrap(), repr);
//! assert_eq!(
//!     repr.to_string(),
//!     "Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0"
//! );
//! ```

use core::{cmp, fmt, ops};
use std::net::Ipv4Addr;

use crate::checksum::{self, ChecksumCheck};
use crate::ipv4::IpProtocol;
use crate::{Error, Result};

mod options;
use options::{fmt_sack, len as option_len};
pub use options::{kind as option_kind, TcpOption, TcpOptionsIter};

/// A TCP sequence number: a `u32` with wrapping arithmetic and the modular
/// comparison of RFC 9293 § 3.4 (`a < b` iff `(a - b) as i32 < 0`, Linux's
/// `before(a, b)`).
///
/// The order is only meaningful between numbers less than 2^31 apart; it is
/// a `PartialOrd` without `Ord` because it is not transitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpSeqNumber(pub u32);

impl TcpSeqNumber {
    /// The later of two sequence numbers (modular order).
    pub fn max(self, rhs: TcpSeqNumber) -> TcpSeqNumber {
        if self > rhs {
            self
        } else {
            rhs
        }
    }

    /// The earlier of two sequence numbers (modular order).
    pub fn min(self, rhs: TcpSeqNumber) -> TcpSeqNumber {
        if self < rhs {
            self
        } else {
            rhs
        }
    }
}

impl From<u32> for TcpSeqNumber {
    fn from(v: u32) -> Self {
        TcpSeqNumber(v)
    }
}

impl From<TcpSeqNumber> for u32 {
    fn from(v: TcpSeqNumber) -> u32 {
        v.0
    }
}

impl ops::Add<usize> for TcpSeqNumber {
    type Output = TcpSeqNumber;

    /// Advances by `rhs` modulo 2^32.
    fn add(self, rhs: usize) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl ops::Sub<usize> for TcpSeqNumber {
    type Output = TcpSeqNumber;

    /// Goes back by `rhs` modulo 2^32.
    fn sub(self, rhs: usize) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl ops::AddAssign<usize> for TcpSeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl ops::SubAssign<usize> for TcpSeqNumber {
    fn sub_assign(&mut self, rhs: usize) {
        *self = *self - rhs;
    }
}

impl ops::Sub for TcpSeqNumber {
    type Output = i32;

    /// The signed distance from `rhs` to `self`, modulo 2^32.
    fn sub(self, rhs: TcpSeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for TcpSeqNumber {
    fn partial_cmp(&self, other: &TcpSeqNumber) -> Option<cmp::Ordering> {
        Some((*self - *other).cmp(&0))
    }
}

impl fmt::Display for TcpSeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The TCP control bits (RFC 9293 § 3.1; ECE and CWR from RFC 3168 § 6.1;
/// AE, formerly NS, from RFC 3540 and AccECN).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// Accurate ECN / former ECN-nonce bit (the low bit of byte 12).
    pub const AE: TcpFlags = TcpFlags(0x100);

    const MASK: u16 = 0x1ff;

    /// No flags.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// The flags in the low 9 bits of `bits` (the other bits are dropped).
    pub const fn from_bits_truncate(bits: u16) -> TcpFlags {
        TcpFlags(bits & Self::MASK)
    }

    /// The flags as bits: byte 13 of the header in the low 8 bits, AE in
    /// bit 8.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }

    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: TcpFlags, on: bool) {
        if on {
            self.insert(other)
        } else {
            self.remove(other)
        }
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl ops::BitXor for TcpFlags {
    type Output = TcpFlags;
    fn bitxor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 ^ rhs.0)
    }
}

impl ops::Sub for TcpFlags {
    type Output = TcpFlags;
    /// The flags of `self` that are not in `rhs`.
    fn sub(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !rhs.0)
    }
}

impl ops::Not for TcpFlags {
    type Output = TcpFlags;
    fn not(self) -> TcpFlags {
        TcpFlags(!self.0 & Self::MASK)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl ops::BitAndAssign for TcpFlags {
    fn bitand_assign(&mut self, rhs: TcpFlags) {
        self.0 &= rhs.0;
    }
}

impl ops::SubAssign for TcpFlags {
    fn sub_assign(&mut self, rhs: TcpFlags) {
        self.0 &= !rhs.0;
    }
}

/// tcpdump's letters, in its order (`tcp_flag_values` in print-tcp.c).
const FLAG_LETTERS: [(TcpFlags, char); 9] = [
    (TcpFlags::FIN, 'F'),
    (TcpFlags::SYN, 'S'),
    (TcpFlags::RST, 'R'),
    (TcpFlags::PSH, 'P'),
    (TcpFlags::ACK, '.'),
    (TcpFlags::URG, 'U'),
    (TcpFlags::ECE, 'E'),
    (TcpFlags::CWR, 'W'),
    (TcpFlags::AE, 'e'),
];

impl fmt::Display for TcpFlags {
    /// As tcpdump: `[S]`, `[S.]`, `[P.]`, `[F.]`, `[R]`, `[none]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        if self.is_empty() {
            f.write_str("none")?;
        }
        for (flag, letter) in FLAG_LETTERS {
            if self.contains(flag) {
                write!(f, "{letter}")?;
            }
        }
        f.write_str("]")
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(TcpFlags, &str); 9] = [
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::AE, "AE"),
        ];
        f.write_str("TcpFlags(")?;
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

mod field {
    pub type Field = core::ops::Range<usize>;
    /// Source port (RFC 9293 § 3.1).
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Field = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits), reserved (3 bits), AE, then the eight control
    /// bits CWR ECE URG ACK PSH RST SYN FIN.
    pub const FLAGS: Field = 12..14;
    /// Window.
    pub const WIN_SIZE: Field = 14..16;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
    /// Options start here (data offset > 5).
    pub const OPTIONS: usize = 20;
}

/// The length of a TCP header without options (data offset 5).
pub const HEADER_LEN: usize = field::OPTIONS;

/// The largest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The most option bytes a header holds, Linux's `MAX_TCP_OPTION_SPACE`.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// A read/write view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the data offset against the buffer, as Linux's `tcp_v4_rcv`
    /// does: a buffer shorter than 20 bytes or than the header is
    /// [`Error::Truncated`], a data offset below 5 is [`Error::Malformed`].
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

    fn read_u32(&self, f: field::Field) -> u32 {
        let b = &self.buffer.as_ref()[f];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(self.read_u32(field::SEQ_NUM))
    }

    /// The acknowledgment number (meaningful when ACK is set).
    pub fn ack_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(self.read_u32(field::ACK_NUM))
    }

    /// The header length in bytes (data offset × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(self.read_u16(field::FLAGS))
    }

    /// The FIN flag.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// The SYN flag.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// The RST flag.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// The PSH flag.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// The ACK flag.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// The URG flag.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// The ECE flag.
    pub fn ece(&self) -> bool {
        self.flags().contains(TcpFlags::ECE)
    }

    /// The CWR flag.
    pub fn cwr(&self) -> bool {
        self.flags().contains(TcpFlags::CWR)
    }

    /// The window field (not scaled).
    pub fn window_len(&self) -> u16 {
        self.read_u16(field::WIN_SIZE)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The urgent pointer (meaningful when URG is set).
    pub fn urgent_ptr(&self) -> u16 {
        self.read_u16(field::URGENT)
    }

    /// The option bytes: the header after its first 20 bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..usize::from(self.header_len())]
    }

    /// An iterator over the parsed options.
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.options())
    }

    /// The length of the payload: the buffer after the header.
    pub fn payload_len(&self) -> usize {
        self.buffer.as_ref().len() - usize::from(self.header_len())
    }

    /// The sequence space the segment occupies: payload, plus one each for
    /// SYN and FIN (RFC 9293 § 3.4, Linux's `TCP_SKB_CB(skb)->end_seq - seq`).
    pub fn segment_len(&self) -> usize {
        let flags = self.flags();
        self.payload_len()
            + usize::from(flags.contains(TcpFlags::SYN))
            + usize::from(flags.contains(TcpFlags::FIN))
    }

    /// Whether the checksum over the pseudo header and the whole buffer is
    /// right (RFC 9293 § 3.1).
    pub fn verify_checksum(&self, src_addr: &Ipv4Addr, dst_addr: &Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        let pseudo =
            checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::TCP, data.len() as u32);
        checksum::fold(checksum::combine(pseudo, checksum::sum(data))) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The payload: the buffer after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn write_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    fn write_u32(&mut self, f: field::Field, v: u32) {
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

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: TcpSeqNumber) {
        self.write_u32(field::SEQ_NUM, v.0);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, v: TcpSeqNumber) {
        self.write_u32(field::ACK_NUM, v.0);
    }

    /// Sets the header length in bytes (a multiple of 4, 20 to 60), keeping
    /// the flags.
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | ((len / 4) << 4);
    }

    /// Sets the control bits, keeping the data offset and clearing the
    /// reserved bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let v = (self.read_u16(field::FLAGS) & 0xf000) | flags.bits();
        self.write_u16(field::FLAGS, v);
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, v: u16) {
        self.write_u16(field::WIN_SIZE, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_ptr(&mut self, v: u16) {
        self.write_u16(field::URGENT, v);
    }

    /// The option bytes, mutably (as long as the header length says).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.header_len());
        &mut self.buffer.as_mut()[field::OPTIONS..end]
    }

    /// The payload, mutably: the buffer after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = usize::from(self.header_len());
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes the checksum over the pseudo header and the whole buffer and
    /// stores it (Linux's `tcp_v4_send_check` in software).
    pub fn fill_checksum(&mut self, src_addr: &Ipv4Addr, dst_addr: &Ipv4Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let pseudo =
            checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::TCP, data.len() as u32);
        let c = !checksum::fold(checksum::combine(pseudo, checksum::sum(data)));
        self.set_checksum(c);
    }

    /// Stores the folded pseudo-header sum, uncomplemented, for a NIC that
    /// completes the checksum over the segment (Linux's `CHECKSUM_PARTIAL`:
    /// `th->check = ~tcp_v4_check(len, saddr, daddr, 0)`).
    pub fn fill_partial_checksum(&mut self, src_addr: &Ipv4Addr, dst_addr: &Ipv4Addr) {
        let len = self.buffer.as_ref().len() as u32;
        let pseudo = checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::TCP, len);
        self.set_checksum(checksum::fold(pseudo));
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for TcpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed header of a TCP segment.
///
/// The options are the ones Linux's `tcp_parse_options` understands, each
/// at most once (a later copy on the wire wins). Which of them matter on
/// which segment (MSS, window scale and SACK-permitted only on a SYN) is for
/// the stack to decide; the repr keeps what was on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: TcpSeqNumber,
    /// Acknowledgment number: `Some` exactly when the ACK flag is set.
    pub ack_number: Option<TcpSeqNumber>,
    /// Control bits other than ACK ([`emit`](Self::emit) derives ACK from
    /// `ack_number` and ignores an ACK bit here).
    pub flags: TcpFlags,
    /// The window field as sent (not scaled).
    pub window_len: u16,
    /// The urgent pointer field (sent whatever the URG flag).
    pub urgent_ptr: u16,
    /// Maximum Segment Size option.
    pub max_seg_size: Option<u16>,
    /// Window Scale option (the shift count as sent).
    pub window_scale: Option<u8>,
    /// SACK-Permitted option.
    pub sack_permitted: bool,
    /// SACK blocks `(left, right)`, the `Some` entries first.
    pub sack_ranges: [Option<(u32, u32)>; 4],
    /// Timestamps option as `(TSval, TSecr)`.
    pub timestamp: Option<(u32, u32)>,
    /// Length of the payload after the header.
    pub payload_len: usize,
}

/// The number of SACK blocks of `repr` that [`TcpRepr::emit`] writes: those
/// that fit the option space left after the other options, as Linux's
/// `tcp_established_options` limits them.
pub(crate) fn sack_blocks_emitted(repr: &TcpRepr) -> usize {
    let wanted = repr.sack_ranges.iter().flatten().count();
    if wanted == 0 {
        return 0;
    }
    let used = fixed_options_len(repr);
    let room = MAX_OPTIONS_LEN.saturating_sub(used + 4) / option_len::SACK_PER_BLOCK;
    wanted.min(room)
}

/// The length of the options other than SACK blocks, in Linux's layout.
fn fixed_options_len(repr: &TcpRepr) -> usize {
    let mut len = 0;
    if repr.max_seg_size.is_some() {
        len += 4;
    }
    if repr.timestamp.is_some() {
        // SACK-permitted rides in the first word of the timestamp.
        len += 12;
    } else if repr.sack_permitted {
        len += 4;
    }
    if repr.window_scale.is_some() {
        len += 4;
    }
    len
}

/// The length of the options [`TcpRepr::emit`] writes for `repr`, always a
/// multiple of 4 (Linux's `tcp_options_write` layout; SACK blocks that would
/// not fit in 40 bytes are dropped, last first).
pub fn tcp_option_len(repr: &TcpRepr) -> usize {
    let sacks = sack_blocks_emitted(repr);
    let sack_len = if sacks > 0 {
        4 + sacks * option_len::SACK_PER_BLOCK
    } else {
        0
    };
    fixed_options_len(repr) + sack_len
}

impl TcpRepr {
    /// Parses a TCP header.
    ///
    /// Checks the lengths ([`TcpPacket::check_len`]), the checksum if
    /// `checksum_caps` asks ([`Error::Checksum`]), and the options
    /// ([`Error::Malformed`] for an option whose length is below 2 or runs
    /// past the header; Linux would stop reading the options there and keep
    /// the segment). Options may come in any order with any padding; unknown
    /// options and known ones with a wrong length are skipped.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&T>,
        src_addr: &Ipv4Addr,
        dst_addr: &Ipv4Addr,
        checksum_caps: ChecksumCheck,
    ) -> Result<TcpRepr> {
        packet.check_len()?;
        if checksum_caps.verify() && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum);
        }
        let flags = packet.flags();
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: flags.contains(TcpFlags::ACK).then(|| packet.ack_number()),
            flags: flags - TcpFlags::ACK,
            window_len: packet.window_len(),
            urgent_ptr: packet.urgent_ptr(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 4],
            timestamp: None,
            payload_len: packet.payload_len(),
        };
        for option in packet.options_iter() {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(ranges) => repr.sack_ranges = ranges,
                TcpOption::Timestamp { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    /// The header length: 20 plus [`tcp_option_len`].
    pub fn header_len(&self) -> usize {
        HEADER_LEN + tcp_option_len(self)
    }

    /// The segment length: header and payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// The sequence space the segment occupies: payload, plus one each for
    /// SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload_len
            + usize::from(self.flags.contains(TcpFlags::SYN))
            + usize::from(self.flags.contains(TcpFlags::FIN))
    }

    /// All control bits as sent, ACK included when `ack_number` is `Some`.
    pub fn wire_flags(&self) -> TcpFlags {
        let mut flags = self.flags - TcpFlags::ACK;
        flags.set(TcpFlags::ACK, self.ack_number.is_some());
        flags
    }

    /// Writes the header into `packet`, with the options laid out as
    /// Linux's `tcp_options_write`:
    ///
    /// 1. MSS: `2, 4, mss`;
    /// 2. timestamps: `4, 2, 8, 10` if SACK-permitted is also sent, else
    ///    `1, 1, 8, 10`, then TSval and TSecr;
    /// 3. SACK-permitted without timestamps: `1, 1, 4, 2`;
    /// 4. window scale: `1, 3, 3, shift`;
    /// 5. SACK blocks: `1, 1, 5, 2 + 8n`, then the blocks (as many as fit).
    ///
    /// The buffer must hold at least [`header_len`](Self::header_len)
    /// bytes. With `fill_checksum` the checksum is computed over the whole
    /// buffer, which must then be exactly [`buffer_len`](Self::buffer_len)
    /// long with the payload already in place; otherwise the checksum field
    /// is zero, for [`TcpPacket::fill_checksum`] or
    /// [`TcpPacket::fill_partial_checksum`] later.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut TcpPacket<&mut T>,
        src_addr: &Ipv4Addr,
        dst_addr: &Ipv4Addr,
        fill_checksum: bool,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number.unwrap_or_default());
        packet.set_header_len(self.header_len() as u8);
        packet.set_flags(self.wire_flags());
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_ptr(self.urgent_ptr);
        self.write_options(packet.options_mut());
        if fill_checksum {
            packet.fill_checksum(src_addr, dst_addr);
        }
    }

    /// Writes the options into `out`, which is exactly `tcp_option_len`
    /// bytes long.
    fn write_options(&self, out: &mut [u8]) {
        use option_kind::*;
        let mut words = out.chunks_exact_mut(4);
        let mut put = |word: [u8; 4]| {
            if let Some(w) = words.next() {
                w.copy_from_slice(&word);
            }
        };
        if let Some(mss) = self.max_seg_size {
            let [hi, lo] = mss.to_be_bytes();
            put([MAX_SEG_SIZE, 4, hi, lo]);
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            if self.sack_permitted {
                put([SACK_PERMITTED, 2, TIMESTAMP, 10]);
            } else {
                put([NO_OPERATION, NO_OPERATION, TIMESTAMP, 10]);
            }
            put(tsval.to_be_bytes());
            put(tsecr.to_be_bytes());
        } else if self.sack_permitted {
            put([NO_OPERATION, NO_OPERATION, SACK_PERMITTED, 2]);
        }
        if let Some(shift) = self.window_scale {
            put([NO_OPERATION, WINDOW_SCALE, 3, shift]);
        }
        let sacks = sack_blocks_emitted(self);
        if sacks > 0 {
            put([
                NO_OPERATION,
                NO_OPERATION,
                SACK_RANGE,
                (2 + 8 * sacks) as u8,
            ]);
            for &(left, right) in self.sack_ranges.iter().flatten().take(sacks) {
                put(left.to_be_bytes());
                put(right.to_be_bytes());
            }
        }
    }

    /// A tcpdump-like line with addresses:
    /// `IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000, ...`.
    pub fn pretty<'a>(
        &'a self,
        src_addr: &'a Ipv4Addr,
        dst_addr: &'a Ipv4Addr,
    ) -> TcpReprPretty<'a> {
        TcpReprPretty {
            repr: self,
            src_addr,
            dst_addr,
        }
    }
}

impl fmt::Display for TcpRepr {
    /// The body of a tcpdump line (with `-S`, absolute sequence numbers):
    /// `Flags [S.], seq 1, ack 2, win 512, options [mss 1460,nop,wscale 7],
    /// length 0`. The options are listed as [`emit`](Self::emit) lays them
    /// out, NOPs included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags {}, seq {}", self.wire_flags(), self.seq_number)?;
        if self.payload_len > 0 {
            write!(f, ":{}", self.seq_number + self.payload_len)?;
        }
        if let Some(ack) = self.ack_number {
            write!(f, ", ack {ack}")?;
        }
        write!(f, ", win {}", self.window_len)?;
        if self.flags.contains(TcpFlags::URG) {
            write!(f, ", urg {}", self.urgent_ptr)?;
        }
        if tcp_option_len(self) > 0 {
            f.write_str(", options [")?;
            let mut sep = "";
            let mut item = |f: &mut fmt::Formatter<'_>, s: fmt::Arguments<'_>| {
                let r = write!(f, "{sep}{s}");
                sep = ",";
                r
            };
            if let Some(mss) = self.max_seg_size {
                item(f, format_args!("mss {mss}"))?;
            }
            if let Some((tsval, tsecr)) = self.timestamp {
                if self.sack_permitted {
                    item(f, format_args!("sackOK"))?;
                } else {
                    item(f, format_args!("nop,nop"))?;
                }
                item(f, format_args!("TS val {tsval} ecr {tsecr}"))?;
            } else if self.sack_permitted {
                item(f, format_args!("nop,nop,sackOK"))?;
            }
            if let Some(shift) = self.window_scale {
                item(f, format_args!("nop,wscale {shift}"))?;
            }
            let sacks = sack_blocks_emitted(self);
            if sacks > 0 {
                item(f, format_args!("nop,nop,"))?;
                fmt_sack(f, self.sack_ranges.iter().flatten().take(sacks))?;
            }
            f.write_str("]")?;
        }
        write!(f, ", length {}", self.payload_len)
    }
}

/// A [`TcpRepr`] with its addresses, printed like a whole tcpdump line; see
/// [`TcpRepr::pretty`].
#[derive(Debug, Clone, Copy)]
pub struct TcpReprPretty<'a> {
    repr: &'a TcpRepr,
    src_addr: &'a Ipv4Addr,
    dst_addr: &'a Ipv4Addr,
}

impl fmt::Display for TcpReprPretty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IP {}.{} > {}.{}: {}",
            self.src_addr, self.repr.src_port, self.dst_addr, self.repr.dst_port, self.repr
        )
    }
}

#[cfg(test)]
mod tests;
