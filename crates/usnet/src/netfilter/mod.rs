//! Netfilter for IPv4 (Linux's `net/netfilter/core.c`, `net/ipv4/netfilter/ip_tables.c`,
//! `iptable_filter.c`): the five hook points of the IP layer and the `filter` table.
//!
//! # The picture (seed 000 §四)
//!
//! `iptables` in user space writes rules; `ip_tables` in the kernel evaluates them; and the
//! IP layer calls `nf_hook()` at five places, the *hook points*:
//!
//! ```text
//!  wire ──► PRE_ROUTING ──► routing ──► LOCAL_IN ──► local socket
//!                              │                           │
//!                              ▼                           ▼
//!                           FORWARD                   LOCAL_OUT (ip_local_out → __ip_local_out)
//!                              │                           │
//!                              ▼                           ▼
//!                         POST_ROUTING ◄──── routing ◄─────┘   (ip_output)
//!                              │
//!                              ▼
//!                            wire (ip_finish_output → neighbour → dev_queue_xmit)
//! ```
//!
//! | hook ([`NfHook`]) | Linux | who calls it |
//! |---|---|---|
//! | [`NfHook::PreRouting`] | `NF_INET_PRE_ROUTING` | `ip_rcv`, before the routing decision |
//! | [`NfHook::LocalIn`] | `NF_INET_LOCAL_IN` | `ip_local_deliver`, for packets to this host |
//! | [`NfHook::Forward`] | `NF_INET_FORWARD` | `ip_forward`, for packets routed through |
//! | [`NfHook::LocalOut`] | `NF_INET_LOCAL_OUT` | `__ip_local_out`, for locally built packets |
//! | [`NfHook::PostRouting`] | `NF_INET_POST_ROUTING` | `ip_output`, just before the MAC layer |
//!
//! Tables hang their chains on those hooks, each table at its own priority
//! (`NF_IP_PRI_*`, ascending order runs first):
//!
//! * the **filter** table ([`FilterTable`], priority [`NF_IP_PRI_FILTER`] = 0) filters, with
//!   three chains: `INPUT` on LOCAL_IN (packets for this host), `FORWARD` on FORWARD
//!   (packets passing through), `OUTPUT` on LOCAL_OUT (packets this host produces);
//! * the **nat** table rewrites addresses with `PREROUTING` (DNAT, priority
//!   `NF_IP_PRI_NAT_DST` = -100), `OUTPUT` (DNAT of local packets) and `POSTROUTING`
//!   (SNAT, `NF_IP_PRI_NAT_SRC` = 100). **nat is not implemented yet**; the hook points
//!   and priorities are ready for it, and [`parse_command`] refuses `-t nat` clearly.
//!
//! Anything else can hook in with [`Netfilter::register_hook`] at a priority of its own.
//!
//! # Calling convention
//!
//! The IP layer builds an [`NfPacket`] (the bytes from the IPv4 header on, the full length,
//! the devices) and calls [`Netfilter::nf_hook`]; the first hook function that does not
//! accept decides ([`Verdict::Drop`], or [`Verdict::Reject`], for which the caller sends
//! the ICMP error or TCP RST and then drops). When nothing is registered at a hook and the
//! filter chain there has no rules, `nf_hook` takes no lock: it reads the hook's
//! registration count and the chain's rule count and policy, and bumps the policy counters,
//! all atomics — the counterpart of Linux's `nf_hook()` static-key test.
//!
//! ```
//! use usnet::netfilter::{parse_command, Chain, NfHook, NfPacket, Netfilter, Verdict};
//!
//! let nf = Netfilter::new();
//! parse_command(&["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP"])
//!     .unwrap()
//!     .apply(nf.filter())
//!     .unwrap();
//! // A UDP datagram 10.0.0.2:4000 -> 10.0.0.1:53.
//! let mut pkt = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
//! pkt.extend_from_slice(&[0x0f, 0xa0, 0, 53, 0, 8, 0, 0]);
//! let p = NfPacket { hook: NfHook::LocalIn, data: &pkt, len: pkt.len(), in_dev: Some("eth0"), out_dev: None };
//! assert_eq!(nf.nf_hook(&p), Verdict::Drop);
//! assert_eq!(nf.filter().chain_counters(Chain::Input), (0, 0));
//! ```

pub mod filter;
pub mod parse;

#[cfg(test)]
mod tests;

pub use filter::{Chain, FilterTable, ListFormat, Rule, RuleBuilder, RuleError, Target};
pub use parse::{parse_command, Command, ParseError};

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// The five IPv4 hook points (Linux's `enum nf_inet_hooks`, `NF_INET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NfHook {
    /// `NF_INET_PRE_ROUTING`: every received packet, after `ip_rcv`'s sanity checks and
    /// before the routing decision.
    PreRouting,
    /// `NF_INET_LOCAL_IN`: received packets routed to this host (`ip_local_deliver`).
    LocalIn,
    /// `NF_INET_FORWARD`: received packets routed to another host (`ip_forward`).
    Forward,
    /// `NF_INET_LOCAL_OUT`: packets built by this host (`__ip_local_out`).
    LocalOut,
    /// `NF_INET_POST_ROUTING`: every packet about to leave (`ip_output`).
    PostRouting,
}

/// The number of hook points (`NF_INET_NUMHOOKS`).
pub const NF_INET_NUMHOOKS: usize = 5;

impl NfHook {
    /// All hooks, in `NF_INET_*` order.
    pub const ALL: [NfHook; NF_INET_NUMHOOKS] = [
        NfHook::PreRouting,
        NfHook::LocalIn,
        NfHook::Forward,
        NfHook::LocalOut,
        NfHook::PostRouting,
    ];

    /// The hook's number (`NF_INET_PRE_ROUTING` = 0 ... `NF_INET_POST_ROUTING` = 4).
    pub fn index(self) -> usize {
        match self {
            NfHook::PreRouting => 0,
            NfHook::LocalIn => 1,
            NfHook::Forward => 2,
            NfHook::LocalOut => 3,
            NfHook::PostRouting => 4,
        }
    }

    /// The chain name iptables uses for this hook (`PREROUTING`, `INPUT`, ...).
    pub fn chain_name(self) -> &'static str {
        match self {
            NfHook::PreRouting => "PREROUTING",
            NfHook::LocalIn => "INPUT",
            NfHook::Forward => "FORWARD",
            NfHook::LocalOut => "OUTPUT",
            NfHook::PostRouting => "POSTROUTING",
        }
    }
}

impl fmt::Display for NfHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NfHook::PreRouting => "PRE_ROUTING",
            NfHook::LocalIn => "LOCAL_IN",
            NfHook::Forward => "FORWARD",
            NfHook::LocalOut => "LOCAL_OUT",
            NfHook::PostRouting => "POST_ROUTING",
        })
    }
}

// Hook priorities (`enum nf_ip_hook_priorities`, include/uapi/linux/netfilter_ipv4.h).
// Lower runs first.

/// `NF_IP_PRI_FIRST`: runs before everything else.
pub const NF_IP_PRI_FIRST: i32 = i32::MIN;
/// `NF_IP_PRI_RAW_BEFORE_DEFRAG`.
pub const NF_IP_PRI_RAW_BEFORE_DEFRAG: i32 = -450;
/// `NF_IP_PRI_CONNTRACK_DEFRAG`: reassembly for connection tracking.
pub const NF_IP_PRI_CONNTRACK_DEFRAG: i32 = -400;
/// `NF_IP_PRI_RAW`: the raw table.
pub const NF_IP_PRI_RAW: i32 = -300;
/// `NF_IP_PRI_SELINUX_FIRST`.
pub const NF_IP_PRI_SELINUX_FIRST: i32 = -225;
/// `NF_IP_PRI_CONNTRACK`: connection tracking.
pub const NF_IP_PRI_CONNTRACK: i32 = -200;
/// `NF_IP_PRI_MANGLE`: the mangle table.
pub const NF_IP_PRI_MANGLE: i32 = -150;
/// `NF_IP_PRI_NAT_DST`: destination NAT (nat PREROUTING / OUTPUT).
pub const NF_IP_PRI_NAT_DST: i32 = -100;
/// `NF_IP_PRI_FILTER`: the filter table.
pub const NF_IP_PRI_FILTER: i32 = 0;
/// `NF_IP_PRI_SECURITY`: the security table.
pub const NF_IP_PRI_SECURITY: i32 = 50;
/// `NF_IP_PRI_NAT_SRC`: source NAT (nat POSTROUTING / INPUT).
pub const NF_IP_PRI_NAT_SRC: i32 = 100;
/// `NF_IP_PRI_SELINUX_LAST`.
pub const NF_IP_PRI_SELINUX_LAST: i32 = 225;
/// `NF_IP_PRI_CONNTRACK_HELPER`.
pub const NF_IP_PRI_CONNTRACK_HELPER: i32 = 300;
/// `NF_IP_PRI_CONNTRACK_CONFIRM`.
pub const NF_IP_PRI_CONNTRACK_CONFIRM: i32 = i32::MAX;
/// `NF_IP_PRI_LAST`: runs after everything else.
pub const NF_IP_PRI_LAST: i32 = i32::MAX;

/// What `REJECT` answers with (`enum ipt_reject_with`, iptables' `--reject-with`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RejectWith {
    /// `icmp-net-unreachable`: ICMP destination unreachable, code 0.
    IcmpNetUnreachable,
    /// `icmp-host-unreachable`: ICMP destination unreachable, code 1.
    IcmpHostUnreachable,
    /// `icmp-port-unreachable`: ICMP destination unreachable, code 3 (the default).
    #[default]
    IcmpPortUnreachable,
    /// `icmp-proto-unreachable`: ICMP destination unreachable, code 2.
    IcmpProtoUnreachable,
    /// `icmp-net-prohibited`: ICMP destination unreachable, code 9.
    IcmpNetProhibited,
    /// `icmp-host-prohibited`: ICMP destination unreachable, code 10.
    IcmpHostProhibited,
    /// `icmp-admin-prohibited`: ICMP destination unreachable, code 13.
    IcmpAdminProhibited,
    /// `tcp-reset`: a TCP RST (only for rules that match `-p tcp`).
    TcpReset,
}

impl RejectWith {
    /// Every reject type with its iptables name and alias, in the order of libipt_REJECT's
    /// table (the order matters: `--reject-with` takes the first entry that starts with the
    /// given text).
    pub const TABLE: [(RejectWith, &'static str, &'static str); 8] = [
        (
            RejectWith::IcmpNetUnreachable,
            "icmp-net-unreachable",
            "net-unreach",
        ),
        (
            RejectWith::IcmpHostUnreachable,
            "icmp-host-unreachable",
            "host-unreach",
        ),
        (
            RejectWith::IcmpProtoUnreachable,
            "icmp-proto-unreachable",
            "proto-unreach",
        ),
        (
            RejectWith::IcmpPortUnreachable,
            "icmp-port-unreachable",
            "port-unreach",
        ),
        (
            RejectWith::IcmpNetProhibited,
            "icmp-net-prohibited",
            "net-prohib",
        ),
        (
            RejectWith::IcmpHostProhibited,
            "icmp-host-prohibited",
            "host-prohib",
        ),
        (RejectWith::TcpReset, "tcp-reset", "tcp-rst"),
        (
            RejectWith::IcmpAdminProhibited,
            "icmp-admin-prohibited",
            "admin-prohib",
        ),
    ];

    /// The name iptables prints (`icmp-port-unreachable`, `tcp-reset`, ...).
    pub fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(w, _, _)| *w == self)
            .map_or("icmp-port-unreachable", |(_, name, _)| name)
    }

    /// Parse a `--reject-with` argument as iptables does: case-insensitive, and an
    /// abbreviation of a name or alias selects the first entry of [`RejectWith::TABLE`]
    /// it starts. `None` for an empty or unknown argument.
    pub fn from_arg(arg: &str) -> Option<RejectWith> {
        if arg.is_empty() {
            return None;
        }
        let arg = arg.to_ascii_lowercase();
        Self::TABLE
            .iter()
            .find(|(_, name, alias)| name.starts_with(&arg) || alias.starts_with(&arg))
            .map(|(w, _, _)| *w)
    }

    /// The ICMP (type, code) to send, or `None` for [`RejectWith::TcpReset`].
    pub fn icmp_type_code(self) -> Option<(u8, u8)> {
        const DEST_UNREACH: u8 = 3;
        let code = match self {
            RejectWith::IcmpNetUnreachable => 0,
            RejectWith::IcmpHostUnreachable => 1,
            RejectWith::IcmpProtoUnreachable => 2,
            RejectWith::IcmpPortUnreachable => 3,
            RejectWith::IcmpNetProhibited => 9,
            RejectWith::IcmpHostProhibited => 10,
            RejectWith::IcmpAdminProhibited => 13,
            RejectWith::TcpReset => return None,
        };
        Some((DEST_UNREACH, code))
    }
}

impl fmt::Display for RejectWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hook's decision on a packet (`NF_ACCEPT`, `NF_DROP`; REJECT is a drop with an answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet continue (`NF_ACCEPT`).
    Accept,
    /// Drop it silently (`NF_DROP`).
    Drop,
    /// Drop it and answer the sender: the caller builds the ICMP error or the TCP RST
    /// (`ipt_REJECT`'s `nf_send_unreach` / `nf_send_reset`).
    Reject(RejectWith),
}

/// One packet at one hook point: what `nf_hook()` gets in Linux (`skb` + `nf_hook_state`).
#[derive(Clone, Copy, Debug)]
pub struct NfPacket<'a> {
    /// Where the packet is.
    pub hook: NfHook,
    /// The packet's bytes from the IPv4 header on. The IPv4 header and the first 8 bytes
    /// of the transport header are here when the packet has them; the rest may not be.
    pub data: &'a [u8],
    /// The whole packet's length in bytes (may exceed `data.len()`); byte counters add it.
    pub len: usize,
    /// The receiving device (PRE_ROUTING, LOCAL_IN, FORWARD), or `None`.
    pub in_dev: Option<&'a str>,
    /// The sending device (FORWARD, LOCAL_OUT, POST_ROUTING), or `None`.
    pub out_dev: Option<&'a str>,
}

/// A function hooked into a hook point (Linux's `nf_hookfn` in a `struct nf_hook_ops`).
///
/// It runs on the packet path, concurrently from several threads: it must be quick and
/// must not block.
pub trait NfHookFn: Send + Sync {
    /// Decide on one packet.
    fn hook(&self, pkt: &NfPacket<'_>) -> Verdict;
}

/// One registered hook function, in priority order.
#[derive(Clone)]
enum HookEntry {
    /// The filter table's chain for this hook, at [`NF_IP_PRI_FILTER`].
    Filter(Chain),
    /// Anything registered with [`Netfilter::register_hook`].
    Custom(Arc<dyn NfHookFn>),
}

/// The hook functions of one hook point, sorted by ascending priority (equal priorities in
/// registration order), as `struct nf_hook_entries` is.
type HookList = Arc<[(i32, HookEntry)]>;

/// The netfilter core of one stack (`struct net`'s `nf.hooks_ipv4`) with its filter table.
pub struct Netfilter {
    /// Per hook point, the hook functions in the order they run. Replaced as a whole on
    /// (rare) registration; read on the packet path only when `custom` is non-zero.
    hooks: [RwLock<HookList>; NF_INET_NUMHOOKS],
    /// Per hook point, how many [`HookEntry::Custom`] functions are registered there: the
    /// lock-free fast-path test.
    custom: [AtomicUsize; NF_INET_NUMHOOKS],
    filter: FilterTable,
}

impl Default for Netfilter {
    fn default() -> Self {
        Netfilter::new()
    }
}

impl fmt::Debug for Netfilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Netfilter");
        for hook in NfHook::ALL {
            let list = self.hooks[hook.index()].read().clone();
            let prios: Vec<String> = list
                .iter()
                .map(|(prio, e)| match e {
                    HookEntry::Filter(c) => format!("filter/{c}@{prio}"),
                    HookEntry::Custom(_) => format!("hook@{prio}"),
                })
                .collect();
            d.field(hook.chain_name(), &prios);
        }
        d.finish_non_exhaustive()
    }
}

impl Netfilter {
    /// A netfilter core with the filter table registered at [`NF_IP_PRI_FILTER`] on
    /// LOCAL_IN (`INPUT`), FORWARD (`FORWARD`) and LOCAL_OUT (`OUTPUT`), as
    /// `iptable_filter` does; all policies ACCEPT, no rules.
    pub fn new() -> Netfilter {
        let hooks = NfHook::ALL.map(|hook| {
            let list: Vec<(i32, HookEntry)> = match Chain::for_hook(hook) {
                Some(chain) => vec![(NF_IP_PRI_FILTER, HookEntry::Filter(chain))],
                None => Vec::new(),
            };
            RwLock::new(HookList::from(list))
        });
        Netfilter {
            hooks,
            custom: std::array::from_fn(|_| AtomicUsize::new(0)),
            filter: FilterTable::new(),
        }
    }

    /// Hook `f` into `hook` at `priority` (`nf_register_net_hook`). Functions run in
    /// ascending priority (the `NF_IP_PRI_*` constants); among equal priorities in the
    /// order they were registered, so one registered at [`NF_IP_PRI_FILTER`] runs after
    /// the filter table.
    pub fn register_hook(&self, hook: NfHook, priority: i32, f: Arc<dyn NfHookFn>) {
        let idx = hook.index();
        let mut slot = self.hooks[idx].write();
        let mut list: Vec<(i32, HookEntry)> = slot.iter().cloned().collect();
        let at = list.partition_point(|(p, _)| *p <= priority);
        list.insert(at, (priority, HookEntry::Custom(f)));
        *slot = HookList::from(list);
        self.custom[idx].fetch_add(1, Ordering::Release);
    }

    /// Remove a function registered with [`Netfilter::register_hook`] (the same `Arc`)
    /// from `hook` (`nf_unregister_net_hook`). Returns whether it was there.
    pub fn unregister_hook(&self, hook: NfHook, f: &Arc<dyn NfHookFn>) -> bool {
        let idx = hook.index();
        let mut slot = self.hooks[idx].write();
        let mut list: Vec<(i32, HookEntry)> = slot.iter().cloned().collect();
        let Some(at) = list
            .iter()
            .position(|(_, e)| matches!(e, HookEntry::Custom(g) if Arc::ptr_eq(g, f)))
        else {
            return false;
        };
        list.remove(at);
        *slot = HookList::from(list);
        self.custom[idx].fetch_sub(1, Ordering::Release);
        true
    }

    /// Run the hook functions of `pkt.hook` (Linux's `nf_hook` → `nf_hook_slow`): each in
    /// priority order until one does not accept; that verdict is returned. With no extra
    /// functions at this hook this takes no lock on the way to the filter chain, and a
    /// chain without rules is decided from atomics alone.
    pub fn nf_hook(&self, pkt: &NfPacket<'_>) -> Verdict {
        let idx = pkt.hook.index();
        if self.custom[idx].load(Ordering::Acquire) == 0 {
            return match Chain::for_hook(pkt.hook) {
                Some(chain) => self.filter.do_chain(chain, pkt),
                None => Verdict::Accept,
            };
        }
        // Slow path: copy the list out so that a hook function may (un)register hooks.
        let list = self.hooks[idx].read().clone();
        for (_, entry) in list.iter() {
            let verdict = match entry {
                HookEntry::Filter(chain) => self.filter.do_chain(*chain, pkt),
                HookEntry::Custom(f) => f.hook(pkt),
            };
            if verdict != Verdict::Accept {
                return verdict;
            }
        }
        Verdict::Accept
    }

    /// The filter table.
    pub fn filter(&self) -> &FilterTable {
        &self.filter
    }
}
