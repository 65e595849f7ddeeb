//! The receive path never panics on arbitrary input: random bytes and mutations of
//! valid packets through `ip_rcv`, `arp_rcv` and whole Ethernet frames.

use proptest::prelude::*;

fn valid_ip_udp() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 36, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1, 0x13, 0x88, 0,
        53, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let c = usnet_wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn valid_arp() -> Vec<u8> {
    vec![
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ip_rcv_survives_anything(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        usnet::fuzz::ip_rcv(&data);
    }

    #[test]
    fn ip_rcv_survives_mutations(pos in 0usize..36, val in any::<u8>(), cut in 0usize..40) {
        let mut p = valid_ip_udp();
        p[pos] = val;
        p.truncate(cut.max(1));
        usnet::fuzz::ip_rcv(&p);
        let mut q = valid_ip_udp();
        q[pos] ^= val;
        usnet::fuzz::ip_rcv(&q);
    }

    #[test]
    fn arp_rcv_survives_anything(data in proptest::collection::vec(any::<u8>(), 0..64), pos in 0usize..28, val in any::<u8>()) {
        usnet::fuzz::arp_rcv(&data);
        let mut a = valid_arp();
        a[pos] = val;
        usnet::fuzz::arp_rcv(&a);
    }

    #[test]
    fn frames_survive_anything(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        usnet::fuzz::ethernet_frame(&data);
    }
}
