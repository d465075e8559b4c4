//! Errors in a file a person wrote, located: `file:line:column: what is wrong`.
//!
//! Scenario files ([`crate::scenario::ScenarioError`]), probe target files and
//! their mailbox CSVs (`mailrig_probe::TargetError`) all report through this
//! one type, so every file error reads the same and a test (or the fuzz
//! checks) can assert the location of any of them in one way.

/// A file that cannot be used. `Display` gives `file:line:column: message`,
/// or `file: cannot read KIND file: reason` when it could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocatedError {
    #[error("{file}: cannot read {kind} file: {reason}")]
    Read {
        file: String,
        /// What the file is meant to be: `scenario`, `target`.
        kind: &'static str,
        reason: String,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        message: String,
    },
}

impl LocatedError {
    /// An error at a byte offset of `src` (clamped to the text).
    pub fn at(file: &str, src: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_col(src, offset);
        LocatedError::Invalid {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error at the start of a 1-based line (files read line by line, such as CSV).
    pub fn at_line(file: &str, line: usize, message: impl Into<String>) -> Self {
        LocatedError::Invalid {
            file: file.to_string(),
            line,
            column: 1,
            message: message.into(),
        }
    }

    /// A file of this kind that could not be read.
    pub fn read(file: &str, kind: &'static str, reason: impl std::fmt::Display) -> Self {
        LocatedError::Read {
            file: file.to_string(),
            kind,
            reason: reason.to_string(),
        }
    }

    /// The file named.
    pub fn file(&self) -> &str {
        match self {
            LocatedError::Read { file, .. } | LocatedError::Invalid { file, .. } => file,
        }
    }

    /// `(line, column)`, when the error has a place in the text.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            LocatedError::Read { .. } => None,
            LocatedError::Invalid { line, column, .. } => Some((*line, *column)),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..floor_char_boundary(src, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncä d", 6), (2, 3));
        assert_eq!(line_col("", 10), (1, 1));
        // An offset inside a multi-byte character counts the character's start.
        assert_eq!(line_col("ä", 1), (1, 1));
    }

    #[test]
    fn display_is_file_line_column_message() {
        let e = LocatedError::at("s.toml", "a\nbc = 1\n", 4, "bad");
        assert_eq!(e.to_string(), "s.toml:2:3: bad");
        assert_eq!(e.location(), Some((2, 3)));
        assert_eq!(e.file(), "s.toml");
        assert_eq!(
            LocatedError::at_line("m.csv", 3, "no").to_string(),
            "m.csv:3:1: no"
        );
        let r = LocatedError::read("t.toml", "target", "No such file");
        assert_eq!(
            r.to_string(),
            "t.toml: cannot read target file: No such file"
        );
        assert_eq!(r.location(), None);
    }
}
