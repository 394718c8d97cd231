//! Man pages and shell completions generated from the clap definition (so they never drift
//! from `--help`): `dbhost debug gen-man DIR` and `dbhost debug gen-completions DIR`, used by
//! packaging (.deb) and by anyone installing the static binary by hand.

use super::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::fs;
use std::path::{Path, PathBuf};

/// Write `dbhost.8` and one `dbhost-<subcommand>.8` per visible subcommand into `dir`.
pub fn write_man(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = Cli::command();
    let mut written = Vec::new();
    let mut render = |c: clap::Command, name: String| -> Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .title(name.clone())
            .section("8")
            .manual("dbhost manual")
            .render(&mut buf)
            .with_context(|| format!("rendering the {name} man page"))?;
        let p = dir.join(format!("{name}.8"));
        crate::host::atomic_write(&p, &buf, 0o644)
            .with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dbhost-{}", sub.get_name());
        // clap (without its "string" feature) wants a &'static name; this runs once per page.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        render(sub.clone().name(leaked), name)?;
    }
    render(cmd, "dbhost".to_string())?;
    Ok(written)
}

/// Write bash, zsh and fish completions into `dir`.
pub fn write_completions(dir: &Path) -> Result<Vec<PathBuf>> {
    use clap_complete::{generate_to, Shell};
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command();
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let p = generate_to(shell, &mut cmd, "dbhost", dir)
            .with_context(|| format!("writing {shell} completions into {}", dir.display()))?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_and_completions_cover_the_cli() {
        let d = tempfile::tempdir().unwrap();
        let pages = write_man(d.path()).unwrap();
        let main = fs::read_to_string(d.path().join("dbhost.8")).unwrap();
        assert!(
            main.contains(".TH dbhost 8"),
            "{}",
            &main[..200.min(main.len())]
        );
        assert!(main.contains("generalize"));
        let gen = fs::read_to_string(d.path().join("dbhost-generalize.8")).unwrap();
        assert!(gen.contains("dry\\-run"), "{gen}");
        assert!(
            !gen.contains("first\\-boot"),
            "hidden options stay out of the man page"
        );
        assert!(pages.len() > 5);
        let comps = write_completions(d.path()).unwrap();
        assert_eq!(comps.len(), 3);
        let bash = fs::read_to_string(d.path().join("dbhost.bash")).unwrap();
        assert!(bash.contains("generalize"));
        assert!(d.path().join("_dbhost").exists());
        assert!(d.path().join("dbhost.fish").exists());
    }
}
