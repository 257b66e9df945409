//! Debian packages, through the [`Runner`]: install what is missing, idempotently, and nothing
//! when all is there; read Keystone's version for `juju status`.

use anyhow::{Context, Result, bail};

use std::path::Path;

use super::fs::{DesiredFile, Files, Owner, write_files};
use super::process::{Invocation, Runner, run_checked};
use crate::origin::{SigningKey, SourcePlan};
use crate::secret::Sensitive;

/// The packages a Keystone unit needs.
pub fn keystone_packages(enable_cache: bool) -> Vec<&'static str> {
    let mut packages = vec![
        "keystone",
        "python3-pymysql",
        "apache2",
        "libapache2-mod-wsgi-py3",
        // In front of Apache on every unit.
        "haproxy",
        // update-ca-certificates, for ssl_ca.
        "ca-certificates",
    ];
    if enable_cache {
        // The cache, and the firewall that lets only the application's units reach it.
        packages.extend(["memcached", "nftables"]);
    }
    packages
}

/// Which of `packages` dpkg does not report as installed, from
/// `dpkg-query -W -f '${Package} ${Status}\n'` output.
pub fn missing_from_status(packages: &[&str], dpkg_output: &str) -> Vec<String> {
    packages
        .iter()
        .filter(|package| {
            !dpkg_output.lines().any(|line| {
                line.split_once(' ').is_some_and(|(name, status)| {
                    name == **package && status.trim() == "install ok installed"
                })
            })
        })
        .map(|p| (*p).to_owned())
        .collect()
}

/// The packages dpkg does not report as installed.
pub fn missing(runner: &dyn Runner, packages: &[&str]) -> Result<Vec<String>> {
    let query = Invocation::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Status}\\n"])
        .args(packages.iter().copied());
    let output = runner
        .run(&query)
        .context("cannot run dpkg-query: is this a Debian or Ubuntu machine?")?;
    // dpkg-query exits 1 when a package is unknown; its output still lists the known ones.
    Ok(missing_from_status(packages, &output.stdout))
}

/// apt-get with `args`, non-interactive, waiting for another apt run rather than failing at
/// once, keeping local changes to conffiles.
fn apt_get(args: &[&str]) -> Invocation {
    let options = [
        "-q",
        "-o",
        "DPkg::Lock::Timeout=300",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    Invocation::new("apt-get")
        .args(options)
        .args(args.iter().copied())
        .env(
            "DEBIAN_FRONTEND",
            Sensitive::new("noninteractive".to_owned()),
        )
        .timeout(std::time::Duration::from_secs(1800))
}

/// Installs packages with apt-get, after refreshing its index.
pub fn install(runner: &dyn Runner, missing: &[String]) -> Result<()> {
    tracing::info!("installing {}", missing.join(" "));
    update(runner)?;
    apt_install(runner, &["--no-install-recommends"], missing)
}

/// `apt-get install -y <options> <packages>`.
fn apt_install(runner: &dyn Runner, options: &[&str], packages: &[String]) -> Result<()> {
    let mut install = vec!["install", "-y"];
    install.extend_from_slice(options);
    install.extend(packages.iter().map(String::as_str));
    if let Err(err) = run_checked(runner, &apt_get(&install)) {
        bail!("{err}; check the machine's package sources and proxy settings");
    }
    Ok(())
}

/// The keyring an origin's key is kept in (armoured: apt reads `.asc` keyrings as they are).
pub const ORIGIN_KEYRING: &str = "/etc/apt/trusted.gpg.d/openstack-origin.asc";

/// Why the sources could not be configured: said in the blocked status.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("cannot install {package}: {detail}")]
    Keyring { package: String, detail: String },
    #[error("cannot fetch key {id} from the Ubuntu keyserver: {detail}")]
    KeyFetch { id: String, detail: String },
    #[error("add-apt-repository {spec} failed: {detail}")]
    AptRepository { spec: String, detail: String },
    #[error("apt-get update failed with these sources: {detail}")]
    Update { detail: String },
}

/// Configures apt's sources as `plan` says and refreshes its index when they changed. When that
/// fails, the
/// charm's lists and keyring are put back as they were, so the machine keeps installing from
/// what it had; the error says why. Returns whether the sources changed.
pub fn configure_sources(
    files: &dyn Files,
    runner: &dyn Runner,
    plan: &SourcePlan,
) -> Result<Result<bool, SourcesError>> {
    let owned: Vec<&str> = plan
        .lists
        .iter()
        .map(|(path, _)| *path)
        .chain([ORIGIN_KEYRING])
        .collect();
    let mut before = Vec::new();
    for path in &owned {
        before.push((*path, files.read(Path::new(path))?));
    }
    let outcome = apply_sources(files, runner, plan)?;
    if outcome.is_err() {
        for (path, content) in &before {
            match content {
                Some(bytes) => {
                    files.write(Path::new(path), bytes, &Owner::root(), 0o644)?;
                }
                None => {
                    files.remove(Path::new(path))?;
                }
            }
        }
    }
    Ok(outcome)
}

fn apply_sources(
    files: &dyn Files,
    runner: &dyn Runner,
    plan: &SourcePlan,
) -> Result<Result<bool, SourcesError>> {
    let failed = |output: &super::process::Output| output.error_summary();
    let missing = match plan.packages.is_empty() {
        true => Vec::new(),
        false => missing(runner, &plan.packages)?,
    };
    if !missing.is_empty() {
        let mut install = vec!["install", "-y", "--no-install-recommends"];
        install.extend(missing.iter().map(String::as_str));
        let output = runner.run(&apt_get(&install))?;
        if !output.success() {
            return Ok(Err(SourcesError::Keyring {
                package: missing.join(" "),
                detail: failed(&output),
            }));
        }
    }
    let mut changed = false;
    let keyring = match &plan.key {
        None => None,
        Some(SigningKey::Armoured(text)) => Some(format!("{}\n", text.trim())),
        Some(SigningKey::Id(id)) => {
            let url = format!(
                "https://keyserver.ubuntu.com/pks/lookup?op=get&options=mr&exact=on&search=0x{id}"
            );
            let output =
                runner.run(&Invocation::new("curl").args(["-fsS", "--max-time", "60", &url]))?;
            if !output.success() || !output.stdout.contains("BEGIN PGP PUBLIC KEY BLOCK") {
                return Ok(Err(SourcesError::KeyFetch {
                    id: id.clone(),
                    detail: failed(&output),
                }));
            }
            Some(output.stdout.clone())
        }
    };
    let desired = plan
        .lists
        .iter()
        .map(|(path, content)| (*path, content.clone()))
        .chain([(ORIGIN_KEYRING, keyring)]);
    for (path, content) in desired {
        changed |= match content {
            Some(text) => {
                let file = DesiredFile::new(path, text, Owner::root(), 0o644);
                !write_files(files, &[], [&file])?.is_empty()
            }
            None => files.remove(Path::new(path))?,
        };
    }
    if let Some(spec) = &plan.apt_repository {
        let output = runner.run(&Invocation::new("add-apt-repository").args(["--yes", spec]))?;
        if !output.success() {
            return Ok(Err(SourcesError::AptRepository {
                spec: spec.clone(),
                detail: failed(&output),
            }));
        }
        changed = true;
    }
    if !changed {
        return Ok(Ok(false));
    }
    // apt-get update exits 0 when a source cannot be fetched; -o APT::Update::Error-Mode=any
    // makes it fail then (apt 2.1+); its warnings name the source either way.
    let update = apt_get(&["update", "-o", "APT::Update::Error-Mode=any"]);
    let output = runner.run(&update)?;
    if !output.success() {
        return Ok(Err(SourcesError::Update {
            detail: failed(&output),
        }));
    }
    Ok(Ok(changed))
}

/// The upstream version of an installed package (`2:25.0.0-0ubuntu1` → `25.0.0`), as the
/// OpenStack charms show it in `juju status`; None when it is not installed.
pub fn upstream_version(runner: &dyn Runner, package: &str) -> Result<Option<String>> {
    let query = Invocation::new("dpkg-query").args(["-W", "-f", "${Version}", package]);
    let output = runner
        .run(&query)
        .context("cannot run dpkg-query: is this a Debian or Ubuntu machine?")?;
    Ok(output
        .success()
        .then(|| upstream(output.stdout.trim()))
        .flatten())
}

/// The installed version (the whole Debian version) of each of `packages` that is installed.
pub fn installed_versions(
    runner: &dyn Runner,
    packages: &[&str],
) -> Result<std::collections::BTreeMap<String, String>> {
    let query = Invocation::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Status} ${Version}\\n"])
        .args(packages.iter().copied());
    let output = runner
        .run(&query)
        .context("cannot run dpkg-query: is this a Debian or Ubuntu machine?")?;
    Ok(output
        .stdout
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [name, "install", "ok", "installed", version] => {
                    Some(((*name).to_owned(), (*version).to_owned()))
                }
                _ => None,
            }
        })
        .collect())
}

/// The version apt would install for `package` from the configured sources (None: none).
pub fn candidate_version(runner: &dyn Runner, package: &str) -> Result<Option<String>> {
    Ok(candidate_versions(runner, &[package.to_owned()])?.remove(package))
}

/// The version apt would install for each of `packages` that the sources offer.
pub fn candidate_versions(
    runner: &dyn Runner,
    packages: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let policy = Invocation::new("apt-cache")
        .arg("policy")
        .args(packages.iter().cloned());
    let output = run_checked(runner, &policy).context("cannot run apt-cache policy")?;
    Ok(candidates_from_policy(&output.stdout))
}

/// Each package's `Candidate:` in `apt-cache policy` output, but `(none)`.
pub fn candidates_from_policy(policy: &str) -> std::collections::BTreeMap<String, String> {
    let mut candidates = std::collections::BTreeMap::new();
    let mut package = None;
    for line in policy.lines() {
        if !line.starts_with(char::is_whitespace) {
            package = line.strip_suffix(':').map(str::to_owned);
        } else if let (Some(name), Some(candidate)) =
            (&package, line.trim().strip_prefix("Candidate:"))
        {
            let candidate = candidate.trim();
            if candidate != "(none)" {
                candidates.insert(name.clone(), candidate.to_owned());
            }
        }
    }
    candidates
}

/// Refreshes apt's index.
pub fn update(runner: &dyn Runner) -> Result<()> {
    if let Err(err) = run_checked(runner, &apt_get(&["update"])) {
        bail!("{err}; check the machine's package sources and proxy settings");
    }
    Ok(())
}

/// Upgrades `packages` to their newest versions in apt's index (only those: the machine's
/// other packages are the operator's); [`update`] refreshes the index first.
pub fn upgrade(runner: &dyn Runner, packages: &[String]) -> Result<()> {
    apt_install(runner, &["--only-upgrade"], packages)
}

/// A Debian version without its epoch and revision (`2:22.0.2-0+deb12u6` → `22.0.2`).
pub fn upstream(version: &str) -> Option<String> {
    let without_epoch = version.split_once(':').map_or(version, |(_, rest)| rest);
    let upstream = without_epoch
        .rsplit_once('-')
        .map_or(without_epoch, |(upstream, _)| upstream);
    (!upstream.is_empty()).then(|| upstream.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::MemoryFiles;
    use crate::host::process::{Output, ScriptedRunner};
    use crate::origin::{CLOUD_ARCHIVE_LIST, ORIGIN_LIST, OsRelease, parse};

    fn plan(value: &str) -> SourcePlan {
        let jammy = OsRelease {
            distribution: "ubuntu".to_owned(),
            series: "jammy".to_owned(),
        };
        parse(value, &jammy).unwrap().plan("jammy")
    }

    fn text(files: &MemoryFiles, path: &str) -> Option<String> {
        files
            .read(Path::new(path))
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn apt_cache_policy_gives_each_packages_candidate() {
        let policy = "keystone:\n  Installed: 2:22.0.2-0+deb12u3\n  Candidate: 2:22.0.2-0+deb12u6\n  \
                      Version table:\n     2:22.0.2-0+deb12u6 500\n        500 file:/r ./ Packages\n\
                      apache2:\n  Installed: 2.4.62-1~deb12u2\n  Candidate: 2.4.62-1~deb12u2\n\
                      gone:\n  Installed: (none)\n  Candidate: (none)\n";
        let candidates = candidates_from_policy(policy);
        assert_eq!(
            candidates.into_iter().collect::<Vec<_>>(),
            [
                ("apache2".to_owned(), "2.4.62-1~deb12u2".to_owned()),
                ("keystone".to_owned(), "2:22.0.2-0+deb12u6".to_owned()),
            ]
        );
    }

    #[test]
    fn sources_are_written_refreshed_once_and_left_alone_when_unchanged() {
        let files = MemoryFiles::new();
        let runner = ScriptedRunner::new();
        // dpkg-query: the keyring is not installed yet.
        runner.reply(Output {
            code: Some(1),
            ..Output::default()
        });
        let caracal = plan("cloud:jammy-caracal");
        assert!(
            configure_sources(&files, &runner, &caracal)
                .unwrap()
                .unwrap()
        );
        assert!(
            text(&files, CLOUD_ARCHIVE_LIST)
                .unwrap()
                .contains("jammy-updates/caracal main")
        );
        assert_eq!(runner.count("apt-get", "-q"), 2, "{:?}", runner.calls());
        let programs: Vec<String> = runner
            .calls()
            .iter()
            .map(|c| format!("{} {}", c.program, c.args.join(" ")))
            .collect();
        assert!(programs[1].contains("install -y --no-install-recommends ubuntu-cloud-keyring"));
        assert!(programs[2].contains("update -o APT::Update::Error-Mode=any"));
        // The same again: nothing written, no refresh.
        runner.reply(Output {
            code: Some(0),
            stdout: "ubuntu-cloud-keyring install ok installed\n".to_owned(),
            ..Output::default()
        });
        assert!(
            !configure_sources(&files, &runner, &caracal)
                .unwrap()
                .unwrap()
        );
        assert_eq!(runner.count("apt-get", "-q"), 2);
        // distro: the charm's lists go.
        assert!(
            configure_sources(&files, &runner, &plan("distro"))
                .unwrap()
                .unwrap()
        );
        assert_eq!(text(&files, CLOUD_ARCHIVE_LIST), None);
    }

    #[test]
    fn a_source_apt_cannot_fetch_leaves_the_sources_as_they_were() {
        let files = MemoryFiles::new();
        let runner = ScriptedRunner::new();
        let first = plan("deb http://mirror.example/ubuntu jammy main");
        assert!(configure_sources(&files, &runner, &first).unwrap().unwrap());
        let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n-----END PGP PUBLIC KEY BLOCK-----";
        let second = plan(&format!("deb http://other.example/ubuntu jammy main|{key}"));
        runner.reply(Output {
            code: Some(100),
            stderr: "E: Failed to fetch http://other.example/ubuntu/dists/jammy/InRelease"
                .to_owned(),
            ..Output::default()
        });
        let error = configure_sources(&files, &runner, &second)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "apt-get update failed with these sources: E: Failed to fetch \
             http://other.example/ubuntu/dists/jammy/InRelease"
        );
        assert_eq!(
            text(&files, ORIGIN_LIST).as_deref(),
            Some("deb http://mirror.example/ubuntu jammy main\n")
        );
        assert_eq!(text(&files, ORIGIN_KEYRING), None);
    }

    #[test]
    fn only_packages_dpkg_reports_installed_count_as_installed() {
        let out = "keystone install ok installed\napache2 deinstall ok config-files\nmemcached install ok installed\n";
        assert_eq!(
            missing_from_status(
                &["keystone", "apache2", "memcached", "python3-pymysql"],
                out
            ),
            ["apache2", "python3-pymysql"]
        );
        assert!(missing_from_status(&["keystone"], out).is_empty());
    }

    #[test]
    fn memcached_only_with_the_cache() {
        assert!(keystone_packages(true).contains(&"memcached"));
        assert!(keystone_packages(true).contains(&"nftables"));
        assert!(!keystone_packages(false).contains(&"memcached"));
    }

    #[test]
    fn the_query_and_the_install_go_through_the_runner() {
        let runner = ScriptedRunner::new();
        runner.reply(Output {
            code: Some(1),
            stdout: "keystone install ok installed\n".into(),
            stderr: "dpkg-query: no packages found matching apache2\n".into(),
        });
        let missing = missing(&runner, &["keystone", "apache2"]).unwrap();
        assert_eq!(missing, ["apache2"]);
        install(&runner, &missing).unwrap();
        let calls: Vec<String> = runner.calls().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            calls[0],
            "dpkg-query -W -f ${Package} ${Status}\\n keystone apache2"
        );
        assert!(calls[1].starts_with("apt-get -q -o DPkg::Lock::Timeout=300"));
        assert!(calls[1].ends_with(" update"), "{}", calls[1]);
        assert!(calls[2].ends_with("install -y --no-install-recommends apache2"));
    }

    #[test]
    fn a_failed_install_says_what_to_check() {
        let runner = ScriptedRunner::new();
        runner.reply(Output {
            code: Some(100),
            stdout: String::new(),
            stderr: "E: Unable to locate package keystone\n".into(),
        });
        let err = install(&runner, &["keystone".into()]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("check the machine's package sources and proxy settings"),
            "{err}"
        );
    }

    #[test]
    fn upstream_versions_drop_epoch_and_revision() {
        assert_eq!(upstream("2:25.0.0-0ubuntu1").as_deref(), Some("25.0.0"));
        assert_eq!(upstream("26.0.0").as_deref(), Some("26.0.0"));
        assert_eq!(upstream("1:2.3-4-5").as_deref(), Some("2.3-4"));
        assert_eq!(upstream(""), None);
    }
}
