//! Flow hashing (Linux's `skb_get_hash` over the flow dissector): a 32-bit hash of the
//! IPv4 addresses, protocol and ports, used to pick a transmit queue
//! (`skb_tx_hash`), a receive queue (RSS) and a GRO bucket.

/// Hash an IPv4 packet starting at `ip` (its header). Non-IPv4 or truncated input hashes
/// what it can; fragments hash without ports (as the dissector, which stops at a
/// fragment).
pub fn flow_hash_ipv4(ip: &[u8]) -> u32 {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return mix(
            ip.iter()
                .take(16)
                .fold(0u32, |h, &b| h.rotate_left(5) ^ u32::from(b)),
            0,
            0,
        );
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let proto = ip[9];
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let ports = if !frag && (proto == 6 || proto == 17) && ip.len() >= ihl + 4 {
        u32::from_be_bytes([ip[ihl], ip[ihl + 1], ip[ihl + 2], ip[ihl + 3]])
    } else {
        0
    };
    // Symmetric in (src, dst) and in the two ports is not wanted here: like Linux's
    // default, each direction hashes on its own.
    mix(src ^ u32::from(proto).rotate_left(24), dst, ports)
}

/// A 3-word mix (in the spirit of Bob Jenkins' final mix, which Linux's jhash uses).
pub fn mix(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    a = a.wrapping_add(0xdead_beef);
    b = b.wrapping_add(0xdead_beef);
    c = c.wrapping_add(0xdead_beef);
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(24));
    if c == 0 {
        1
    } else {
        c
    }
}

/// Linux's `reciprocal_scale`: map a 32-bit value uniformly onto `[0, n)`.
#[inline]
pub fn reciprocal_scale(v: u32, n: u32) -> u32 {
    ((u64::from(v) * u64::from(n)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 24];
        p[0] = 0x45;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn same_flow_same_hash_and_ports_matter() {
        let a = flow_hash_ipv4(&ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 1000, 80));
        let b = flow_hash_ipv4(&ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 1000, 80));
        let c = flow_hash_ipv4(&ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 1001, 80));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, 0);
    }

    #[test]
    fn flows_spread_over_queues() {
        let mut counts = [0u32; 4];
        for port in 0..4000u16 {
            let h = flow_hash_ipv4(&ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 10_000 + port, 80));
            counts[reciprocal_scale(h, 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for len in 0..30 {
            let _ = flow_hash_ipv4(&vec![0x4f; len]);
        }
    }
}
