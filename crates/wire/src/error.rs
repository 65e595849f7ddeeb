//! The one error type of the wire layer.
//!
//! Every parser in this crate reports a malformed input with one of these
//! variants and never panics. The variants are coarse on purpose: the stack
//! above turns each into a drop counter (as Linux counts `InHdrErrors`,
//! `InCsumErrors`, `InTruncatedPkts`, ...), and a finer split would not change
//! what it does with the packet.

use core::fmt;

/// What went wrong while parsing or validating a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field in the
    /// header says it is.
    Truncated,
    /// A field holds a value that the format forbids (a version other than 4,
    /// a header length below its minimum, an option whose length runs past
    /// the end, ...).
    Malformed,
    /// The checksum does not verify.
    Checksum,
    /// The packet is well formed but of a kind this crate does not handle
    /// (for example an ARP packet for a hardware type other than Ethernet).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "checksum error",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

/// The result type of every fallible function in this crate.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(Error::Truncated.to_string(), "truncated packet");
        assert_eq!(Error::Malformed.to_string(), "malformed packet");
        assert_eq!(Error::Checksum.to_string(), "checksum error");
        assert_eq!(Error::Unsupported.to_string(), "unsupported packet");
        let e: Box<dyn std::error::Error> = Box::new(Error::Checksum);
        assert_eq!(e.to_string(), "checksum error");
    }
}
