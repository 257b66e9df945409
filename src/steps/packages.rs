//! The distribution's packages: Keystone, Apache with mod_wsgi, and memcached when the cache is
//! on; and Keystone's version, as `juju status` shows it for every OpenStack charm.

use anyhow::{Context as _, Result};

use crate::event::Event;
use crate::host::fs::{DesiredFile, Owner, write_files};
use crate::host::packages;
use crate::juju::{Status, StatusScope};
use crate::paths;
use crate::step::{Condition, Hook, Step};

/// The packages step: [`run`].
pub const STEP: Step = Step::new("packages", run);

/// Step: install and upgrade-charm install what is missing (nothing when all is there) and
/// disable the distribution's own Keystone service, so only the charm's vhost serves it.
/// install, start and upgrade-charm then set the workload version (the package's upstream
/// version) — the hooks in which the charm itself can have changed the packages.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let machine = hook.machine;
    if matches!(hook.event, Event::Install | Event::UpgradeCharm) {
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
        Event::Install | Event::Start | Event::UpgradeCharm
    ) && let Some(version) = packages::upstream_version(machine.runner, "keystone")?
    {
        hook.juju
            .application_version_set(&version)
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
    }
    Ok(Vec::new())
}
