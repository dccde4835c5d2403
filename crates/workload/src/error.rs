//! Load errors and warnings, both pointing at a line and column of the workload file.
//!
//! A [`LoadError`] stops the load (the command line exits with code 2 and prints it); a
//! [`Warning`] names a key the simulator does not model, or a construct rt-app treats
//! surprisingly, and the load goes on. Both print in the compiler style editors understand:
//! `FILE:LINE:COL: error: MESSAGE`.

use std::fmt;

/// Why a workload could not be loaded: the file, the 1-based line and column, and a message
/// that says what was expected (`expected an integer number of microseconds for "run", found
/// a string`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for LoadError {}

/// Something in the workload that the simulator skips or interprets in a way worth knowing:
/// the key it is about, where that key is, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: u32,
    pub column: u32,
    /// The JSON key the warning is about (`"mem"`, `"util_min"`, `"frag"`).
    pub key: String,
    pub message: String,
}

impl Warning {
    /// `FILE:LINE:COL: warning: MESSAGE`, the form the command line prints.
    pub fn render(&self, file: &str) -> String {
        format!("{file}:{}:{}: warning: {}", self.line, self.column, self.message)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: {}", self.line, self.column, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_formats() {
        let e = LoadError {
            file: "w.json".into(),
            line: 3,
            column: 14,
            message: "expected an object".into(),
        };
        assert_eq!(e.to_string(), "w.json:3:14: error: expected an object");
        let w = Warning {
            line: 2,
            column: 5,
            key: "mem".into(),
            message: "skipped".into(),
        };
        assert_eq!(w.render("w.json"), "w.json:2:5: warning: skipped");
        assert_eq!(w.to_string(), "2:5: warning: skipped");
    }
}
