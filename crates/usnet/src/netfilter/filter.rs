//! The `filter` table (Linux's `iptable_filter.c` over `ip_tables.c`'s `ipt_do_table`): the
//! built-in chains INPUT, FORWARD and OUTPUT, their rules and policies, per-rule and policy
//! counters, and the listings of `iptables -L -v -n` and `iptables -S`.
//!
//! # Rules
//!
//! A [`Rule`] is what one `iptables -A` line describes: the `struct ipt_ip` part (source and
//! destination prefix, input and output interface, protocol, each optionally negated with
//! `!`), optionally the `tcp` / `udp` match (`--sport`, `--dport`), and a [`Target`]. Build
//! one with [`Rule::builder`] (validated like iptables and the kernel's `checkentry` do) or
//! parse one with [`parse_command`](super::parse_command).
//!
//! # Traversal (`ipt_do_table`)
//!
//! The rules of the hook's chain are tried in order; the first that matches counts the
//! packet (one packet, `len` bytes) and its target decides: ACCEPT, DROP and REJECT end the
//! traversal, RETURN in a built-in chain falls to the policy. When no rule decides, the
//! chain's policy (ACCEPT or DROP) does, and is counted in the policy counters.
//!
//! # Matching details, as Linux
//!
//! * Addresses compare under the prefix mask; interfaces compare exactly, or as a prefix
//!   when the name ends in `+` (`eth+`). A missing device (no input device on OUTPUT)
//!   compares as the empty name, so `-i eth0` does not match it and `! -i eth0` does.
//! * Port matches (`tcp_mt`, `udp_mt`) never match a non-first fragment. A TCP fragment at
//!   offset 1 (8 bytes), or a first fragment too short to hold the TCP header (20 bytes) or
//!   UDP header (8 bytes), is *hot-dropped* when a port rule looks at it: the verdict is
//!   DROP at once, no counter moves.
//! * A packet whose IPv4 header cannot be read (shorter than 20 bytes, IHL below 5 or past
//!   the bytes given, version not 4) — `ip_rcv` has refused such packets before any hook in
//!   Linux, so this only happens through a caller's bug or a raw socket — matches only the
//!   rules that do not look at the header: a rule with an address, protocol or port match
//!   (negated or not) does not match it; interface-only rules and rules without matches
//!   do. It is counted and decided like any other packet; nothing panics.
//!
//! # Concurrency
//!
//! [`FilterTable::do_chain`] runs concurrently on every packet path. Each chain's rule count
//! and policy are atomics: a chain without rules is decided without a lock. Otherwise the
//! rules are read under a shared `RwLock` (edits, which are rare, take it exclusively);
//! counters are atomics updated with relaxed ordering, so a listing taken while packets flow
//! may see a packet counted and its bytes not yet.

use std::fmt::{self, Write as _};
use std::io;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::parse::ParseError;
use super::{NfHook, NfPacket, RejectWith, Verdict};

/// `IPPROTO_TCP`.
pub(crate) const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub(crate) const IPPROTO_UDP: u8 = 17;

/// `IFNAMSIZ`: interface names are shorter than this.
const IFNAMSIZ: usize = 16;

/// libxtables' `xtables_chain_protos`: the protocol names iptables prints with `-n`
/// (first entry wins for a number) and accepts besides numbers.
const CHAIN_PROTOS: [(&str, u8); 12] = [
    ("tcp", 6),
    ("sctp", 132),
    ("udp", 17),
    ("udplite", 136),
    ("icmp", 1),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-mh", 135),
    ("mh", 135),
    ("all", 0),
];

/// The name iptables prints for a protocol number, if it has one.
pub(crate) fn proto_name(proto: u8) -> Option<&'static str> {
    CHAIN_PROTOS
        .iter()
        .find(|(_, n)| *n == proto)
        .map(|(name, _)| *name)
}

/// A protocol by name (`tcp`, `all`, ... and the common `/etc/protocols` names `igmp`
/// and `gre`), case-insensitive.
pub(crate) fn proto_by_name(name: &str) -> Option<u8> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "igmp" => return Some(2),
        "gre" => return Some(47),
        _ => {}
    }
    CHAIN_PROTOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}

/// The netmask of a prefix length (0..=32).
fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// A built-in chain of the filter table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chain {
    /// `INPUT`, on LOCAL_IN: packets for this host.
    Input,
    /// `FORWARD`, on FORWARD: packets routed through this host.
    Forward,
    /// `OUTPUT`, on LOCAL_OUT: packets this host sends.
    Output,
}

impl Chain {
    /// The chains in the order iptables lists them.
    pub const ALL: [Chain; 3] = [Chain::Input, Chain::Forward, Chain::Output];

    /// The chain's name (`INPUT`, `FORWARD`, `OUTPUT`).
    pub fn name(self) -> &'static str {
        match self {
            Chain::Input => "INPUT",
            Chain::Forward => "FORWARD",
            Chain::Output => "OUTPUT",
        }
    }

    /// The hook point the chain hangs on.
    pub fn hook(self) -> NfHook {
        match self {
            Chain::Input => NfHook::LocalIn,
            Chain::Forward => NfHook::Forward,
            Chain::Output => NfHook::LocalOut,
        }
    }

    /// The filter chain on a hook point, if the filter table has one there.
    pub fn for_hook(hook: NfHook) -> Option<Chain> {
        match hook {
            NfHook::LocalIn => Some(Chain::Input),
            NfHook::Forward => Some(Chain::Forward),
            NfHook::LocalOut => Some(Chain::Output),
            NfHook::PreRouting | NfHook::PostRouting => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Chain::Input => 0,
            Chain::Forward => 1,
            Chain::Output => 2,
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Chain {
    type Err = ParseError;

    /// `INPUT`, `FORWARD` or `OUTPUT` (case-sensitive, as iptables).
    fn from_str(s: &str) -> Result<Chain, ParseError> {
        Chain::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| ParseError::UnknownChain(s.to_string()))
    }
}

/// What a matching rule does (`-j`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `ACCEPT`: let the packet through this table.
    Accept,
    /// `DROP`: discard it.
    Drop,
    /// `REJECT`: discard it and answer (`--reject-with`, default `icmp-port-unreachable`).
    Reject(RejectWith),
    /// `RETURN`: leave the chain; in a built-in chain the policy decides.
    Return,
}

impl Target {
    /// The name iptables shows (`ACCEPT`, `DROP`, `REJECT`, `RETURN`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Reject(_) => "REJECT",
            Target::Return => "RETURN",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a rule cannot be built (what iptables or the kernel's `checkentry` refuse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// A prefix length above 32.
    InvalidPrefix(u8),
    /// `! -p all`: iptables' "rule would never match protocol".
    NeverMatchesProtocol,
    /// A port match without `-p tcp` or `-p udp` (or with `! -p`): the kernel's "tcp match:
    /// only valid for protocol 6".
    PortsNeedTcpOrUdp,
    /// A port range whose first port is above its last.
    InvalidPortRange(u16, u16),
    /// An empty interface name.
    EmptyInterface,
    /// An interface name of `IFNAMSIZ` (16) bytes or more.
    InterfaceTooLong(String),
    /// An interface name with a character the kernel refuses (`/`, a space).
    InterfaceBadChar(String),
    /// No target (`-j`) was given.
    NoTarget,
    /// `REJECT --reject-with tcp-reset` on a rule that does not match `-p tcp`.
    TcpResetNeedsTcp,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::InvalidPrefix(p) => write!(f, "invalid mask `{p}' specified"),
            RuleError::NeverMatchesProtocol => f.write_str("rule would never match protocol"),
            RuleError::PortsNeedTcpOrUdp => f.write_str(
                "port matches (--sport, --dport) are only valid with -p tcp or -p udp (not negated)",
            ),
            RuleError::InvalidPortRange(lo, hi) => {
                write!(f, "invalid portrange (min > max): {lo}:{hi}")
            }
            RuleError::EmptyInterface => f.write_str("Empty interface is likely to be undesired"),
            RuleError::InterfaceTooLong(name) => write!(
                f,
                "interface name `{name}' must be shorter than IFNAMSIZ ({})",
                IFNAMSIZ - 1
            ),
            RuleError::InterfaceBadChar(name) => write!(
                f,
                "invalid interface name `{name}' ('/' and ' ' are not allowed by the kernel)"
            ),
            RuleError::NoTarget => {
                f.write_str("no target given (-j ACCEPT, DROP, REJECT or RETURN)")
            }
            RuleError::TcpResetNeedsTcp => {
                f.write_str("--reject-with tcp-reset is only valid with -p tcp (not negated)")
            }
        }
    }
}

impl std::error::Error for RuleError {}

/// An interface match: a name, or a prefix when it ends in `+` (kept as given).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Iface(String);

impl Iface {
    fn parse(name: &str) -> Result<Iface, RuleError> {
        if name.is_empty() {
            return Err(RuleError::EmptyInterface);
        }
        if name.len() >= IFNAMSIZ {
            return Err(RuleError::InterfaceTooLong(name.to_string()));
        }
        if name.contains(['/', ' ']) {
            return Err(RuleError::InterfaceBadChar(name.to_string()));
        }
        Ok(Iface(name.to_string()))
    }

    /// `ifname_compare_aligned` under the mask iptables builds: all of the name and its
    /// terminator, or only the part before a trailing `+`.
    fn matches(&self, dev: &str) -> bool {
        match self.0.strip_suffix('+') {
            Some(prefix) => dev.starts_with(prefix),
            None => dev == self.0,
        }
    }
}

/// The `tcp` / `udp` match: port ranges, each optionally negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct L4Match {
    proto: u8,
    sport: (u16, u16),
    sport_neg: bool,
    dport: (u16, u16),
    dport_neg: bool,
}

const ALL_PORTS: (u16, u16) = (0, u16::MAX);

/// The match part and target of a rule; what `-D rule-spec` compares.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RuleSpec {
    /// Source (address already masked, prefix).
    src: Option<(u32, u8)>,
    src_neg: bool,
    dst: Option<(u32, u8)>,
    dst_neg: bool,
    in_iface: Option<Iface>,
    in_neg: bool,
    out_iface: Option<Iface>,
    out_neg: bool,
    /// `None` is `all` (protocol 0).
    proto: Option<u8>,
    proto_neg: bool,
    l4: Option<L4Match>,
    target: Target,
}

/// One rule of a chain: matches, a target, and its packet and byte counters.
///
/// Build with [`Rule::builder`]. Two rules compare equal when their matches and targets do
/// (counters are ignored), which is how `iptables -D CHAIN rule-spec` finds its rule. The
/// `Display` form is the rule-spec of `iptables -S` (`-s 10.0.0.0/8 -p tcp -m tcp --dport
/// 80 -j ACCEPT`).
#[derive(Debug)]
pub struct Rule {
    spec: RuleSpec,
    pkts: AtomicU64,
    bytes: AtomicU64,
}

impl Clone for Rule {
    /// A copy of the rule with a snapshot of its counters.
    fn clone(&self) -> Rule {
        Rule {
            spec: self.spec.clone(),
            pkts: AtomicU64::new(self.pkts.load(Ordering::Relaxed)),
            bytes: AtomicU64::new(self.bytes.load(Ordering::Relaxed)),
        }
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.spec == other.spec
    }
}

impl Eq for Rule {}

/// The outcome of one rule on one packet.
enum Match {
    Yes,
    No,
    /// `par->hotdrop`: drop the packet now.
    HotDrop,
}

/// The IPv4 header fields the filter looks at.
struct IpHdr {
    src: u32,
    dst: u32,
    proto: u8,
    /// Fragment offset in 8-byte units (`frag_off & IP_OFFSET`).
    fragoff: u16,
    /// Where the transport header starts (`ip_hdrlen`).
    thoff: usize,
}

impl IpHdr {
    /// The header, if it can be read from `data`.
    fn parse(data: &[u8]) -> Option<IpHdr> {
        let b0 = *data.first()?;
        let ihl = usize::from(b0 & 0x0f) * 4;
        if b0 >> 4 != 4 || ihl < 20 || data.len() < ihl {
            return None;
        }
        let word = |at: usize| -> Option<u32> {
            let b = data.get(at..at + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let frag = data.get(6..8)?;
        Some(IpHdr {
            src: word(12)?,
            dst: word(16)?,
            proto: *data.get(9)?,
            fragoff: u16::from_be_bytes([frag[0], frag[1]]) & 0x1fff,
            thoff: ihl,
        })
    }
}

impl Rule {
    /// Start building a rule.
    pub fn builder() -> RuleBuilder {
        RuleBuilder::default()
    }

    /// The source match: (network address, prefix length), or `None` for any.
    pub fn src(&self) -> Option<(Ipv4Addr, u8)> {
        self.spec.src.map(|(a, p)| (Ipv4Addr::from(a), p))
    }

    /// Whether the source match is negated (`! -s`).
    pub fn src_neg(&self) -> bool {
        self.spec.src_neg
    }

    /// The destination match: (network address, prefix length), or `None` for any.
    pub fn dst(&self) -> Option<(Ipv4Addr, u8)> {
        self.spec.dst.map(|(a, p)| (Ipv4Addr::from(a), p))
    }

    /// Whether the destination match is negated (`! -d`).
    pub fn dst_neg(&self) -> bool {
        self.spec.dst_neg
    }

    /// The protocol match, or `None` for `all`.
    pub fn proto(&self) -> Option<u8> {
        self.spec.proto
    }

    /// Whether the protocol match is negated (`! -p`).
    pub fn proto_neg(&self) -> bool {
        self.spec.proto_neg
    }

    /// The source port range, or `None` when the rule has no source port match.
    pub fn sport(&self) -> Option<(u16, u16)> {
        self.spec
            .l4
            .filter(|l4| l4.sport != ALL_PORTS || l4.sport_neg)
            .map(|l4| l4.sport)
    }

    /// Whether the source port match is negated (`! --sport`).
    pub fn sport_neg(&self) -> bool {
        self.spec.l4.is_some_and(|l4| l4.sport_neg)
    }

    /// The destination port range, or `None` when the rule has no destination port match.
    pub fn dport(&self) -> Option<(u16, u16)> {
        self.spec
            .l4
            .filter(|l4| l4.dport != ALL_PORTS || l4.dport_neg)
            .map(|l4| l4.dport)
    }

    /// Whether the destination port match is negated (`! --dport`).
    pub fn dport_neg(&self) -> bool {
        self.spec.l4.is_some_and(|l4| l4.dport_neg)
    }

    /// The input interface (a trailing `+` is a prefix wildcard), or `None` for any.
    pub fn in_iface(&self) -> Option<&str> {
        self.spec.in_iface.as_ref().map(|i| i.0.as_str())
    }

    /// Whether the input interface match is negated (`! -i`).
    pub fn in_neg(&self) -> bool {
        self.spec.in_neg
    }

    /// The output interface (a trailing `+` is a prefix wildcard), or `None` for any.
    pub fn out_iface(&self) -> Option<&str> {
        self.spec.out_iface.as_ref().map(|i| i.0.as_str())
    }

    /// Whether the output interface match is negated (`! -o`).
    pub fn out_neg(&self) -> bool {
        self.spec.out_neg
    }

    /// The target.
    pub fn target(&self) -> Target {
        self.spec.target
    }

    /// The rule's counters: (packets, bytes) it matched.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.pkts.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    fn count(&self, len: usize) {
        self.pkts.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn zero(&self) {
        self.pkts.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
    }

    /// `ip_packet_match` and then the rule's `tcp` / `udp` match.
    fn matches(&self, hdr: Option<&IpHdr>, pkt: &NfPacket<'_>) -> Match {
        let s = &self.spec;
        let net_ok = |net: Option<(u32, u8)>, neg: bool, addr: Option<u32>| match net {
            None => true,
            Some((want, prefix)) => match addr {
                None => false,
                Some(a) => ((a & prefix_mask(prefix)) == want) != neg,
            },
        };
        if !net_ok(s.src, s.src_neg, hdr.map(|h| h.src))
            || !net_ok(s.dst, s.dst_neg, hdr.map(|h| h.dst))
        {
            return Match::No;
        }
        if let Some(iface) = &s.in_iface {
            if iface.matches(pkt.in_dev.unwrap_or("")) == s.in_neg {
                return Match::No;
            }
        }
        if let Some(iface) = &s.out_iface {
            if iface.matches(pkt.out_dev.unwrap_or("")) == s.out_neg {
                return Match::No;
            }
        }
        if let Some(proto) = s.proto {
            match hdr {
                Some(h) if (h.proto == proto) != s.proto_neg => {}
                _ => return Match::No,
            }
        }
        let Some(l4) = &s.l4 else {
            return Match::Yes;
        };
        let Some(h) = hdr else {
            return Match::No;
        };
        if h.fragoff != 0 {
            // tcp_mt: a TCP fragment at offset 1 (8 bytes) can only be an attempt to
            // overwrite the flags of the first fragment; drop it outright.
            if l4.proto == IPPROTO_TCP && h.fragoff == 1 {
                return Match::HotDrop;
            }
            return Match::No;
        }
        let hdr_len = if l4.proto == IPPROTO_TCP { 20 } else { 8 };
        let ports = pkt.data.get(h.thoff..h.thoff.saturating_add(4));
        let (Some(p), true) = (ports, pkt.len >= h.thoff.saturating_add(hdr_len)) else {
            // The match must read a header the packet does not have: like tcp_mt and
            // udp_mt, drop rather than guess.
            return Match::HotDrop;
        };
        let sport = u16::from_be_bytes([p[0], p[1]]);
        let dport = u16::from_be_bytes([p[2], p[3]]);
        let in_range =
            |(lo, hi): (u16, u16), port: u16, neg: bool| (lo..=hi).contains(&port) != neg;
        if in_range(l4.sport, sport, l4.sport_neg) && in_range(l4.dport, dport, l4.dport_neg) {
            Match::Yes
        } else {
            Match::No
        }
    }
}

/// Push `-s`/`-d` of the save form.
fn save_net(out: &mut String, letter: char, net: Option<(u32, u8)>, neg: bool) {
    if let Some((a, p)) = net {
        let inv = if neg { " !" } else { "" };
        let _ = write!(out, "{inv} -{letter} {}/{p}", Ipv4Addr::from(a));
    }
}

impl fmt::Display for Rule {
    /// The rule-spec as `iptables -S` prints it after `-A CHAIN` (`save_ipv4_addr`,
    /// `save_rule_details`, the matches' and target's `save`), without the leading space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        let mut out = String::new();
        save_net(&mut out, 's', s.src, s.src_neg);
        save_net(&mut out, 'd', s.dst, s.dst_neg);
        for (letter, iface, neg) in [('i', &s.in_iface, s.in_neg), ('o', &s.out_iface, s.out_neg)] {
            if let Some(iface) = iface {
                let inv = if neg { " !" } else { "" };
                let _ = write!(out, "{inv} -{letter} {}", iface.0);
            }
        }
        if let Some(p) = s.proto {
            let inv = if s.proto_neg { " !" } else { "" };
            match proto_name(p) {
                Some(name) => {
                    let _ = write!(out, "{inv} -p {name}");
                }
                None => {
                    let _ = write!(out, "{inv} -p {p}");
                }
            }
        }
        if let Some(l4) = &s.l4 {
            let name = if l4.proto == IPPROTO_TCP {
                "tcp"
            } else {
                "udp"
            };
            let _ = write!(out, " -m {name}");
            for (opt, range, neg) in [
                ("sport", l4.sport, l4.sport_neg),
                ("dport", l4.dport, l4.dport_neg),
            ] {
                // tcp_save / udp_save: a full range is not saved, even when negated.
                if range == ALL_PORTS {
                    continue;
                }
                let inv = if neg { " !" } else { "" };
                if range.0 == range.1 {
                    let _ = write!(out, "{inv} --{opt} {}", range.0);
                } else {
                    let _ = write!(out, "{inv} --{opt} {}:{}", range.0, range.1);
                }
            }
        }
        let _ = write!(out, " -j {}", s.target);
        if let Target::Reject(with) = s.target {
            let _ = write!(out, " --reject-with {}", with.name());
        }
        f.write_str(out.trim_start())
    }
}

/// Builds a [`Rule`], checking it as iptables and the kernel's `checkentry` would.
///
/// ```
/// use std::net::Ipv4Addr;
/// use usnet::netfilter::{RejectWith, Rule, Target};
///
/// let rule = Rule::builder()
///     .src(Ipv4Addr::new(10, 1, 2, 3), 8) // stored as 10.0.0.0/8, as iptables does
///     .proto(6)
///     .dport(80, 80)
///     .target(Target::Reject(RejectWith::TcpReset))
///     .build()
///     .unwrap();
/// assert_eq!(rule.to_string(), "-s 10.0.0.0/8 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset");
/// // tcp-reset needs -p tcp:
/// assert!(Rule::builder().target(Target::Reject(RejectWith::TcpReset)).build().is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct RuleBuilder {
    src: Option<(Ipv4Addr, u8, bool)>,
    dst: Option<(Ipv4Addr, u8, bool)>,
    proto: Option<(u8, bool)>,
    sport: Option<(u16, u16, bool)>,
    dport: Option<(u16, u16, bool)>,
    l4: bool,
    in_iface: Option<(String, bool)>,
    out_iface: Option<(String, bool)>,
    target: Option<Target>,
}

impl RuleBuilder {
    /// Match a source prefix (`-s addr/prefix`). Host bits of `addr` are cleared.
    pub fn src(mut self, addr: Ipv4Addr, prefix: u8) -> Self {
        self.src = Some((addr, prefix, false));
        self
    }

    /// Match a source outside a prefix (`! -s addr/prefix`).
    pub fn src_not(mut self, addr: Ipv4Addr, prefix: u8) -> Self {
        self.src = Some((addr, prefix, true));
        self
    }

    /// Match a destination prefix (`-d addr/prefix`). Host bits of `addr` are cleared.
    pub fn dst(mut self, addr: Ipv4Addr, prefix: u8) -> Self {
        self.dst = Some((addr, prefix, false));
        self
    }

    /// Match a destination outside a prefix (`! -d addr/prefix`).
    pub fn dst_not(mut self, addr: Ipv4Addr, prefix: u8) -> Self {
        self.dst = Some((addr, prefix, true));
        self
    }

    /// Match an IP protocol number (`-p`); 0 is `all`.
    pub fn proto(mut self, proto: u8) -> Self {
        self.proto = Some((proto, false));
        self
    }

    /// Match any protocol but this one (`! -p`).
    pub fn proto_not(mut self, proto: u8) -> Self {
        self.proto = Some((proto, true));
        self
    }

    /// Match a source port range, inclusive (`--sport lo:hi`); needs `-p tcp` or `udp`.
    pub fn sport(mut self, lo: u16, hi: u16) -> Self {
        self.sport = Some((lo, hi, false));
        self
    }

    /// Match a source port outside a range (`! --sport lo:hi`).
    pub fn sport_not(mut self, lo: u16, hi: u16) -> Self {
        self.sport = Some((lo, hi, true));
        self
    }

    /// Match a destination port range, inclusive (`--dport lo:hi`); needs `-p tcp` or
    /// `udp`.
    pub fn dport(mut self, lo: u16, hi: u16) -> Self {
        self.dport = Some((lo, hi, false));
        self
    }

    /// Match a destination port outside a range (`! --dport lo:hi`).
    pub fn dport_not(mut self, lo: u16, hi: u16) -> Self {
        self.dport = Some((lo, hi, true));
        self
    }

    /// Load the `tcp` / `udp` match even without port options (`-m tcp`): the rule then
    /// no longer matches non-first fragments, and it shows `tcp` in listings.
    pub fn l4_match(mut self) -> Self {
        self.l4 = true;
        self
    }

    /// Match the input interface (`-i eth0`; `-i eth+` for every name starting `eth`).
    pub fn in_iface(mut self, name: &str) -> Self {
        self.in_iface = Some((name.to_string(), false));
        self
    }

    /// Match any input interface but this one (`! -i`).
    pub fn in_iface_not(mut self, name: &str) -> Self {
        self.in_iface = Some((name.to_string(), true));
        self
    }

    /// Match the output interface (`-o eth0`, `-o eth+`).
    pub fn out_iface(mut self, name: &str) -> Self {
        self.out_iface = Some((name.to_string(), false));
        self
    }

    /// Match any output interface but this one (`! -o`).
    pub fn out_iface_not(mut self, name: &str) -> Self {
        self.out_iface = Some((name.to_string(), true));
        self
    }

    /// Set the target (`-j`).
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Check and build the rule. Counters start at zero.
    pub fn build(self) -> Result<Rule, RuleError> {
        let net =
            |n: Option<(Ipv4Addr, u8, bool)>| -> Result<(Option<(u32, u8)>, bool), RuleError> {
                match n {
                    None => Ok((None, false)),
                    Some((_, prefix, _)) if prefix > 32 => Err(RuleError::InvalidPrefix(prefix)),
                    // 0.0.0.0/0 is what iptables stores when there is no -s at all.
                    Some((_, 0, false)) => Ok((None, false)),
                    Some((addr, prefix, neg)) => {
                        Ok((Some((u32::from(addr) & prefix_mask(prefix), prefix)), neg))
                    }
                }
            };
        let (src, src_neg) = net(self.src)?;
        let (dst, dst_neg) = net(self.dst)?;
        let (proto, proto_neg) = match self.proto {
            None | Some((0, false)) => (None, false),
            Some((0, true)) => return Err(RuleError::NeverMatchesProtocol),
            Some((p, neg)) => (Some(p), neg),
        };
        let l4 = if self.l4 || self.sport.is_some() || self.dport.is_some() {
            let l4_proto = match (proto, proto_neg) {
                (Some(p @ (IPPROTO_TCP | IPPROTO_UDP)), false) => p,
                _ => return Err(RuleError::PortsNeedTcpOrUdp),
            };
            let range = |r: Option<(u16, u16, bool)>| match r {
                None => Ok((ALL_PORTS, false)),
                Some((lo, hi, _)) if lo > hi => Err(RuleError::InvalidPortRange(lo, hi)),
                Some((lo, hi, neg)) => Ok(((lo, hi), neg)),
            };
            let (sport, sport_neg) = range(self.sport)?;
            let (dport, dport_neg) = range(self.dport)?;
            Some(L4Match {
                proto: l4_proto,
                sport,
                sport_neg,
                dport,
                dport_neg,
            })
        } else {
            None
        };
        let iface = |i: Option<(String, bool)>| -> Result<(Option<Iface>, bool), RuleError> {
            match i {
                None => Ok((None, false)),
                Some((name, neg)) => Ok((Some(Iface::parse(&name)?), neg)),
            }
        };
        let (in_iface, in_neg) = iface(self.in_iface)?;
        let (out_iface, out_neg) = iface(self.out_iface)?;
        let target = self.target.ok_or(RuleError::NoTarget)?;
        if target == Target::Reject(RejectWith::TcpReset)
            && (proto != Some(IPPROTO_TCP) || proto_neg)
        {
            return Err(RuleError::TcpResetNeedsTcp);
        }
        Ok(Rule {
            spec: RuleSpec {
                src,
                src_neg,
                dst,
                dst_neg,
                in_iface,
                in_neg,
                out_iface,
                out_neg,
                proto,
                proto_neg,
                l4,
                target,
            },
            pkts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }
}

/// How [`FilterTable::list_with`] lays out the listing: the flags of `iptables -L -n`.
/// Addresses, ports and protocols are always numeric (`-n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListFormat {
    /// `-v`: counters and interface columns, policy counters in the chain line.
    pub verbose: bool,
    /// `-x`: exact counters instead of K/M/G/T-abbreviated ones.
    pub exact: bool,
    /// `--line-numbers`: a `num` column.
    pub line_numbers: bool,
}

const POLICY_ACCEPT: u8 = 0;
const POLICY_DROP: u8 = 1;

/// The filter table: the chains INPUT, FORWARD and OUTPUT with their rules, policies and
/// counters. All methods take `&self`; see the [module docs](self) for the locking.
#[derive(Debug)]
pub struct FilterTable {
    /// Rules per chain (indexed by `Chain::index`). Rules are `Arc`s so that edits keep
    /// the counters of the rules they do not touch.
    rules: RwLock<[Vec<Arc<Rule>>; 3]>,
    /// Rules per chain, kept equal to `rules[i].len()` under the write lock: the
    /// lock-free "no rules" test of the packet path.
    nrules: [AtomicUsize; 3],
    policy: [AtomicU8; 3],
    policy_pkts: [AtomicU64; 3],
    policy_bytes: [AtomicU64; 3],
}

impl Default for FilterTable {
    fn default() -> Self {
        FilterTable::new()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl FilterTable {
    /// An empty table: no rules, every policy ACCEPT, counters zero.
    pub fn new() -> FilterTable {
        FilterTable {
            rules: RwLock::new([Vec::new(), Vec::new(), Vec::new()]),
            nrules: std::array::from_fn(|_| AtomicUsize::new(0)),
            policy: std::array::from_fn(|_| AtomicU8::new(POLICY_ACCEPT)),
            policy_pkts: std::array::from_fn(|_| AtomicU64::new(0)),
            policy_bytes: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Run a packet through `chain` (Linux's `ipt_do_table` for one hook) and give the
    /// verdict. A chain without rules is decided by its policy without taking a lock.
    pub fn do_chain(&self, chain: Chain, pkt: &NfPacket<'_>) -> Verdict {
        let ci = chain.index();
        if self.nrules[ci].load(Ordering::Acquire) != 0 {
            let hdr = IpHdr::parse(pkt.data);
            let rules = self.rules.read();
            for rule in &rules[ci] {
                match rule.matches(hdr.as_ref(), pkt) {
                    Match::No => continue,
                    Match::HotDrop => return Verdict::Drop,
                    Match::Yes => {
                        rule.count(pkt.len);
                        match rule.spec.target {
                            Target::Accept => return Verdict::Accept,
                            Target::Drop => return Verdict::Drop,
                            Target::Reject(with) => return Verdict::Reject(with),
                            // In a built-in chain RETURN goes to the policy ("underflow").
                            Target::Return => break,
                        }
                    }
                }
            }
        }
        self.policy_pkts[ci].fetch_add(1, Ordering::Relaxed);
        self.policy_bytes[ci].fetch_add(
            u64::try_from(pkt.len).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if self.policy[ci].load(Ordering::Relaxed) == POLICY_DROP {
            Verdict::Drop
        } else {
            Verdict::Accept
        }
    }

    /// Edit the rules of `chain` under the write lock, keeping the rule count in step.
    fn edit<T>(&self, chain: Chain, f: impl FnOnce(&mut Vec<Arc<Rule>>) -> T) -> T {
        let mut rules = self.rules.write();
        let list = &mut rules[chain.index()];
        let out = f(list);
        self.nrules[chain.index()].store(list.len(), Ordering::Release);
        out
    }

    /// Add a rule at the end of `chain` (`iptables -A`).
    pub fn append(&self, chain: Chain, rule: Rule) {
        self.edit(chain, |list| list.push(Arc::new(rule)));
    }

    /// Insert a rule so that it becomes rule number `pos` (1-based, `iptables -I CHAIN
    /// pos`). `pos` may be one past the last rule (append); 0 or further is an error.
    pub fn insert(&self, chain: Chain, pos: usize, rule: Rule) -> io::Result<()> {
        self.edit(chain, |list| {
            if pos == 0 {
                return Err(invalid("Invalid rule number `0'".to_string()));
            }
            if pos > list.len() + 1 {
                return Err(invalid(format!(
                    "Index of insertion too big: {chain} has {} rules",
                    list.len()
                )));
            }
            list.insert(pos - 1, Arc::new(rule));
            Ok(())
        })
    }

    /// Replace rule number `pos` (1-based, `iptables -R`); the new rule's counters start
    /// from the given rule's.
    pub fn replace(&self, chain: Chain, pos: usize, rule: Rule) -> io::Result<()> {
        self.edit(chain, |list| {
            if pos == 0 {
                return Err(invalid("Invalid rule number `0'".to_string()));
            }
            let Some(slot) = list.get_mut(pos - 1) else {
                return Err(invalid(format!(
                    "Index of replacement too big: {chain} has {} rules",
                    list.len()
                )));
            };
            *slot = Arc::new(rule);
            Ok(())
        })
    }

    /// Delete rule number `pos` (1-based, `iptables -D CHAIN pos`).
    pub fn delete(&self, chain: Chain, pos: usize) -> io::Result<()> {
        self.edit(chain, |list| {
            if pos == 0 {
                return Err(invalid("Invalid rule number `0'".to_string()));
            }
            if pos > list.len() {
                return Err(invalid(format!(
                    "Index of deletion too big: {chain} has {} rules",
                    list.len()
                )));
            }
            list.remove(pos - 1);
            Ok(())
        })
    }

    /// Delete the first rule of `chain` equal to `rule` (`iptables -D CHAIN rule-spec`);
    /// counters are not compared. `NotFound` when there is none.
    pub fn delete_matching(&self, chain: Chain, rule: &Rule) -> io::Result<()> {
        self.edit(chain, |list| {
            let Some(at) = list.iter().position(|r| **r == *rule) else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("Bad rule (does a matching rule exist in {chain}?)"),
                ));
            };
            list.remove(at);
            Ok(())
        })
    }

    /// Whether `chain` has a rule equal to `rule` (`iptables -C`).
    pub fn check(&self, chain: Chain, rule: &Rule) -> bool {
        self.rules.read()[chain.index()]
            .iter()
            .any(|r| **r == *rule)
    }

    /// Delete every rule of `chain`, or of all chains (`iptables -F [chain]`). Policies
    /// and policy counters stay.
    pub fn flush(&self, chain: Option<Chain>) {
        for c in Chain::ALL {
            if chain.is_none_or(|want| want == c) {
                self.edit(c, Vec::clear);
            }
        }
    }

    /// Set the policy of a chain (`iptables -P`): ACCEPT or DROP only.
    pub fn set_policy(&self, chain: Chain, target: Target) -> io::Result<()> {
        let value = match target {
            Target::Accept => POLICY_ACCEPT,
            Target::Drop => POLICY_DROP,
            Target::Reject(_) | Target::Return => {
                return Err(invalid(format!(
                    "Bad policy name `{target}': a built-in chain's policy is ACCEPT or DROP"
                )))
            }
        };
        self.policy[chain.index()].store(value, Ordering::Relaxed);
        Ok(())
    }

    /// The policy of a chain (ACCEPT or DROP).
    pub fn policy(&self, chain: Chain) -> Target {
        if self.policy[chain.index()].load(Ordering::Relaxed) == POLICY_DROP {
            Target::Drop
        } else {
            Target::Accept
        }
    }

    /// Zero every counter, rules' and policies' (`iptables -Z`).
    pub fn zero(&self) {
        self.zero_chain(None);
    }

    /// Zero the counters of one chain or all (`iptables -Z [chain]`).
    pub fn zero_chain(&self, chain: Option<Chain>) {
        let rules = self.rules.read();
        for c in Chain::ALL {
            if chain.is_none_or(|want| want == c) {
                rules[c.index()].iter().for_each(|r| r.zero());
                self.policy_pkts[c.index()].store(0, Ordering::Relaxed);
                self.policy_bytes[c.index()].store(0, Ordering::Relaxed);
            }
        }
    }

    /// The policy counters of a chain: (packets, bytes) its policy decided.
    pub fn chain_counters(&self, chain: Chain) -> (u64, u64) {
        (
            self.policy_pkts[chain.index()].load(Ordering::Relaxed),
            self.policy_bytes[chain.index()].load(Ordering::Relaxed),
        )
    }

    /// A snapshot of a chain's rules, in order, with their counters.
    pub fn rules(&self, chain: Chain) -> Vec<Rule> {
        self.rules.read()[chain.index()]
            .iter()
            .map(|r| Rule::clone(r))
            .collect()
    }

    /// How many rules a chain has.
    pub fn rule_count(&self, chain: Chain) -> usize {
        self.nrules[chain.index()].load(Ordering::Acquire)
    }

    /// All chains as `iptables -L [-v] -n` prints them. Output is always numeric (`-n`);
    /// `numeric` is accepted for symmetry with iptables and ignored.
    pub fn list(&self, verbose: bool, numeric: bool) -> String {
        let _ = numeric;
        self.list_with(
            None,
            ListFormat {
                verbose,
                ..ListFormat::default()
            },
        )
    }

    /// One chain or all as `iptables -L [chain] -n` with the flags of `format` prints them:
    /// byte for byte the layout of iptables' `print_header` and `print_firewall`
    /// (including their trailing spaces).
    pub fn list_with(&self, chain: Option<Chain>, format: ListFormat) -> String {
        let rules = self.rules.read();
        let mut out = String::new();
        let mut first = true;
        for c in Chain::ALL {
            if chain.is_some_and(|want| want != c) {
                continue;
            }
            if !first {
                out.push('\n');
            }
            first = false;
            self.print_header(&mut out, c, format);
            for (i, rule) in rules[c.index()].iter().enumerate() {
                print_rule(&mut out, rule, i + 1, format);
            }
        }
        out
    }

    /// All chains as `iptables -S` prints them: the policies, then every rule.
    pub fn list_rules(&self) -> String {
        self.list_rules_chain(None)
    }

    /// One chain or all as `iptables -S [chain]` prints them.
    pub fn list_rules_chain(&self, chain: Option<Chain>) -> String {
        let rules = self.rules.read();
        let chains: Vec<Chain> = Chain::ALL
            .into_iter()
            .filter(|c| chain.is_none_or(|want| want == *c))
            .collect();
        let mut out = String::new();
        for c in &chains {
            let _ = writeln!(out, "-P {c} {}", self.policy(*c));
        }
        for c in &chains {
            for rule in &rules[c.index()] {
                let _ = writeln!(out, "-A {c} {rule}");
            }
        }
        out
    }

    /// iptables' `print_header`.
    fn print_header(&self, out: &mut String, chain: Chain, format: ListFormat) {
        let kmg = !format.exact;
        let _ = write!(out, "Chain {chain} (policy {}", self.policy(chain));
        if format.verbose {
            let (pkts, bytes) = self.chain_counters(chain);
            out.push(' ');
            print_num(out, pkts, kmg, true);
            out.push_str("packets, ");
            print_num(out, bytes, kmg, true);
            out.push_str("bytes");
        }
        out.push_str(")\n");
        if format.line_numbers {
            let _ = write!(out, "{:<4} ", "num");
        }
        if format.verbose {
            if kmg {
                let _ = write!(out, "{:>5} {:>5} ", "pkts", "bytes");
            } else {
                let _ = write!(out, "{:>8} {:>10} ", "pkts", "bytes");
            }
        }
        let _ = write!(out, "{:<9} ", "target");
        out.push_str(" prot opt");
        if format.verbose {
            let _ = write!(out, " {:<6} {:<6} ", "in", "out");
        }
        let _ = writeln!(out, " {:<19}  {:<19} ", "source", "destination");
    }
}

#[cfg(test)]
impl FilterTable {
    /// Hold the rule lock exclusively (to show the packet path does not need it).
    pub(super) fn lock_rules_for_test(
        &self,
    ) -> parking_lot::RwLockWriteGuard<'_, [Vec<Arc<Rule>>; 3]> {
        self.rules.write()
    }
}

/// libxtables' `xtables_print_num`: `%8llu ` with `-x`; otherwise `%5llu ` up to 99999,
/// then thousands with K, M, G, T (rounded) in `%4llu`. `notable` drops the padding (the
/// chain line's policy counters).
fn print_num(out: &mut String, n: u64, kmg: bool, notable: bool) {
    if !kmg {
        if notable {
            let _ = write!(out, "{n} ");
        } else {
            let _ = write!(out, "{n:>8} ");
        }
        return;
    }
    if n <= 99_999 {
        if notable {
            let _ = write!(out, "{n} ");
        } else {
            let _ = write!(out, "{n:>5} ");
        }
        return;
    }
    let mut n = n;
    for suffix in ['K', 'M', 'G', 'T'] {
        n = n.saturating_add(500) / 1000;
        if n <= 9999 || suffix == 'T' {
            if notable {
                let _ = write!(out, "{n}{suffix} ");
            } else {
                let _ = write!(out, "{n:>4}{suffix} ");
            }
            return;
        }
    }
}

/// An address column of `-L -n`: `a.b.c.d/len`, or the bare address for a /32.
fn numeric_net(net: Option<(u32, u8)>) -> String {
    match net {
        None => "0.0.0.0/0".to_string(),
        Some((a, 32)) => Ipv4Addr::from(a).to_string(),
        Some((a, p)) => format!("{}/{p}", Ipv4Addr::from(a)),
    }
}

/// An interface column of `-L -v -n`: `*` for any, `!` before a negated name.
fn iface_column(iface: &Option<Iface>, neg: bool) -> String {
    let inv = if neg { "!" } else { "" };
    match iface {
        Some(i) => format!("{inv}{}", i.0),
        None => format!("{inv}*"),
    }
}

/// iptables' `print_firewall` for one rule (numeric, table layout).
fn print_rule(out: &mut String, rule: &Rule, num: usize, format: ListFormat) {
    let s = &rule.spec;
    if format.line_numbers {
        let _ = write!(out, "{num:<4} ");
    }
    if format.verbose {
        let (pkts, bytes) = rule.counters();
        print_num(out, pkts, !format.exact, false);
        print_num(out, bytes, !format.exact, false);
    }
    let _ = write!(out, "{:<9} ", s.target.name());
    out.push(if s.proto_neg { '!' } else { ' ' });
    let proto = s.proto.unwrap_or(0);
    match proto_name(proto) {
        Some(name) => {
            let _ = write!(out, "{name:<5}");
        }
        None => {
            let _ = write!(out, "{proto:<5}");
        }
    }
    // The fragment column: no -f support, so always "--".
    out.push_str("-- ");
    if format.verbose {
        let _ = write!(
            out,
            " {:<6} {:<6} ",
            iface_column(&s.in_iface, s.in_neg),
            iface_column(&s.out_iface, s.out_neg)
        );
    }
    out.push(if s.src_neg { '!' } else { ' ' });
    let _ = write!(out, "{:<19} ", numeric_net(s.src));
    out.push(if s.dst_neg { '!' } else { ' ' });
    let _ = write!(out, "{:<19} ", numeric_net(s.dst));
    if let Some(l4) = &s.l4 {
        out.push_str(if l4.proto == IPPROTO_TCP {
            " tcp"
        } else {
            " udp"
        });
        print_ports(out, "spt", l4.sport, l4.sport_neg);
        print_ports(out, "dpt", l4.dport, l4.dport_neg);
    }
    if let Target::Reject(with) = s.target {
        let _ = write!(out, " reject-with {}", with.name());
    }
    out.push('\n');
}

/// libxt_tcp's `print_ports`: ` dpt:80`, ` dpts:1000:2000`, ` dpt:!80`; nothing for a full
/// range that is not negated.
fn print_ports(out: &mut String, name: &str, (lo, hi): (u16, u16), neg: bool) {
    if (lo, hi) == ALL_PORTS && !neg {
        return;
    }
    let inv = if neg { "!" } else { "" };
    if lo == hi {
        let _ = write!(out, " {name}:{inv}{lo}");
    } else {
        let _ = write!(out, " {name}s:{inv}{lo}:{hi}");
    }
}
