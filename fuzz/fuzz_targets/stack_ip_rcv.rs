//! Fuzzes the stack's receive path with an IPv4 packet through `ip_rcv` (validation, routing, reassembly, ICMP, UDP).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    usnet::fuzz::ip_rcv(data);
});
