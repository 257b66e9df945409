//! The simulator names no charm: no source file under src/ mentions the charm this workspace
//! is for (Keystone) outside comments, and the crate does not depend on the fixtures crate that
//! holds everything Keystone-specific. Comments may say what a rule is for; code, strings and
//! test names may not carry the charm.

use std::path::{Path, PathBuf};

/// The word that must not appear (compared case-insensitively).
const CHARM: &str = "keystone";

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every .rs file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Rust source with its comments (line, doc and nested block comments) blanked out; string,
/// raw string and character literals are kept, so a `//` inside a string is not a comment.
fn without_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                let mut depth = 0;
                while let Some(c) = at(i) {
                    if c == '/' && at(i + 1) == Some('*') {
                        depth += 1;
                        i += 2;
                    } else if c == '*' && at(i + 1) == Some('/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        // Keeps line numbers those of the file.
                        if c == '\n' {
                            out.push('\n');
                        }
                        i += 1;
                    }
                }
                out.push(' ');
            }
            'r' if matches!(at(i + 1), Some('"' | '#')) && starts_token(&chars, i) => {
                // A raw string: r"..." or r#"..."#, ended by a quote and as many hashes.
                let start = i;
                let mut hashes = 0;
                i += 1;
                while at(i) == Some('#') {
                    hashes += 1;
                    i += 1;
                }
                if at(i) != Some('"') {
                    // r#ident: a raw identifier, not a string.
                    out.extend(&chars[start..i]);
                    continue;
                }
                i += 1;
                while let Some(c) = at(i) {
                    i += 1;
                    if c == '"' && (0..hashes).all(|k| at(i + k) == Some('#')) {
                        i += hashes;
                        break;
                    }
                }
                out.extend(&chars[start..i]);
            }
            '"' => {
                let start = i;
                i += 1;
                while let Some(c) = at(i) {
                    i += if c == '\\' { 2 } else { 1 };
                    if c == '"' {
                        break;
                    }
                }
                out.extend(&chars[start..i.min(chars.len())]);
            }
            // A character literal ('x', '\n', '"'); a lifetime ('a) is left as code.
            '\'' if at(i + 1) == Some('\\') || at(i + 2) == Some('\'') => {
                let start = i;
                i += 1;
                while let Some(c) = at(i) {
                    i += if c == '\\' { 2 } else { 1 };
                    if c == '\'' {
                        break;
                    }
                }
                out.extend(&chars[start..i.min(chars.len())]);
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Whether the `r` at `i` starts a raw string (`r"`, `br"`), not the end of an identifier.
fn starts_token(chars: &[char], i: usize) -> bool {
    let ident = |c: &char| c.is_alphanumeric() || *c == '_';
    match i.checked_sub(1).map(|p| (p, chars[p])) {
        None => true,
        Some((p, 'b')) => !p
            .checked_sub(1)
            .map(|q| chars[q])
            .as_ref()
            .is_some_and(ident),
        Some((_, c)) => !ident(&c),
    }
}

/// The lines of `text` (1-based) whose code, comments left out, mentions [`CHARM`].
fn mentions(text: &str) -> Vec<usize> {
    without_comments(text)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.to_lowercase().contains(CHARM))
        .map(|(n, _)| n + 1)
        .collect()
}

#[test]
fn no_source_file_names_the_charm_outside_comments() {
    let files = rust_files(&crate_dir().join("src"));
    assert!(
        files.iter().any(|f| f.ends_with("src/lib.rs")),
        "src/ was not read: {files:?}"
    );
    let mut offenders = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        for line in mentions(&text) {
            offenders.push(format!("{}:{line}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "the simulator's core names {CHARM:?}; it belongs in juju-sim-fixtures: {offenders:?}"
    );
}

#[test]
fn the_crate_does_not_depend_on_the_fixtures() {
    let manifest =
        std::fs::read_to_string(crate_dir().join("Cargo.toml")).expect("read Cargo.toml");
    let offending: Vec<&str> = manifest
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter(|line| {
            let line = line.to_lowercase();
            line.contains("fixtures") || line.contains(CHARM)
        })
        .collect();
    assert!(
        offending.is_empty(),
        "juju-sim's Cargo.toml names the fixtures or the charm: {offending:?}"
    );
}

#[test]
fn the_check_sees_code_and_strings_but_not_comments() {
    let code = [
        "fn keystone_machine() {}",
        "let app = \"Keystone\";",
        "let s = r#\"a \"quoted\" KEYSTONE\"#;",
        "let c = '/'; let name = \"keystone\";",
        "let url = \"http://x//keystone\";",
        "struct S<'a>(&'a str); const K: &str = \"keystone\";",
        "/* a comment */ let keystone = 1;",
    ];
    for line in code {
        assert_eq!(mentions(line), [1], "{line:?}");
    }
    let comments = [
        "// keystone",
        "/// Keystone's layout",
        "//! keystone",
        "let a = 1; // keystone",
        "/* keystone /* nested */ still keystone */ let a = 1;",
        "let s = \"a \\\" quote\"; // keystone",
        "let s = r\"raw\"; // keystone",
        "let b = br\"x\\\"; // keystone",
    ];
    for line in comments {
        assert_eq!(mentions(line), Vec::<usize>::new(), "{line:?}");
    }
    // Lines are counted in the original text, block comments spanning lines included.
    assert_eq!(mentions("/* one\ntwo */\nlet keystone = 3;"), [3]);
}
