//! SNMP counters as Linux keeps them (`/proc/net/snmp`, `/proc/net/netstat`): one
//! struct per group (`Ip:`, `Icmp:`, `Udp:`, ...) with a counter per Linux name, in
//! Linux's order, so `usnet netstat -s` and `nstat` style output read the same.
//!
//! ```
//! let m = usnet::mib::IpMib::default();
//! m.inc(usnet::mib::Ip::InReceives);
//! assert_eq!(m.get(usnet::mib::Ip::InReceives), 1);
//! assert_eq!(m.snapshot()[2], ("InReceives", 1));
//! ```

/// Define a counter group: an enum of Linux names and a struct of atomic counters.
macro_rules! mib_group {
    ($(#[$doc:meta])* $group:ident, $mib:ident, $prefix:literal, [$($name:ident),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum $group { $($name,)* }

        impl $group {
            /// Every counter, in Linux's order.
            pub const ALL: &'static [$group] = &[$($group::$name,)*];
            /// The counter's name as Linux prints it.
            pub fn name(self) -> &'static str {
                match self { $($group::$name => stringify!($name),)* }
            }
        }

        #[doc = concat!("The `", $prefix, ":` counters.")]
        #[derive(Debug)]
        pub struct $mib {
            c: Box<[std::sync::atomic::AtomicU64]>,
        }

        impl Default for $mib {
            fn default() -> Self {
                $mib { c: (0..$group::ALL.len()).map(|_| std::sync::atomic::AtomicU64::new(0)).collect() }
            }
        }

        impl $mib {
            /// The group name (`Ip`, `Icmp`, ...).
            pub const PREFIX: &'static str = $prefix;

            /// Add one.
            #[inline]
            pub fn inc(&self, c: $group) {
                self.c[c as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }

            /// Add `n`.
            #[inline]
            pub fn add(&self, c: $group, n: u64) {
                if n != 0 {
                    self.c[c as usize].fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            }

            /// Set a gauge-like value (`Forwarding`, `DefaultTTL`).
            pub fn set(&self, c: $group, v: u64) {
                self.c[c as usize].store(v, std::sync::atomic::Ordering::Relaxed);
            }

            /// Current value.
            pub fn get(&self, c: $group) -> u64 {
                self.c[c as usize].load(std::sync::atomic::Ordering::Relaxed)
            }

            /// Every counter by name, in Linux's order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                $group::ALL.iter().map(|&g| (g.name(), self.get(g))).collect()
            }
        }
    };
}

pub(crate) use mib_group;

mib_group!(
    /// `Ip:` counters (RFC 4293 `ipSystemStats`, as `/proc/net/snmp`).
    Ip, IpMib, "Ip",
    [Forwarding, DefaultTTL, InReceives, InHdrErrors, InAddrErrors, ForwDatagrams,
     InUnknownProtos, InDiscards, InDelivers, OutRequests, OutDiscards, OutNoRoutes,
     ReasmTimeout, ReasmReqds, ReasmOKs, ReasmFails, FragOKs, FragFails, FragCreates,
     OutTransmits]
);

mib_group!(
    /// `IpExt:` counters (`/proc/net/netstat`).
    IpExt, IpExtMib, "IpExt",
    [InNoRoutes, InTruncatedPkts, InMcastPkts, OutMcastPkts, InBcastPkts, OutBcastPkts,
     InOctets, OutOctets, InCsumErrors, ReasmOverlaps]
);

mib_group!(
    /// `Icmp:` counters.
    Icmp, IcmpMib, "Icmp",
    [InMsgs, InErrors, InCsumErrors, InDestUnreachs, InTimeExcds, InParmProbs,
     InSrcQuenchs, InRedirects, InEchos, InEchoReps, InTimestamps, InTimestampReps,
     InAddrMasks, InAddrMaskReps, OutMsgs, OutErrors, OutRateLimitGlobal,
     OutRateLimitHost, OutDestUnreachs, OutTimeExcds, OutParmProbs, OutSrcQuenchs,
     OutRedirects, OutEchos, OutEchoReps, OutTimestamps, OutTimestampReps,
     OutAddrMasks, OutAddrMaskReps]
);

mib_group!(
    /// `Udp:` counters.
    Udp, UdpMib, "Udp",
    [InDatagrams, NoPorts, InErrors, OutDatagrams, RcvbufErrors, SndbufErrors,
     InCsumErrors, IgnoredMulti, MemErrors]
);
