//! TCP options (RFC 9293 § 3.2, RFC 7323, RFC 2018), parsed as Linux's
//! `tcp_parse_options` reads them and written as its `tcp_options_write`
//! lays them out.

use core::fmt;

use crate::{Error, Result};

/// Option kinds (IANA "TCP Option Kind Numbers").
pub mod kind {
    /// End of Option List (RFC 9293 § 3.2).
    pub const END_OF_LIST: u8 = 0;
    /// No-Operation (RFC 9293 § 3.2).
    pub const NO_OPERATION: u8 = 1;
    /// Maximum Segment Size (RFC 9293 § 3.2), length 4.
    pub const MAX_SEG_SIZE: u8 = 2;
    /// Window Scale (RFC 7323 § 2.2), length 3.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK-Permitted (RFC 2018 § 2), length 2.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK (RFC 2018 § 3), length 2 + 8n.
    pub const SACK_RANGE: u8 = 5;
    /// Timestamps (RFC 7323 § 3.2), length 10.
    pub const TIMESTAMP: u8 = 8;
}

/// Option lengths, Linux's `TCPOLEN_*`.
pub(crate) mod len {
    pub const MAX_SEG_SIZE: usize = 4;
    pub const WINDOW_SCALE: usize = 3;
    pub const SACK_PERMITTED: usize = 2;
    pub const SACK_BASE: usize = 2;
    pub const SACK_PER_BLOCK: usize = 8;
    pub const TIMESTAMP: usize = 10;
}

/// One TCP option, borrowing its data from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of Option List: the rest of the option space is padding.
    EndOfList,
    /// No-Operation, a one-byte filler.
    NoOperation,
    /// Maximum Segment Size (RFC 9293 § 3.7.1).
    MaxSegmentSize(u16),
    /// Window Scale shift count (RFC 7323 § 2.2). Not clamped here: Linux
    /// clamps a shift above 14 to 14 when it uses it.
    WindowScale(u8),
    /// SACK-Permitted (RFC 2018 § 2).
    SackPermitted,
    /// SACK blocks as `(left edge, right edge)` (RFC 2018 § 3), the first
    /// entries filled.
    SackRange([Option<(u32, u32)>; 4]),
    /// Timestamps (RFC 7323 § 3.2).
    Timestamp {
        /// TSval: the sender's timestamp clock.
        tsval: u32,
        /// TSecr: the echoed timestamp.
        tsecr: u32,
    },
    /// Any other option, or a known kind with a length other than its own
    /// (Linux's `tcp_parse_options` skips both by their length).
    Unknown {
        /// The kind octet.
        kind: u8,
        /// The bytes after the length octet.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `buffer` and returns the bytes after
    /// it with the option.
    ///
    /// An empty buffer is [`Error::Truncated`]. An option other than EOL and
    /// NOP without a length octet, with a length below 2, or with a length
    /// that runs past the end of `buffer` is [`Error::Malformed`]. A known
    /// kind with the wrong length (an MSS of length 3, a SACK whose length is
    /// not 2 + 8n for n in 1..=4, ...) parses as [`TcpOption::Unknown`], as
    /// Linux ignores it.
    pub fn parse(buffer: &'a [u8]) -> Result<(&'a [u8], TcpOption<'a>)> {
        let (&kind, rest) = buffer.split_first().ok_or(Error::Truncated)?;
        match kind {
            kind::END_OF_LIST => return Ok((rest, TcpOption::EndOfList)),
            kind::NO_OPERATION => return Ok((rest, TcpOption::NoOperation)),
            _ => {}
        }
        let length = usize::from(*rest.first().ok_or(Error::Malformed)?);
        if length < 2 || length > buffer.len() {
            return Err(Error::Malformed);
        }
        let data = &buffer[2..length];
        let rest = &buffer[length..];
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let option = match (kind, data) {
            (kind::MAX_SEG_SIZE, [hi, lo]) => {
                TcpOption::MaxSegmentSize(u16::from_be_bytes([*hi, *lo]))
            }
            (kind::WINDOW_SCALE, [shift]) => TcpOption::WindowScale(*shift),
            (kind::SACK_PERMITTED, []) => TcpOption::SackPermitted,
            (kind::TIMESTAMP, [a, b, c, d, e, f, g, h]) => TcpOption::Timestamp {
                tsval: u32::from_be_bytes([*a, *b, *c, *d]),
                tsecr: u32::from_be_bytes([*e, *f, *g, *h]),
            },
            (kind::SACK_RANGE, blocks)
                if !blocks.is_empty()
                    && blocks.len() % len::SACK_PER_BLOCK == 0
                    && blocks.len() <= 4 * len::SACK_PER_BLOCK =>
            {
                let mut ranges = [None; 4];
                for (slot, block) in ranges.iter_mut().zip(blocks.chunks_exact(8)) {
                    *slot = Some((be32(&block[..4]), be32(&block[4..])));
                }
                TcpOption::SackRange(ranges)
            }
            _ => TcpOption::Unknown { kind, data },
        };
        Ok((rest, option))
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => len::MAX_SEG_SIZE,
            TcpOption::WindowScale(_) => len::WINDOW_SCALE,
            TcpOption::SackPermitted => len::SACK_PERMITTED,
            TcpOption::SackRange(ranges) => {
                len::SACK_BASE + len::SACK_PER_BLOCK * ranges.iter().flatten().count()
            }
            TcpOption::Timestamp { .. } => len::TIMESTAMP,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buffer`, which must hold
    /// [`buffer_len`](Self::buffer_len) bytes, and returns the bytes after
    /// it. The `Some` blocks of a [`TcpOption::SackRange`] are written in
    /// order.
    pub fn emit<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        let length = self.buffer_len();
        let (out, rest) = buffer.split_at_mut(length);
        match *self {
            TcpOption::EndOfList => out[0] = kind::END_OF_LIST,
            TcpOption::NoOperation => out[0] = kind::NO_OPERATION,
            TcpOption::MaxSegmentSize(mss) => {
                out[0] = kind::MAX_SEG_SIZE;
                out[1] = length as u8;
                out[2..4].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => {
                out[0] = kind::WINDOW_SCALE;
                out[1] = length as u8;
                out[2] = shift;
            }
            TcpOption::SackPermitted => {
                out[0] = kind::SACK_PERMITTED;
                out[1] = length as u8;
            }
            TcpOption::SackRange(ranges) => {
                out[0] = kind::SACK_RANGE;
                out[1] = length as u8;
                write_sack_blocks(&mut out[2..], ranges.iter().flatten());
            }
            TcpOption::Timestamp { tsval, tsecr } => {
                out[0] = kind::TIMESTAMP;
                out[1] = length as u8;
                out[2..6].copy_from_slice(&tsval.to_be_bytes());
                out[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                out[0] = kind;
                out[1] = length as u8;
                out[2..].copy_from_slice(data);
            }
        }
        rest
    }
}

/// Writes SACK blocks as pairs of big-endian sequence numbers.
pub(crate) fn write_sack_blocks<'r>(out: &mut [u8], blocks: impl Iterator<Item = &'r (u32, u32)>) {
    for (chunk, (left, right)) in out.chunks_exact_mut(8).zip(blocks) {
        chunk[..4].copy_from_slice(&left.to_be_bytes());
        chunk[4..].copy_from_slice(&right.to_be_bytes());
    }
}

impl fmt::Display for TcpOption<'_> {
    /// As tcpdump prints an option: `mss 1460`, `sackOK`, `TS val 1 ecr 0`,
    /// `nop`, `wscale 7`, `sack 1 {100:200}`, `eol`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::EndOfList => f.write_str("eol"),
            TcpOption::NoOperation => f.write_str("nop"),
            TcpOption::MaxSegmentSize(mss) => write!(f, "mss {mss}"),
            TcpOption::WindowScale(shift) => write!(f, "wscale {shift}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::SackRange(ranges) => fmt_sack(f, ranges.iter().flatten()),
            TcpOption::Timestamp { tsval, tsecr } => write!(f, "TS val {tsval} ecr {tsecr}"),
            TcpOption::Unknown { kind, data } => write!(f, "unknown-{kind} len {}", data.len()),
        }
    }
}

pub(crate) fn fmt_sack<'r>(
    f: &mut fmt::Formatter<'_>,
    blocks: impl Iterator<Item = &'r (u32, u32)> + Clone,
) -> fmt::Result {
    write!(f, "sack {} ", blocks.clone().count())?;
    for (left, right) in blocks {
        write!(f, "{{{left}:{right}}}")?;
    }
    Ok(())
}

/// An iterator over the options of a TCP header.
///
/// It yields each option in order (including NOPs), stops after
/// [`TcpOption::EndOfList`], and yields one `Err` and then stops at a
/// malformed option (see [`TcpOption::parse`]).
#[derive(Debug, Clone)]
pub struct TcpOptionsIter<'a> {
    data: &'a [u8],
    done: bool,
}

impl<'a> TcpOptionsIter<'a> {
    /// Iterates over the option bytes `data` (the header after its first 20
    /// bytes).
    pub const fn new(data: &'a [u8]) -> TcpOptionsIter<'a> {
        TcpOptionsIter { data, done: false }
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.data.is_empty() {
            return None;
        }
        match TcpOption::parse(self.data) {
            Ok((rest, option)) => {
                self.data = rest;
                if option == TcpOption::EndOfList {
                    self.done = true;
                }
                Some(Ok(option))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for TcpOptionsIter<'_> {}
