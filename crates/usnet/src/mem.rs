//! Memory for large tables read at random: transparent huge pages.
//!
//! The kernel's FIB lives in its direct map, which the kernel maps with 2 MiB (or
//! 1 GiB) pages, so a route lookup rarely misses the TLB. A userspace table of tens
//! of megabytes in 4 KiB pages misses it on nearly every random read — on this kind
//! of machine (a VM, where a TLB miss walks two sets of page tables) that costs as
//! much as the cache miss. [`grow_huge`] asks the kernel to back a table's buffer with
//! transparent huge pages (`madvise(MADV_HUGEPAGE)`, which works when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`, the
//! distributions' defaults).

/// Bytes in a huge page (x86-64 and arm64 with 4 KiB base pages).
pub const HUGE_PAGE: usize = 2 << 20;

/// Make room in `v` for `cap` elements. A buffer that spans a huge page is a fresh
/// allocation advised for huge pages before anything is written to it (so the kernel
/// backs it with 2 MiB pages at first touch), with the elements copied over; smaller
/// ones grow as `Vec` does.
pub fn grow_huge<T: Copy>(v: &mut Vec<T>, cap: usize) {
    if cap <= v.capacity() {
        return;
    }
    if cap.saturating_mul(std::mem::size_of::<T>()) < HUGE_PAGE {
        v.reserve_exact(cap - v.len());
        return;
    }
    let mut fresh: Vec<T> = Vec::with_capacity(cap);
    advise_huge(
        fresh.as_ptr().cast(),
        fresh.capacity() * std::mem::size_of::<T>(),
    );
    fresh.extend_from_slice(v);
    *v = fresh;
}

/// Ask for huge pages on the whole pages inside `len` bytes at `ptr`; false if the
/// kernel refused (THP disabled or unsupported), which only costs speed.
pub fn advise_huge(ptr: *const u8, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        let page = 4096usize;
        let start = (ptr as usize).next_multiple_of(page);
        let end = (ptr as usize + len) & !(page - 1);
        if end <= start {
            return false;
        }
        // SAFETY: madvise only changes how the kernel backs pages of this process's
        // own mapping (the buffer's whole pages); MADV_HUGEPAGE never changes their
        // contents or validity, so no Rust reference is affected.
        #[allow(unsafe_code)]
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        r == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ptr, len);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kilobytes of `AnonHugePages` in the mapping of /proc/self/smaps holding `addr`.
    fn huge_kb_at(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = (a..b).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    return kb.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    #[test]
    fn a_grown_table_is_backed_by_huge_pages() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !thp.contains("[always]") && !thp.contains("[madvise]") {
            eprintln!(
                "skipping: transparent huge pages are off here ({})",
                thp.trim()
            );
            return;
        }
        let mut v: Vec<u64> = vec![7; 1000];
        grow_huge(&mut v, 3 * HUGE_PAGE / 8);
        assert_eq!(v.len(), 1000);
        assert!(v.iter().all(|&x| x == 7));
        v.resize(v.capacity(), 1);
        let mid = v.as_ptr() as usize + HUGE_PAGE;
        let kb = huge_kb_at(mid).expect("the buffer's mapping in smaps");
        assert!(kb >= 2048, "{kb} kB of huge pages under the grown buffer");
    }

    #[test]
    fn small_tables_grow_as_vec_does() {
        let mut v: Vec<u32> = vec![1, 2, 3];
        grow_huge(&mut v, 100);
        assert!(v.capacity() >= 100);
        assert_eq!(v, [1, 2, 3]);
    }
}
