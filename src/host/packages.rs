//! Debian packages: install what is missing, idempotently, and nothing when all is there.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// The packages a Keystone unit needs.
pub fn keystone_packages(enable_cache: bool) -> Vec<&'static str> {
    let mut packages = vec![
        "keystone",
        "python3-pymysql",
        "apache2",
        "libapache2-mod-wsgi-py3",
        // update-ca-certificates, for ssl_ca.
        "ca-certificates",
    ];
    if enable_cache {
        packages.push("memcached");
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
pub fn missing(packages: &[&str]) -> Result<Vec<String>> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Status}\\n"])
        .args(packages)
        .output()
        .context("cannot run dpkg-query: is this a Debian or Ubuntu machine?")?;
    // dpkg-query exits 1 when a package is unknown; its output still lists the known ones.
    Ok(missing_from_status(
        packages,
        &String::from_utf8_lossy(&output.stdout),
    ))
}

/// Installs packages with apt-get.
pub fn install(missing: &[String]) -> Result<()> {
    tracing::info!("installing {}", missing.join(" "));
    // Wait for another apt run rather than fail at once; keep local changes to conffiles.
    let options = [
        "-q",
        "-o",
        "DPkg::Lock::Timeout=300",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    for args in [
        [&options[..], &["update"]].concat(),
        [
            &options[..],
            &["install", "-y", "--no-install-recommends"],
            &missing.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    ] {
        let output = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .context("cannot run apt-get")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!(
                "apt-get {} failed: {}; check the machine's package sources and proxy settings",
                args.join(" "),
                stderr.lines().last().unwrap_or("no error text")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!keystone_packages(false).contains(&"memcached"));
    }

    #[test]
    fn the_real_query_finds_installed_and_missing_packages() {
        // dpkg itself is always installed on Debian; the other name does not exist.
        assert_eq!(
            missing(&["dpkg", "no-such-package-keystone-charm"]).expect("dpkg-query works"),
            ["no-such-package-keystone-charm"]
        );
    }
}
