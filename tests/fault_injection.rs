//! kill -9 at random points of every write path the charm has on the machine: after every kill,
//! a key repository holds the complete old set or the complete new one, and each rendered file
//! (keystone.conf, logging.conf, the vhost, haproxy.cfg, the TLS certificate and key) holds its
//! complete old or new content with its owner and mode; the next write converges and leaves no
//! temporary file behind. (Relation data is Juju's: a killed hook commits none of it, see
//! tests/database_outage.rs and juju-sim's commit-on-success.)

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use keystone_charm::host::fs::{DesiredFile, HostFiles, Owner, write_files};
use keystone_charm::host::keys::Repository;
use keystone_charm::key_sets::{Key, KeySet};

const KEYS_CHILD: &str = "FAULT_CHILD_KEY_REPOSITORY";
const FILES_CHILD: &str = "FAULT_CHILD_RENDERED_FILES";
const KILLS: usize = 200;

fn key(byte: u8) -> Key {
    Key::parse(
        0,
        &base64::engine::general_purpose::URL_SAFE.encode([byte; 32]),
    )
    .unwrap()
}

/// Two sets that differ in every key, so any mix of them is detectable.
fn sets() -> (KeySet, KeySet) {
    let a = KeySet::setup(key(1), key(2))
        .rotate(key(3), 5)
        .rotate(key(4), 5);
    let b = KeySet::setup(key(11), key(12))
        .rotate(key(13), 5)
        .rotate(key(14), 5);
    (a, b)
}

/// The files a hook renders, in two versions that differ in every byte; big enough that a kill
/// can land inside a write.
fn rendered(dir: &Path, version: u8) -> Vec<DesiredFile> {
    let fill = |size: usize| vec![b'a' + version; size];
    [
        ("keystone.conf", 0o640, 256 * 1024),
        ("logging.conf", 0o640, 8 * 1024),
        ("wsgi-openstack-api.conf", 0o644, 16 * 1024),
        ("haproxy.cfg", 0o644, 16 * 1024),
        ("cert.pem", 0o640, 4 * 1024),
        ("key.pem", 0o600, 4 * 1024),
    ]
    .into_iter()
    .map(|(name, mode, size)| {
        DesiredFile::new(
            &dir.join(name).to_string_lossy(),
            fill(size),
            Owner::root(),
            mode,
        )
    })
    .collect()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Tells the parent the child's loop is running, so its kill lands inside writes.
fn started(path: &Path) {
    std::fs::write(format!("{}.started", path.display()), b"").unwrap();
}

/// Applies the two key sets in turn. Run by the fault-injection test as a child process, it
/// loops until killed; run on its own, it applies each set once and checks the result.
#[test]
fn child_applies_the_two_sets_in_turn() {
    let (a, b) = sets();
    if let Ok(path) = std::env::var(KEYS_CHILD) {
        let repo = Repository::new(&path, None);
        started(Path::new(&path));
        loop {
            repo.apply(&b).unwrap();
            repo.apply(&a).unwrap();
        }
    }
    let dir = temp("once");
    let repo = Repository::new(dir.join("fernet-keys"), None);
    repo.apply(&a).unwrap();
    assert_eq!(repo.read().unwrap(), Some(a));
    repo.apply(&b).unwrap();
    assert_eq!(repo.read().unwrap(), Some(b));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes the two versions of the rendered files in turn, as the charm writes them; loops until
/// killed when run as the child, writes each version once otherwise.
#[test]
fn child_writes_the_two_versions_in_turn() {
    if let Ok(dir) = std::env::var(FILES_CHILD) {
        let dir = PathBuf::from(dir);
        started(&dir);
        loop {
            write_files(&HostFiles, &[], &rendered(&dir, 1)).unwrap();
            write_files(&HostFiles, &[], &rendered(&dir, 0)).unwrap();
        }
    }
    let dir = temp("files-once");
    for version in [0, 1] {
        let files = rendered(&dir, version);
        assert_eq!(write_files(&HostFiles, &[], &files).unwrap().len(), 6);
        assert_eq!(held_version(&files, &dir), Ok(version));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn random_below(limit: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % limit
}

/// Runs `child_test` as a child process with `env` = `path`, kills it with SIGKILL at a random
/// moment once its loop runs, and calls `after_kill` with the kill's number; [`KILLS`] times.
fn kill_repeatedly(child_test: &str, env: &str, path: &Path, mut after_kill: impl FnMut(usize)) {
    let exe = std::env::current_exe().unwrap();
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(env, path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = PathBuf::from(format!("{}.started", path.display()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !started.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = std::fs::remove_file(&started);
        std::thread::sleep(Duration::from_micros(random_below(15_000)));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
        after_kill(kill);
    }
}

/// Whether a directory holds a leftover of an interrupted write.
fn holds_leftovers(dir: &Path, markers: &[&str]) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                markers.iter().any(|m| name.contains(m))
            })
        })
        .unwrap_or(false)
}

fn check(repo: &Repository, a: &KeySet, b: &KeySet, kill: usize) {
    let held = repo
        .read()
        .unwrap_or_else(|e| panic!("kill {kill}: unreadable repository: {e}"));
    assert!(
        held.as_ref() == Some(a) || held.as_ref() == Some(b),
        "kill {kill}: the repository holds neither complete set: {held:?}"
    );
}

#[test]
fn kill_9_at_random_points_leaves_a_complete_old_or_new_set() {
    let (a, b) = sets();
    let dir = temp("kill");
    let path = dir.join("fernet-keys");
    let repo = Repository::new(&path, None);
    repo.apply(&a).unwrap();
    let mut interrupted = 0;
    kill_repeatedly(
        "child_applies_the_two_sets_in_turn",
        KEYS_CHILD,
        &path,
        |kill| {
            // Leftovers of a write or a clean-up show the kill landed inside an apply.
            if holds_leftovers(&dir.join("fernet-keys.sets"), &[".tmp-", ".old-"]) {
                interrupted += 1;
            }
            check(&repo, &a, &b, kill);
            // The next apply recovers from whatever the kill left behind.
            let next = if repo.read().unwrap() == Some(a.clone()) {
                &b
            } else {
                &a
            };
            repo.apply(next).unwrap();
            check(&repo, &a, &b, kill);
        },
    );
    println!(
        "{KILLS} kills -9 while applying key sets: every one left a complete set \
         ({interrupted} in the middle of a write or clean-up)"
    );
    assert!(
        interrupted > 0,
        "no kill landed inside an apply: the test tested nothing"
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

/// Which version every file holds, complete and with its mode; what is wrong otherwise.
fn held_version(files: &[DesiredFile], dir: &Path) -> Result<u8, String> {
    let mut versions = Vec::new();
    for file in files {
        let content = std::fs::read(&file.path).map_err(|e| format!("{:?}: {e}", file.path))?;
        let meta = std::fs::metadata(&file.path).map_err(|e| e.to_string())?;
        if meta.mode() & 0o7777 != file.mode {
            return Err(format!("{:?} has mode {:o}", file.path, meta.mode()));
        }
        let version = content.first().map(|b| b.wrapping_sub(b'a'));
        match version {
            Some(v @ (0 | 1)) if rendered(dir, v).iter().any(|f| f.content == content) => {
                versions.push(v);
            }
            _ => {
                return Err(format!(
                    "{:?} is torn: {} bytes, neither version",
                    file.path,
                    content.len()
                ));
            }
        }
    }
    // Files are written one after another: a kill between two leaves some old, some new, each
    // one whole. All of them agree once the next write is done.
    Ok(versions.iter().copied().max().unwrap_or(0))
}

#[test]
fn kill_9_at_random_points_leaves_every_rendered_file_whole() {
    let dir = temp("files");
    write_files(&HostFiles, &[], &rendered(&dir, 0)).unwrap();
    let mut interrupted = 0;
    let mut mixed = 0;
    kill_repeatedly(
        "child_writes_the_two_versions_in_turn",
        FILES_CHILD,
        &dir,
        |kill| {
            if holds_leftovers(&dir, &[".charm-tmp."]) {
                interrupted += 1;
            }
            let files = rendered(&dir, 0);
            held_version(&files, &dir).unwrap_or_else(|e| panic!("kill {kill}: {e}"));
            let first = std::fs::read(&files[0].path).unwrap()[0];
            if files
                .iter()
                .any(|f| std::fs::read(&f.path).unwrap()[0] != first)
            {
                mixed += 1;
            }
            // The next hook writes the version it wants: everything converges, nothing is left.
            let next = rendered(&dir, 1);
            write_files(&HostFiles, &[], &next).unwrap();
            assert_eq!(held_version(&next, &dir), Ok(1), "kill {kill}");
            for file in &next {
                assert_eq!(std::fs::read(&file.path).unwrap(), file.content);
            }
            assert!(
                !holds_leftovers(&dir, &[".charm-tmp."]),
                "kill {kill}: a temporary file outlived the next write"
            );
        },
    );
    println!(
        "{KILLS} kills -9 while writing rendered files: none torn \
         ({interrupted} in the middle of a write, {mixed} between two files)"
    );
    assert!(
        interrupted > 0,
        "no kill landed inside a write: the test tested nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
