//! `gospy convert SNAP.gss -o SNAP.core`: write a snapshot as an ELF core
//! file that gdb and other core readers open: one PT_NOTE with NT_PRPSINFO,
//! one NT_PRSTATUS per thread (registers, fs_base), NT_AUXV and NT_FILE; one
//! PT_LOAD per run of captured bytes (adjacent and overlapping regions
//! coalesced). Text and read-only data are not in a snapshot: the reader
//! takes them from the executable, as it does for kernel cores.

use crate::memory::{Memory, SparseMemory};
use crate::model::{CaptureMeta, Regs};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::Path;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

/// Runs of captured bytes: (start, end), coalescing touching ranges.
fn coalesce(mem: &SparseMemory) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, d) in mem.ranges() {
        let end = a.saturating_add(d.len() as u64);
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(end),
            _ => out.push((a, end)),
        }
    }
    out
}

fn note(out: &mut Vec<u8>, name: &str, ty: u32, desc: &[u8]) {
    let n = name.len() + 1;
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out.extend_from_slice(desc);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

fn regs_words(r: &Regs) -> [u64; 27] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ]
}

/// The PT_NOTE contents for a capture.
fn notes(meta: &CaptureMeta) -> Vec<u8> {
    let mut out = Vec::new();
    // NT_PRPSINFO (struct elf_prpsinfo, 136 bytes on x86-64).
    let mut ps = vec![0u8; 136];
    ps[0] = 0; // pr_state
    ps[1] = b'S';
    ps[24..28].copy_from_slice(&(meta.pid as u32).to_le_bytes());
    let comm = meta
        .exe_path
        .trim_end_matches(" (deleted)")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let c = comm.as_bytes();
    ps[40..40 + c.len().min(15)].copy_from_slice(&c[..c.len().min(15)]);
    let args = meta.cmdline.join(" ");
    let a = args.as_bytes();
    ps[56..56 + a.len().min(79)].copy_from_slice(&a[..a.len().min(79)]);
    note(&mut out, "CORE", 3, &ps);
    // NT_PRSTATUS per thread (struct elf_prstatus: 336 bytes on x86-64,
    // 392 on arm64).
    for t in &meta.threads {
        let regs = t.regs.unwrap_or_default();
        let words: Vec<u64> = match (meta.arch, regs.aarch64) {
            (crate::model::Arch::Aarch64, a) => {
                a.map(|a| a.to_words().to_vec()).unwrap_or(vec![0; 34])
            }
            (crate::model::Arch::X86_64, _) => regs_words(&regs).to_vec(),
        };
        let mut st = vec![0u8; 112 + words.len() * 8 + 8];
        st[32..36].copy_from_slice(&(t.tid as u32).to_le_bytes());
        st[36..40].copy_from_slice(&(meta.pid as u32).to_le_bytes()); // ppid: unknown
        st[40..44].copy_from_slice(&(meta.pid as u32).to_le_bytes()); // pgrp
        st[44..48].copy_from_slice(&(meta.pid as u32).to_le_bytes()); // sid
        for (i, w) in words.iter().enumerate() {
            st[112 + i * 8..120 + i * 8].copy_from_slice(&w.to_le_bytes());
        }
        note(&mut out, "CORE", 1, &st);
    }
    // NT_AUXV, terminated by AT_NULL.
    if !meta.auxv.is_empty() {
        let mut d = Vec::new();
        for &(k, v) in meta.auxv.iter().chain(std::iter::once(&(0, 0))) {
            d.extend_from_slice(&k.to_le_bytes());
            d.extend_from_slice(&v.to_le_bytes());
        }
        note(&mut out, "CORE", 6, &d);
    }
    // NT_FILE: file-backed mappings.
    let files: Vec<_> = meta
        .maps
        .iter()
        .filter(|m| m.path.starts_with('/'))
        .collect();
    if !files.is_empty() {
        let mut d = Vec::new();
        d.extend_from_slice(&(files.len() as u64).to_le_bytes());
        d.extend_from_slice(&4096u64.to_le_bytes());
        for m in &files {
            d.extend_from_slice(&m.start.to_le_bytes());
            d.extend_from_slice(&m.end.to_le_bytes());
            d.extend_from_slice(&(m.offset / 4096).to_le_bytes());
        }
        for m in &files {
            d.extend_from_slice(m.path.as_bytes());
            d.push(0);
        }
        note(&mut out, "CORE", 0x4649_4c45, &d);
    }
    out
}

/// What was written.
pub struct CoreStats {
    pub segments: usize,
    pub threads: usize,
    pub bytes: u64,
}

/// Write `mem` (a snapshot's captured memory) and `meta` as an ELF core.
pub fn write_core(meta: &CaptureMeta, mem: &SparseMemory, out: &Path) -> Result<CoreStats> {
    let runs = coalesce(mem);
    let notes = notes(meta);
    let phnum = 1 + runs.len();
    if phnum > 0xfff0 {
        return Err(anyhow!(
            "{} memory runs do not fit in an ELF program header table",
            runs.len()
        ));
    }
    let ph_off = 64u64;
    let notes_off = ph_off + 56 * phnum as u64;
    let mut data_off = notes_off + notes.len() as u64;
    data_off = data_off.div_ceil(8) * 8;

    let mut hdr = vec![0u8; 64];
    hdr[..4].copy_from_slice(b"\x7fELF");
    hdr[4] = 2; // ELFCLASS64
    hdr[5] = 1; // little endian
    hdr[6] = 1; // EV_CURRENT
    hdr[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    hdr[18..20].copy_from_slice(&meta.arch.e_machine().to_le_bytes());
    hdr[20..24].copy_from_slice(&1u32.to_le_bytes());
    hdr[32..40].copy_from_slice(&ph_off.to_le_bytes());
    hdr[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    hdr[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    hdr[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());

    let phdr = |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
        let mut p = vec![0u8; 56];
        p[0..4].copy_from_slice(&ty.to_le_bytes());
        p[4..8].copy_from_slice(&flags.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[16..24].copy_from_slice(&vaddr.to_le_bytes());
        p[32..40].copy_from_slice(&filesz.to_le_bytes());
        p[40..48].copy_from_slice(&memsz.to_le_bytes());
        p[48..56].copy_from_slice(&1u64.to_le_bytes());
        p
    };
    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(f);
    w.write_all(&hdr)?;
    w.write_all(&phdr(PT_NOTE, 4, notes_off, 0, notes.len() as u64, 0))?;
    let mut off = data_off;
    for &(a, e) in &runs {
        w.write_all(&phdr(PT_LOAD, 6, off, a, e - a, e - a))?;
        off += e - a;
    }
    w.write_all(&notes)?;
    w.write_all(&vec![
        0u8;
        (data_off - notes_off - notes.len() as u64) as usize
    ])?;
    let mut bytes = 0u64;
    for &(a, e) in &runs {
        let mut buf = vec![0u8; (e - a) as usize];
        mem.read_exact(a, &mut buf)
            .map_err(|err| anyhow!("snapshot memory: {err}"))?;
        w.write_all(&buf)?;
        bytes += e - a;
    }
    w.flush()?;
    Ok(CoreStats {
        segments: runs.len(),
        threads: meta.threads.len(),
        bytes,
    })
}

/// `gospy convert`: snapshot file → core file.
pub fn convert_snapshot(input: &Path, output: &Path) -> Result<CoreStats> {
    let snap = crate::sources::snapshot::SnapshotFile::open(input)
        .with_context(|| input.display().to_string())?;
    let loaded = snap.memory().context("decompressing snapshot memory")?;
    write_core(&snap.meta, &loaded.memory, output)
}
