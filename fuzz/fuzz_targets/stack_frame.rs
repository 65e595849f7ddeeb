//! Fuzzes the stack's receive path with a whole Ethernet frame through `eth_type_trans` and `netif_receive_skb`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    usnet::fuzz::ethernet_frame(data);
});
