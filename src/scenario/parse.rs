//! From TOML text to a validated [`Scenario`]: the top level, `[backend]`,
//! `[workload]` and `[thresholds]` (faults: [`super::parse_fault`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::dist::DurFmt;
use super::error::{Locator, help_with, suggest};
use super::reader::{Ctx, Result, Table};
use super::{
    BackendSpec, DEFAULT_DURATION, Dist, KeyPick, MAX_NODES, Scenario, Thresholds, Workload,
};
use crate::backend::catalog;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "warmup",
    "backend",
    "workload",
    "faults",
    "thresholds",
];
const BACKEND_KEYS: &[&str] = &[
    "kind", "variant", "url", "urls", "ttl", "retry", "rtt", "path",
];
const WORKLOAD_KEYS: &[&str] = &[
    "nodes",
    "keys",
    "key_pick",
    "hold",
    "think",
    "acquire_timeout",
    "rate",
];
const THRESHOLD_KEYS: &[&str] = &[
    "max_violations",
    "max_unfenced_violations",
    "p99_acquire",
    "min_throughput",
    "min_jain",
];

/// Parse and validate a whole scenario.
pub(super) fn parse(
    src: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Scenario> {
    let loc = Locator { src, file };
    let doc = DeTable::parse(src).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        Box::new(loc.at(
            span,
            None,
            format!("invalid TOML: {}", e.message().trim()),
            None,
        ))
    })?;
    let cx = Ctx { loc, env };
    let root = Table::new(String::new(), "the top level".into(), 0..0, doc.get_ref());
    check_top_keys(&cx, &root)?;

    let Some((name, name_span)) = cx.string(&root, "name", "\"hot-key\"")? else {
        return Err(cx.missing(
            &root,
            "name",
            "add a line such as `name = \"hot-key\"` at the top",
        ));
    };
    if name.trim().is_empty() {
        return Err(cx.err(name_span, "name", "`name` must not be empty", None));
    }
    let description = cx
        .string(&root, "description", "\"what this shows\"")?
        .map(|d| d.0);
    let seed = cx
        .int_in(&root, "seed", 0, i128::from(u64::MAX), "7")?
        .map(|s| s.0 as u64);
    let duration = match cx.positive_duration(&root, "duration")? {
        Some((d, _)) => d,
        None => DEFAULT_DURATION,
    };
    let warmup = match cx.duration(&root, "warmup")? {
        Some((w, span)) if w >= duration => {
            return Err(cx.err(
                span,
                "warmup",
                format!(
                    "`warmup` ({}) must be shorter than `duration` ({})",
                    DurFmt(w),
                    DurFmt(duration)
                ),
                Some(
                    "the warmup is part of the duration; lengthen `duration` or shorten `warmup`"
                        .into(),
                ),
            ));
        }
        Some((w, _)) => w,
        None => Duration::ZERO,
    };

    let Some(bt) = cx.section(&root, "backend")? else {
        return Err(cx.missing(
            &root,
            "backend",
            "add a [backend] table, e.g. `[backend]` then `kind = \"mem\"`",
        ));
    };
    let backend = parse_backend(&cx, &bt)?;

    let workload = match cx.section(&root, "workload")? {
        Some(wt) => parse_workload(&cx, &wt)?,
        None => Workload::default(),
    };
    let thresholds = match cx.section(&root, "thresholds")? {
        Some(tt) => parse_thresholds(&cx, &tt)?,
        None => Thresholds::default(),
    };
    let faults = cx.faults(&root, duration, workload.nodes)?;

    Ok(Scenario {
        name,
        description,
        seed,
        duration,
        warmup,
        backend,
        workload,
        faults,
        thresholds,
        file: file.to_path_buf(),
    })
}

fn check_top_keys(cx: &Ctx<'_>, root: &Table<'_, '_>) -> Result<()> {
    for (k, span) in root.keys() {
        if TOP_KEYS.contains(&k) {
            continue;
        }
        let is_table = matches!(root.get(k).map(|v| v.get_ref()), Some(DeValue::Table(_)));
        let message = if is_table {
            format!("unknown section `[{k}]`")
        } else {
            format!("unknown top-level key `{k}`")
        };
        let valid = "name, description, seed, duration, warmup, [backend], [workload], [[faults]], [thresholds]";
        let help = match suggest(k, TOP_KEYS) {
            Some(s) if matches!(s, "backend" | "workload" | "thresholds") => {
                format!("did you mean `[{s}]`? valid: {valid}")
            }
            Some("faults") => format!("did you mean `[[faults]]`? valid: {valid}"),
            Some(s) => format!("did you mean `{s}`? valid: {valid}"),
            None => format!("valid: {valid}"),
        };
        // A section is reported at its `[header]`, a key at the key.
        let span = match root.get(k) {
            Some(v) if is_table => v.span(),
            _ => span,
        };
        return Err(cx.err(span, k, message, Some(help)));
    }
    Ok(())
}

fn parse_backend(cx: &Ctx<'_>, t: &Table<'_, '_>) -> Result<BackendSpec> {
    cx.check_keys(t, BACKEND_KEYS)?;
    let names = catalog::kind_names();
    let Some((kind_name, kind_span)) = cx.string(t, "kind", "\"mem\"")? else {
        return Err(cx.missing(t, "kind", &format!("valid kinds: {}", names.join(", "))));
    };
    let Some(kind) = catalog::kind(kind_name.trim()) else {
        return Err(cx.err(
            kind_span,
            "backend.kind",
            format!("unknown backend kind `{kind_name}`"),
            Some(help_with(&kind_name, &names, "valid")),
        ));
    };
    let variant = match cx.string(
        t,
        "variant",
        &format!("\"{}\"", kind.default_variant().name),
    )? {
        None => kind.default_variant(),
        Some((v, span)) => match kind.variant(v.trim()) {
            Some(info) => info,
            None => {
                return Err(cx.err(
                    span,
                    "backend.variant",
                    format!("unknown variant `{v}` for kind `{}`", kind.name),
                    Some(help_with(&v, &kind.variant_names(), "valid")),
                ));
            }
        },
    };

    // Keys that only some kinds take, checked in source order.
    let k = kind.name;
    for (key, span) in t.keys() {
        let bad = match key {
            "url" => match k {
                "mem" => Some((
                    "kind `mem` is embedded and takes no `url`".to_string(),
                    "remove `url`; use `rtt = \"200us\"` to simulate a round trip",
                )),
                "sqlite" => Some((
                    "kind `sqlite` is embedded and takes no `url`".to_string(),
                    "use `path = \"lockstorm.db\"` for the database file",
                )),
                "redlock" => Some((
                    "kind `redlock` takes `urls`, not `url`".to_string(),
                    "use `urls = [\"redis://127.0.0.1:7001\", ...]`, one per Redis instance",
                )),
                _ => None,
            },
            "urls" if k != "redlock" => Some((
                format!("`urls` is only for kind `redlock`, not `{k}`"),
                if matches!(k, "mem" | "sqlite") {
                    "remove it: embedded kinds take no endpoint"
                } else {
                    "use `url = \"...\"` for the one endpoint"
                },
            )),
            "rtt" if k != "mem" => Some((
                format!("`rtt` is only for kind `mem`, not `{k}`"),
                "remove it: real backends have a real round trip",
            )),
            "path" if k != "sqlite" => Some((
                format!("`path` is only for kind `sqlite`, not `{k}`"),
                "remove it, or use `url` for a networked backend's endpoint",
            )),
            _ => None,
        };
        if let Some((message, help)) = bad {
            return Err(cx.err(span, &t.key(key), message, Some(help.to_string())));
        }
    }

    let url = cx
        .string(t, "url", "\"redis://127.0.0.1:6379\"")?
        .map(|u| u.0);
    let urls = match cx.strings(
        t,
        "urls",
        "[\"redis://127.0.0.1:7001\", \"redis://127.0.0.1:7002\"]",
    )? {
        Some((v, span)) if v.is_empty() => {
            return Err(cx.err(
                span,
                "backend.urls",
                "`urls` is empty",
                Some(
                    "list every Redis instance, e.g. `urls = [\"redis://127.0.0.1:7001\", ...]`"
                        .into(),
                ),
            ));
        }
        Some((v, _)) => v,
        None => Vec::new(),
    };
    Ok(BackendSpec {
        kind,
        variant,
        url,
        urls,
        ttl: cx.positive_duration(t, "ttl")?.map(|d| d.0),
        retry: cx.duration(t, "retry")?.map(|d| d.0),
        rtt: cx.duration(t, "rtt")?.map(|d| d.0),
        path: cx
            .string(t, "path", "\"lockstorm.db\"")?
            .map(|p| PathBuf::from(p.0)),
    })
}

fn parse_workload(cx: &Ctx<'_>, t: &Table<'_, '_>) -> Result<Workload> {
    cx.check_keys(t, WORKLOAD_KEYS)?;
    let mut w = Workload::default();
    if let Some((n, _)) = cx.int_in(t, "nodes", 1, i128::from(MAX_NODES), "32")? {
        w.nodes = n as u32;
    }
    if let Some((n, _)) = cx.int_in(t, "keys", 1, i128::from(u32::MAX), "1")? {
        w.keys = n as u32;
    }
    if let Some((s, span)) = cx.string(t, "key_pick", "\"uniform\"")? {
        w.key_pick = s.parse::<KeyPick>().map_err(|e| {
            cx.err(
                span,
                "workload.key_pick",
                format!("invalid key pick `{s}`: {}", e.message),
                Some(e.help),
            )
        })?;
    }
    for (name, slot) in [("hold", &mut w.hold), ("think", &mut w.think)] {
        if let Some((s, span)) = cx.string(t, name, "\"exp(2ms)\"")? {
            *slot = s.parse::<Dist>().map_err(|e| {
                cx.err(
                    span,
                    &t.key(name),
                    format!("invalid distribution `{s}`: {}", e.message),
                    Some(e.help),
                )
            })?;
        }
    }
    if let Some((d, _)) = cx.positive_duration(t, "acquire_timeout")? {
        w.acquire_timeout = d;
    }
    w.rate = cx.float_where(
        t,
        "rate",
        "2000",
        "a finite number > 0 (attempts per second)",
        |x| x.is_finite() && x > 0.0,
    )?;
    Ok(w)
}

fn parse_thresholds(cx: &Ctx<'_>, t: &Table<'_, '_>) -> Result<Thresholds> {
    cx.check_keys(t, THRESHOLD_KEYS)?;
    let max = i128::from(u64::MAX);
    Ok(Thresholds {
        max_violations: cx
            .int_in(t, "max_violations", 0, max, "0")?
            .map(|n| n.0 as u64),
        max_unfenced_violations: cx
            .int_in(t, "max_unfenced_violations", 0, max, "0")?
            .map(|n| n.0 as u64),
        p99_acquire: cx.duration(t, "p99_acquire")?.map(|d| d.0),
        min_throughput: cx.float_where(
            t,
            "min_throughput",
            "500",
            "a finite number >= 0",
            |x| x.is_finite() && x >= 0.0,
        )?,
        min_jain: cx.float_where(t, "min_jain", "0.8", "in 0..=1", |x| {
            (0.0..=1.0).contains(&x)
        })?,
    })
}
