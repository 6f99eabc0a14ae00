//! Validating `[[faults]]` entries: kind-specific keys, node selections
//! against the workload, start times against the run.

use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use super::dist::DurFmt;
use super::error::help_with;
use super::fault::{FaultKind, FaultSpec, NodeSel};
use super::reader::{Ctx, Result, Table};

/// Keys every fault kind takes.
const COMMON_KEYS: &[&str] = &["at", "kind", "nodes"];
/// Keys some fault kind takes.
const ALL_FAULT_KEYS: &[&str] = &[
    "at",
    "kind",
    "nodes",
    "duration",
    "when",
    "delay",
    "jitter",
    "endpoints",
    "command",
];

/// Valid keys for one kind: the common ones, then its own.
fn keys_of(kind: FaultKind) -> Vec<&'static str> {
    COMMON_KEYS.iter().chain(kind.own_keys()).copied().collect()
}

impl Ctx<'_> {
    /// Every `[[faults]]` entry, validated against the run `duration` and
    /// the workload's `nodes`.
    pub fn faults(
        &self,
        root: &Table<'_, '_>,
        duration: Duration,
        nodes: u32,
    ) -> Result<Vec<FaultSpec>> {
        let Some(v) = root.get("faults") else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.err(
                v.span(),
                "faults",
                format!(
                    "expected [[faults]] entries, found {}",
                    v.get_ref().type_str()
                ),
                Some("write each fault as a `[[faults]]` table".into()),
            ));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("faults[{i}]");
            let DeValue::Table(t) = item.get_ref() else {
                return Err(self.err(
                    item.span(),
                    &path,
                    format!(
                        "expected a [[faults]] table, found {}",
                        item.get_ref().type_str()
                    ),
                    Some("write each fault as a `[[faults]]` table".into()),
                ));
            };
            let what = format!("[[faults]] entry #{}", i + 1);
            let t = Table::new(path, what, item.span(), t);
            out.push(self.fault(&t, duration, nodes)?);
        }
        Ok(out)
    }

    fn fault(&self, t: &Table<'_, '_>, run: Duration, nodes: u32) -> Result<FaultSpec> {
        self.check_keys(t, ALL_FAULT_KEYS)?;
        let Some((kind_name, kind_span)) = self.string(t, "kind", "\"pause\"")? else {
            return Err(self.missing(
                t,
                "kind",
                &format!("valid kinds: {}", FaultKind::NAMES.join(", ")),
            ));
        };
        let Some(kind) = FaultKind::from_name(kind_name.trim()) else {
            return Err(self.err(
                kind_span,
                &t.key("kind"),
                format!("unknown fault kind `{kind_name}`"),
                Some(help_with(&kind_name, &FaultKind::NAMES, "valid")),
            ));
        };
        let valid = keys_of(kind);
        for (k, span) in t.keys() {
            if !valid.contains(&k) {
                return Err(self.err(
                    span,
                    &t.key(k),
                    format!("key `{k}` does not apply to a `{kind}` fault"),
                    Some(format!("keys for {kind} faults: {}", valid.join(", "))),
                ));
            }
        }

        let Some((at, at_span)) = self.duration(t, "at")? else {
            return Err(self.missing(
                t,
                "at",
                "say when it starts, e.g. `at = \"10s\"` from the start of the run",
            ));
        };
        if at >= run {
            return Err(self.err(
                at_span,
                &t.key("at"),
                format!(
                    "fault at {} would start after the run ends (duration = {})",
                    DurFmt(at),
                    DurFmt(run)
                ),
                Some("`at` must be less than the scenario's `duration`".into()),
            ));
        }
        let node_sel = self.node_sel(t, nodes)?;
        let duration = self.positive_duration(t, "duration")?.map(|d| d.0);
        if duration.is_none()
            && matches!(
                kind,
                FaultKind::Pause | FaultKind::Latency | FaultKind::Partition
            )
        {
            return Err(self.missing(
                t,
                "duration",
                &format!("a {kind} fault needs `duration = \"5s\"`"),
            ));
        }
        let when_holding =
            match self.string(t, "when", "\"holding\"")? {
                None => false,
                Some((w, _)) if w.trim() == "holding" => true,
                Some((w, span)) => {
                    return Err(self.err(
                    span,
                    &t.key("when"),
                    format!("invalid `when` value `{w}`"),
                    Some("the only valid value is \"holding\" (pause while the node holds a lock); \
                          leave `when` out to pause at `at` whatever the node does"
                        .into()),
                ));
                }
            };
        let delay = self.positive_duration(t, "delay")?.map(|d| d.0);
        if kind == FaultKind::Latency && delay.is_none() {
            return Err(self.missing(
                t,
                "delay",
                "a latency fault needs `delay = \"30ms\"` (and optionally `jitter`)",
            ));
        }
        let jitter = self.duration(t, "jitter")?.map(|d| d.0);
        let endpoints = self
            .strings(t, "endpoints", "[\"redis://127.0.0.1:7001\"]")?
            .map(|e| e.0)
            .unwrap_or_default();
        let command = match self.string(t, "command", "\"scripts/backends stop redis\"")? {
            Some((c, span)) if c.trim().is_empty() => {
                return Err(self.err(span, &t.key("command"), "`command` is empty", None));
            }
            c => c.map(|c| c.0),
        };
        if kind == FaultKind::Exec && command.is_none() {
            return Err(self.missing(
                t,
                "command",
                "an exec fault needs `command = \"scripts/backends stop redis\"`",
            ));
        }
        Ok(FaultSpec {
            at,
            kind,
            nodes: node_sel,
            duration,
            when_holding,
            delay,
            jitter,
            endpoints,
            command,
            line: super::error::line_col(self.loc.src, t.span.start).0,
        })
    }

    /// `nodes`: "all", "a..b", an index or a list of indices, each < `nodes`.
    fn node_sel(&self, t: &Table<'_, '_>, nodes: u32) -> Result<NodeSel> {
        let Some(v) = t.get("nodes") else {
            return Ok(NodeSel::All);
        };
        let key = t.key("nodes");
        let form_help = "write \"all\", a half-open range such as \"0..4\" (nodes 0, 1, 2, 3), or a list such as [0, 1]";
        let out_of_range = |span: Range<usize>, what: String| {
            self.err(
                span,
                &key,
                format!("{what} is out of range: the workload has {nodes} nodes (0..{nodes})"),
                Some(format!(
                    "node indices go from 0 to {}",
                    nodes.saturating_sub(1)
                )),
            )
        };
        let index = |item: &toml::Spanned<DeValue<'_>>| -> Result<u32> {
            let n = match item.get_ref() {
                DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
                _ => None,
            };
            match n {
                Some(n) if (0..i128::from(nodes)).contains(&n) => Ok(n as u32),
                Some(n) => Err(out_of_range(item.span(), format!("node {n}"))),
                None => Err(self.err(
                    item.span(),
                    &key,
                    format!("expected a node index, found {}", item.get_ref().type_str()),
                    Some(form_help.into()),
                )),
            }
        };
        match v.get_ref() {
            DeValue::Integer(_) => Ok(NodeSel::List(vec![index(v)?])),
            DeValue::Array(items) => {
                if items.is_empty() {
                    return Err(self.err(
                        v.span(),
                        &key,
                        "empty node list",
                        Some(form_help.into()),
                    ));
                }
                items
                    .iter()
                    .map(index)
                    .collect::<Result<Vec<_>>>()
                    .map(NodeSel::List)
            }
            DeValue::String(s) => {
                let s = self.subst(s, v.span(), &key)?;
                let sel = s.parse::<NodeSel>().map_err(|e| {
                    self.err(
                        v.span(),
                        &key,
                        format!("invalid node selection `{s}`: {e}"),
                        Some(form_help.into()),
                    )
                })?;
                match &sel {
                    NodeSel::Range(_, b) if *b > nodes => {
                        Err(out_of_range(v.span(), format!("range `{sel}`")))
                    }
                    NodeSel::List(l) => match l.iter().find(|n| **n >= nodes) {
                        Some(n) => Err(out_of_range(v.span(), format!("node {n}"))),
                        None => Ok(sel),
                    },
                    _ => Ok(sel),
                }
            }
            other => Err(self.err(
                v.span(),
                &key,
                format!(
                    "expected \"all\", a range or a list of node indices, found {}",
                    other.type_str()
                ),
                Some(form_help.into()),
            )),
        }
    }
}
