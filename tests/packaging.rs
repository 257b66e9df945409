//! `scripts/build-charm` (what `make charm` runs) produces a charm Juju can deploy, and the
//! repository's hooks/ matches what the binary handles.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::TempDir;

const BINARY: &str = env!("CARGO_BIN_EXE_keystone-charm");
const TOP: &str = env!("CARGO_MANIFEST_DIR");

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (apt-get install zip unzip)"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn handled_hooks() -> BTreeSet<String> {
    run(Command::new(BINARY).arg("hooks"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One zipinfo line per entry: permissions first, name last.
fn listing(archive: &Path) -> Vec<(String, String)> {
    run(Command::new("unzip").arg("-Z").arg(archive))
        .lines()
        .filter(|line| line.starts_with('-') || line.starts_with('l') || line.starts_with('d'))
        .map(|line| {
            let mode = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            let name = line
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned();
            (mode, name)
        })
        .collect()
}

#[test]
fn the_same_inputs_pack_the_same_archive() {
    let pack = |name: &str| {
        let out = TempDir::new(name);
        run(Command::new(Path::new(TOP).join("scripts/build-charm"))
            .arg(BINARY)
            .arg(out.path()));
        let bytes = std::fs::read(out.path().join("keystone.charm")).unwrap();
        let manifest = std::fs::read_to_string(out.path().join("charm/manifest.yaml")).unwrap();
        (bytes, manifest)
    };
    let (first, manifest) = pack("keystone-charm-pack-a");
    // Packed more than a second later (the manifest's time has seconds), elsewhere.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, again) = pack("keystone-charm-pack-b");
    assert_eq!(manifest, again);
    assert!(first == second, "two packs of the same inputs differ");
}

#[test]
fn the_charm_archive_holds_what_juju_needs_and_nothing_else() {
    let out = TempDir::new("keystone-charm-pack");
    run(Command::new(Path::new(TOP).join("scripts/build-charm"))
        .arg(BINARY)
        .arg(out.path()));
    let archive = out.path().join("keystone.charm");
    let entries = listing(&archive);
    let names: BTreeSet<&str> = entries.iter().map(|(_, n)| n.as_str()).collect();

    for required in [
        "dispatch",
        "bin/keystone-charm",
        "metadata.yaml",
        "config.yaml",
        "actions.yaml",
        "manifest.yaml",
        "README.md",
        "copyright",
        "templates/",
    ] {
        assert!(
            names.contains(required),
            "{required} missing from {names:?}"
        );
    }
    for (mode, name) in &entries {
        if name == "dispatch" || name == "bin/keystone-charm" {
            assert!(mode.starts_with("-rwx"), "{name} is not executable: {mode}");
        }
        assert!(
            !name.starts_with("target/") && !name.starts_with(".git") && !name.contains("/.git"),
            "stray file {name}"
        );
    }

    // Every handled hook is a link to ../dispatch, for Juju versions without dispatch.
    let hooks: BTreeSet<String> = entries
        .iter()
        .filter_map(|(mode, name)| {
            let hook = name.strip_prefix("hooks/")?;
            (!hook.is_empty()).then(|| {
                assert!(mode.starts_with('l'), "hooks/{hook} is not a link: {mode}");
                hook.to_owned()
            })
        })
        .collect();
    assert_eq!(hooks, handled_hooks());
    let actions: BTreeSet<String> = entries
        .iter()
        .filter_map(|(_, name)| name.strip_prefix("actions/").filter(|a| !a.is_empty()))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        actions,
        declared_actions(),
        "actions/ links for every action in actions.yaml"
    );
    let unpacked = out.path().join("charm/hooks/install");
    assert_eq!(
        std::fs::read_link(&unpacked).expect("hooks/install is a link"),
        Path::new("../dispatch")
    );

    // Juju 3 reads the supported bases from manifest.yaml.
    let manifest: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(out.path().join("charm/manifest.yaml")).expect("manifest"),
    )
    .expect("manifest is YAML");
    let bases = manifest["bases"].as_sequence().expect("bases list");
    assert!(bases.iter().any(|b| b["channel"].as_str() == Some("22.04")));
}

/// The actions actions.yaml declares.
fn declared_actions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(TOP).join("actions.yaml")).expect("actions.yaml");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("actions.yaml is YAML");
    yaml.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_action_in_actions_yaml_is_implemented_and_linked() {
    let implemented: BTreeSet<String> = run(Command::new(BINARY).arg("actions"))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(implemented, declared_actions());
    let linked: BTreeSet<String> = std::fs::read_dir(Path::new(TOP).join("actions"))
        .expect("actions/ exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        linked, implemented,
        "actions/ is out of date: run `make hooks`"
    );
}

#[test]
fn the_repository_hooks_dir_matches_the_handled_hooks() {
    let dir = Path::new(TOP).join("hooks");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("hooks/ exists") {
        let entry = entry.expect("read hooks/");
        let target = std::fs::read_link(entry.path()).expect("hooks/* are links");
        assert_eq!(target, Path::new("../dispatch"), "{:?}", entry.path());
        found.insert(entry.file_name().to_string_lossy().into_owned());
    }
    assert_eq!(
        found,
        handled_hooks(),
        "hooks/ is out of date: run `make hooks`"
    );
}

/// The newest glibc symbol version the charm's binary needs: it must run on jammy (glibc 2.35),
/// the oldest series the charm supports.
#[test]
fn the_binary_runs_on_jammys_glibc() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_keystone-charm")).expect("the binary");
    let marker = b"GLIBC_2.";
    let mut newest = (2, 0);
    for (at, _) in binary
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
    {
        let digits: String = binary[at + marker.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .map(|b| char::from(*b))
            .collect();
        if let Ok(minor) = digits.parse::<u32>() {
            newest = newest.max((2, minor));
        }
    }
    assert!(
        newest > (2, 0),
        "no glibc symbol version found: is it dynamically linked?"
    );
    assert!(
        newest <= (2, 35),
        "the binary needs GLIBC_{}.{}, newer than jammy's 2.35",
        newest.0,
        newest.1
    );
}
