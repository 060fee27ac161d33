//! Generates the man pages of `cronusfs` and of every subcommand from the clap definitions.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// Writes `cronusfs.1` and one `cronusfs-<sub>[-<subsub>].1` per visible subcommand into `dir`.
pub fn write_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut root = Cli::command();
    root.build();
    write_tree(&root, "cronusfs", dir)
}

fn write_tree(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    // The synopsis is the usage line `--help` shows, word for word (clap_mangen's own drops
    // the values of options and the `...` of repeated arguments).
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_string();
    let page = cmd.clone().name(name.to_string()).override_usage(usage);
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page).render(&mut bytes)?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
