use super::*;
use proptest::prelude::*;

/// The textbook RFC 1071 sum, one big-endian word at a time.
fn reference_sum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u64::from);
        s += hi | lo;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn rfc1071_example() {
    // RFC 1071 § 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(fold(sum(&data)), 0xddf2);
    assert_eq!(checksum(&data), 0x220d);
}

#[test]
fn empty_and_small() {
    assert_eq!(sum(&[]), 0);
    assert_eq!(checksum(&[]), 0xffff);
    assert_eq!(sum(&[0xab]), 0xab00);
    assert_eq!(sum(&[0xab, 0xcd]), 0xabcd);
    assert_eq!(sum(&[0xab, 0xcd, 0xef]), 0xabcd + 0xef00 - 0xffff);
    // A sum of non-zero words that is zero mod 0xffff is -0 (0xffff), never +0.
    assert_eq!(fold(sum(&[0xff, 0xff])), 0xffff);
    assert_eq!(fold(sum(&[0x80, 0x00, 0x7f, 0xff])), 0xffff);
}

#[test]
fn real_ipv4_header() {
    // A Linux ICMP echo request: 10.0.0.1 -> 10.0.0.2, checksum 0x26a7.
    let hdr = [
        0x45, 0x00, 0x00, 0x54, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x26, 0xa7, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
    ];
    assert_eq!(checksum(&hdr), 0);
    let mut zeroed = hdr;
    zeroed[10] = 0;
    zeroed[11] = 0;
    assert_eq!(checksum(&zeroed), 0x26a7);
}

#[test]
fn rfc1624_corner_case() {
    // RFC 1624 § 4: other words sum to 0xcd7a, the field goes 0x5555 -> 0x3285.
    let old = [0xcd, 0x7a, 0x55, 0x55];
    let new = [0xcd, 0x7a, 0x32, 0x85];
    assert_eq!(checksum(&old), 0xdd2f);
    // Recomputed from scratch the new checksum is 0x0000 ...
    assert_eq!(checksum(&new), 0x0000);
    // ... and equation 3 agrees, where RFC 1141's equation 2
    // (HC + m + ~m') would have given -0 = 0xffff.
    assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    let eqn2 = fold(0xdd2f + 0x5555 + u32::from(!0x3285u16));
    assert_eq!(eqn2, 0xffff);
    // And back again.
    assert_eq!(update16(0x0000, 0x3285, 0x5555), 0xdd2f);
}

#[test]
fn rfc1624_errata_4782_unchanged_field() {
    // Erratum 4782 feared that ~(0xffff + 0xaaaa + 0x5555) gives 0xffff; with the
    // end-around carry folded back (erratum 5864) an unchanged field leaves a
    // 0x0000 checksum alone.
    assert_eq!(update16(0x0000, 0x5555, 0x5555), 0x0000);
    assert_eq!(update32(0x0000, 0x5555_1234, 0x5555_1234), 0x0000);
}

#[test]
fn ttl_decrement_like_ip_decrease_ttl() {
    let mut hdr = [
        0x45, 0x00, 0x00, 0x54, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x26, 0xa7, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
    ];
    let old_word = u16::from_be_bytes([hdr[8], hdr[9]]);
    hdr[8] -= 1;
    let new_word = u16::from_be_bytes([hdr[8], hdr[9]]);
    let c = update16(0x26a7, old_word, new_word);
    assert_eq!(c, 0x27a7);
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(checksum(&hdr), 0);
}

#[test]
fn pseudo_header() {
    let src = Ipv4Addr::new(192, 168, 1, 1);
    let dst = Ipv4Addr::new(10, 0, 0, 2);
    let bytes = [192, 168, 1, 1, 10, 0, 0, 2, 0, 6, 0x01, 0x2c];
    assert_eq!(
        fold(pseudo_header_v4(&src, &dst, 6, 300)),
        fold(sum(&bytes))
    );
    let big = [192, 168, 1, 1, 10, 0, 0, 2, 0, 17, 0x00, 0x01, 0x00, 0x02];
    assert_eq!(
        fold(pseudo_header_v4(&src, &dst, 17, 0x1_0002)),
        fold(sum(&big))
    );
}

#[test]
fn large_buffer_matches_reference() {
    let data: Vec<u8> = (0..100_003u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for start in 0..4 {
        assert_eq!(sum(&data[start..]) as u16, reference_sum(&data[start..]));
    }
    let ones = vec![0xffu8; 65_537];
    assert_eq!(sum(&ones) as u16, reference_sum(&ones));
}

#[test]
fn accumulator_with_initial() {
    let src = Ipv4Addr::new(1, 2, 3, 4);
    let dst = Ipv4Addr::new(5, 6, 7, 8);
    let seg = [0u8, 80, 0x12, 0x34, 0xff, 0xee, 0xdd];
    let mut acc = Accumulator::with_initial(pseudo_header_v4(&src, &dst, 6, 7));
    acc.add(&seg[..3]);
    acc.add(&seg[3..]);
    let whole = !fold(combine(pseudo_header_v4(&src, &dst, 6, 7), sum(&seg)));
    assert_eq!(acc.finish(), whole);
    assert_eq!(fold(acc.sum()), !whole);
}

fn data_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_flat_map(|data| {
        let len = data.len();
        (Just(data), proptest::collection::vec(0..=len, 0..6))
    })
}

proptest! {
    #[test]
    fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..600), skip in 0usize..8) {
        let skip = skip.min(data.len());
        // Also start at every alignment inside the vector.
        let d = &data[skip..];
        prop_assert_eq!(sum(d) as u16, reference_sum(d));
        prop_assert!(sum(d) <= 0xffff);
    }

    #[test]
    fn split_sum_equals_whole((data, mut cuts) in data_and_cuts()) {
        cuts.sort_unstable();
        let mut acc = Accumulator::new();
        let mut partial = 0u32;
        let mut prev = 0;
        for &cut in cuts.iter().chain(core::iter::once(&data.len())) {
            let part = &data[prev..cut];
            acc.add(part);
            partial = sum_with(partial, part, prev % 2 == 1);
            prev = cut;
        }
        prop_assert_eq!(fold(partial), fold(sum(&data)));
        prop_assert_eq!(acc.finish(), checksum(&data));
    }

    #[test]
    fn combine_is_ones_complement_addition(a in any::<u32>(), b in any::<u32>()) {
        let expect = (u64::from(a) + u64::from(b)) % 0xffff;
        let got = u64::from(fold(combine(a, b))) % 0xffff;
        prop_assert_eq!(got, expect);
    }

    #[test]
    fn update16_equals_recompute(
        mut data in proptest::collection::vec(any::<u8>(), 2..128),
        index in any::<prop::sample::Index>(),
        new in any::<u16>(),
    ) {
        if data.len() % 2 == 1 {
            data.pop();
        }
        let at = index.index(data.len() / 2) * 2;
        let old_ck = checksum(&data);
        let old = u16::from_be_bytes([data[at], data[at + 1]]);
        data[at..at + 2].copy_from_slice(&new.to_be_bytes());
        // All-zero data is the one case where a from-scratch sum gives +0.
        prop_assume!(data.iter().any(|&b| b != 0));
        prop_assert_eq!(update16(old_ck, old, new), checksum(&data));
    }

    #[test]
    fn update32_equals_recompute(
        mut data in proptest::collection::vec(any::<u8>(), 4..128),
        index in any::<prop::sample::Index>(),
        new in any::<u32>(),
    ) {
        let words = data.len() / 2;
        data.truncate(words * 2);
        let at = index.index(words - 1) * 2;
        let old_ck = checksum(&data);
        let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        data[at..at + 4].copy_from_slice(&new.to_be_bytes());
        prop_assume!(data.iter().any(|&b| b != 0));
        prop_assert_eq!(update32(old_ck, old, new), checksum(&data));
    }

    #[test]
    fn stored_checksum_verifies(mut data in proptest::collection::vec(any::<u8>(), 2..200)) {
        if data.len() % 2 == 1 {
            data.push(0);
        }
        data[0] = 0;
        data[1] = 0;
        let c = checksum(&data);
        data[..2].copy_from_slice(&c.to_be_bytes());
        prop_assert_eq!(checksum(&data), 0);
    }
}
