//! IPv4 options (RFC 791 § 3.1), as Linux's `ip_options_compile` reads them.

use core::fmt;

use crate::{Error, Result};

/// Option kinds ("type" octets: copied flag, class and number), from
/// RFC 791 § 3.1 and the IANA "IP Option Numbers" registry.
pub mod kind {
    /// End of Option List (RFC 791).
    pub const END_OF_LIST: u8 = 0;
    /// No Operation (RFC 791).
    pub const NO_OPERATION: u8 = 1;
    /// Record Route (RFC 791).
    pub const RECORD_ROUTE: u8 = 7;
    /// Internet Timestamp (RFC 791).
    pub const TIMESTAMP: u8 = 68;
    /// Loose Source and Record Route (RFC 791).
    pub const LOOSE_SOURCE_ROUTE: u8 = 131;
    /// Strict Source and Record Route (RFC 791).
    pub const STRICT_SOURCE_ROUTE: u8 = 137;
    /// Router Alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
}

/// One IPv4 option, borrowing its data from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv4Option<'a> {
    /// End of Option List: the rest of the option space is padding.
    EndOfList,
    /// No Operation, a one-byte filler.
    NoOperation,
    /// Record Route (RFC 791 § 3.1): `pointer` (at least 4) is the 1-based
    /// offset of the next free slot; `route_data` the address slots.
    RecordRoute {
        /// The pointer octet.
        pointer: u8,
        /// The route data after the pointer.
        route_data: &'a [u8],
    },
    /// Internet Timestamp (RFC 791 § 3.1).
    Timestamp {
        /// The pointer octet (at least 5).
        pointer: u8,
        /// The overflow count (high nibble of the fourth octet).
        overflow: u8,
        /// The flag (low nibble of the fourth octet): 0 timestamps only,
        /// 1 address and timestamp, 3 prespecified addresses.
        flags: u8,
        /// The timestamp data after the fourth octet.
        data: &'a [u8],
    },
    /// Loose Source and Record Route (RFC 791 § 3.1).
    LooseSourceRoute {
        /// The pointer octet (at least 4).
        pointer: u8,
        /// The route data after the pointer.
        route_data: &'a [u8],
    },
    /// Strict Source and Record Route (RFC 791 § 3.1).
    StrictSourceRoute {
        /// The pointer octet (at least 4).
        pointer: u8,
        /// The route data after the pointer.
        route_data: &'a [u8],
    },
    /// Router Alert (RFC 2113 § 2.1) with its 16-bit value (0: "router shall
    /// examine packet").
    RouterAlert(u16),
    /// Any other option with a length octet, skipped by its length.
    Unknown {
        /// The type octet (never 0 or 1 when it comes from a parser).
        kind: u8,
        /// The bytes after the length octet.
        data: &'a [u8],
    },
}

impl<'a> Ipv4Option<'a> {
    /// Parses the option at the start of `buffer` and returns the bytes after
    /// it with the option.
    ///
    /// An empty buffer is [`Error::Truncated`]. A multi-byte option without
    /// a length octet, with a length below 2, or with a length that runs past
    /// the end is [`Error::Malformed`]; so is a Record Route or source route
    /// shorter than 3 bytes or with a pointer below 4, a Timestamp shorter
    /// than 4 bytes or with a pointer below 5, and a Router Alert whose
    /// length is not 4.
    pub fn parse(buffer: &'a [u8]) -> Result<(&'a [u8], Ipv4Option<'a>)> {
        let (&kind, rest) = buffer.split_first().ok_or(Error::Truncated)?;
        match kind {
            kind::END_OF_LIST => return Ok((rest, Ipv4Option::EndOfList)),
            kind::NO_OPERATION => return Ok((rest, Ipv4Option::NoOperation)),
            _ => {}
        }
        let len = usize::from(*rest.first().ok_or(Error::Malformed)?);
        if len < 2 || len > buffer.len() {
            return Err(Error::Malformed);
        }
        let data = &buffer[2..len];
        let rest = &buffer[len..];
        let route = |data: &'a [u8]| -> Result<(u8, &'a [u8])> {
            match data.split_first() {
                Some((&pointer, route_data)) if pointer >= 4 => Ok((pointer, route_data)),
                _ => Err(Error::Malformed),
            }
        };
        let option = match kind {
            kind::RECORD_ROUTE => {
                let (pointer, route_data) = route(data)?;
                Ipv4Option::RecordRoute {
                    pointer,
                    route_data,
                }
            }
            kind::LOOSE_SOURCE_ROUTE => {
                let (pointer, route_data) = route(data)?;
                Ipv4Option::LooseSourceRoute {
                    pointer,
                    route_data,
                }
            }
            kind::STRICT_SOURCE_ROUTE => {
                let (pointer, route_data) = route(data)?;
                Ipv4Option::StrictSourceRoute {
                    pointer,
                    route_data,
                }
            }
            kind::TIMESTAMP => match data {
                [pointer, oflw_flg, data @ ..] if *pointer >= 5 => Ipv4Option::Timestamp {
                    pointer: *pointer,
                    overflow: oflw_flg >> 4,
                    flags: oflw_flg & 0x0f,
                    data,
                },
                _ => return Err(Error::Malformed),
            },
            kind::ROUTER_ALERT => match data {
                [hi, lo] => Ipv4Option::RouterAlert(u16::from_be_bytes([*hi, *lo])),
                _ => return Err(Error::Malformed),
            },
            _ => Ipv4Option::Unknown { kind, data },
        };
        Ok((rest, option))
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Ipv4Option::EndOfList | Ipv4Option::NoOperation => 1,
            Ipv4Option::RecordRoute { route_data, .. }
            | Ipv4Option::LooseSourceRoute { route_data, .. }
            | Ipv4Option::StrictSourceRoute { route_data, .. } => 3 + route_data.len(),
            Ipv4Option::Timestamp { data, .. } => 4 + data.len(),
            Ipv4Option::RouterAlert(_) => 4,
            Ipv4Option::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buffer`, which must hold
    /// [`buffer_len`](Self::buffer_len) bytes (at most 255), and returns the
    /// bytes after it.
    pub fn emit<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        let len = self.buffer_len();
        let (out, rest) = buffer.split_at_mut(len);
        match *self {
            Ipv4Option::EndOfList => out[0] = kind::END_OF_LIST,
            Ipv4Option::NoOperation => out[0] = kind::NO_OPERATION,
            Ipv4Option::RecordRoute {
                pointer,
                route_data,
            } => emit_route(out, kind::RECORD_ROUTE, pointer, route_data),
            Ipv4Option::LooseSourceRoute {
                pointer,
                route_data,
            } => emit_route(out, kind::LOOSE_SOURCE_ROUTE, pointer, route_data),
            Ipv4Option::StrictSourceRoute {
                pointer,
                route_data,
            } => emit_route(out, kind::STRICT_SOURCE_ROUTE, pointer, route_data),
            Ipv4Option::Timestamp {
                pointer,
                overflow,
                flags,
                data,
            } => {
                out[0] = kind::TIMESTAMP;
                out[1] = len as u8;
                out[2] = pointer;
                out[3] = (overflow << 4) | (flags & 0x0f);
                out[4..].copy_from_slice(data);
            }
            Ipv4Option::RouterAlert(value) => {
                out[0] = kind::ROUTER_ALERT;
                out[1] = 4;
                out[2..4].copy_from_slice(&value.to_be_bytes());
            }
            Ipv4Option::Unknown { kind, data } => {
                out[0] = kind;
                out[1] = len as u8;
                out[2..].copy_from_slice(data);
            }
        }
        rest
    }
}

fn emit_route(out: &mut [u8], kind: u8, pointer: u8, route_data: &[u8]) {
    out[0] = kind;
    out[1] = out.len() as u8;
    out[2] = pointer;
    out[3..].copy_from_slice(route_data);
}

impl fmt::Display for Ipv4Option<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ipv4Option::EndOfList => f.write_str("EOL"),
            Ipv4Option::NoOperation => f.write_str("NOP"),
            Ipv4Option::RecordRoute { route_data, .. } => {
                write!(f, "RR ({} bytes)", route_data.len())
            }
            Ipv4Option::Timestamp { data, .. } => write!(f, "TS ({} bytes)", data.len()),
            Ipv4Option::LooseSourceRoute { route_data, .. } => {
                write!(f, "LSRR ({} bytes)", route_data.len())
            }
            Ipv4Option::StrictSourceRoute { route_data, .. } => {
                write!(f, "SSRR ({} bytes)", route_data.len())
            }
            Ipv4Option::RouterAlert(v) => write!(f, "RA value {v}"),
            Ipv4Option::Unknown { kind, data } => {
                write!(f, "unknown {kind} ({} bytes)", data.len())
            }
        }
    }
}

/// An iterator over the options in an option area.
///
/// It yields each option in order, stops after [`Ipv4Option::EndOfList`]
/// (what follows is padding), and yields one `Err` and then stops at a
/// malformed option.
#[derive(Debug, Clone)]
pub struct Ipv4OptionsIter<'a> {
    data: &'a [u8],
    done: bool,
}

impl<'a> Ipv4OptionsIter<'a> {
    /// Iterates over the options in `data` (the bytes after the fixed
    /// header).
    pub const fn new(data: &'a [u8]) -> Ipv4OptionsIter<'a> {
        Ipv4OptionsIter { data, done: false }
    }
}

impl<'a> Iterator for Ipv4OptionsIter<'a> {
    type Item = Result<Ipv4Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.data.is_empty() {
            return None;
        }
        match Ipv4Option::parse(self.data) {
            Ok((rest, option)) => {
                self.data = rest;
                if option == Ipv4Option::EndOfList {
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

impl core::iter::FusedIterator for Ipv4OptionsIter<'_> {}

/// The options of an IPv4 header, held inline (no allocation).
///
/// At most [`Ipv4Options::MAX_LEN`] bytes, always a multiple of 4 (shorter
/// input is padded with End-of-List bytes, RFC 791 § 3.1 "Padding"), and
/// always well formed: every constructor checks the options.
#[derive(Clone, Copy)]
pub struct Ipv4Options {
    bytes: [u8; Ipv4Options::MAX_LEN],
    len: u8,
}

impl Ipv4Options {
    /// The most option bytes an IPv4 header holds (IHL 15 → 60 − 20).
    pub const MAX_LEN: usize = 40;

    /// No options.
    pub const fn new() -> Ipv4Options {
        Ipv4Options {
            bytes: [0; Ipv4Options::MAX_LEN],
            len: 0,
        }
    }

    /// Takes raw option bytes, as found after the fixed header.
    ///
    /// More than 40 bytes, or an option that does not parse
    /// ([`Ipv4Option::parse`]), is [`Error::Malformed`]. The bytes are kept
    /// as given, padded with zeros to a multiple of 4.
    pub fn from_bytes(data: &[u8]) -> Result<Ipv4Options> {
        if data.len() > Self::MAX_LEN {
            return Err(Error::Malformed);
        }
        for option in Ipv4OptionsIter::new(data) {
            option.map_err(|_| Error::Malformed)?;
        }
        let mut options = Ipv4Options::new();
        options.bytes[..data.len()].copy_from_slice(data);
        options.len = data.len().next_multiple_of(4) as u8;
        Ok(options)
    }

    /// Lays out `options` in order, then pads to a multiple of 4.
    ///
    /// More than 40 bytes is [`Error::Malformed`], and so is a list whose
    /// bytes would not parse back (for example a pointer below 4).
    pub fn from_options(options: &[Ipv4Option<'_>]) -> Result<Ipv4Options> {
        let total: usize = options.iter().map(Ipv4Option::buffer_len).sum();
        if total > Self::MAX_LEN {
            return Err(Error::Malformed);
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        let mut rest = &mut bytes[..];
        for option in options {
            rest = option.emit(rest);
        }
        Self::from_bytes(&bytes[..total])
    }

    /// The option bytes, padded to a multiple of 4.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The length in bytes, a multiple of 4.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no options.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An iterator over the parsed options (padding shows up as
    /// [`Ipv4Option::EndOfList`]).
    pub fn iter(&self) -> Ipv4OptionsIter<'_> {
        Ipv4OptionsIter::new(self.as_bytes())
    }
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Ipv4Options::new()
    }
}

impl PartialEq for Ipv4Options {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Ipv4Options {}

impl core::hash::Hash for Ipv4Options {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Ipv4Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ipv4Options")
            .field(&self.as_bytes())
            .finish()
    }
}

impl<'a> IntoIterator for &'a Ipv4Options {
    type Item = Result<Ipv4Option<'a>>;
    type IntoIter = Ipv4OptionsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
