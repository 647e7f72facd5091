//! Guards issue 11 §3: no two modules of `agent/` import each other,
//! directly or in a circle (as `cli` ↔ `live` and `bench` → `bench_mqtt` →
//! `bench` once did). Reads the sources, takes every `crate::`, `super::`,
//! `rivulet_agent::` and child-module path as an edge from the file's
//! module to the deepest module it names, and looks for a cycle.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a source file, e.g. `bin::commands::bench::mqtt`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs").to_string();
    let bin = parts.first().is_some_and(|p| p == "commands") || ["main", "cli"].contains(&stem.as_str());
    let mut path = vec![if bin { "bin" } else { "lib" }.to_string()];
    path.extend(parts);
    if !["mod", "lib", "main"].contains(&stem.as_str()) {
        path.push(stem);
    }
    path.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable src dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a::b::c` segments following `prefix` at each occurrence in `code`.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        rest = &rest[i + prefix.len()..];
        if !before_ok {
            continue;
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        found.push(rest[..end].split("::").filter(|s| !s.is_empty()).collect());
    }
    found
}

/// The deepest known module `base::segments...` names.
fn resolve(known: &BTreeSet<String>, base: &str, segs: &[&str]) -> Option<String> {
    let mut best = None;
    let mut cur = base.to_string();
    for s in segs {
        cur = format!("{cur}::{s}");
        if known.contains(&cur) {
            best = Some(cur.clone());
        } else {
            break;
        }
    }
    best
}

fn parent(m: &str) -> &str {
    m.rsplit_once("::").map_or(m, |(p, _)| p)
}

#[test]
fn agent_modules_do_not_import_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let known: BTreeSet<String> = all.iter().map(|f| module_of(&src, f)).collect();
    assert!(known.contains("bin::cli") && known.contains("lib::seed::sensor"), "{known:?}");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        let text = std::fs::read_to_string(f).expect("readable source");
        // Comments name modules without depending on them.
        let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        let root = m.split("::").next().unwrap_or("lib").to_string();
        let mut targets = Vec::new();
        for segs in paths_after(&code, "crate::") {
            targets.extend(resolve(&known, &root, &segs));
        }
        for segs in paths_after(&code, "rivulet_agent::") {
            targets.extend(resolve(&known, "lib", &segs));
        }
        for segs in paths_after(&code, "super::") {
            let mut base = parent(&m).to_string();
            let mut segs = segs.as_slice();
            while segs.first() == Some(&"super") {
                base = parent(&base).to_string();
                segs = &segs[1..];
            }
            targets.extend(resolve(&known, &base, segs));
        }
        // A child module used by its bare name (`mqtt::run(a)`).
        for child in known.iter().filter(|k| parent(k) == m && *k != &m) {
            let name = child.rsplit("::").next().unwrap_or_default();
            if !paths_after(&code, &format!("{name}::")).is_empty() {
                targets.push(child.clone());
            }
        }
        let set = edges.entry(m.clone()).or_default();
        set.extend(targets.into_iter().filter(|t| *t != m));
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for t in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(t, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(cycle) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("modules of agent/ import each other in a circle: {}\nall edges: {edges:#?}", cycle.join(" → "));
        }
    }
    // The check sees the edges it must: the live command uses the parser's
    // arguments, and the bench dispatcher its mqtt mode.
    assert!(edges["bin::commands::live"].contains("bin::cli"), "{edges:#?}");
    assert!(edges["bin::commands::bench"].contains("bin::commands::bench::mqtt"), "{edges:#?}");
}
