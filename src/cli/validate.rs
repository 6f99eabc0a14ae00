//! `lockstorm validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use lockstorm::scenario::Scenario;

pub fn validate(files: &[PathBuf]) -> ExitCode {
    let mut bad = 0;
    for f in files {
        match Scenario::load(f) {
            Ok(s) => {
                let w = &s.workload;
                println!(
                    "ok     {}  ({}: {}:{}, {} nodes, {} keys, {}{})",
                    f.display(),
                    s.name,
                    s.backend.kind.name,
                    s.backend.variant.name,
                    w.nodes,
                    w.keys,
                    humantime::format_duration(s.duration),
                    if s.faults.is_empty() {
                        String::new()
                    } else {
                        format!(", {} faults", s.faults.len())
                    }
                );
            }
            Err(e) => {
                bad += 1;
                eprintln!("error  {e}");
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} scenario files invalid", files.len());
        ExitCode::from(super::EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}
