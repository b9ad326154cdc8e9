//! Autobahn conformance of the raw echo endpoint: the kosoku runner (PyPI) drives every case of
//! sections 1–10, 12 and 13 (permessage-deflate: 1,000 compressed messages per case, up to
//! 128 KiB each, with every offer the suite makes), and the results must match
//! `tests/autobahn/expected.json` (all OK, NON-STRICT or INFORMATIONAL).

mod common;

use std::collections::BTreeMap;

use common::{Server, require_tool, workspace_root};
use serde_json::Value;

/// Case id → (behavior, close behavior), from a report's cases or the expected file.
fn behaviors(cases: &Value) -> BTreeMap<String, (String, String)> {
    let field = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let cases = cases.as_object().expect("an object of cases");
    cases.iter().map(|(id, r)| (id.clone(), (field(r, "behavior"), field(r, "behaviorClose")))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_sections_1_to_10_12_and_13() {
    let root = workspace_root();
    let mut candidates = vec![root.join(".venv/bin/kosoku")];
    if let Ok(p) = std::env::var("LIVEHTML_KOSOKU") {
        candidates.insert(0, p.into());
    }
    let Some(kosoku) = require_tool("kosoku (pip install kosoku)", &candidates) else { return };

    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path()).await;
    let out = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(kosoku);
    // kosoku has no 8.x cases; naming them is an error.
    for section in ["1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"] {
        cmd.arg("-i").arg(format!("{section}.*"));
    }
    let status = cmd
        .args(["-p", "2", "-o"])
        .arg(out.path())
        .arg(format!("ws://{}/ws/raw", server.addr))
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("run kosoku");

    let index: Value = serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    let (_, cases) = index.as_object().unwrap().iter().next().expect("one agent");
    let actual = behaviors(cases);
    let expected =
        behaviors(&serde_json::from_str(include_str!("autobahn/expected.json")).expect("expected.json is valid JSON"));

    let differences: Vec<_> = expected
        .keys()
        .chain(actual.keys().filter(|k| !expected.contains_key(*k)))
        .filter(|id| expected.get(*id) != actual.get(*id))
        .map(|id| format!("{id}: expected {:?}, got {:?}", expected.get(id), actual.get(id)))
        .collect();
    assert!(differences.is_empty(), "Autobahn results changed:\n{}", differences.join("\n"));
    assert!(status.success(), "kosoku reported failed cases");
    for (behavior, close) in expected.values() {
        assert!(["OK", "NON-STRICT", "INFORMATIONAL"].contains(&behavior.as_str()));
        assert!(["OK", "INFORMATIONAL"].contains(&close.as_str()));
    }
}
