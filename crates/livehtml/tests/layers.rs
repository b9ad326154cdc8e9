//! The module graph ARCHITECTURE.md draws, checked against the source: every `crate::…` path in
//! a module's code (comments aside) names a module it may depend on. A new edge is a design
//! decision: change the graph in ARCHITECTURE.md with this table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module and what it may use; `axum` (the integration) may use everything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("asset", &[]),
    ("observe", &["protocol"]),
    ("render", &["protocol"]),
    ("pubsub", &["protocol", "observe"]),
    ("link", &["protocol", "pubsub", "observe"]),
    ("session", &["protocol", "pubsub", "link", "render", "observe"]),
    ("view", &["protocol", "pubsub", "render", "session", "observe", "asset"]),
    ("transport", &["protocol", "pubsub", "link", "observe"]),
    ("axum", &["protocol", "pubsub", "link", "render", "session", "view", "transport", "observe", "asset"]),
];

fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The modules a file's code names through `crate::`.
fn uses(file: &Path, modules: &BTreeSet<&str>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = BTreeSet::new();
    for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            // `crate::` as a path start, not the tail of another word (`livehtml_crate::`).
            if line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &line[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if modules.contains(name.as_str()) {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn the_module_graph_has_only_the_drawn_edges() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let modules: BTreeSet<&str> = allowed.keys().copied().collect();
    let mut wrong = Vec::new();
    for module in &modules {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        assert!(files.iter().all(|f| f.exists()), "module {module} is where the table says");
        for file in files {
            for used in uses(&file, &modules) {
                if used != *module && !allowed[module].contains(&used.as_str()) {
                    wrong.push(format!("{} uses crate::{used}", file.strip_prefix(&src).unwrap().display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "edges the module graph does not draw:\n{}", wrong.join("\n"));
}
