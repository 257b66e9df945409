//! The one place that turns what the steps of a hook reported into the unit's and the
//! application's status.
//!
//! Each step reports [`Condition`]s. Priority, first match wins (each hides the ones below it):
//! 1. missing relations: `blocked` `Missing relations: database, ...` (the operator must relate);
//! 2. other blocked reasons, joined with `; ` (a configuration error among them: nothing can be
//!    right until the operator fixes it);
//! 3. paused: `maintenance` `Paused` (the operator's own choice, reported below anything they
//!    must still fix so the fix is not hidden);
//! 4. incomplete relations: `waiting` `Incomplete relations: database, ...` (the other side has not
//!    sent its data yet);
//! 5. other waiting reasons, joined with `; `;
//! 6. work in progress: `maintenance` with its description;
//! 7. otherwise `active` `Unit is ready`, with the notes in parentheses.
//!
//! The wording follows the OpenStack charms (`Missing relations:`, `Incomplete relations:`,
//! `Unit is ready`), which operators and their tooling already match on.

use crate::juju::Status;

/// What one step found that bears on the unit's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only the operator can resolve it, and nothing after this step can be right until they
    /// do: the hook stops here, so no later step writes anything.
    Blocked(String),
    /// A required relation does not exist (its status name, e.g. `database`). Blocked, but the
    /// hook goes on: what does not need the relation is still brought in line.
    MissingRelation(&'static str),
    /// The relation exists but the other side has not sent what is needed yet.
    IncompleteRelation(&'static str),
    /// Resolves on its own (another unit, a slow service).
    Waiting(String),
    /// The operator paused the unit.
    Paused,
    /// Work the charm is doing right now.
    Maintenance(String),
    /// Said in a ready unit's message: `Unit is ready (<note>)`.
    Note(String),
    /// Said before the message, whatever the status (the policy overrides' `PO:`).
    Prefix(String),
}

impl Condition {
    /// Whether the hook stops after the step that reported this.
    pub fn stops_the_hook(&self) -> bool {
        matches!(self, Condition::Blocked(_))
    }
}

/// The message of a ready unit.
pub const READY: &str = "Unit is ready";
/// The message of a paused unit.
pub const PAUSED: &str = "Paused";

/// The unit's workload status; see the module doc for the priority order.
pub fn unit_status(conditions: &[Condition]) -> Status {
    let status = status_of(conditions);
    let prefixes: Vec<&str> = conditions
        .iter()
        .filter_map(|c| match c {
            Condition::Prefix(prefix) => Some(prefix.as_str()),
            _ => None,
        })
        .collect();
    match prefixes.is_empty() {
        true => status,
        false => Status {
            message: format!("{} {}", prefixes.join(" "), status.message),
            ..status
        },
    }
}

fn status_of(conditions: &[Condition]) -> Status {
    let collect = |pick: fn(&Condition) -> Option<String>| -> Vec<String> {
        conditions.iter().filter_map(pick).collect()
    };
    let missing = collect(|c| match c {
        Condition::MissingRelation(name) => Some((*name).to_owned()),
        _ => None,
    });
    let blocked = collect(|c| match c {
        Condition::Blocked(reason) => Some(reason.clone()),
        _ => None,
    });
    let incomplete = collect(|c| match c {
        Condition::IncompleteRelation(name) => Some((*name).to_owned()),
        _ => None,
    });
    let waiting = collect(|c| match c {
        Condition::Waiting(reason) => Some(reason.clone()),
        _ => None,
    });
    let maintenance = collect(|c| match c {
        Condition::Maintenance(work) => Some(work.clone()),
        _ => None,
    });
    let notes = collect(|c| match c {
        Condition::Note(note) => Some(note.clone()),
        _ => None,
    });
    if !missing.is_empty() {
        return Status::blocked(format!("Missing relations: {}", missing.join(", ")));
    }
    if !blocked.is_empty() {
        return Status::blocked(blocked.join("; "));
    }
    if conditions.contains(&Condition::Paused) {
        return Status::maintenance(PAUSED);
    }
    if !incomplete.is_empty() {
        return Status::waiting(format!("Incomplete relations: {}", incomplete.join(", ")));
    }
    if !waiting.is_empty() {
        return Status::waiting(waiting.join("; "));
    }
    if !maintenance.is_empty() {
        return Status::maintenance(maintenance.join("; "));
    }
    match notes.is_empty() {
        true => Status::active(READY),
        false => Status::active(format!("{READY} ({})", notes.join("; "))),
    }
}

/// The application status the leader sets: its own workload status, since every unit runs the
/// same checks on the same model (each unit's readiness shows in its own status).
pub fn application_status(leader_status: &Status) -> Status {
    leader_status.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything() -> Vec<Condition> {
        vec![
            Condition::Note("fernet rotation waiting for keystone/2".into()),
            Condition::Maintenance("Installing packages".into()),
            Condition::Waiting("Database not initialised".into()),
            Condition::Waiting("Waiting for peers".into()),
            Condition::IncompleteRelation("database"),
            Condition::Paused,
            Condition::Blocked("Invalid vips: 10.9.9.9".into()),
            Condition::MissingRelation("database"),
            Condition::MissingRelation("identity"),
        ]
    }

    #[test]
    fn nothing_found_means_ready() {
        assert_eq!(unit_status(&[]), Status::active("Unit is ready"));
    }

    #[test]
    fn each_condition_outranks_the_ones_after_it() {
        let mut conditions = everything();
        let mut seen = Vec::new();
        loop {
            let status = unit_status(&conditions);
            seen.push(status.to_string());
            // Drop the kind of condition just reported (the last in the list) and look again.
            let Some(last) = conditions.pop() else {
                break;
            };
            conditions.retain(|c| std::mem::discriminant(c) != std::mem::discriminant(&last));
        }
        assert_eq!(
            seen,
            [
                "blocked: Missing relations: database, identity",
                "blocked: Invalid vips: 10.9.9.9",
                "maintenance: Paused",
                "waiting: Incomplete relations: database",
                "waiting: Database not initialised; Waiting for peers",
                "maintenance: Installing packages",
                "active: Unit is ready (fernet rotation waiting for keystone/2)",
                "active: Unit is ready",
            ]
        );
    }

    #[test]
    fn a_prefix_comes_before_the_message_whatever_the_status() {
        let po = Condition::Prefix("PO:".into());
        assert_eq!(
            unit_status(std::slice::from_ref(&po)),
            Status::active("PO: Unit is ready")
        );
        let waiting = Condition::Waiting("Waiting for peers".into());
        assert_eq!(
            unit_status(&[waiting, po]),
            Status::waiting("PO: Waiting for peers")
        );
    }

    #[test]
    fn only_blocked_stops_the_hook() {
        for condition in everything() {
            assert_eq!(
                condition.stops_the_hook(),
                matches!(condition, Condition::Blocked(_)),
                "{condition:?}"
            );
        }
    }

    #[test]
    fn the_leader_reports_its_status_for_the_application() {
        let status = Status::blocked("Missing relations: database");
        assert_eq!(application_status(&status), status);
    }
}
