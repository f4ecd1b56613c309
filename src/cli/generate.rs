//! `gospy generate` (hidden): the files a package installs, generated from
//! the command-line definition itself so they never drift from `--help`:
//! man pages (clap_mangen) and shell completion scripts (clap_complete).

use super::args::{Cli, GenerateArgs, GenerateWhat};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

pub(super) fn cmd_generate(a: &GenerateArgs) -> Result<()> {
    match &a.what {
        GenerateWhat::Man { output } => man_pages(output),
        GenerateWhat::Completions { shell, output } => {
            let mut cmd = Cli::command();
            match output {
                None => {
                    clap_complete::generate(*shell, &mut cmd, "gospy", &mut std::io::stdout());
                    Ok(())
                }
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    clap_complete::generate_to(*shell, &mut cmd, "gospy", dir)
                        .with_context(|| format!("writing completions into {}", dir.display()))?;
                    Ok(())
                }
            }
        }
    }
}

/// gospy.1, then gospy-capture.1, gospy-analyze.1... for visible commands.
fn man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = Cli::command().name("gospy");
    write_page(dir, "gospy", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap names are &'static str without its "string" feature; this
        // runs once per package build.
        let name: &'static str = Box::leak(format!("gospy-{}", sub.get_name()).into_boxed_str());
        write_page(dir, name, sub.clone().name(name))?;
    }
    Ok(())
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .with_context(|| format!("rendering the man page {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))
}
