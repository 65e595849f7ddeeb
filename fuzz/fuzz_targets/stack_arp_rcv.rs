//! Fuzzes the stack's receive path with an ARP packet through `arp_rcv` (neighbour updates and replies).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    usnet::fuzz::arp_rcv(data);
});
