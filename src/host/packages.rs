//! Debian packages, through the [`Runner`]: install what is missing, idempotently, and nothing
//! when all is there; read Keystone's version for `juju status`.

use anyhow::{Context, Result, bail};

use super::process::{Invocation, Runner, run_checked};
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

/// Installs packages with apt-get (waiting for another apt run rather than failing at once,
/// keeping local changes to conffiles).
pub fn install(runner: &dyn Runner, missing: &[String]) -> Result<()> {
    tracing::info!("installing {}", missing.join(" "));
    let options = [
        "-q",
        "-o",
        "DPkg::Lock::Timeout=300",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    let apt = |args: &[&str]| {
        Invocation::new("apt-get")
            .args(options)
            .args(args.iter().copied())
            .env(
                "DEBIAN_FRONTEND",
                Sensitive::new("noninteractive".to_owned()),
            )
            .timeout(std::time::Duration::from_secs(1800))
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(missing.iter().map(String::as_str));
    for invocation in [apt(&["update"]), apt(&install)] {
        if let Err(err) = run_checked(runner, &invocation) {
            bail!("{err}; check the machine's package sources and proxy settings");
        }
    }
    Ok(())
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

/// A Debian version without its epoch and revision.
fn upstream(version: &str) -> Option<String> {
    let without_epoch = version.split_once(':').map_or(version, |(_, rest)| rest);
    let upstream = without_epoch
        .rsplit_once('-')
        .map_or(without_epoch, |(upstream, _)| upstream);
    (!upstream.is_empty()).then(|| upstream.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::process::{Output, ScriptedRunner};

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
