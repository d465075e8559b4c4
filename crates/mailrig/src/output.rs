//! How the program talks to the person running it: the one error prefix (`mailrig: error: ...`), the
//! colour decision (`--color auto|always|never`, `NO_COLOR`) and `-` as standard output for every
//! file a report can be written to.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use clap::ValueEnum;

/// The exit code for "could not run" (bad flags or files, a target that cannot be reached), the same
/// for every subcommand.
pub const EXIT_COULD_NOT_RUN: u8 = 2;

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always colour, even into a pipe or file.
    Always,
    /// Never colour.
    Never,
}

static COLOR: OnceLock<ColorChoice> = OnceLock::new();

/// Remembers the choice for the whole run (called once, from `main`).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// Whether text for standard output gets ANSI colours.
pub fn colour_stdout() -> bool {
    colour_for(std::io::stdout().is_terminal())
}

fn colour_for(is_terminal: bool) -> bool {
    decide(
        COLOR.get().copied().unwrap_or_default(),
        is_terminal,
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
}

/// `always` and `never` win; `auto` colours a terminal unless `NO_COLOR` is set (https://no-color.org).
fn decide(choice: ColorChoice, is_terminal: bool, no_color: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && !no_color,
    }
}

/// Prints `mailrig: error: MESSAGE` on standard error: the one way every subcommand reports an error.
pub fn error(message: impl std::fmt::Display) {
    eprintln!("mailrig: error: {message}");
}

/// Whether PATH means standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Writes TEXT to PATH, or to standard output when PATH is `-`.
pub fn write_to(path: &Path, text: &str) -> anyhow::Result<()> {
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write to standard output")
    } else {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_rules() {
        assert!(decide(ColorChoice::Auto, true, false));
        assert!(!decide(ColorChoice::Auto, true, true));
        assert!(!decide(ColorChoice::Auto, false, false));
        assert!(decide(ColorChoice::Always, false, true));
        assert!(!decide(ColorChoice::Never, true, false));
    }
}
