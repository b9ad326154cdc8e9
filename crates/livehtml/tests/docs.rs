//! The docs say what the code does: every example a page shows as a file is that file (which
//! the workspace builds and tests as it is), every guide page is compiled as a doc test, every
//! link between the pages leads somewhere, and every metric the crate records is in the table
//! of `observe`'s docs.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README and the guide's pages.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut guide: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guide.sort();
    assert!(guide.len() >= 6, "the guide's pages are in docs/");
    pages.extend(guide);
    pages
}

/// The fenced blocks of a Markdown text whose info string starts with `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) if info.starts_with(lang) => current = Some(String::new()),
            (Some(block), Some("")) => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn an_example_shown_as_a_file_is_that_file() {
    let mut shown = 0;
    for page in pages() {
        for block in blocks(&read(&page), "rust") {
            let Some(file) = block.lines().next().and_then(|l| l.strip_prefix("//! examples/")) else { continue };
            let file = format!("examples/{}", file.split(':').next().unwrap());
            assert_eq!(block, read(&root().join(&file)), "{} shows {file} as it is", page.display());
            shown += 1;
        }
    }
    assert!(shown >= 2, "the README's quick start and the guide's counter are files");
}

#[test]
fn the_crate_docs_open_with_the_quick_start() {
    let lib = read(&root().join("crates/livehtml/src/lib.rs"));
    let docs: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    let first = blocks(&docs, "no_run").into_iter().next().expect("a quick start in the crate docs");
    let file = read(&root().join("examples/quickstart/src/main.rs"));
    assert_eq!(first, file.split_once('\n').unwrap().1, "the crate docs' quick start is examples/quickstart");
}

#[test]
fn every_guide_page_is_compiled_and_linked() {
    let compiled =
        read(&root().join("crates/livehtml/src/lib.rs")) + &read(&root().join("crates/livehtml-redis/src/lib.rs"));
    let readme = read(&root().join("README.md"));
    for page in pages().iter().skip(1) {
        let name = page.file_name().unwrap().to_str().unwrap();
        assert!(compiled.contains(&format!("docs/{name}\")")), "{name} is compiled as a doc test");
        assert!(readme.contains(&format!("(docs/{name})")), "the README links {name}");
    }
    // Every relative link of every page leads to a file.
    for page in pages() {
        let text = read(&page);
        for (i, _) in text.match_indices("](") {
            let target = text[i + 2..].split(')').next().unwrap().split('#').next().unwrap();
            if target.is_empty() || target.contains("://") || target.contains(' ') {
                continue;
            }
            let path = page.parent().unwrap().join(target);
            assert!(path.exists(), "{} links {target}, which is not there", page.display());
        }
    }
}

#[test]
fn every_metric_is_in_the_table() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = root().join("crates/livehtml/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let table: String = read(&src.join("observe.rs")).lines().filter(|l| l.starts_with("//!")).collect();
    let mut names = Vec::new();
    for file in files {
        let text = read(&file);
        for (i, _) in text.match_indices("!(\"livehtml_") {
            let name: String = text[i + 3..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.push(name);
        }
    }
    assert!(names.len() >= 19, "found the metrics: {names:?}");
    for name in names {
        assert!(table.contains(&format!("`{name}`")), "{name} is recorded but not in observe's table");
    }
}
