//! openstack-origin on this Debian machine, for real: the charm writes the `deb` line into its
//! own list and apt fetches a local repository of the test's (a package the test builds), in a
//! unit whose apt configuration, lists and cache are its own. An origin apt cannot fetch, and
//! one this machine cannot have, block the unit with the reason and leave the sources as they
//! were; a failed fetch is tried again in update-status. Needs root and dpkg-dev
//! (dpkg-scanpackages).

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};
use support::{MACHINE_PATHS, TempDir};

const UNIT: &str = "keystone/0";
const PROBE: &str = "keystone-origin-probe";

/// A flat repository in `dir` holding one package, `PROBE` 1.0.
fn local_repository(dir: &Path) {
    let package = dir.join("build");
    std::fs::create_dir_all(package.join("DEBIAN")).unwrap();
    std::fs::write(
        package.join("DEBIAN/control"),
        format!(
            "Package: {PROBE}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.com>\n\
             Description: what openstack-origin's test installs from\n"
        ),
    )
    .unwrap();
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let built = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&package)
        .arg(repo.join(format!("{PROBE}_1.0_all.deb")))
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let scanned = Command::new("dpkg-scanpackages")
        .args([".", "/dev/null"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(scanned.status.success(), "{scanned:?}");
    std::fs::write(repo.join("Packages"), scanned.stdout).unwrap();
    // apt's sandbox user reads the repository.
    for path in [dir, repo.as_path()] {
        let chmod = Command::new("chmod").arg("755").arg(path).status().unwrap();
        assert!(chmod.success());
    }
}

fn config(origin: &str) -> Map<String, Value> {
    json!({"openstack-origin": origin})
        .as_object()
        .cloned()
        .unwrap()
}

fn status(model: &juju_sim::Model) -> (String, String) {
    model.unit_status(UNIT).unwrap()
}

fn origin_list(model: &juju_sim::Model) -> Option<String> {
    let path = model.unit_path(UNIT, "/etc/apt/sources.list.d/openstack-origin.list");
    std::fs::read_to_string(path).ok()
}

/// Whether the unit's apt index lists the probe package, fetched from the repository.
fn indexed(model: &juju_sim::Model) -> bool {
    let lists = model.unit_path(UNIT, "/var/lib/apt/lists");
    std::fs::read_dir(lists)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with("Packages"))
        .any(|entry| {
            std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .contains(&format!("Package: {PROBE}"))
        })
}

#[test]
fn a_deb_origin_is_fetched_by_apt_and_one_apt_cannot_use_blocks_leaving_the_sources() {
    let out = TempDir::new("origin-real");
    let charm = support::pack_charm(&out);
    local_repository(out.path());
    let repo = out.path().join("repo");
    let good = format!("deb [trusted=yes] file:{} ./", repo.display());

    let mut model = juju_sim::Model::new().unwrap();
    let mut private = MACHINE_PATHS.to_vec();
    private.extend(["/etc/apt", "/var/lib/apt", "/var/cache/apt"]);
    model.isolate_paths(&private);
    model.deploy("keystone", &charm, 1, config(&good)).unwrap();
    // The unit's apt starts with no sources: it fetches only what the origin names.
    for dir in [
        "/etc/apt/sources.list.d",
        "/etc/apt/apt.conf.d",
        "/var/lib/apt/lists/partial",
        "/var/cache/apt/archives/partial",
    ] {
        let path = model.unit_path(UNIT, dir);
        std::fs::create_dir_all(path).unwrap();
    }
    model.settle().unwrap();
    assert_eq!(origin_list(&model), Some(format!("{good}\n")));
    assert!(indexed(&model), "apt fetched the local repository");
    assert!(
        !status(&model).1.contains("openstack-origin"),
        "{:?}",
        status(&model)
    );

    // A repository that is not there (yet): apt-get update fails; blocked, the list as it was.
    let later = out.path().join("later");
    let missing = format!("deb [trusted=yes] file:{} ./", later.display());
    model.set_config("keystone", config(&missing)).unwrap();
    model.settle().unwrap();
    let (workload, message) = status(&model);
    assert_eq!(workload, "blocked", "{message}");
    assert!(
        message.starts_with("openstack-origin: apt-get update failed with these sources:")
            && message.ends_with("; the sources are as they were"),
        "{message}"
    );
    assert_eq!(origin_list(&model), Some(format!("{good}\n")));
    // update-status tries again: still not there, still blocked; once it is, the unit heals.
    model.queue_hook(UNIT, "update-status");
    model.settle().unwrap();
    assert_eq!(status(&model).0, "blocked");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&repo)
        .arg(&later)
        .status()
        .unwrap();
    assert!(copied.success());
    model.queue_hook(UNIT, "update-status");
    model.settle().unwrap();
    assert_eq!(origin_list(&model), Some(format!("{missing}\n")));
    assert!(
        !status(&model).1.contains("openstack-origin"),
        "{:?}",
        status(&model)
    );

    // An origin this machine cannot have is refused before anything is written.
    model
        .set_config("keystone", config("cloud:jammy-caracal"))
        .unwrap();
    model.settle().unwrap();
    let (workload, message) = status(&model);
    assert_eq!(workload, "blocked");
    assert!(message.contains("has no Cloud Archive"), "{message}");
    assert_eq!(origin_list(&model), Some(format!("{missing}\n")));

    // distro: the charm's list goes, and the unit is no longer blocked by its origin.
    model.set_config("keystone", config("distro")).unwrap();
    model.settle().unwrap();
    assert_eq!(origin_list(&model), None);
    assert!(
        !status(&model).1.contains("openstack-origin"),
        "{:?}",
        status(&model)
    );
}
