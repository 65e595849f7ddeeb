//! Sequence-number arithmetic modulo 2^32 (RFC 9293 § 3.4; Linux's `before`, `after`,
//! `between`).

/// `a` comes before `b`.
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes after `b`.
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// `low <= seq <= high` in sequence space.
#[inline]
pub fn between(seq: u32, low: u32, high: u32) -> bool {
    high.wrapping_sub(low) >= seq.wrapping_sub(low)
}

/// The later of two sequence numbers.
#[inline]
pub fn seq_max(a: u32, b: u32) -> u32 {
    if after(a, b) {
        a
    } else {
        b
    }
}

/// The earlier of two sequence numbers.
#[inline]
pub fn seq_min(a: u32, b: u32) -> u32 {
    if before(a, b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps() {
        assert!(before(u32::MAX, 0));
        assert!(after(5, u32::MAX - 5));
        assert!(between(2, u32::MAX - 1, 5));
        assert!(!between(6, u32::MAX - 1, 5));
        assert_eq!(seq_max(u32::MAX, 3), 3);
    }

    proptest! {
        #[test]
        fn before_is_a_strict_order_within_half_the_space(a: u32, d in 1u32..(1 << 31)) {
            let b = a.wrapping_add(d);
            prop_assert!(before(a, b));
            prop_assert!(!before(b, a));
            prop_assert!(after(b, a));
            prop_assert!(between(a.wrapping_add(d / 2), a, b));
        }
    }
}
