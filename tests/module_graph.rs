//! The crate's shape, checked on every `make test`:
//! - no import cycle among the modules of src/ (a module may use its own submodules and they may
//!   use it: that is one unit; anything else that goes round is a cycle), nor among its folders
//!   (`relations/` and `steps/` may not both use the other);
//! - only the modules that touch the world use `std::fs`, `std::process` or `std::env`;
//! - the hook's steps come in an order where each reads only facts an earlier step writes, and
//!   each fact has one writer (what the steps declare; every hook a test runs checks that the
//!   steps keep to their declarations).
//!
//! Read from the source text (test modules and files left out), the same way a reader follows
//! `crate::` paths: one node per file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use keystone_charm::actions::ROTATION_STEPS;
use keystone_charm::facts::FactName;
use keystone_charm::hook::STEPS;
use keystone_charm::step::{Step, fact_order_problems};

/// Modules allowed to reach the machine directly: each is a seam with a twin, the entry point, or
/// what the Nagios plugins read outside hooks (`host::monitor`).
const WORLD_MODULES: [&str; 11] = [
    "main",
    "machine",
    "host::fs",
    "host::process",
    "host::services",
    "host::keys",
    "host::net",
    "host::monitor",
    "juju::process",
    "keystone_api::http",
    "cli",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under src/ with its module path (`host::fs`, `juju`, `main`).
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read src")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut next = prefix.to_vec();
                next.push(name);
                walk(&path, &next, out);
            } else if path.extension().is_some_and(|e| e == "rs") && name != "tests" {
                let mut parts = prefix.to_vec();
                if name != "mod" {
                    parts.push(name);
                }
                let text = std::fs::read_to_string(&path).expect("read a module");
                out.insert(parts.join("::"), without_tests(&text));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &[], &mut out);
    out
}

/// The text before the module's `#[cfg(test)]` items (by convention, at the end of the file).
fn without_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// The `crate::a::b::...` paths a module names, including those inside `use crate::{...}`.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        expand(rest, &mut Vec::new(), &mut paths);
    }
    paths
}

/// Reads one path (with `{a, b::c}` groups) at the start of `text`.
fn expand(text: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        if let Some(group) = text.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(group[start..i].trim(), &mut prefix.clone(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(group[start..i].trim(), &mut prefix.clone(), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        }
        out.push(prefix.clone());
        return;
    }
    prefix.push(ident.clone());
    match text[ident.len()..].strip_prefix("::") {
        Some(next) => expand(next, prefix, out),
        None => out.push(prefix.clone()),
    }
}

/// The module a path lands in: its longest prefix that is a module.
fn module_of(path: &[String], modules: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|name| modules.contains_key(name))
}

/// One module inside the other (or the same): they form one unit.
fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    modules
        .iter()
        .map(|(name, text)| {
            let edges = crate_paths(text)
                .iter()
                .filter_map(|path| module_of(path, &modules))
                .filter(|target| !related(name, target))
                .collect();
            (name.clone(), edges)
        })
        .collect()
}

/// A cycle reachable from `node`, as the modules on it, if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    assert!(graph.len() > 20, "src/ was not read: {:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// The folder of src/ a module lives in (`relations` for `relations::cluster`); None for a
/// file at the top of src/.
fn folder(module: &str) -> Option<String> {
    let first = module.split("::").next()?;
    src().join(first).is_dir().then(|| first.to_owned())
}

/// Which folders of src/ use which others.
fn folder_graph(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in graph {
        let Some(a) = folder(from) else { continue };
        let entry = folders.entry(a.clone()).or_default();
        entry.extend(targets.iter().filter_map(|t| folder(t)).filter(|b| *b != a));
    }
    folders
}

#[test]
fn no_two_folders_of_src_use_each_other() {
    let folders = folder_graph(&graph());
    assert!(
        folders.contains_key("relations") && folders.contains_key("steps"),
        "{folders:?}"
    );
    if let Some(cycle) = find_cycle(&folders) {
        panic!("folders of src/ use each other: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_groups_work() {
    let text = "use crate::{a::{b, c::D}, e};\nfn f() { crate::g::h(); }\n// crate::ignored\n";
    let paths: Vec<String> = crate_paths(text).iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c::D", "e", "g::h"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("x", vec!["y"]),
        ("y", vec!["z"]),
        ("z", vec!["x"]),
        ("w", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["x", "y", "z", "x"]);
}

#[test]
fn only_the_modules_that_touch_the_world_use_fs_process_or_env() {
    let mut offenders = Vec::new();
    for (name, text) in modules() {
        if WORLD_MODULES.contains(&name.as_str()) {
            continue;
        }
        for line in text.lines().map(str::trim_start) {
            if line.starts_with("//") {
                continue;
            }
            let grouped = line.starts_with("use std::{")
                && ["fs", "process", "env"]
                    .iter()
                    .any(|m| line.contains(&format!("{m}::")) || line.contains(&format!("{m},")));
            if grouped
                || ["std::fs", "std::process", "std::env"]
                    .iter()
                    .any(|n| line.contains(n))
            {
                offenders.push(format!("{name}: {line}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "only {WORLD_MODULES:?} may reach the machine directly: {offenders:?}"
    );
}

fn rotation_steps() -> Vec<Step> {
    STEPS
        .iter()
        .filter(|step| ROTATION_STEPS.contains(&step.name))
        .copied()
        .collect()
}

#[test]
fn every_step_reads_only_facts_an_earlier_step_writes() {
    assert_eq!(fact_order_problems(&STEPS), Vec::<String>::new());
    // rotate-fernet runs a few of the steps, then reads what the key sync found.
    let rotation = rotation_steps();
    assert_eq!(
        rotation.len(),
        ROTATION_STEPS.len(),
        "a rotation step was renamed"
    );
    assert_eq!(fact_order_problems(&rotation), Vec::<String>::new());
    assert!(
        rotation
            .iter()
            .any(|step| step.writes.contains(&FactName::KeySync))
    );
}

#[test]
fn every_fact_is_written_by_a_step() {
    // What the relations add (Fragments) may be added by none.
    for fact in FactName::ALL.iter().filter(|fact| !fact.gathers()) {
        assert!(
            STEPS.iter().any(|step| step.writes.contains(fact)),
            "no step writes {fact:?}"
        );
    }
}

#[test]
fn the_order_check_finds_a_step_before_its_writer_and_a_second_writer() {
    let mut steps = STEPS.to_vec();
    let writer = steps
        .iter()
        .position(|step| step.writes.contains(&FactName::Serving))
        .expect("a step writes Serving");
    let reader = steps.remove(
        steps
            .iter()
            .position(|step| step.reads.contains(&FactName::Serving))
            .expect("a step reads Serving"),
    );
    let name = reader.name;
    steps.insert(writer, reader);
    assert_eq!(
        fact_order_problems(&steps),
        vec![format!(
            "the {name} step reads Serving, which no step before it writes"
        )]
    );

    let mut steps = STEPS.to_vec();
    let late = Step::new("late-relation", |_| Ok(Vec::new())).writes(&[FactName::Fragments]);
    steps.push(late);
    assert_eq!(
        fact_order_problems(&steps),
        vec!["the late-relation step adds to Fragments after the keystone-files step read it"]
    );
    let mut steps = STEPS.to_vec();
    let early = Step::new("early-relation", |_| Ok(Vec::new())).writes(&[FactName::Fragments]);
    steps.insert(2, early);
    steps.insert(3, early);
    assert_eq!(fact_order_problems(&steps), Vec::<String>::new());

    let mut steps = STEPS.to_vec();
    let mut second = Step::new("second-writer", |_| Ok(Vec::new()));
    second.writes = &[FactName::Answering];
    steps.push(second);
    assert_eq!(
        fact_order_problems(&steps),
        vec!["Answering is written by both the readiness and the second-writer steps".to_owned()]
    );
}
