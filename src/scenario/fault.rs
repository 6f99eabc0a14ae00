//! `[[faults]]` entries: what to break, when, and for which nodes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One `[[faults]]` entry, validated for its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// When it starts, from the start of the run (< duration).
    pub at: Duration,
    /// What it does.
    pub kind: FaultKind,
    /// Which nodes it affects (default all).
    pub nodes: NodeSel,
    /// How long it lasts (pause, latency, partition: required).
    pub duration: Option<Duration>,
    /// pause only: wait until the node holds the lock (`when = "holding"`).
    pub when_holding: bool,
    /// latency only: added delay (required, > 0).
    pub delay: Option<Duration>,
    /// latency only: random extra delay up to this much.
    pub jitter: Option<Duration>,
    /// partition, reset: endpoints affected (empty: all).
    pub endpoints: Vec<String>,
    /// exec only: the shell command to run.
    pub command: Option<String>,
    /// 1-based line of the `[[faults]]` entry (for messages).
    pub line: usize,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Freeze the node (like a GC pause or SIGSTOP).
    Pause,
    /// Add delay to the node's traffic.
    Latency,
    /// Cut the node off from endpoints.
    Partition,
    /// Reset the node's connections.
    Reset,
    /// Run a shell command (e.g. stop a server).
    Exec,
}

impl FaultKind {
    /// Every kind, in documentation order.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Pause,
        FaultKind::Latency,
        FaultKind::Partition,
        FaultKind::Reset,
        FaultKind::Exec,
    ];

    /// Every kind name, in documentation order.
    pub const NAMES: [&'static str; 5] = ["pause", "latency", "partition", "reset", "exec"];

    /// The name as written in a scenario.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Pause => "pause",
            FaultKind::Latency => "latency",
            FaultKind::Partition => "partition",
            FaultKind::Reset => "reset",
            FaultKind::Exec => "exec",
        }
    }

    /// Look a kind up by name.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The keys an entry of this kind may have (beyond `at`, `kind`, `nodes`).
    pub fn own_keys(self) -> &'static [&'static str] {
        match self {
            FaultKind::Pause => &["duration", "when"],
            FaultKind::Latency => &["delay", "jitter", "duration"],
            FaultKind::Partition => &["duration", "endpoints"],
            FaultKind::Reset => &["endpoints"],
            FaultKind::Exec => &["command"],
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which nodes a fault affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSel {
    /// Every node.
    All,
    /// These node indices.
    List(Vec<u32>),
    /// Half-open range `a..b` (`a < b`).
    Range(u32, u32),
}

impl NodeSel {
    /// Whether `node` is selected.
    pub fn contains(&self, node: u32) -> bool {
        match self {
            NodeSel::All => true,
            NodeSel::List(v) => v.contains(&node),
            NodeSel::Range(a, b) => (*a..*b).contains(&node),
        }
    }
}

impl fmt::Display for NodeSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSel::All => f.write_str("all"),
            NodeSel::List(v) => {
                f.write_str("[")?;
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}")?;
                }
                f.write_str("]")
            }
            NodeSel::Range(a, b) => write!(f, "{a}..{b}"),
        }
    }
}

/// Why a node selection did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseNodeSelError(pub String);

fn node_index(s: &str) -> Result<u32, ParseNodeSelError> {
    let t = s.trim();
    t.parse::<u32>()
        .map_err(|_| ParseNodeSelError(format!("`{t}` is not a node index")))
}

/// Parses `all`, `a..b` (half-open, `a < b`), `[0, 1]` or `0, 1`. Range and
/// index bounds against the workload are checked by the scenario parser.
impl FromStr for NodeSel {
    type Err = ParseNodeSelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "all" {
            return Ok(NodeSel::All);
        }
        if let Some((a, b)) = s.split_once("..") {
            let (a, b) = (node_index(a)?, node_index(b)?);
            if a >= b {
                return Err(ParseNodeSelError(format!(
                    "range `{a}..{b}` is empty: write a..b with a < b (half-open: 0..4 is nodes 0, 1, 2, 3)"
                )));
            }
            return Ok(NodeSel::Range(a, b));
        }
        let inner = s
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(s);
        if inner.trim().is_empty() {
            return Err(ParseNodeSelError(
                "empty node list: write \"all\", a range such as \"0..4\", or a list such as [0, 1]".into(),
            ));
        }
        inner
            .split(',')
            .map(node_index)
            .collect::<Result<Vec<_>, _>>()
            .map(NodeSel::List)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_sel_parses_displays_and_contains() {
        assert_eq!("all".parse::<NodeSel>().unwrap(), NodeSel::All);
        assert_eq!("0..4".parse::<NodeSel>().unwrap(), NodeSel::Range(0, 4));
        assert_eq!(" 2 .. 5 ".parse::<NodeSel>().unwrap(), NodeSel::Range(2, 5));
        assert_eq!(
            "[0, 1]".parse::<NodeSel>().unwrap(),
            NodeSel::List(vec![0, 1])
        );
        assert_eq!("3".parse::<NodeSel>().unwrap(), NodeSel::List(vec![3]));
        assert!("4..4".parse::<NodeSel>().unwrap_err().0.contains("a < b"));
        assert!("5..2".parse::<NodeSel>().is_err());
        assert!("x..2".parse::<NodeSel>().is_err());
        assert!("[]".parse::<NodeSel>().is_err());
        assert!("-1".parse::<NodeSel>().is_err());

        for s in ["all", "0..4", "[0, 1]", "[7]"] {
            assert_eq!(s.parse::<NodeSel>().unwrap().to_string(), s);
        }

        let r = NodeSel::Range(0, 4);
        assert!(r.contains(0) && r.contains(3) && !r.contains(4));
        let l = NodeSel::List(vec![1, 5]);
        assert!(l.contains(5) && !l.contains(0));
        assert!(NodeSel::All.contains(u32::MAX));
    }

    #[test]
    fn fault_kind_names() {
        for (k, n) in FaultKind::ALL.into_iter().zip(FaultKind::NAMES) {
            assert_eq!(k.as_str(), n);
            assert_eq!(k.to_string(), n);
            assert_eq!(FaultKind::from_name(n), Some(k));
        }
        assert_eq!(FaultKind::from_name("stop"), None);
    }
}
