//! Reading target memory: batched `process_vm_readv(2)` with a `pread(2)` on
//! `/proc/PID/mem` fallback. Read-only by construction: the mem file is
//! opened read-only and nothing here can write.
//!
//! The fallback differs slightly from `process_vm_readv`: the kernel reads
//! `/proc/PID/mem` with `FOLL_FORCE`, so it can also read mappings without
//! `PROT_READ` (e.g. Go's `PROT_NONE` arena reservations read as zeros).
//! Reading never changes the target's mappings or data; at most a read of
//! untouched anonymous memory maps the shared zero page.

use crate::memory::{MemError, MemResult, Memory, MAX_READ};
use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use std::fs::File;
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Most iovecs one `process_vm_readv` call accepts (Linux `UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;

/// Ranges larger than this are read in pieces, so that a batch never
/// exceeds what the kernel transfers in one call (`MAX_RW_COUNT`, ~2 GiB).
const PIECE_MAX: usize = 256 << 20;
/// Largest total size of one `process_vm_readv` call.
const BATCH_MAX_BYTES: usize = 1 << 30;

const WHY_UNREADABLE: &str = "unmapped or unreadable address";
const WHY_EXITED: &str = "process has exited";
const WHY_PERM: &str = "permission denied reading target memory";
const WHY_OVERFLOW: &str = "address range overflows";
const WHY_TOO_LARGE: &str = "length too large";
const WHY_FAILED: &str = "read failed";
const WHY_BUF: &str = "output buffer too small";

/// Read many `(addr, len)` ranges of process `pid` with as few system calls
/// as possible. Each range succeeds or fails on its own: a range is an error
/// if any of its bytes cannot be read. See [`LiveMemory::read_ranges`].
pub fn read_ranges(pid: i32, ranges: &[(u64, usize)]) -> Vec<Result<Vec<u8>, MemError>> {
    LiveMemory::new(pid).read_ranges(ranges)
}

/// Memory of a live process (paused or not). Cheap to create; `Send + Sync`,
/// so reads may run in parallel.
#[derive(Debug)]
pub struct LiveMemory {
    pid: i32,
    /// `/proc/PID/mem`, opened on first need.
    mem_file: OnceLock<Result<File, &'static str>>,
    /// Set once `process_vm_readv` proved unusable (EPERM from a seccomp
    /// filter, ENOSYS...): later reads go straight to `/proc/PID/mem`.
    vm_readv_unusable: AtomicBool,
}

/// One contiguous piece of a requested range: result index, remote address,
/// local destination.
struct Job<'a> {
    idx: usize,
    addr: u64,
    buf: &'a mut [u8],
}

impl LiveMemory {
    pub fn new(pid: i32) -> LiveMemory {
        LiveMemory {
            pid,
            mem_file: OnceLock::new(),
            vm_readv_unusable: AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Use only `/proc/PID/mem` from now on (tests; environments where
    /// `process_vm_readv` misbehaves).
    pub fn force_proc_mem(&self) {
        self.vm_readv_unusable.store(true, Ordering::Relaxed);
    }

    /// Read each range into a fresh `Vec`. Uses `process_vm_readv` with up to
    /// [`IOV_MAX`] remote iovecs per call; when a call stops early at a bad
    /// range, that range is retried through `/proc/PID/mem` and the batch
    /// continues after it.
    pub fn read_ranges(&self, ranges: &[(u64, usize)]) -> Vec<Result<Vec<u8>, MemError>> {
        let mut bufs: Vec<Vec<u8>> = ranges
            .iter()
            .map(|&(_, len)| {
                if len <= MAX_READ {
                    vec![0u8; len]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut results: Vec<MemResult<()>> = Vec::with_capacity(ranges.len());
        let mut jobs = Vec::with_capacity(ranges.len());
        for (idx, (&(addr, len), buf)) in ranges.iter().zip(bufs.iter_mut()).enumerate() {
            if len > MAX_READ {
                results.push(Err(MemError {
                    addr,
                    len,
                    why: WHY_TOO_LARGE,
                }));
                continue;
            }
            results.push(push_jobs(&mut jobs, idx, addr, buf));
        }
        self.run_jobs(jobs, ranges, &mut results);
        results
            .into_iter()
            .zip(bufs)
            .map(|(r, b)| r.map(|()| b))
            .collect()
    }

    /// Like [`read_ranges`](Self::read_ranges) but into one caller-provided
    /// buffer, the ranges laid out back to back in order (no allocation per
    /// range). `out` must hold the sum of the lengths; ranges that do not
    /// fit fail.
    pub fn read_ranges_into(&self, ranges: &[(u64, usize)], out: &mut [u8]) -> Vec<MemResult<()>> {
        let mut results = Vec::with_capacity(ranges.len());
        let mut jobs = Vec::with_capacity(ranges.len());
        let mut rest = out;
        for (idx, &(addr, len)) in ranges.iter().enumerate() {
            if len > rest.len() {
                results.push(Err(MemError {
                    addr,
                    len,
                    why: WHY_BUF,
                }));
                rest = &mut [];
                continue;
            }
            let (buf, tail) = rest.split_at_mut(len);
            rest = tail;
            results.push(push_jobs(&mut jobs, idx, addr, buf));
        }
        self.run_jobs(jobs, ranges, &mut results);
        results
    }

    /// Like [`read_ranges_into`](Self::read_ranges_into), each range into
    /// its own buffer (as long as the range): scattered destinations, still
    /// [`IOV_MAX`] ranges per call.
    pub fn read_scatter(&self, reads: Vec<(u64, &mut [u8])>) -> Vec<MemResult<()>> {
        let ranges: Vec<(u64, usize)> = reads.iter().map(|(a, b)| (*a, b.len())).collect();
        let mut results = Vec::with_capacity(ranges.len());
        let mut jobs = Vec::with_capacity(ranges.len());
        for (idx, (addr, buf)) in reads.into_iter().enumerate() {
            results.push(push_jobs(&mut jobs, idx, addr, buf));
        }
        self.run_jobs(jobs, &ranges, &mut results);
        results
    }

    /// Read the jobs' pieces; `results[idx]` becomes an error when any piece
    /// of range `idx` fails.
    fn run_jobs(
        &self,
        mut jobs: Vec<Job<'_>>,
        ranges: &[(u64, usize)],
        results: &mut [MemResult<()>],
    ) {
        if jobs.is_empty() {
            return;
        }
        // What happened to each range in the process_vm_readv phase.
        #[derive(Clone, Copy, PartialEq)]
        enum Fate {
            Pending,
            Fallback,
            Exited,
        }
        let mut fate = vec![Fate::Pending; results.len()];

        if !self.vm_readv_unusable.load(Ordering::Relaxed) {
            let pid = Pid::from_raw(self.pid);
            let mut i = 0;
            let mut retries = 0;
            while i < jobs.len() {
                // Batch: up to IOV_MAX pieces and BATCH_MAX_BYTES bytes.
                let mut j = i;
                let mut total = 0usize;
                while j < jobs.len()
                    && j - i < IOV_MAX
                    && (j == i || total + jobs[j].buf.len() <= BATCH_MAX_BYTES)
                {
                    total += jobs[j].buf.len();
                    j += 1;
                }
                let remote: Vec<RemoteIoVec> = jobs[i..j]
                    .iter()
                    .map(|job| RemoteIoVec {
                        base: job.addr as usize,
                        len: job.buf.len(),
                    })
                    .collect();
                let res = {
                    let mut local: Vec<IoSliceMut<'_>> = jobs[i..j]
                        .iter_mut()
                        .map(|job| IoSliceMut::new(job.buf))
                        .collect();
                    process_vm_readv(pid, &mut local, &remote)
                };
                // Index of the piece the call stopped at, if it stopped early.
                let stopped_at = match res {
                    Ok(n) => {
                        let mut left = n;
                        let mut k = i;
                        while k < j && left >= jobs[k].buf.len() {
                            left -= jobs[k].buf.len();
                            k += 1;
                        }
                        (k < j).then_some(k)
                    }
                    Err(Errno::EFAULT) => Some(i),
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) if retries < 3 => {
                        retries += 1;
                        continue;
                    }
                    Err(Errno::ESRCH) => {
                        for job in &jobs[i..] {
                            fate[job.idx] = Fate::Exited;
                        }
                        break;
                    }
                    Err(e) => {
                        // The mechanism itself failed (EPERM under seccomp,
                        // ENOSYS, ENOMEM...): use /proc/PID/mem for the rest.
                        if matches!(e, Errno::EPERM | Errno::ENOSYS) {
                            self.vm_readv_unusable.store(true, Ordering::Relaxed);
                        }
                        for job in &jobs[i..] {
                            fate[job.idx] = Fate::Fallback;
                        }
                        break;
                    }
                };
                retries = 0;
                match stopped_at {
                    None => i = j,
                    Some(k) => {
                        // Range jobs[k].idx is unreadable this way; skip its
                        // other pieces and go on with the next range.
                        let bad = jobs[k].idx;
                        fate[bad] = Fate::Fallback;
                        i = k;
                        while i < jobs.len() && jobs[i].idx == bad {
                            i += 1;
                        }
                    }
                }
            }
        } else {
            for job in &jobs {
                fate[job.idx] = Fate::Fallback;
            }
        }

        for job in jobs.iter_mut() {
            match fate[job.idx] {
                Fate::Pending => {}
                Fate::Exited => {
                    let (addr, len) = ranges[job.idx];
                    results[job.idx] = Err(MemError {
                        addr,
                        len,
                        why: WHY_EXITED,
                    });
                }
                Fate::Fallback => {
                    if results[job.idx].is_err() {
                        continue; // an earlier piece of this range failed
                    }
                    if let Err(why) = self.pread_exact(job.addr, job.buf) {
                        let (addr, len) = ranges[job.idx];
                        results[job.idx] = Err(MemError { addr, len, why });
                    }
                }
            }
        }
    }

    fn mem_file(&self) -> Result<&File, &'static str> {
        self.mem_file
            .get_or_init(|| {
                File::open(format!("/proc/{}/mem", self.pid)).map_err(|e| match e.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => WHY_PERM,
                    Some(libc::ENOENT) | Some(libc::ESRCH) => WHY_EXITED,
                    _ => WHY_FAILED,
                })
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// Fill `buf` from `/proc/PID/mem` at `addr`.
    fn pread_exact(&self, addr: u64, buf: &mut [u8]) -> Result<(), &'static str> {
        if addr > i64::MAX as u64 || addr.checked_add(buf.len() as u64).is_none() {
            return Err(WHY_UNREADABLE);
        }
        let file = self.mem_file()?;
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], addr + done as u64) {
                // 0 bytes: the address space is gone (exited or exec'd).
                Ok(0) => return Err(WHY_EXITED),
                Ok(n) => done += n,
                Err(e) => {
                    return Err(match e.raw_os_error() {
                        Some(libc::EINTR) => continue,
                        Some(libc::EIO) | Some(libc::EFAULT) => WHY_UNREADABLE,
                        Some(libc::EPERM) | Some(libc::EACCES) => WHY_PERM,
                        Some(libc::ESRCH) => WHY_EXITED,
                        _ => WHY_FAILED,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Split range `idx` into pieces of at most [`PIECE_MAX`] bytes.
fn push_jobs<'a>(
    jobs: &mut Vec<Job<'a>>,
    idx: usize,
    addr: u64,
    buf: &'a mut [u8],
) -> MemResult<()> {
    let len = buf.len();
    if addr.checked_add(len as u64).is_none() {
        return Err(MemError {
            addr,
            len,
            why: WHY_OVERFLOW,
        });
    }
    let mut off = 0u64;
    for piece in buf.chunks_mut(PIECE_MAX) {
        let n = piece.len() as u64;
        jobs.push(Job {
            idx,
            addr: addr + off,
            buf: piece,
        });
        off += n;
    }
    Ok(())
}

impl Memory for LiveMemory {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        let len = buf.len();
        if len == 0 {
            return Ok(());
        }
        if len > PIECE_MAX {
            let mut r = self.read_ranges_into(&[(addr, len)], buf);
            return r.pop().unwrap_or(Ok(()));
        }
        if addr.checked_add(len as u64).is_none() {
            return Err(MemError {
                addr,
                len,
                why: WHY_OVERFLOW,
            });
        }
        if !self.vm_readv_unusable.load(Ordering::Relaxed) {
            let remote = [RemoteIoVec {
                base: addr as usize,
                len,
            }];
            let res = process_vm_readv(
                Pid::from_raw(self.pid),
                &mut [IoSliceMut::new(buf)],
                &remote,
            );
            match res {
                Ok(n) if n == len => return Ok(()),
                Ok(_) | Err(Errno::EFAULT) | Err(Errno::EINTR) | Err(Errno::ENOMEM) => {}
                Err(Errno::ESRCH) => {
                    return Err(MemError {
                        addr,
                        len,
                        why: WHY_EXITED,
                    })
                }
                Err(Errno::EPERM) | Err(Errno::ENOSYS) => {
                    self.vm_readv_unusable.store(true, Ordering::Relaxed)
                }
                Err(_) => {}
            }
        }
        self.pread_exact(addr, buf)
            .map_err(|why| MemError { addr, len, why })
    }
}
