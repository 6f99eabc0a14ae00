//! Scenario parsing: exact values, and every kind of error with its line,
//! key and suggestion.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

mod errors;

const FILE: &str = "scenarios/x.toml";

fn no_env(_: &str) -> Option<String> {
    None
}

#[allow(clippy::result_large_err)]
fn parse(src: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse_with_env(src, Path::new(FILE), &no_env)
}

#[track_caller]
fn err(src: &str) -> ScenarioError {
    match parse(src) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e,
    }
}

/// Asserts the error's line, key, and that its display contains `text`.
#[track_caller]
fn expect_err(src: &str, line: usize, key: &str, text: &str) -> ScenarioError {
    let e = err(src);
    let shown = e.to_string();
    assert_eq!(e.line, Some(line), "line of: {shown}");
    assert_eq!(e.key.as_deref(), Some(key), "key of: {shown}");
    assert!(shown.contains(text), "expected `{text}` in: {shown}");
    assert!(shown.starts_with(&format!("{FILE}:{line}:")), "{shown}");
    e
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const MEM: &str = "name = \"t\"\n[backend]\nkind = \"mem\"\n";

const FULL: &str = r#"name = "hot-key"
description = "32 nodes, one lock"
seed = 7
duration = "30s"
warmup = "2s"

[backend]
kind = "redis"
variant = "naive-del"
url = "redis://127.0.0.1:6379"
ttl = "5s"
retry = "2ms"

[workload]
nodes = 32
keys = 4
key_pick = "zipf(1.1)"
hold = "exp(2ms)"
think = "uniform(0ms, 1ms)"
acquire_timeout = "2s"
rate = 2000

[[faults]]
at = "10s"
kind = "pause"
nodes = [0, 1]
duration = "8s"
when = "holding"

[[faults]]
at = "12s"
kind = "latency"
nodes = "0..4"
delay = "30ms"
jitter = "5ms"
duration = "2s"

[[faults]]
at = "14s"
kind = "partition"
endpoints = ["redis://127.0.0.1:7001"]
duration = "1s"

[[faults]]
at = "15s"
kind = "reset"

[[faults]]
at = "16s"
kind = "exec"
command = "scripts/backends stop redis"

[thresholds]
max_violations = 0
max_unfenced_violations = 2
p99_acquire = "50ms"
min_throughput = 500
min_jain = 0.8
"#;

#[test]
fn full_example_parses_to_exact_values() {
    let s = parse(FULL).unwrap();
    assert_eq!(s.name, "hot-key");
    assert_eq!(s.description.as_deref(), Some("32 nodes, one lock"));
    assert_eq!(s.seed, Some(7));
    assert_eq!(s.duration, Duration::from_secs(30));
    assert_eq!(s.warmup, Duration::from_secs(2));
    assert_eq!(s.file, PathBuf::from(FILE));

    let b = &s.backend;
    assert_eq!(b.kind.name, "redis");
    assert_eq!(b.variant.name, "naive-del");
    assert_eq!(b.url.as_deref(), Some("redis://127.0.0.1:6379"));
    assert!(b.urls.is_empty());
    assert_eq!(b.ttl, Some(Duration::from_secs(5)));
    assert_eq!(b.retry, Some(ms(2)));
    assert_eq!(b.rtt, None);
    assert_eq!(b.path, None);

    assert_eq!(
        s.workload,
        Workload {
            nodes: 32,
            keys: 4,
            key_pick: KeyPick::Zipf(1.1),
            hold: Dist::Exp { mean: ms(2) },
            think: Dist::Uniform {
                lo: ms(0),
                hi: ms(1)
            },
            acquire_timeout: Duration::from_secs(2),
            rate: Some(2000.0),
        }
    );

    let blank = FaultSpec {
        at: Duration::ZERO,
        kind: FaultKind::Pause,
        nodes: NodeSel::All,
        duration: None,
        when_holding: false,
        delay: None,
        jitter: None,
        endpoints: vec![],
        command: None,
        line: 0,
    };
    let secs = Duration::from_secs;
    assert_eq!(
        s.faults,
        vec![
            FaultSpec {
                at: secs(10),
                nodes: NodeSel::List(vec![0, 1]),
                duration: Some(secs(8)),
                when_holding: true,
                line: 23,
                ..blank.clone()
            },
            FaultSpec {
                at: secs(12),
                kind: FaultKind::Latency,
                nodes: NodeSel::Range(0, 4),
                delay: Some(ms(30)),
                jitter: Some(ms(5)),
                duration: Some(secs(2)),
                line: 30,
                ..blank.clone()
            },
            FaultSpec {
                at: secs(14),
                kind: FaultKind::Partition,
                endpoints: vec!["redis://127.0.0.1:7001".into()],
                duration: Some(secs(1)),
                line: 38,
                ..blank.clone()
            },
            FaultSpec {
                at: secs(15),
                kind: FaultKind::Reset,
                line: 44,
                ..blank.clone()
            },
            FaultSpec {
                at: secs(16),
                kind: FaultKind::Exec,
                command: Some("scripts/backends stop redis".into()),
                line: 48,
                ..blank
            },
        ]
    );
    assert_eq!(s.faults[1].nodes.to_string(), "0..4");
    assert_eq!(s.faults[0].nodes.to_string(), "[0, 1]");

    assert_eq!(
        s.thresholds,
        Thresholds {
            max_violations: Some(0),
            max_unfenced_violations: Some(2),
            p99_acquire: Some(ms(50)),
            min_throughput: Some(500.0),
            min_jain: Some(0.8),
        }
    );
    assert!(!s.thresholds.is_empty());
}

#[test]
fn minimal_scenario_takes_the_defaults() {
    let s = parse(MEM).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.description, None);
    assert_eq!(s.seed, None);
    assert_eq!(s.duration, Duration::from_secs(30));
    assert_eq!(s.warmup, Duration::ZERO);
    assert_eq!(s.backend.kind.name, "mem");
    assert_eq!(s.backend.variant.name, "fifo");
    assert_eq!(s.backend.ttl, None);
    assert_eq!(s.workload, Workload::default());
    assert_eq!(s.workload.nodes, 8);
    assert_eq!(s.workload.hold, Dist::Const(ms(1)));
    assert!(s.workload.think.is_zero());
    assert_eq!(s.workload.acquire_timeout, Duration::from_secs(2));
    assert!(s.faults.is_empty());
    assert!(s.thresholds.is_empty());
}

#[test]
fn embedded_kinds_take_their_own_keys() {
    let s = parse("name = \"t\"\n[backend]\nkind = \"mem\"\nvariant = \"broken\"\nrtt = \"200us\"\nttl = \"20ms\"\n")
        .unwrap();
    assert_eq!(s.backend.variant.name, "broken");
    assert_eq!(s.backend.rtt, Some(Duration::from_micros(200)));
    assert_eq!(s.backend.ttl, Some(ms(20)));
    let s = parse("name = \"t\"\n[backend]\nkind = \"sqlite\"\npath = \"x.db\"\n").unwrap();
    assert_eq!(s.backend.variant.name, "lease-row");
    assert_eq!(s.backend.path, Some(PathBuf::from("x.db")));
    let s = parse(
        "name = \"t\"\n[backend]\nkind = \"redlock\"\nurls = [\"redis://a:1\", \"redis://b:2\"]\n",
    )
    .unwrap();
    assert_eq!(
        s.backend.urls,
        vec!["redis://a:1".to_string(), "redis://b:2".to_string()]
    );
}

#[test]
fn shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") {
            Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn env_vars_are_substituted_in_strings() {
    let env = |name: &str| match name {
        "PASS" => Some("s3cret".to_string()),
        "HOST" => Some("10.0.0.1".to_string()),
        "NAME" => Some("from-env".to_string()),
        _ => None,
    };
    let src = "name = \"${NAME}\"\ndescription = \"on ${HOST}\"\n[backend]\nkind = \"redis\"\n\
               url = \"redis://:${PASS}@${HOST}:6379\"\n[[faults]]\nat = \"1s\"\nkind = \"exec\"\n\
               command = \"ssh ${HOST} stop\"\n";
    let s = Scenario::parse_with_env(src, Path::new(FILE), &env).unwrap();
    assert_eq!(s.name, "from-env");
    assert_eq!(s.description.as_deref(), Some("on 10.0.0.1"));
    assert_eq!(
        s.backend.url.as_deref(),
        Some("redis://:s3cret@10.0.0.1:6379")
    );
    assert_eq!(s.faults[0].command.as_deref(), Some("ssh 10.0.0.1 stop"));

    let e = Scenario::parse_with_env(
        "name = \"t\"\n[backend]\nkind = \"redis\"\nurl = \"redis://:${NOPE}@h\"\n",
        Path::new(FILE),
        &env,
    )
    .unwrap_err();
    assert_eq!(e.line, Some(4));
    assert_eq!(e.key.as_deref(), Some("backend.url"));
    assert_eq!(
        e.to_string().lines().next().unwrap_or(""),
        "scenarios/x.toml:4:7: backend.url: environment variable `NOPE` is not set"
    );
    let e = Scenario::parse_with_env("name = \"a ${OPEN\"\n", Path::new(FILE), &env).unwrap_err();
    assert!(e.message.contains("unterminated"), "{e}");
    let e = Scenario::parse_with_env("name = \"${A-B}\"\n", Path::new(FILE), &env).unwrap_err();
    assert!(
        e.message
            .contains("invalid environment variable name `A-B`"),
        "{e}"
    );
    // Substitution happens in kind and variant too.
    let kenv = |n: &str| (n == "K").then(|| "mem".to_string());
    let s = Scenario::parse_with_env(
        "name = \"t\"\n[backend]\nkind = \"${K}\"\n",
        Path::new(FILE),
        &kenv,
    )
    .unwrap();
    assert_eq!(s.backend.kind.name, "mem");
}

#[test]
fn load_names_an_unreadable_file() {
    let e = Scenario::load(Path::new("/nonexistent/dir/x.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/dir/x.toml: cannot read scenario file"),
        "{e}"
    );
    assert_eq!(e.line, None);
}

#[test]
fn fixtures_fail_where_they_say() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut bad = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("good-") {
            Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        if !name.starts_with("bad-") {
            continue;
        }
        bad += 1;
        let text = std::fs::read_to_string(&f).unwrap();
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.starts_with("# expect: line "),
            "{name}: first line must be `# expect: line N`"
        );
        let e = Scenario::load(&f).expect_err(&name);
        let shown = e.to_string();
        for want in text.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            if let Some(n) = want.strip_prefix("line ") {
                let n: usize = n.trim().parse().unwrap();
                assert_eq!(e.line, Some(n), "{name}: {shown}");
                assert!(
                    shown.starts_with(&format!("{}:{n}:", f.display())),
                    "{shown}"
                );
            } else {
                assert!(
                    shown.contains(want.trim()),
                    "{name}: expected `{}` in {shown}",
                    want.trim()
                );
            }
        }
    }
    assert!(bad >= 8, "only {bad} bad-*.toml fixtures");
}
