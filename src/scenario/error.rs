//! [`ScenarioError`]: one human-first message about a scenario file, with the
//! place it points at, and the helpers that build it (positions, suggestions).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// What is wrong with a scenario file, and where.
///
/// Displayed as `file:line:column: key: message`, followed by an indented
/// `help:` line when there is advice. The `key: ` part is left out when the
/// message already names the key itself (as in ``unknown key `holdd` in
/// [workload]``), and the position when it is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The scenario file, as given.
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) on that line, when known.
    pub column: Option<usize>,
    /// Dotted path of the offending key (`workload.hold`, `faults[0].delay`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What would be valid, or how to fix it.
    pub help: Option<String>,
}

impl ScenarioError {
    /// An error about the whole file (no position, no key).
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
            help: None,
        }
    }

    /// Whether the message already names the key's last segment in backticks.
    fn message_names_key(&self, key: &str) -> bool {
        let last = key.rsplit('.').next().unwrap_or(key);
        let last = last.split('[').next().unwrap_or(last);
        [
            format!("`{last}`"),
            format!("`{key}`"),
            format!("`[{key}]`"),
        ]
        .iter()
        .any(|m| self.message.contains(m.as_str()))
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key
            && !self.message_names_key(key)
        {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// 1-based (line, column) of byte offset `offset` in `src`; the column counts
/// characters, not bytes.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Builds errors for one source text.
#[derive(Clone, Copy)]
pub(crate) struct Locator<'a> {
    pub src: &'a str,
    pub file: &'a Path,
}

impl Locator<'_> {
    /// An error pointing at `span`.
    pub fn at(
        &self,
        span: Range<usize>,
        key: Option<&str>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioError {
        let (line, col) = line_col(self.src, span.start);
        ScenarioError {
            file: self.file.to_path_buf(),
            line: Some(line),
            column: Some(col),
            key: key.map(str::to_string),
            message: message.into(),
            help,
        }
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            let score = strsim::jaro_winkler(&word, c)
                .max(strsim::normalized_damerau_levenshtein(&word, c));
            (score, *c)
        })
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `did you mean `x`? <label>: a, b, c` (the first part only when a candidate
/// is close to `word`).
pub fn help_with(word: &str, candidates: &[&str], label: &str) -> String {
    let list = candidates.join(", ");
    match suggest(word, candidates) {
        Some(s) => format!("did you mean `{s}`? {label}: {list}"),
        None => format!("{label}: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // `=` after `bé ` is byte 10 (é is two bytes) and char column 4.
        assert_eq!(line_col(src, 10), (2, 4));
        assert_eq!(line_col(src, 1000), (3, 1));
    }

    #[test]
    fn suggestions() {
        let keys = [
            "nodes",
            "keys",
            "key_pick",
            "hold",
            "think",
            "acquire_timeout",
            "rate",
        ];
        assert_eq!(suggest("holdd", &keys), Some("hold"));
        assert_eq!(suggest("key-pick", &keys), Some("key_pick"));
        assert_eq!(suggest("zzzzzz", &keys), None);
        assert_eq!(
            suggest("setnx", &["set-nx", "naive-del", "get-set"]),
            Some("set-nx")
        );
        assert_eq!(
            help_with("holdd", &keys, "valid keys"),
            "did you mean `hold`? valid keys: nodes, keys, key_pick, hold, think, acquire_timeout, rate"
        );
    }

    #[test]
    fn display_formats() {
        let e = ScenarioError {
            file: PathBuf::from("scenarios/x.toml"),
            line: Some(5),
            column: Some(11),
            key: Some("backend.variant".into()),
            message: "unknown variant `setnx` for kind `redis`".into(),
            help: Some("did you mean `set-nx`? valid: set-nx, naive-del, get-set".into()),
        };
        assert_eq!(
            e.to_string(),
            "scenarios/x.toml:5:11: backend.variant: unknown variant `setnx` for kind `redis`\n  \
             help: did you mean `set-nx`? valid: set-nx, naive-del, get-set"
        );
        let e = ScenarioError {
            key: Some("workload.holdd".into()),
            message: "unknown key `holdd` in [workload]".into(),
            help: None,
            ..e
        };
        assert_eq!(
            e.to_string(),
            "scenarios/x.toml:5:11: unknown key `holdd` in [workload]"
        );
        let e = ScenarioError::file_level(Path::new("x.toml"), "cannot read");
        assert_eq!(e.to_string(), "x.toml: cannot read");
    }
}
