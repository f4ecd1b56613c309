//! `/proc/PID/pagemap`: which pages of a range the target ever touched.
//!
//! One 64-bit entry per virtual page (Documentation/admin-guide/mm/pagemap.rst):
//! bit 63 "present in RAM", bit 62 "swapped"; the page frame number is
//! zeroed without CAP_SYS_ADMIN but both flags stay. Opening the file needs
//! the same ptrace-read permission as `process_vm_readv`, and reading it only
//! walks the target's page tables: nothing in the target changes.
//!
//! A page that is neither present nor swapped (nor a migration or device
//! entry, which the kernel reports as swapped) has never been written since
//! it was mapped: in an anonymous mapping (`.bss`, `.noptrbss`) it reads as
//! zeros, in a private file mapping (`.data`) as the file's bytes (a written
//! page of a private mapping is anonymous and can only leave RAM through
//! swap). Such pages need not be read.
//!
//! Reading an untouched anonymous page (the program itself, the GC scanning
//! `.bss`, or a debugger's `process_vm_readv`) maps the kernel's shared
//! zero page there: present, yet all zeros until written (a write replaces
//! it with a page of its own). When page frame numbers are visible
//! (CAP_SYS_ADMIN), such pages count as untouched too; without them they
//! are read (a present page that is not the process's own may also be a
//! copy-on-write page shared with a forked child, with data in it).

use std::fs::File;
use std::os::unix::fs::FileExt;

const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const PFN_MASK: u64 = (1 << 55) - 1;

/// The page size of this machine (pagemap's unit).
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer and has no side effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

/// An open `/proc/PID/pagemap`.
pub struct PageMap {
    file: File,
    page: u64,
    /// The zero page's frame number, when frame numbers are visible.
    zero_pfn: Option<u64>,
}

impl PageMap {
    /// Opens the target's pagemap (read-only).
    pub fn open(pid: i32) -> std::io::Result<PageMap> {
        Ok(PageMap {
            file: File::open(format!("/proc/{pid}/pagemap"))?,
            page: page_size(),
            zero_pfn: zero_pfn(),
        })
    }

    pub fn page(&self) -> u64 {
        self.page
    }

    /// Whether pages mapping the zero page are recognised (and skipped).
    pub fn knows_zero_page(&self) -> bool {
        self.zero_pfn.is_some()
    }

    /// The parts of `[start, end)` (each range; sorted or not) on pages that
    /// are present or swapped, as page-aligned `[start, end)` ranges clipped
    /// to the range, in the order of `ranges`. One `pread` per range.
    pub fn touched(&self, ranges: &[(u64, u64)]) -> std::io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut raw: Vec<u8> = Vec::new();
        for &(start, end) in ranges {
            if end <= start {
                continue;
            }
            let first = start / self.page;
            let last = (end - 1) / self.page;
            let n = (last - first + 1) as usize;
            raw.clear();
            raw.resize(n * 8, 0);
            let mut done = 0usize;
            while done < raw.len() {
                let got = self
                    .file
                    .read_at(&mut raw[done..], first * 8 + done as u64)?;
                if got == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "short read of pagemap",
                    ));
                }
                done += got;
            }
            let entries = raw
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
            for (a, b) in touched_runs(entries, first * self.page, self.page, self.zero_pfn) {
                let (a, b) = (a.max(start), b.min(end));
                if a < b {
                    out.push((a, b));
                }
            }
        }
        Ok(out)
    }
}

/// The frame number of the kernel's zero page, from one page of our own
/// that is read but never written; None when frame numbers are hidden.
fn zero_pfn() -> Option<u64> {
    let page = page_size() as usize;
    // SAFETY: a private anonymous mapping of our own, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: inside the mapping; a read maps the zero page there.
    let _ = unsafe { std::ptr::read_volatile(p as *const u8) };
    let mut e = [0u8; 8];
    let ok = File::open("/proc/self/pagemap")
        .and_then(|f| f.read_exact_at(&mut e, p as u64 / page as u64 * 8))
        .is_ok();
    // SAFETY: our own mapping.
    unsafe { libc::munmap(p, page) };
    let e = u64::from_le_bytes(e);
    (ok && e & PRESENT != 0 && e & PFN_MASK != 0).then_some(e & PFN_MASK)
}

/// Runs of consecutive touched pages, as `[start, end)` addresses, from the
/// pagemap entries of the pages starting at `base`; a present page whose
/// frame is `zero_pfn` is untouched.
pub fn touched_runs(
    entries: impl Iterator<Item = u64>,
    base: u64,
    page: u64,
    zero_pfn: Option<u64>,
) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, e) in entries.enumerate() {
        if e & (PRESENT | SWAPPED) == 0 {
            continue;
        }
        if e & PRESENT != 0 && Some(e & PFN_MASK) == zero_pfn {
            continue;
        }
        let a = base + i as u64 * page;
        match out.last_mut() {
            Some(last) if last.1 == a => last.1 = a + page,
            _ => out.push((a, a + page)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_present_and_swapped_pages() {
        let e = [PRESENT, PRESENT | 5, 0, SWAPPED, 0, 0, PRESENT, 1 << 55];
        assert_eq!(
            touched_runs(e.into_iter(), 0x10000, 0x1000, None),
            vec![(0x10000, 0x12000), (0x13000, 0x14000), (0x16000, 0x17000)]
        );
        assert_eq!(
            touched_runs(e.into_iter(), 0x10000, 0x1000, Some(5)),
            vec![(0x10000, 0x11000), (0x13000, 0x14000), (0x16000, 0x17000)]
        );
        assert!(touched_runs([0u64, 1 << 61].into_iter(), 0, 4096, None).is_empty());
    }

    #[test]
    fn own_pages() {
        // A fresh mapping: untouched pages are absent, written ones present.
        let page = page_size() as usize;
        let len = 16 * page;
        // SAFETY: an anonymous private mapping of our own, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let base = p as u64;
        // SAFETY: inside the mapping.
        unsafe {
            *(p as *mut u8).add(3 * page + 7) = 1;
            *(p as *mut u8).add(4 * page) = 1;
            *(p as *mut u8).add(10 * page + 100) = 1;
            // Read only: the zero page, untouched when frames are visible.
            let _ = std::ptr::read_volatile((p as *const u8).add(12 * page));
        }
        let pm = PageMap::open(std::process::id() as i32).unwrap();
        let t = pm.touched(&[(base + 5, base + len as u64)]).unwrap();
        let pg = page as u64;
        let mut want = vec![
            (base + 3 * pg, base + 5 * pg),
            (base + 10 * pg, base + 11 * pg),
        ];
        if !pm.knows_zero_page() {
            want.push((base + 12 * pg, base + 13 * pg));
        }
        assert_eq!(t, want);
        // Clipped to the range asked for.
        let t = pm
            .touched(&[(base + 3 * pg + 9, base + 3 * pg + 20)])
            .unwrap();
        assert_eq!(t, vec![(base + 3 * pg + 9, base + 3 * pg + 20)]);
        // SAFETY: our own mapping.
        unsafe { libc::munmap(p, len) };
    }
}
