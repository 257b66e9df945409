//! The distribution's packages: where apt takes them from (`openstack-origin`), Keystone, Apache
//! with mod_wsgi, and memcached when the cache is on; and Keystone's version, as `juju status`
//! shows it for every OpenStack charm.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::host::fs::{DesiredFile, Owner, write_files};
use crate::host::packages;
use crate::juju::{Juju, Status, StatusScope};
use crate::machine::Machine;
use crate::origin::{self, OsRelease};
use crate::paths;
use crate::relations::kept;
use crate::step::{Condition, Hook, Step};

/// The packages step: [`run`].
pub const STEP: Step = Step::new("packages", run);

/// What the last configuration of apt's sources did.
const KEPT_ORIGIN: &str = "/var/lib/keystone-charm/openstack-origin.json";

/// The origin apt's sources were last configured for, and on which series, or why the last one
/// was not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedOrigin {
    pub applied: Option<String>,
    #[serde(default)]
    pub series: Option<String>,
    /// The origin that could not be applied, and why.
    pub failed: Option<(String, String)>,
}

/// Step: install, upgrade-charm, config-changed and post-series-upgrade configure apt's sources
/// when openstack-origin or the series differs from what they were configured for (an origin
/// this machine cannot have, or whose index apt cannot fetch, blocks the unit and leaves the
/// sources as they were). install, upgrade-charm and post-series-upgrade then install what is
/// missing (nothing when all is there) and disable the distribution's own Keystone service, so
/// only the charm's vhost serves it. Those and start then set the workload version (the
/// package's upstream version) — the hooks in which the packages can have changed.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if let Some(blocked) = sources(hook)? {
        return Ok(vec![blocked]);
    }
    let machine = hook.machine;
    if matches!(
        hook.event,
        Event::Install | Event::UpgradeCharm | Event::PostSeriesUpgrade
    ) {
        let wanted = packages::keystone_packages(hook.config.enable_cache);
        let missing = packages::missing(machine.runner, &wanted)?;
        if !missing.is_empty() {
            // Said now: installing takes minutes, and the hook's own status comes at its end.
            hook.juju
                .status_set(
                    StatusScope::Unit,
                    &Status::maintenance("Installing packages"),
                )
                .context("cannot set the unit status")?;
            packages::install(machine.runner, &missing)?;
        }
        machine
            .services
            .disable_distribution_keystone()
            .context("cannot disable the distribution's own Keystone service")?;
    }
    if matches!(
        hook.event,
        Event::Install | Event::Start | Event::UpgradeCharm | Event::PostSeriesUpgrade
    ) {
        record_keystone_version(hook.juju, machine)?;
    }
    Ok(Vec::new())
}

/// Keystone's installed version, as `juju status` shows it and as the release-dependent steps
/// read it ([`crate::release::kept_version`]), after anything that can change it.
pub fn record_keystone_version(juju: &Juju, machine: &Machine) -> Result<()> {
    let Some(version) = packages::upstream_version(machine.runner, "keystone")? else {
        return Ok(());
    };
    juju.application_version_set(&version)
        .context("cannot set the workload version")?;
    write_files(
        machine.files.as_ref(),
        &[],
        [&DesiredFile::new(
            paths::KEYSTONE_VERSION,
            version,
            Owner::root(),
            0o644,
        )],
    )?;
    Ok(())
}

/// apt's sources for openstack-origin: configured in the hooks where it can have changed, when
/// it differs from what they were configured for. The condition that blocks, if one does.
fn sources(hook: &mut Hook<'_>) -> Result<Option<Condition>> {
    let files = hook.machine.files.as_ref();
    let wanted = hook.config.openstack_origin.clone();
    let os_release = files
        .read(Path::new(paths::OS_RELEASE))
        .context("cannot read /etc/os-release")?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let os = OsRelease::from_os_release(&os_release);
    let origin = match origin::parse(&wanted, &os) {
        Ok(origin) => origin,
        Err(refused) => return Ok(Some(Condition::Blocked(refused.to_string()))),
    };
    let kept: AppliedOrigin = kept::read(files, KEPT_ORIGIN, "applied openstack-origin")?;
    if kept.applied.as_deref() == Some(wanted.as_str())
        && kept.series.as_deref().is_none_or(|s| s == os.series)
    {
        return Ok(None);
    }
    // A failure is tried again in update-status too: apt's mirror or proxy may come back.
    let failed_before = kept
        .failed
        .as_ref()
        .is_some_and(|(origin, _)| *origin == wanted);
    let due = matches!(
        hook.event,
        Event::Install | Event::UpgradeCharm | Event::ConfigChanged | Event::PostSeriesUpgrade
    ) || (failed_before && *hook.event == Event::UpdateStatus);
    if !due {
        return Ok(kept
            .failed
            .filter(|(origin, _)| *origin == wanted)
            .map(|(_, reason)| Condition::Blocked(reason)));
    }
    if let Some(note) = &origin.note {
        tracing::warn!("openstack-origin {wanted}: {note}");
    }
    let plan = origin.plan(&os.series);
    let outcome = packages::configure_sources(files, hook.machine.runner, &plan)?;
    let (record, blocked) = match outcome {
        Ok(changed) => {
            if changed {
                tracing::info!("apt's sources are configured for openstack-origin {wanted}");
            }
            let record = AppliedOrigin {
                applied: Some(wanted),
                series: Some(os.series.clone()),
                failed: None,
            };
            (record, None)
        }
        Err(error) => {
            let reason = format!("openstack-origin: {error}; the sources are as they were");
            tracing::error!("{reason}");
            let record = AppliedOrigin {
                applied: kept.applied,
                series: kept.series,
                failed: Some((wanted, reason.clone())),
            };
            (record, Some(Condition::Blocked(reason)))
        }
    };
    kept::write(files, KEPT_ORIGIN, "applied openstack-origin", &record)?;
    Ok(blocked)
}
