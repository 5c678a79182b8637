//! Shell completion scripts and the man page, both generated from the clap definition in
//! [`crate::cli`].
//!
//! Owns rendering only: nothing here parses arguments or touches the file system, so that
//! `switchyard completions` and `switchyard man` print what packagers install.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "switchyard", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

/// The man page `switchyard(1)` in roff: synopsis, options and every subcommand.
pub fn man_page() -> anyhow::Result<String> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    Ok(String::from_utf8(page)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = completions(shell);
            for subcommand in ["validate", "plugin", "completions"] {
                assert!(script.contains(subcommand), "{shell}: no `{subcommand}`");
            }
        }
    }

    #[test]
    fn the_man_page_names_the_commands() {
        let page = man_page().unwrap();
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains(".TH switchyard 1"), "{page}");
        assert!(page.contains("validate"), "{page}");
    }
}
