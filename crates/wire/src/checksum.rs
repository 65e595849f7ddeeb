//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum of IPv4, ICMP, UDP and TCP is the 16-bit ones' complement of
//! the ones' complement sum of the data taken as big-endian 16-bit words
//! (RFC 791 § 3.1, RFC 1071 § 1). This module splits that computation into
//! steps so that the stack can reuse them the way Linux does with `csum_partial`,
//! `csum_add`, `csum_fold` and `csum_replace2`:
//!
//! * [`sum`] gives the *partial sum* of a buffer, and [`sum_with`] (or an
//!   [`Accumulator`]) continues a partial sum over another fragment, even
//!   one that starts at an odd byte offset of the packet.
//! * [`combine`] adds two partial sums, [`pseudo_header_v4`] gives the partial
//!   sum of the TCP/UDP pseudo header (RFC 9293 § 3.1, RFC 768).
//! * [`fold`] reduces a partial sum to 16 bits, and [`checksum`] gives the
//!   complemented value that goes into a header.
//! * [`update16`] and [`update32`] patch a checksum after a field changed,
//!   with RFC 1624's equation 3.
//!
//! A *partial sum* is any `u32`: the ones' complement sum it stands for is its
//! value modulo `0xffff`, so partial sums can be added with [`combine`] in any
//! order and only [`fold`] needs to look at the bits.
//!
//! ```
//! use usnet_wire::checksum;
//!
//! // The example of RFC 1071 § 3: the folded sum of these bytes is 0xddf2.
//! let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
//! assert_eq!(checksum::fold(checksum::sum(&data)), 0xddf2);
//! assert_eq!(checksum::checksum(&data), !0xddf2);
//!
//! // A sum can be continued over fragments split at any byte.
//! let (a, b) = data.split_at(3);
//! let split = checksum::sum_with(checksum::sum(a), b, a.len() % 2 == 1);
//! assert_eq!(checksum::fold(split), 0xddf2);
//! ```

use std::net::Ipv4Addr;

/// Whether a parser verifies a checksum.
///
/// The receive path passes [`ChecksumCheck::Ignore`] when the NIC has
/// already verified the checksum (Linux's `CHECKSUM_UNNECESSARY`), and
/// [`ChecksumCheck::Verify`] otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumCheck {
    /// Verify the checksum; a mismatch is [`Error::Checksum`](crate::Error::Checksum).
    #[default]
    Verify,
    /// Do not look at the checksum.
    Ignore,
}

impl ChecksumCheck {
    /// Whether the checksum is to be verified.
    pub const fn verify(self) -> bool {
        matches!(self, ChecksumCheck::Verify)
    }
}

/// Sums `data` as native-endian 32-bit words into a 64-bit accumulator.
///
/// RFC 1071 § 2 (B): the ones' complement sum is independent of byte order,
/// so we may add native words and swap the folded result once at the end.
/// Adding 32-bit words into 64-bit accumulators needs no carry handling
/// inside the loop (the end-around carries pile up in the high half and are
/// folded back once), and the loop is simple enough for the compiler to
/// vectorise it.
#[inline]
fn sum_native(data: &[u8]) -> u64 {
    // Every block adds at most 2^32 * BLOCK / 4 to each accumulator; fold the
    // accumulators between super-blocks so that even a buffer of many GiB
    // cannot overflow them.
    const SUPER: usize = 1 << 30;
    let mut total: u64 = 0;
    for part in data.chunks(SUPER) {
        let mut acc = [0u64; 4];
        let mut blocks = part.chunks_exact(16);
        for block in &mut blocks {
            for (lane, word) in acc.iter_mut().zip(block.chunks_exact(4)) {
                *lane += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
            }
        }
        let rest = blocks.remainder();
        let mut words = rest.chunks_exact(4);
        for word in &mut words {
            acc[0] += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
        }
        // Pad the last 1 to 3 bytes with zeros on the right: an odd last byte
        // is the high-order byte of a word whose low byte is zero (RFC 1071 § 4.1).
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut padded = [0u8; 4];
            padded[..tail.len()].copy_from_slice(tail);
            acc[1] += u64::from(u32::from_ne_bytes(padded));
        }
        let part_sum = add64(add64(acc[0], acc[1]), add64(acc[2], acc[3]));
        total = add64(total, part_sum);
    }
    total
}

/// Ones' complement addition of two 64-bit values (end-around carry).
#[inline]
fn add64(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Folds a 64-bit ones' complement sum to 16 bits.
#[inline]
fn fold64(s: u64) -> u16 {
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    fold(s as u32)
}

/// The partial ones' complement sum of `data`, taken as big-endian 16-bit
/// words starting at an even offset (RFC 1071 § 4.1).
///
/// The result is already folded: it is at most `0xffff`. A buffer of odd
/// length is summed as if padded with one zero byte. This is the hot path of
/// every checksum in the stack; it adds 16 bytes per step.
///
/// ```
/// use usnet_wire::checksum::sum;
/// assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
/// ```
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let folded = fold64(sum_native(data));
    // On a little-endian machine the sum of native words is the byte swap of
    // the sum of big-endian words (RFC 1071 § 2 (B)).
    u32::from(u16::from_be(folded))
}

/// Continues the partial sum `initial` over `data`.
///
/// `offset_is_odd` tells whether `data` starts at an odd byte offset of the
/// whole message, that is whether the bytes summed so far have an odd
/// length. RFC 1071 § 2 (B): the sum of a fragment that starts at an odd
/// offset is the byte swap of its sum taken on its own.
///
/// ```
/// use usnet_wire::checksum::{fold, sum, sum_with};
/// let data = [1u8, 2, 3, 4, 5, 6, 7];
/// let partial = sum_with(sum(&data[..1]), &data[1..], true);
/// assert_eq!(fold(partial), fold(sum(&data)));
/// ```
#[inline]
pub fn sum_with(initial: u32, data: &[u8], offset_is_odd: bool) -> u32 {
    let s = sum(data);
    let s = if offset_is_odd {
        // `s` is at most 0xffff, so the swap stays within 16 bits.
        u32::from((s as u16).swap_bytes())
    } else {
        s
    };
    combine(initial, s)
}

/// Adds two partial sums (ones' complement addition with end-around carry).
///
/// Mirrors Linux's `csum_add`.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    // When `carry` is set, `s` is at most 0xffff_fffe, so this cannot overflow.
    s + u32::from(carry)
}

/// Folds a partial sum to 16 bits, without complementing it.
///
/// Mirrors the folding half of Linux's `csum_fold`. The result is `0` only
/// when every word summed was zero; otherwise a sum that is zero in ones'
/// complement arithmetic is represented as `0xffff` (RFC 1071 § 1: "-0").
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`: the complement of its folded sum
/// (RFC 1071 § 1), ready to be stored in a header.
///
/// ```
/// use usnet_wire::checksum::checksum;
/// // A buffer that already holds its correct checksum sums to -0, so its
/// // checksum is 0.
/// let mut buf = [0x45, 0x00, 0x00, 0x14, 0, 0];
/// let c = checksum(&buf);
/// buf[4..6].copy_from_slice(&c.to_be_bytes());
/// assert_eq!(checksum(&buf), 0);
/// ```
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// The partial sum of the IPv4 pseudo header of TCP and UDP.
///
/// RFC 9293 § 3.1 and RFC 768: source address, destination address, a zero
/// byte, the protocol number and the length of the TCP or UDP segment
/// (header and data). Mirrors Linux's `csum_tcpudp_nofold`.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u32) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    let words = [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(protocol),
        (length >> 16) as u16,
        length as u16,
    ];
    // Seven 16-bit words cannot overflow a u32.
    words.iter().map(|&w| u32::from(w)).sum()
}

/// Updates `old_checksum` after a 16-bit field changed from `old` to `new`.
///
/// RFC 1624 § 3, equation 3: `HC' = ~(~HC + ~m + m')`, computed with
/// end-around carries. Unlike RFC 1141's equation 2 this gives the same
/// result as a recomputation from scratch, including when the new sum is
/// zero (the new checksum is then `0x0000`, never `0xffff`; see RFC 1624
/// § 4). Mirrors Linux's `csum_replace2`.
///
/// The field must lie at an even offset of the checksummed data (all header
/// fields the stack rewrites do).
///
/// ```
/// use usnet_wire::checksum::update16;
/// // RFC 1624 § 4: the data sums to 0xcd7a + 0x5555 and has checksum 0xdd2f;
/// // changing 0x5555 to 0x3285 makes the sum -0 and the checksum 0x0000.
/// assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
/// ```
#[inline]
pub fn update16(old_checksum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!old_checksum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// Updates `old_checksum` after a 32-bit field (such as an IPv4 address)
/// changed from `old` to `new`.
///
/// RFC 1624 § 3, equation 3 applied to both halves at once. Mirrors Linux's
/// `csum_replace4`. The field must lie at an even offset.
#[inline]
pub fn update32(old_checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!old_checksum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

/// A running checksum over a message that arrives in fragments of any length.
///
/// It keeps the partial sum and whether the bytes added so far have an odd
/// length, so that each fragment is summed with the right byte weights
/// (RFC 1071 § 2 (B)).
///
/// ```
/// use usnet_wire::checksum::{checksum, Accumulator};
/// let data = [0x45u8, 0, 0, 0x54, 0xab, 0xcd, 0x40, 0, 0x40, 1, 0, 0];
/// let mut acc = Accumulator::new();
/// for part in [&data[..1], &data[1..6], &data[6..]] {
///     acc.add(part);
/// }
/// assert_eq!(acc.finish(), checksum(&data));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accumulator {
    sum: u32,
    odd: bool,
}

impl Accumulator {
    /// An accumulator with nothing summed yet.
    pub const fn new() -> Accumulator {
        Accumulator { sum: 0, odd: false }
    }

    /// An accumulator that starts from the partial sum `initial`, which must
    /// cover an even number of bytes (a pseudo header does).
    pub const fn with_initial(initial: u32) -> Accumulator {
        Accumulator {
            sum: initial,
            odd: false,
        }
    }

    /// Adds the next fragment of the message.
    #[inline]
    pub fn add(&mut self, data: &[u8]) {
        self.sum = sum_with(self.sum, data, self.odd);
        self.odd ^= data.len() % 2 == 1;
    }

    /// The partial sum so far.
    pub const fn sum(&self) -> u32 {
        self.sum
    }

    /// The complemented checksum of everything added.
    pub fn finish(&self) -> u16 {
        !fold(self.sum)
    }
}

#[cfg(test)]
mod tests;
