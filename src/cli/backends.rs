//! `lockstorm backends`.

use std::process::ExitCode;

use lockstorm::backend::catalog::{KINDS, Properties};

fn props(p: Properties) -> String {
    let mut v = Vec::new();
    v.push(if p.fencing { "fencing" } else { "no-fencing" });
    v.push(if p.fair { "fair" } else { "unfair" });
    v.push(if p.lease { "lease" } else { "session" });
    if p.r#unsafe {
        v.push("UNSAFE");
    }
    v.join(" ")
}

pub fn list() -> ExitCode {
    for k in KINDS {
        let status = if !k.implemented {
            "not in this version yet".to_string()
        } else if k.default_endpoints.is_empty() {
            "embedded, no server needed".to_string()
        } else {
            "available".to_string()
        };
        println!("{:<10} {} ({status})", k.name, k.summary);
        if !k.default_endpoints.is_empty() {
            println!(
                "           default endpoint: {}",
                k.default_endpoints.join(", ")
            );
        }
        if let Some(h) = k.start_hint {
            println!("           start locally:    {h}");
        }
        for (i, v) in k.variants.iter().enumerate() {
            println!(
                "   {:<12} {:<34} {}{}",
                v.name,
                props(v.properties),
                v.summary,
                if i == 0 { "  (default)" } else { "" }
            );
        }
        println!();
    }
    println!(
        "Properties are what the variant guarantees by design; lockstorm measures what it does."
    );
    ExitCode::SUCCESS
}
