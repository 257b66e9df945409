//! kill -9 at random points while a key set is being applied never leaves a mixed or truncated
//! repository: after every kill it holds the complete old set or the complete new one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use keystone_charm::fernet_keys::{Key, KeySet};
use keystone_charm::host::keys::Repository;

const CHILD_ENV: &str = "FERNET_FAULT_CHILD_REPOSITORY";
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

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Applies the two sets in turn. Run by the fault-injection test as a child process, it loops
/// until killed; run on its own, it applies each set once and checks the result.
#[test]
fn child_applies_the_two_sets_in_turn() {
    let (a, b) = sets();
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let repo = Repository::new(&path, None);
        // Tell the parent the loop is running, so its kill lands inside applies.
        std::fs::write(format!("{path}.started"), b"").unwrap();
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

fn random_below(limit: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % limit
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
    let exe = std::env::current_exe().unwrap();
    let mut applied_during_run = 0;
    let mut interrupted = 0;
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_applies_the_two_sets_in_turn",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
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
        let before = std::fs::read_link(&path).ok();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
        if std::fs::read_link(&path).ok() != before {
            applied_during_run += 1;
        }
        // Leftovers of a write or a clean-up show the kill landed inside an apply.
        let sets = dir.join("fernet-keys.sets");
        if std::fs::read_dir(&sets)
            .map(|entries| {
                entries.flatten().any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.contains(".tmp-") || name.contains(".old-")
                })
            })
            .unwrap_or(false)
        {
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
    }
    println!(
        "{KILLS} kills -9 while applying key sets: every one left a complete set \
         ({applied_during_run} with the link moved, {interrupted} in the middle of a write or clean-up)"
    );
    assert!(
        interrupted > 0,
        "no kill landed inside an apply: the test tested nothing"
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
