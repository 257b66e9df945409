//! The one place that decides the workload status, from what the hook found.
//!
//! Priority, first match wins (each state hides the ones below it):
//! 1. config problems: `blocked`, the config error text (nothing can be right until fixed);
//! 2. missing relations: `blocked` `Missing relations: database, ...` (the operator must relate);
//! 3. other blocked reasons, joined with `; `;
//! 4. paused: `maintenance` `Paused` (the operator's own choice, reported below anything they
//!    must still fix so the fix is not hidden);
//! 5. incomplete relations: `waiting` `Incomplete relations: database, ...` (the other side has not
//!    sent its data yet);
//! 6. other waiting reasons, joined with `; `;
//! 7. work in progress: `maintenance` with its description;
//! 8. otherwise `active` `Unit is ready`.
//!
//! The wording follows the OpenStack charms (`Missing relations:`, `Incomplete relations:`,
//! `Unit is ready`), which operators and their tooling already match on.

use crate::juju::Status;

/// What the hook found that bears on the workload status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusInputs {
    /// The configuration error, already worded (`config: vip and dns-ha are ...`).
    pub config_problems: Option<String>,
    /// Required relations that do not exist, by interface-level name (`database`).
    pub missing_relations: Vec<String>,
    /// Relations that exist but whose remote side has not sent what is needed.
    pub incomplete_relations: Vec<String>,
    /// Other conditions only the operator can resolve.
    pub blocked: Vec<String>,
    pub paused: bool,
    /// Other conditions that resolve on their own (another unit, a slow service).
    pub waiting: Vec<String>,
    /// Work the charm is doing right now.
    pub maintenance: Option<String>,
    /// Added to a ready unit's message: `Unit is ready (<note>)`.
    pub active_note: Option<String>,
}

/// The message of a ready unit.
pub const READY: &str = "Unit is ready";
/// The message of a paused unit.
pub const PAUSED: &str = "Paused";

/// Decides the unit's workload status; see the module doc for the priority order.
pub fn workload_status(inputs: &StatusInputs) -> Status {
    if let Some(problems) = &inputs.config_problems {
        return Status::blocked(problems.clone());
    }
    if !inputs.missing_relations.is_empty() {
        return Status::blocked(format!(
            "Missing relations: {}",
            inputs.missing_relations.join(", ")
        ));
    }
    if !inputs.blocked.is_empty() {
        return Status::blocked(inputs.blocked.join("; "));
    }
    if inputs.paused {
        return Status::maintenance(PAUSED);
    }
    if !inputs.incomplete_relations.is_empty() {
        return Status::waiting(format!(
            "Incomplete relations: {}",
            inputs.incomplete_relations.join(", ")
        ));
    }
    if !inputs.waiting.is_empty() {
        return Status::waiting(inputs.waiting.join("; "));
    }
    if let Some(work) = &inputs.maintenance {
        return Status::maintenance(work.clone());
    }
    match &inputs.active_note {
        Some(note) => Status::active(format!("{READY} ({note})")),
        None => Status::active(READY),
    }
}

/// The application status the leader sets: for now the leader's own workload status, since every
/// unit runs the same checks on the same model. (Aggregating the peers' readiness comes with the
/// cluster relation.)
pub fn application_status(leader_status: &Status) -> Status {
    leader_status.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::StatusKind;

    fn everything() -> StatusInputs {
        StatusInputs {
            config_problems: Some("config: region must not be empty".into()),
            missing_relations: vec!["database".into(), "identity".into()],
            incomplete_relations: vec!["database".into()],
            blocked: vec!["Invalid vips: 10.9.9.9".into()],
            paused: true,
            waiting: vec![
                "Database not initialised".into(),
                "Waiting for peers".into(),
            ],
            maintenance: Some("Installing packages".into()),
            active_note: None,
        }
    }

    #[test]
    fn nothing_found_means_ready() {
        assert_eq!(
            workload_status(&StatusInputs::default()),
            Status::active("Unit is ready")
        );
    }

    #[test]
    fn each_condition_outranks_the_ones_after_it() {
        let mut inputs = everything();
        let mut seen = Vec::new();
        loop {
            let status = workload_status(&inputs);
            seen.push(status.to_string());
            if status.kind == StatusKind::Active {
                break;
            }
            // Remove the condition just reported and look again.
            if inputs.config_problems.take().is_some() {
            } else if !inputs.missing_relations.is_empty() {
                inputs.missing_relations.clear();
            } else if !inputs.blocked.is_empty() {
                inputs.blocked.clear();
            } else if inputs.paused {
                inputs.paused = false;
            } else if !inputs.incomplete_relations.is_empty() {
                inputs.incomplete_relations.clear();
            } else if !inputs.waiting.is_empty() {
                inputs.waiting.clear();
            } else {
                inputs.maintenance = None;
            }
        }
        assert_eq!(
            seen,
            [
                "blocked: config: region must not be empty",
                "blocked: Missing relations: database, identity",
                "blocked: Invalid vips: 10.9.9.9",
                "maintenance: Paused",
                "waiting: Incomplete relations: database",
                "waiting: Database not initialised; Waiting for peers",
                "maintenance: Installing packages",
                "active: Unit is ready",
            ]
        );
    }

    #[test]
    fn the_leader_reports_its_status_for_the_application() {
        let status = Status::blocked("Missing relations: database");
        assert_eq!(application_status(&status), status);
    }
}
