//! Fuzzes the ipv4 parsers: `usnet_wire::fuzz::ipv4` parses, reads every
//! accessor, and checks that what parses re-emits to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    usnet_wire::fuzz::ipv4(data);
});
