//! Every kind of error: its line, key, message and suggestion.

use super::*;

#[test]
fn unknown_key_suggests_the_nearest_and_lists_valid_keys() {
    let src = format!("{MEM}\n[workload]\nnodes = 4\nholdd = \"5ms\"\n");
    let e = expect_err(&src, 7, "workload.holdd", "");
    assert_eq!(
        e.to_string(),
        "scenarios/x.toml:7:1: unknown key `holdd` in [workload]\n  \
         help: did you mean `hold`? valid keys: nodes, keys, key_pick, hold, think, acquire_timeout, rate"
    );
    expect_err(
        "name = \"t\"\n[backend]\nkind = \"mem\"\nttll = \"1s\"\n",
        4,
        "backend.ttll",
        "did you mean `ttl`?",
    );
    expect_err(
        &format!("{MEM}[thresholds]\nmax_violation = 0\n"),
        5,
        "thresholds.max_violation",
        "`max_violations`",
    );
    let e = expect_err(
        &format!("{MEM}[thresholds]\nzzzzqqq = 0\n"),
        5,
        "thresholds.zzzzqqq",
        "valid keys:",
    );
    assert!(!e.to_string().contains("did you mean"));
}

#[test]
fn unknown_sections_and_top_level_keys() {
    let e = expect_err(
        &format!("{MEM}[workloads]\nnodes = 1\n"),
        4,
        "workloads",
        "unknown section `[workloads]`",
    );
    assert!(e.to_string().contains("did you mean `[workload]`?"), "{e}");
    assert!(
        e.to_string()
            .starts_with("scenarios/x.toml:4:1: unknown section `[workloads]`\n"),
        "{e}"
    );
    expect_err(
        "name = \"t\"\nwarmpu = \"1s\"\n[backend]\nkind = \"mem\"\n",
        2,
        "warmpu",
        "did you mean `warmup`?",
    );
    expect_err(
        &format!("durration = \"1s\"\n{MEM}"),
        1,
        "durration",
        "did you mean `duration`?",
    );
}

#[test]
fn unknown_variant_and_kind() {
    let src = "name = \"t\"\n\n[backend]\nkind = \"redis\"\nvariant = \"setnx\"\n";
    let e = expect_err(src, 5, "backend.variant", "");
    assert_eq!(
        e.to_string(),
        "scenarios/x.toml:5:11: backend.variant: unknown variant `setnx` for kind `redis`\n  \
         help: did you mean `set-nx`? valid: set-nx, naive-del, get-set"
    );
    let e = expect_err(
        "name = \"t\"\n[backend]\nkind = \"reddis\"\n",
        3,
        "backend.kind",
        "unknown backend kind `reddis`",
    );
    assert!(
        e.to_string()
            .contains("did you mean `redis`? valid: mem, sqlite, redis"),
        "{e}"
    );
    assert_eq!(e.column, Some(8));
}

#[test]
fn bad_distribution_names_the_problem() {
    let src = format!("{MEM}[workload]\nnodes = 2\nkeys = 1\nthink = \"0ms\"\nhold = \"exp(5)\"\n");
    let e = expect_err(&src, 8, "workload.hold", "");
    assert_eq!(
        e.to_string(),
        "scenarios/x.toml:8:8: workload.hold: invalid distribution `exp(5)`: `5` is not a duration\n  \
         help: write a humantime duration such as \"5ms\"; valid forms: \"5ms\", \"exp(5ms)\", \
         \"uniform(1ms,10ms)\", \"normal(5ms,1ms)\""
    );
    expect_err(
        &format!("{MEM}[workload]\nthink = \"uniform(5ms,1ms)\"\n"),
        5,
        "workload.think",
        "reversed",
    );
    expect_err(
        &format!("{MEM}[workload]\nkey_pick = \"zipf\"\n"),
        5,
        "workload.key_pick",
        "unknown key pick",
    );
}

#[test]
fn missing_required_keys_point_at_their_table() {
    expect_err(
        "[backend]\nkind = \"mem\"\n",
        1,
        "name",
        "missing required key `name`",
    );
    expect_err(
        "\n\nname = \"t\"\n",
        1,
        "backend",
        "missing required key `backend`",
    );
    expect_err(
        "name = \"t\"\n\n[backend]\nttl = \"1s\"\n",
        3,
        "backend.kind",
        "missing required key `kind` in [backend]",
    );
    expect_err(
        "name = \"\"\n[backend]\nkind = \"mem\"\n",
        1,
        "name",
        "must not be empty",
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    let e = expect_err(
        &format!("{MEM}[workload]\nnodes = \"many\"\n"),
        5,
        "workload.nodes",
        "expected an integer, found string \"many\"",
    );
    assert_eq!(e.column, Some(9));
    assert!(e.to_string().contains("workload.nodes: "));
    expect_err(
        "name = 3\n[backend]\nkind = \"mem\"\n",
        1,
        "name",
        "expected a string, found integer",
    );
    expect_err(
        &format!("duration = 30\n{MEM}"),
        1,
        "duration",
        "expected a string",
    );
    expect_err(
        "name = \"t\"\nbackend = \"mem\"\n",
        2,
        "backend",
        "expected a table [backend]",
    );
    expect_err(
        &format!("{MEM}[workload]\nrate = \"fast\"\n"),
        5,
        "workload.rate",
        "expected a number",
    );
    expect_err(
        &format!("faults = 3\n{MEM}"),
        1,
        "faults",
        "expected [[faults]] entries",
    );
}

#[test]
fn invalid_durations() {
    let e = expect_err(
        &format!("duration = \"30\"\n{MEM}"),
        1,
        "duration",
        "invalid duration `30`",
    );
    assert!(e.help.as_deref().unwrap_or("").contains("humantime"));
    expect_err(
        &format!("{MEM}ttl = \"5 lightyears\"\n"),
        4,
        "backend.ttl",
        "invalid duration",
    );
    expect_err(
        &format!("{MEM}[thresholds]\np99_acquire = \"fast\"\n"),
        5,
        "thresholds.p99_acquire",
        "invalid duration",
    );
}

#[test]
fn semantic_checks() {
    let w = |body: &str| format!("{MEM}[workload]\n{body}\n");
    expect_err(
        &w("nodes = 0"),
        5,
        "workload.nodes",
        "must be in 1..=1000000",
    );
    expect_err(
        &w("nodes = 1000001"),
        5,
        "workload.nodes",
        "must be in 1..=1000000",
    );
    expect_err(&w("keys = 0"), 5, "workload.keys", "`keys` must be");
    expect_err(
        &w("acquire_timeout = \"0s\""),
        5,
        "workload.acquire_timeout",
        "must be > 0",
    );
    expect_err(
        &w("rate = 0"),
        5,
        "workload.rate",
        "must be a finite number > 0",
    );
    expect_err(
        &w("rate = nan"),
        5,
        "workload.rate",
        "must be a finite number > 0",
    );
    expect_err(
        &w("rate = inf"),
        5,
        "workload.rate",
        "must be a finite number > 0",
    );
    assert_eq!(parse(&w("rate = 2.5")).unwrap().workload.rate, Some(2.5));
    expect_err(
        &format!("duration = \"0s\"\n{MEM}"),
        1,
        "duration",
        "must be > 0",
    );
    expect_err(
        &format!("duration = \"10s\"\nwarmup = \"10s\"\n{MEM}"),
        2,
        "warmup",
        "`warmup` (10s) must be shorter than `duration` (10s)",
    );
    expect_err(
        &format!("warmup = \"31s\"\n{MEM}"),
        1,
        "warmup",
        "`duration` (30s)",
    );
    expect_err(
        &format!("seed = -1\n{MEM}"),
        1,
        "seed",
        "`seed` must be >= 0",
    );
    expect_err(
        &format!("{MEM}ttl = \"0ms\"\n"),
        4,
        "backend.ttl",
        "must be > 0",
    );
    let t = |body: &str| format!("{MEM}[thresholds]\n{body}\n");
    expect_err(&t("min_jain = 1.5"), 5, "thresholds.min_jain", "in 0..=1");
    expect_err(
        &t("min_throughput = -1"),
        5,
        "thresholds.min_throughput",
        ">= 0",
    );
    expect_err(
        &t("max_violations = -1"),
        5,
        "thresholds.max_violations",
        ">= 0",
    );
    assert_eq!(
        parse(&t("min_jain = 1")).unwrap().thresholds.min_jain,
        Some(1.0)
    );
}

#[test]
fn kind_specific_backend_keys() {
    let b =
        |kind: &str, line: &str| format!("name = \"t\"\n[backend]\nkind = \"{kind}\"\n{line}\n");
    let e = expect_err(
        &b("sqlite", "rtt = \"1ms\""),
        4,
        "backend.rtt",
        "`rtt` is only for kind `mem`, not `sqlite`",
    );
    assert!(e.help.is_some());
    expect_err(
        &b("mem", "path = \"x.db\""),
        4,
        "backend.path",
        "`path` is only for kind `sqlite`",
    );
    expect_err(
        &b("redis", "urls = [\"redis://a\"]"),
        4,
        "backend.urls",
        "only for kind `redlock`",
    );
    let e = expect_err(
        &b("mem", "url = \"x\""),
        4,
        "backend.url",
        "`mem` is embedded",
    );
    assert!(e.to_string().contains("rtt"));
    let e = expect_err(
        &b("sqlite", "url = \"x\""),
        4,
        "backend.url",
        "takes no `url`",
    );
    assert!(e.to_string().contains("path = "), "{e}");
    let e = expect_err(
        &b("redlock", "url = \"x\""),
        4,
        "backend.url",
        "takes `urls`, not `url`",
    );
    assert!(e.to_string().contains("urls = ["), "{e}");
    expect_err(
        &b("redlock", "urls = []"),
        4,
        "backend.urls",
        "`urls` is empty",
    );
    expect_err(
        &b("redlock", "urls = [1]"),
        4,
        "backend.urls",
        "expected a string, found integer",
    );
}

fn with_fault(fault: &str) -> String {
    format!("duration = \"30s\"\n{MEM}[workload]\nnodes = 4\n\n[[faults]]\n{fault}\n")
}

#[test]
fn fault_checks() {
    // The [[faults]] header is line 8; its first key line 9.
    let e = expect_err(
        &with_fault("at = \"1s\"\nkind = \"pause\""),
        8,
        "faults[0].duration",
        "missing required key `duration`",
    );
    assert!(e.to_string().contains("[[faults]] entry #1"), "{e}");
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"pause\"\nduration = \"1s\"\nwhen = \"always\""),
        12,
        "faults[0].when",
        "\"holding\"",
    );
    let e = expect_err(
        &with_fault("at = \"1s\"\nkind = \"pause\"\nduration = \"1s\"\ndelay = \"5ms\""),
        12,
        "faults[0].delay",
        "key `delay` does not apply to a `pause` fault",
    );
    assert!(
        e.to_string()
            .contains("keys for pause faults: at, kind, nodes, duration, when"),
        "{e}"
    );
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"latency\"\nduration = \"1s\""),
        8,
        "faults[0].delay",
        "`delay`",
    );
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"latency\"\ndelay = \"1ms\""),
        8,
        "faults[0].duration",
        "`duration`",
    );
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"partition\""),
        8,
        "faults[0].duration",
        "`duration`",
    );
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"exec\""),
        8,
        "faults[0].command",
        "missing required key `command`",
    );
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"exec\"\ncommand = \"x\"\nduration = \"1s\""),
        12,
        "faults[0].duration",
        "`exec`",
    );
    let e = expect_err(
        &with_fault("at = \"1s\"\nkind = \"stop\""),
        10,
        "faults[0].kind",
        "unknown fault kind `stop`",
    );
    assert!(
        e.to_string()
            .contains("valid: pause, latency, partition, reset, exec")
    );
    expect_err(
        &with_fault("at = \"1s\"\nkidn = \"pause\""),
        10,
        "faults[0].kidn",
        "did you mean `kind`?",
    );
    expect_err(
        &with_fault("kind = \"reset\""),
        8,
        "faults[0].at",
        "missing required key `at`",
    );
    expect_err(
        &with_fault("at = \"30s\"\nkind = \"reset\""),
        9,
        "faults[0].at",
        "after the run ends (duration = 30s)",
    );
    expect_err(
        &with_fault("at = \"1s\"\nkind = \"reset\"\nendpoints = \"x\""),
        11,
        "faults[0].endpoints",
        "array of strings",
    );
    let s = parse(&with_fault("at = \"1s\"\nkind = \"reset\"")).unwrap();
    assert_eq!(s.faults[0].line, 8);
    assert_eq!(s.faults[0].nodes, NodeSel::All);
    assert_eq!(s.faults[0].duration, None);
}

#[test]
fn fault_node_selections() {
    let f = |nodes: &str| with_fault(&format!("at = \"1s\"\nkind = \"reset\"\nnodes = {nodes}"));
    let e = expect_err(
        &f("[0, 9]"),
        11,
        "faults[0].nodes",
        "node 9 is out of range: the workload has 4 nodes",
    );
    assert_eq!(e.column, Some(13));
    expect_err(
        &f("\"0..5\""),
        11,
        "faults[0].nodes",
        "range `0..5` is out of range: the workload has 4 nodes",
    );
    expect_err(&f("\"2..2\""), 11, "faults[0].nodes", "a < b");
    expect_err(
        &f("\"some\""),
        11,
        "faults[0].nodes",
        "invalid node selection `some`",
    );
    expect_err(&f("[]"), 11, "faults[0].nodes", "empty node list");
    expect_err(&f("4"), 11, "faults[0].nodes", "node 4 is out of range");
    expect_err(&f("true"), 11, "faults[0].nodes", "found boolean");
    let nodes = |sel: &str| parse(&f(sel)).unwrap().faults[0].nodes.clone();
    assert_eq!(nodes("\"all\""), NodeSel::All);
    assert_eq!(nodes("\"0..4\""), NodeSel::Range(0, 4));
    assert_eq!(nodes("[3, 1]"), NodeSel::List(vec![3, 1]));
    assert_eq!(nodes("2"), NodeSel::List(vec![2]));
}

#[test]
fn toml_syntax_errors_carry_their_position() {
    let e = err("name = \"t\"\nname = \"u\"\n");
    assert_eq!((e.line, e.column), (Some(2), Some(1)));
    assert!(
        e.to_string()
            .starts_with("scenarios/x.toml:2:1: invalid TOML: duplicate key"),
        "{e}"
    );
    let e = err("name = \"t\n");
    assert_eq!(e.line, Some(1));
}
