//! The static catalog of backend kinds and variants: names, properties and
//! default endpoints. Pure data, used by scenario validation, `lockstorm
//! backends` and the reports.

use serde::Serialize;

/// What a backend variant guarantees, as declared by lockstorm (not measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Properties {
    /// Grants carry a fencing token that increases monotonically per key.
    pub fencing: bool,
    /// Waiters are granted in request order (FIFO).
    pub fair: bool,
    /// The lock is a lease that expires after `ttl` unless released (as opposed
    /// to session-based, lost only when the session or connection dies).
    pub lease: bool,
    /// Deliberately broken: exists to show what the checker catches.
    pub r#unsafe: bool,
}

/// One variant of a backend kind.
#[derive(Debug, Clone, Copy)]
pub struct VariantInfo {
    /// Variant name as written in a scenario (`variant = "fifo"`).
    pub name: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// Declared properties.
    pub properties: Properties,
}

/// One backend kind and its variants (the first is the default).
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// Kind name as written in a scenario (`kind = "mem"`).
    pub name: &'static str,
    /// What it is, in one line.
    pub summary: &'static str,
    /// Default endpoint(s); empty for embedded backends.
    pub default_endpoints: &'static [&'static str],
    /// Command that starts the default endpoint locally, if any.
    pub start_hint: Option<&'static str>,
    /// Whether this build of lockstorm can run it yet.
    pub implemented: bool,
    /// Variants, default first.
    pub variants: &'static [VariantInfo],
}

impl KindInfo {
    /// The default variant (the first one).
    pub fn default_variant(&self) -> &'static VariantInfo {
        &self.variants[0]
    }

    /// Look a variant up by name.
    pub fn variant(&self, name: &str) -> Option<&'static VariantInfo> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Variant names, default first.
    pub fn variant_names(&self) -> Vec<&'static str> {
        self.variants.iter().map(|v| v.name).collect()
    }
}

const fn props(fencing: bool, fair: bool, lease: bool, r#unsafe: bool) -> Properties {
    Properties {
        fencing,
        fair,
        lease,
        r#unsafe,
    }
}

const fn v(name: &'static str, summary: &'static str, properties: Properties) -> VariantInfo {
    VariantInfo {
        name,
        summary,
        properties,
    }
}

/// Every backend kind lockstorm knows, in display order.
pub static KINDS: &[KindInfo] = &[
    KindInfo {
        name: "mem",
        summary: "in-process lock service with real leases (embedded, no server)",
        default_endpoints: &[],
        start_hint: None,
        implemented: true,
        variants: &[
            v(
                "fifo",
                "grants in request order",
                props(true, true, true, false),
            ),
            v(
                "barging",
                "any waiter (or a newcomer) may win after a release",
                props(true, false, true, false),
            ),
            v(
                "broken",
                "now and then grants a lock that is held (checker self-test)",
                props(true, false, true, true),
            ),
        ],
    },
    KindInfo {
        name: "sqlite",
        summary: "expiring lease row per key in a real SQLite file (embedded, no server)",
        default_endpoints: &[],
        start_hint: None,
        implemented: true,
        variants: &[v(
            "lease-row",
            "INSERT .. ON CONFLICT DO UPDATE WHERE expired; token from a counter row",
            props(true, false, true, false),
        )],
    },
    KindInfo {
        name: "redis",
        summary: "single Redis server",
        default_endpoints: &["redis://127.0.0.1:6379"],
        start_hint: Some("scripts/backends up redis"),
        implemented: true,
        variants: &[
            v(
                "set-nx",
                "SET NX PX + Lua compare-and-delete; token from INCR",
                props(true, false, true, false),
            ),
            v(
                "naive-del",
                "release by plain DEL (deletes the next holder's lock)",
                props(true, false, true, true),
            ),
            v(
                "get-set",
                "GET, then SET if empty (racy)",
                props(false, false, true, true),
            ),
        ],
    },
    KindInfo {
        name: "redlock",
        summary: "Redlock over N independent Redis instances",
        default_endpoints: &[
            "redis://127.0.0.1:7001",
            "redis://127.0.0.1:7002",
            "redis://127.0.0.1:7003",
            "redis://127.0.0.1:7004",
            "redis://127.0.0.1:7005",
        ],
        start_hint: Some("scripts/backends up redlock"),
        implemented: true,
        variants: &[v(
            "quorum",
            "majority of instances within validity = ttl - elapsed - drift",
            props(false, false, true, false),
        )],
    },
    KindInfo {
        name: "zookeeper",
        summary: "ZooKeeper lock recipes",
        default_endpoints: &["127.0.0.1:2181"],
        start_hint: Some("scripts/backends up zookeeper"),
        implemented: true,
        variants: &[
            v(
                "recipe",
                "ephemeral sequential node, watch the predecessor",
                props(true, true, false, false),
            ),
            v(
                "herd",
                "every waiter watches the parent (herd effect)",
                props(true, true, false, false),
            ),
        ],
    },
    KindInfo {
        name: "etcd",
        summary: "etcd v3 locks",
        default_endpoints: &["http://127.0.0.1:2379"],
        start_hint: Some("scripts/backends up etcd"),
        implemented: true,
        variants: &[
            v(
                "lock-api",
                "lease + Lock RPC; token = revision",
                props(true, true, true, false),
            ),
            v(
                "txn",
                "create-if-absent with a lease; token = revision",
                props(true, false, true, false),
            ),
        ],
    },
    KindInfo {
        name: "postgres",
        summary: "PostgreSQL",
        default_endpoints: &["postgres://postgres@127.0.0.1:5432/postgres"],
        start_hint: Some("scripts/backends up postgres"),
        implemented: true,
        variants: &[
            v(
                "advisory",
                "session advisory lock; token from a sequence",
                props(true, false, false, false),
            ),
            v(
                "lease-row",
                "expiring row per key; token from a sequence",
                props(true, false, true, false),
            ),
        ],
    },
    KindInfo {
        name: "mysql",
        summary: "MySQL / MariaDB",
        default_endpoints: &["mysql://root@127.0.0.1:3306/mysql"],
        start_hint: Some("scripts/backends up mysql"),
        implemented: true,
        variants: &[
            v(
                "get-lock",
                "GET_LOCK / RELEASE_LOCK (session-based)",
                props(false, false, false, false),
            ),
            v(
                "lease-row",
                "expiring row per key; token = the key's last + 1, under the row lock",
                props(true, false, true, false),
            ),
            v(
                "seed-upsert",
                "INSERT .. ON DUPLICATE KEY UPDATE: never excludes",
                props(false, false, true, true),
            ),
        ],
    },
];

/// Look a kind up by name.
pub fn kind(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.name == name)
}

/// All kind names, in display order.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_default_variant_and_unique_names() {
        for k in KINDS {
            assert!(!k.variants.is_empty(), "{} has no variant", k.name);
            let mut names = k.variant_names();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                k.variants.len(),
                "{} repeats a variant",
                k.name
            );
        }
        assert_eq!(kind("mem").unwrap().default_variant().name, "fifo");
        assert!(
            kind("mem")
                .unwrap()
                .variant("broken")
                .unwrap()
                .properties
                .r#unsafe
        );
        assert!(kind("nope").is_none());
    }
}
