//! `--bin` for a target built with `-ldflags='-s -w'`: the unstripped build
//! of the same source has a *different* Go build id, because cmd/go hashes
//! the link flags into it (and records them in `.go.buildinfo`, which also
//! shifts `.rodata` by a few bytes). Go's executable build id is
//! `actionID(binary)/actionID(main.a)/contentID(main.a)/contentID(binary)`:
//! only the third part, the compiled main package's content, stays equal,
//! and it is also equal for builds that differ by `-X` (link-time only).
//!
//! So the twin check compares what identifies the build besides the strip
//! flags: the Go version, contentID(main.a), the build settings recorded in
//! `.go.buildinfo` with `-s` and `-w` removed from `-ldflags`, the function
//! table (`.gopclntab`, byte for byte), the `.text` address and size, and
//! the writable segments' addresses and sizes (where runtime globals live).

use super::elf::ElfFile;

/// Why `bin` is not the unstripped twin of `running`, or Ok.
pub fn check_stripped_twin(running: &ElfFile, bin: &ElfFile) -> Result<(), String> {
    if running.go_version != bin.go_version {
        return Err(format!(
            "Go versions differ ({} vs {})",
            running.go_version.as_deref().unwrap_or("?"),
            bin.go_version.as_deref().unwrap_or("?")
        ));
    }
    let main_content = |e: &ElfFile| {
        e.go_build_id
            .as_deref()
            .and_then(|id| id.split('/').nth(2).map(str::to_string))
    };
    match (main_content(running), main_content(bin)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err("the main packages differ (Go build id part 3)".into()),
    }
    let (a, b) = (
        settings(running.build_info.as_deref()),
        settings(bin.build_info.as_deref()),
    );
    // With -trimpath cmd/go does not record -ldflags (go.dev/issue/52372),
    // so a -X difference would go unnoticed in the settings: then the loaded
    // bytes themselves must be equal (build id and build info excepted).
    if a.iter().any(|s| s == "-trimpath=true") || !a.iter().any(|s| s.starts_with("-ldflags=")) {
        // Code and read-only data must be byte-identical (an -X value is a
        // string in .rodata). Other read-only sections may move: Go 1.19
        // and 1.20 place .shstrtab, which stripping shrinks, inside the
        // read-only segment.
        for name in [".text", ".rodata"] {
            if running.section_data(name).is_none()
                || running.section_data(name) != bin.section_data(name)
            {
                return Err(format!("{name} differs"));
            }
        }
    }
    if a != b {
        let only = |x: &[String], y: &[String]| {
            x.iter()
                .filter(|s| !y.contains(s))
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(format!(
            "build settings differ beyond -s -w: [{}] vs [{}]",
            only(&a, &b),
            only(&b, &a)
        ));
    }
    if running.section_data(".gopclntab") != bin.section_data(".gopclntab")
        || running.section_data(".gopclntab").is_none()
    {
        return Err("the function tables (.gopclntab) differ".into());
    }
    let text = |e: &ElfFile| {
        e.sections
            .iter()
            .find(|s| s.name == ".text")
            .map(|s| (s.addr, s.size))
    };
    if text(running) != text(bin) {
        return Err(".text differs in address or size".into());
    }
    let writable = |e: &ElfFile| {
        e.segments
            .iter()
            .filter(|s| s.writable)
            .map(|s| (s.vaddr, s.memsz))
            .collect::<Vec<_>>()
    };
    if writable(running) != writable(bin) {
        return Err("data segments differ in address or size".into());
    }
    Ok(())
}

/// `build` lines of `.go.buildinfo` with `-s`/`-w` dropped from -ldflags.
fn settings(info: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    for line in info.unwrap_or("").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.first() != Some(&"build") || f.len() < 2 {
            continue;
        }
        let s = f[1..].join("\t");
        if let Some(flags) = s.strip_prefix("-ldflags=") {
            let flags = flags.trim_matches('"');
            let kept: Vec<&str> = flags
                .split_whitespace()
                .filter(|w| *w != "-s" && *w != "-w")
                .collect();
            if !kept.is_empty() {
                v.push(format!("-ldflags={}", kept.join(" ")));
            }
            continue;
        }
        v.push(s);
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_ignore_strip_flags() {
        let a = "path\tx\nbuild\t-ldflags=\"-s -w\"\nbuild\tGOOS=linux\n";
        let b = "path\tx\nbuild\tGOOS=linux\n";
        let c = "path\tx\nbuild\t-ldflags=\"-X main.buildTag=other\"\nbuild\tGOOS=linux\n";
        assert_eq!(super::settings(Some(a)), super::settings(Some(b)));
        assert_ne!(super::settings(Some(c)), super::settings(Some(b)));
    }
}
