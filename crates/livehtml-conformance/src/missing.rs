//! What a test does when the broker or tool it needs is not there: it fails, saying what to
//! start, unless the run allows skipping and will show the skip where a person reads it.
//!
//! `cargo test` hides what a passing test prints, so a test that returned early with a message
//! looked like a test that passed (pointed at `redis://127.0.0.1:1`, every Redis case said
//! `ok`). `scripts/test` outside CI sets `LIVEHTML_SKIPPED` to a file: a skipping test appends
//! its reason there, and the script prints the list at the end of the run. `LIVEHTML_REQUIRE_ALL=1`
//! (CI) fails whatever else is set.

use std::io::Write;

/// The variable naming the file skipped tests are listed in.
pub const SKIPPED_FILE: &str = "LIVEHTML_SKIPPED";

/// `what` is missing (e.g. "no Redis at 127.0.0.1:6379"): panics with `what` and `fix`, or,
/// where the run allows it, records the skip (under the running test's name) and returns, for
/// the test to return early.
///
/// # Panics
///
/// Unless `LIVEHTML_SKIPPED` names a file and `LIVEHTML_REQUIRE_ALL` is not `1`.
#[track_caller]
pub fn missing(what: &str, fix: &str) {
    // libtest runs each test on a thread named after it.
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let required = std::env::var("LIVEHTML_REQUIRE_ALL").as_deref() == Ok("1");
    let file = std::env::var_os(SKIPPED_FILE).filter(|_| !required);
    let Some(file) = file else {
        panic!("{what}: {fix} (or run scripts/test, which lists the tests it could not run)");
    };
    let line = format!("{test}: {what}\n");
    let recorded = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = recorded {
        panic!("{what}, and the skip could not be recorded in {}: {e}", file.display());
    }
    eprintln!("SKIPPED {line}");
}
