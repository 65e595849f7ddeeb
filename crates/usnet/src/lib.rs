//! usnet: the Linux kernel's TCP/IPv4 network stack, rebuilt as a userspace Rust library.
//!
//! The module tree follows the kernel's layers (see `docs/ARCHITECTURE.md`):
//!
//! | kernel | usnet |
//! |---|---|
//! | `struct sk_buff` | [`skb`] |
//! | `net/core/dev.c` (`dev_queue_xmit`, NAPI, `netif_receive_skb`) | [`dev`] |
//! | `net/sched/` (pfifo_fast, tbf, fq) | [`dev::sched`] |
//! | `drivers/net/ethernet/intel/igb` | [`drivers::vnic`] |
//! | the cable | [`link`] |
//! | timers, jiffies, hrtimers | [`timer`], [`time`] |
//! | `struct net` + `softnet_data` | [`Stack`] |
//!
//! [`sim::Sim`] steps several stacks on a virtual clock, deterministically.
// `unsafe` only at OS boundaries (the TAP and AF_PACKET drivers, `madvise` in [`mem`]), each block with a SAFETY note.
#![deny(unsafe_code)]

pub mod dev;
pub mod drivers;
pub mod fuzz;
pub mod hash;
pub mod ipv4;
pub mod link;
pub mod mem;
pub mod mib;
pub mod neigh;
pub mod netfilter;
pub mod pcap;
pub mod rng;
pub mod sim;
pub mod skb;
pub mod sock;
pub mod socket;
pub mod stack;
pub mod sysctl;
pub mod tcp;
pub mod time;
pub mod timer;
pub mod trace;
pub mod util;
pub mod views;

pub use stack::{Stack, StackBuilder, WeakStack};
pub mod testutil;
