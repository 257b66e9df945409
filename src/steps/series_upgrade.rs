//! Series upgrades (`juju upgrade-machine`, formerly `upgrade-series`): pre-series-upgrade
//! pauses the unit before the operator upgrades its operating system, and post-series-upgrade
//! resumes it. The hook then runs every step as usual: apt's sources for the new series, the
//! packages, Keystone's files, and the leader's migration if Keystone's version changed.
//!
//! While the unit waits, its status is the Python charm's ("Ready for do-release-upgrade and
//! reboot. Set complete when finished."), so runbooks written for it read the same.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::host::fs::Owner;
use crate::machine::Machine;
use crate::paths;

/// The status message while the unit waits for its operating system's upgrade.
pub const READY_FOR_UPGRADE: &str =
    "Ready for do-release-upgrade and reboot. Set complete when finished.";

/// pre-series-upgrade: the unit is marked upgrading and paused (Apache and memcached stop, and
/// stay stopped through the reboot).
pub fn prepare(machine: &Machine) -> Result<()> {
    tracing::info!("preparing for a series upgrade: pausing the unit");
    for (marker, why) in [
        (paths::SERIES_UPGRADE_MARKER, "series upgrade under way\n"),
        (paths::PAUSED_MARKER, "paused for a series upgrade\n"),
    ] {
        machine
            .files
            .write(Path::new(marker), why.as_bytes(), &Owner::root(), 0o644)
            .with_context(|| format!("cannot write {marker}"))?;
    }
    super::workload::stop(machine)
}

/// post-series-upgrade: the unit is no longer upgrading nor paused; the steps bring it back.
pub fn complete(machine: &Machine) -> Result<()> {
    tracing::info!("the series upgrade is complete: resuming the unit");
    for marker in [paths::SERIES_UPGRADE_MARKER, paths::PAUSED_MARKER] {
        machine
            .files
            .remove(Path::new(marker))
            .with_context(|| format!("cannot remove {marker}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::host::services::{Service, ServiceAction};
    use crate::testing::Sim;

    #[test]
    fn a_series_upgrade_pauses_the_unit_until_it_is_complete() {
        let mut sim = Sim::ready(2);
        let unit = "keystone/1";
        let machine = sim.machine(unit);
        assert!(sim.run(unit, "pre-series-upgrade"));
        assert_eq!(
            sim.status(unit),
            format!("blocked: {}", super::READY_FOR_UPGRADE)
        );
        assert!(
            !crate::host::services::Services::is_running(
                machine.1.services.as_ref(),
                Service::Apache2
            )
            .unwrap()
        );
        // Through the reboot's hooks it stays paused.
        for hook in ["start", "config-changed", "update-status"] {
            assert!(sim.run(unit, hook));
            assert!(
                !crate::host::services::Services::is_running(
                    machine.1.services.as_ref(),
                    Service::Apache2
                )
                .unwrap(),
                "{hook}"
            );
            assert_eq!(
                sim.status(unit),
                format!("blocked: {}", super::READY_FOR_UPGRADE)
            );
        }
        let starts = machine
            .1
            .services
            .count(&ServiceAction::Start(Service::Apache2));
        assert!(sim.run(unit, "post-series-upgrade"));
        assert_eq!(sim.status(unit), "active: Unit is ready");
        assert!(
            crate::host::services::Services::is_running(
                machine.1.services.as_ref(),
                Service::Apache2
            )
            .unwrap()
        );
        assert_eq!(
            machine
                .1
                .services
                .count(&ServiceAction::Start(Service::Apache2)),
            starts + 1
        );
        // The other unit served throughout.
        assert_eq!(sim.status("keystone/0"), "active: Unit is ready");
    }
}
