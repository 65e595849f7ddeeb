use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;

fn frag(bytes: &[u8]) -> Frag {
    Bytes::copy_from_slice(bytes)
}

#[test]
fn push_pull_put_trim() {
    let mut skb = Skb::alloc(100, 64);
    assert_eq!(skb.headroom(), 64);
    assert!(skb.tailroom() >= 100);
    skb.put_slice(b"world");
    skb.push(6).copy_from_slice(b"hello ");
    assert_eq!(skb.data(), b"hello world");
    assert_eq!(skb.headroom(), 58);
    assert_eq!(skb.pull(6), Some(&b"hello "[..]));
    assert_eq!(skb.data(), b"world");
    assert_eq!(skb.pull(6), None, "pull past the end changes nothing");
    assert_eq!(skb.data(), b"world");
    skb.trim(3);
    assert_eq!(skb.data(), b"wor");
}

#[test]
fn push_beyond_headroom_reallocates_and_keeps_offsets() {
    let mut skb = Skb::alloc(10, 4);
    skb.put_slice(b"ip-hdr");
    skb.reset_network_header();
    skb.push(14).copy_from_slice(&[0xee; 14]);
    skb.reset_mac_header();
    assert_eq!(skb.network_header(), b"ip-hdr");
    assert_eq!(&skb.mac_header()[..14], &[0xee; 14]);
    assert_eq!(skb.len(), 20);
}

#[test]
fn header_offsets() {
    let mut skb = Skb::alloc(64, 32);
    skb.put_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    skb.reset_mac_header();
    skb.set_network_header(2);
    skb.set_transport_header(5);
    assert_eq!(skb.mac_header_offset(), Some(32));
    assert_eq!(skb.network_header(), &[3, 4, 5, 6, 7, 8]);
    assert_eq!(skb.transport_header(), &[6, 7, 8]);
    skb.transport_header_mut()[0] = 60;
    assert_eq!(skb.data()[5], 60);
    let fresh = Skb::alloc(8, 0);
    assert_eq!(fresh.network_header_offset(), None);
    assert!(fresh.network_header().is_empty());
}

#[test]
fn frags_count_in_len_and_may_pull_linearizes() {
    let mut skb = Skb::alloc(0, 16);
    skb.put_slice(b"AB");
    skb.push_frag(frag(b"CDE")).unwrap();
    skb.push_frag(frag(b"FGHIJ")).unwrap();
    assert_eq!(skb.len(), 10);
    assert_eq!(skb.headlen(), 2);
    assert_eq!(skb.data_len(), 8);
    assert!(skb.is_nonlinear());
    assert_eq!(skb.tailroom(), 0);
    assert!(skb.may_pull(6));
    assert_eq!(skb.data(), b"ABCDEF");
    assert_eq!(skb.frags().len(), 1);
    assert_eq!(&skb.frags()[0][..], b"GHIJ");
    assert!(!skb.may_pull(11));
    assert_eq!(skb.to_vec(), b"ABCDEFGHIJ");
    skb.linearize();
    assert!(!skb.is_nonlinear());
    assert_eq!(skb.data(), b"ABCDEFGHIJ");
}

#[test]
fn too_many_frags_is_refused() {
    let mut skb = Skb::alloc(0, 0);
    for _ in 0..MAX_SKB_FRAGS {
        skb.push_frag(frag(b"x")).unwrap();
    }
    assert!(skb.push_frag(frag(b"y")).is_err());
    assert_eq!(skb.len(), MAX_SKB_FRAGS);
}

#[test]
fn clone_shares_fragments_and_copies_linear() {
    let payload = Bytes::from(vec![7u8; 4000]);
    let mut skb = Skb::alloc(0, 128);
    skb.push_frag(payload.slice(0..2000)).unwrap();
    skb.push_frag(payload.slice(2000..)).unwrap();
    skb.cb.tcp.seq = 1000;
    skb.priority = 6;
    let mut clone = skb.clone_shared();
    assert_eq!(clone.len(), 4000);
    assert_eq!(clone.cb.tcp.seq, 1000);
    assert_eq!(clone.priority, 6);
    assert_eq!(
        clone.frags()[0].as_ptr(),
        skb.frags()[0].as_ptr(),
        "shared page"
    );
    clone.push(20).fill(0xaa);
    assert_eq!(skb.headlen(), 0, "the original's linear area is untouched");
    assert_eq!(clone.len(), 4020);
}

#[test]
fn copy_linear_is_private_and_keeps_headers() {
    let mut skb = Skb::alloc(4, 40);
    skb.put_slice(b"HDR!");
    skb.reset_network_header();
    skb.push_frag(frag(b"payload")).unwrap();
    let c = skb.copy_linear(10);
    assert!(!c.is_nonlinear());
    assert_eq!(c.data(), b"HDR!payload");
    assert_eq!(&c.network_header()[..4], b"HDR!");
    assert_eq!(c.headroom(), 10);
}

#[test]
fn split_frags_shares_pages() {
    let mut skb = Skb::alloc(0, 0);
    skb.push_frag(frag(b"0123")).unwrap();
    skb.push_frag(frag(b"4567")).unwrap();
    skb.push_frag(frag(b"89")).unwrap();
    let mut rest = Vec::new();
    skb.split_frags_at(6, &mut rest);
    assert_eq!(skb.to_vec(), b"012345");
    let joined: Vec<u8> = rest.iter().flat_map(|f| f.iter().copied()).collect();
    assert_eq!(joined, b"6789");
    assert_eq!(skb.data_len(), 6);
}

struct CountingOwner(AtomicU32, AtomicU32);
impl SkbOwner for CountingOwner {
    fn skb_released(&self, truesize: u32) {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1.fetch_add(truesize, Ordering::SeqCst);
    }
}

#[test]
fn owner_is_told_once_on_free_or_orphan() {
    let owner = Arc::new(CountingOwner(AtomicU32::new(0), AtomicU32::new(0)));
    let mut skb = Skb::alloc(100, 0);
    skb.set_owner(owner.clone());
    let ts = skb.truesize();
    assert!(ts >= 100 + SKB_OVERHEAD);
    let clone = skb.clone_shared();
    assert!(!clone.has_owner(), "a clone is not charged");
    drop(clone);
    assert_eq!(owner.0.load(Ordering::SeqCst), 0);
    drop(skb);
    assert_eq!(owner.0.load(Ordering::SeqCst), 1);
    assert_eq!(owner.1.load(Ordering::SeqCst), ts);

    let mut skb = Skb::alloc(10, 0);
    skb.set_owner(owner.clone());
    skb.orphan();
    assert_eq!(owner.0.load(Ordering::SeqCst), 2);
    drop(skb);
    assert_eq!(
        owner.0.load(Ordering::SeqCst),
        2,
        "orphaned: not told again"
    );
}

#[test]
fn recycled_skbs_come_back_clean() {
    for _ in 0..1000 {
        let mut skb = Skb::alloc(1500, 128);
        assert_eq!(skb.len(), 0);
        assert_eq!(skb.priority, 0);
        assert_eq!(skb.network_header_offset(), None);
        assert!(skb.frags().is_empty());
        skb.put(1500);
        skb.priority = 3;
        skb.reset_network_header();
        skb.push_frag(frag(b"x")).unwrap();
    }
}

#[test]
fn pcount_and_gso() {
    let mut skb = Skb::alloc(0, 0);
    assert_eq!(skb.pcount(), 1);
    assert!(!skb.is_gso());
    skb.gso_size = 1448;
    skb.gso_segs = 45;
    assert!(skb.is_gso());
    assert_eq!(skb.pcount(), 45);
}

proptest! {
    /// copy_bits, chunks and trim agree with a plain byte-vector model for any split of
    /// the data between the linear area and fragments.
    #[test]
    fn data_model(data in proptest::collection::vec(any::<u8>(), 0..3000),
                  cuts in proptest::collection::vec(0usize..3000, 0..6),
                  off in 0usize..3100, len in 0usize..3100, trim_to in 0usize..3100) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort();
        let lin = cuts.first().copied().unwrap_or(data.len());
        let mut skb = Skb::alloc(lin, 32);
        skb.put_slice(&data[..lin]);
        let mut prev = lin;
        for &c in cuts.iter().skip(1).chain(std::iter::once(&data.len())) {
            if c > prev {
                skb.push_frag(Bytes::copy_from_slice(&data[prev..c])).unwrap();
                prev = c;
            }
        }
        prop_assert_eq!(skb.len(), data.len());
        prop_assert_eq!(skb.to_vec(), data.clone());
        let mut out = vec![0u8; len];
        let ok = skb.copy_bits(off, &mut out);
        prop_assert_eq!(ok, off + len <= data.len());
        if ok {
            prop_assert_eq!(&out[..], &data[off..off + len]);
        }
        let mut t = skb.clone_shared();
        t.trim(trim_to);
        prop_assert_eq!(t.to_vec(), data[..trim_to.min(data.len())].to_vec());
        let pull = off.min(data.len());
        let mut p = skb.clone_shared();
        prop_assert!(p.may_pull(pull));
        prop_assert_eq!(p.to_vec(), data.clone());
        prop_assert!(p.headlen() >= pull);
    }
}
