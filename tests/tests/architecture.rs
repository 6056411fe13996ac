//! The invariants of ARCHITECTURE.md, checked against the code: which crate may depend on
//! which (storage, ONNX Runtime and the wire stay where they belong), which module of the
//! server may import which, and no import cycle between the files of any crate. A failure
//! names the file and the forbidden arrow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tests::repo_path;

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The code of a file without its comments and string literals, so that a name in a doc
/// comment or a metric name is not read as an import.
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
                code.push_str("\"\"");
            }
            other => code.push(other),
        }
    }
    code
}

/// The paths a file names that start with `prefix` (`crate::`, `churn_registry::`, …),
/// as far as they go: `crate::domain::serving::catalog::Catalog`.
fn paths_from(code: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        let path: String = rest[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            paths.push(path.trim_end_matches(':').to_owned());
        }
        rest = &rest[at + prefix.len()..];
    }
    paths
}

/// The modules a file declares (`mod name;`).
fn declared_modules(code: &str) -> Vec<String> {
    code.lines()
        .map(str::trim)
        .filter_map(|line| {
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            line.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_owned)
        })
        .collect()
}

/// The module a file is, as path segments below its crate's `src/`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("a file of the crate");
    let mut segments: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if matches!(
        segments.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segments.pop();
    }
    segments
}

/// The file of the longest module prefix of `segments` that exists in the crate.
fn file_of(src: &Path, segments: &[String]) -> Option<PathBuf> {
    (1..=segments.len()).rev().find_map(|n| {
        let base = src.join(segments[..n].join("/"));
        [base.with_extension("rs"), base.join("mod.rs")]
            .into_iter()
            .find(|candidate| candidate.is_file())
    })
}

/// Each file of a crate and the files of the same crate it imports from.
fn import_graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut graph = BTreeMap::new();
    for file in rust_files(src) {
        let code = code_of(&std::fs::read_to_string(&file).expect("read a source file"));
        let here = module_of(src, &file);
        let mut targets = BTreeSet::new();
        for path in paths_from(&code, "crate::") {
            let segments: Vec<String> = path.split("::").skip(1).map(str::to_owned).collect();
            targets.extend(file_of(src, &segments));
        }
        // `super::*` is how a file's own test module reads the file: not an import.
        for path in paths_from(&code, "super::")
            .into_iter()
            .filter(|p| p != "super")
        {
            let ups = path.split("::").take_while(|s| *s == "super").count();
            let mut segments = here.clone();
            // A `mod.rs` or a non-root file is its own module: `super` is its parent.
            for _ in 0..ups {
                segments.pop();
            }
            segments.extend(path.split("::").skip(ups).map(str::to_owned));
            targets.extend(file_of(src, &segments));
        }
        // A module's own children, named relatively (`ports::serve_grpc` in lib.rs).
        for child in declared_modules(&code) {
            for path in paths_from(&code, &format!("{child}::")) {
                if path.starts_with(&format!("{child}::")) {
                    let mut segments = here.clone();
                    segments.extend(path.split("::").map(str::to_owned));
                    targets.extend(file_of(src, &segments));
                }
            }
        }
        targets.remove(&file);
        graph.insert(file, targets);
    }
    graph
}

/// One cycle of `graph`, if it has any.
fn find_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        done: &mut BTreeSet<PathBuf>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn crate_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_path("crates"))
        .expect("crates/")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn no_crate_has_an_import_cycle_between_its_files() {
    for name in crate_names() {
        let src = repo_path(&format!("crates/{name}/src"));
        let graph = import_graph(&src);
        if name == "churnserve" {
            // The server's files import each other everywhere: none read means a broken reader.
            let arrows: usize = graph.values().map(BTreeSet::len).sum();
            assert!(arrows > 100, "churnserve: only {arrows} imports read");
        }
        if let Some(cycle) = find_cycle(&graph) {
            let names: Vec<String> = cycle
                .iter()
                .map(|f| f.strip_prefix(&src).unwrap_or(f).display().to_string())
                .collect();
            panic!("{name}: import cycle {}", names.join(" -> "));
        }
    }
}

/// Which folders of the server may import what, and which of its files may reach the
/// registry crate.
#[test]
fn the_server_s_arrows_point_one_way() {
    let src = repo_path("crates/churnserve/src");
    // (folder, what its files must not name, why)
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "api",
            &[
                "crate::observe",
                "churn_registry::",
                "churn_engine::",
                "churn_explain::",
                "churn_metrics::",
            ],
            "adapters speak domain types only",
        ),
        (
            "observe",
            &["crate::domain", "crate::api"],
            "observation is told; it never calls back",
        ),
        ("domain", &["crate::api"], "the domain knows no adapter"),
    ];
    let composition_root = ["lib.rs", "main.rs", "config.rs", "error.rs", "services.rs"];
    let mut broken = Vec::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).expect("below src").to_path_buf();
        let code = code_of(&std::fs::read_to_string(&file).expect("read"));
        let top = relative
            .iter()
            .next()
            .map(|s| s.to_string_lossy().into_owned());
        let folder = top.as_deref().map(|t| t.trim_end_matches(".rs"));
        for (rule_folder, forbidden, why) in rules {
            if folder != Some(rule_folder) {
                continue;
            }
            for name in *forbidden {
                if !paths_from(&code, name).is_empty() {
                    broken.push(format!("{} names {name}: {why}", relative.display()));
                }
            }
        }
        let may_reach_registry = folder == Some("domain")
            || composition_root.contains(&relative.to_string_lossy().as_ref());
        if !may_reach_registry && !paths_from(&code, "churn_registry::").is_empty() {
            broken.push(format!(
                "{} names churn_registry: only domain/ and the composition root reach the registry",
                relative.display()
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "forbidden arrows:\n{}",
        broken.join("\n")
    );
}

/// The `[dependencies]` of a crate's manifest, by name.
fn dependencies(name: &str) -> BTreeSet<String> {
    let manifest =
        std::fs::read_to_string(repo_path(&format!("crates/{name}/Cargo.toml"))).expect("read");
    let mut section = "";
    let mut found = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[dependencies]"
            && let Some((key, _)) = line.split_once('=')
        {
            found.insert(key.trim().trim_end_matches(".workspace").to_owned());
        }
    }
    found
}

#[test]
fn each_crate_depends_only_on_what_its_responsibility_needs() {
    // (crate, dependencies it must not have, why)
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "churn-api",
            &["sqlx", "ort", "churn-engine", "churn-registry"],
            "the contract only",
        ),
        (
            "churn-engine",
            &[
                "sqlx",
                "tonic",
                "object_store",
                "churn-api",
                "churn-registry",
            ],
            "inference, no storage or wire",
        ),
        (
            "churn-explain",
            &[
                "sqlx",
                "tonic",
                "tokio",
                "object_store",
                "ort",
                "churn-api",
                "churn-registry",
            ],
            "pure computation",
        ),
        (
            "churn-metrics",
            &[
                "sqlx",
                "tonic",
                "tokio",
                "object_store",
                "ort",
                "churn-api",
                "churn-registry",
                "churn-engine",
            ],
            "pure computation",
        ),
        (
            "churn-registry",
            &["tonic", "ort", "churn-api", "churn-engine"],
            "storage, no wire or inference",
        ),
        (
            "churnctl",
            &[
                "sqlx",
                "ort",
                "churn-engine",
                "churn-registry",
                "churnserve",
            ],
            "the public gRPC API only",
        ),
    ];
    let mut broken = Vec::new();
    for (name, forbidden, why) in rules {
        let actual = dependencies(name);
        for dependency in *forbidden {
            if actual.contains(*dependency) {
                broken.push(format!("{name} depends on {dependency}: {why}"));
            }
        }
    }
    // Storage and ONNX Runtime each have one owner.
    for name in crate_names() {
        let actual = dependencies(&name);
        if name != "churn-registry" && actual.contains("sqlx") {
            broken.push(format!(
                "{name} depends on sqlx: only churn-registry touches storage"
            ));
        }
        if name != "churn-engine" && actual.contains("ort") {
            broken.push(format!(
                "{name} depends on ort: only churn-engine runs ONNX Runtime"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_checks_read_imports_as_they_are_written() {
    let code = code_of(
        "use crate::domain::serving::catalog::Catalog; // crate::api in a comment\n\
         let name = \"churn_registry::x\"; super::x(); my_crate::y",
    );
    assert_eq!(
        paths_from(&code, "crate::"),
        ["crate::domain::serving::catalog::Catalog"]
    );
    assert!(paths_from(&code, "churn_registry::").is_empty());
    assert_eq!(paths_from(&code, "super::"), ["super::x"]);
    assert!(
        paths_from(&code, "serving::").is_empty(),
        "inside a longer path"
    );
    assert_eq!(declared_modules("mod a;\npub mod b;\nmod c {"), ["a", "b"]);
    let cyclic = BTreeMap::from([
        (
            PathBuf::from("a.rs"),
            BTreeSet::from([PathBuf::from("b.rs")]),
        ),
        (
            PathBuf::from("b.rs"),
            BTreeSet::from([PathBuf::from("a.rs")]),
        ),
    ]);
    assert!(find_cycle(&cyclic).is_some());
    let acyclic = BTreeMap::from([
        (
            PathBuf::from("a.rs"),
            BTreeSet::from([PathBuf::from("b.rs")]),
        ),
        (PathBuf::from("b.rs"), BTreeSet::new()),
    ]);
    assert!(find_cycle(&acyclic).is_none());
}

/// The relative link targets of a markdown text, outside code blocks.
fn relative_links(markdown: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let target: String = rest[at + 2..]
                .chars()
                .take_while(|c| *c != ')' && !c.is_whitespace())
                .collect();
            rest = &rest[at + 2..];
            let target = target.split('#').next().unwrap_or_default().to_owned();
            if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
                links.push(target);
            }
        }
    }
    links
}

#[test]
fn every_link_of_the_docs_resolves_inside_the_repository() {
    let root = repo_path("");
    let mut pages = vec![repo_path("README.md"), repo_path("ARCHITECTURE.md")];
    pages.extend(
        std::fs::read_dir(repo_path("docs"))
            .expect("docs/")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("read a page");
        let links = relative_links(&text);
        for link in links {
            let target = page.parent().expect("a folder").join(&link);
            let inside = target
                .canonicalize()
                .is_ok_and(|target| target.starts_with(root.canonicalize().expect("root")));
            if !inside {
                broken.push(format!("{}: {link}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that do not resolve inside the repository:\n{}",
        broken.join("\n")
    );
    assert_eq!(
        relative_links("[a](docs/x.md#y) [b](https://e.org)\n```\n[d](z)\n```"),
        ["docs/x.md"]
    );
}
