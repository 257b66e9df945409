//! What a relation's remote units last sent, kept on the machine: the hooks that cannot change
//! it render from the file instead of asking Juju, so they cost no hook-tool call.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::{Endpoint, Event, RelationHook};
use crate::host::fs::{DesiredFile, Files, Owner, write_files};
use crate::juju::{Bag, Databag, RelationId, UnitName};
use crate::status::Condition;
use crate::step::Hook;

/// What is kept at `path` (`what` names it in errors); the default when nothing is. A file this
/// charm wrote that it cannot read counts for nothing until the relation's next hook writes it.
pub fn read<T: DeserializeOwned + Default>(files: &dyn Files, path: &str, what: &str) -> Result<T> {
    let Some(bytes) = files
        .read(Path::new(path))
        .with_context(|| format!("cannot read the kept {what}"))?
    else {
        return Ok(T::default());
    };
    Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!("ignoring {path}: {e}");
        T::default()
    }))
}

/// Keeps `value` at `path`, root's and world-readable (nothing kept this way is a secret).
pub fn write<T: Serialize>(files: &dyn Files, path: &str, what: &str, value: &T) -> Result<()> {
    let text = serde_json::to_vec(value).with_context(|| format!("cannot encode the {what}"))?;
    let file = DesiredFile::new(path, text, Owner::root(), 0o644);
    let directory = Path::new(path).parent().map(PathBuf::from);
    write_files(files, directory.as_slice(), [&file])
        .with_context(|| format!("cannot keep the {what}"))?;
    Ok(())
}

/// The hooks in which what `endpoint`'s remote units sent can have changed: its own, install,
/// and upgrade-charm (a charm that replaced another finds the relations it had).
pub fn reads_juju(event: &Event, endpoint: Endpoint) -> bool {
    matches!(event, Event::UpgradeCharm | Event::Install)
        || matches!(event, Event::Relation { endpoint: e, .. } if *e == endpoint)
}

/// Every remote unit's bag on `endpoint`'s relations, but for one being broken: with its
/// relation and unit, for the caller's messages.
pub fn remote_bags(
    hook: &Hook<'_>,
    endpoint: Endpoint,
) -> Result<Vec<(RelationId, UnitName, Databag)>> {
    let juju = hook.juju;
    let broken = match hook.event {
        Event::Relation {
            hook: RelationHook::Broken,
            ..
        } => juju.relation_id(),
        _ => None,
    };
    let relations = juju
        .relation_ids(endpoint.name())
        .with_context(|| format!("cannot list the {endpoint} relations"))?;
    let mut bags = Vec::new();
    for relation in relations.into_iter().filter(|r| Some(r) != broken.as_ref()) {
        for unit in juju.relation_units(&relation)? {
            let bag = juju
                .relation_data(&relation, &Bag::Unit(unit.clone()))
                .with_context(|| format!("cannot read {unit}'s data on {relation}"))?;
            bags.push((relation.clone(), unit, bag));
        }
    }
    Ok(bags)
}

/// What `endpoint`'s remote units said, as `from_juju` makes it of them: read from Juju and kept
/// at `path` in the hooks where it can have changed, read from `path` in the others.
pub fn seen<T: Serialize + DeserializeOwned + Default>(
    hook: &Hook<'_>,
    endpoint: Endpoint,
    path: &str,
    what: &str,
    from_juju: impl FnOnce(&Hook<'_>) -> Result<T>,
) -> Result<T> {
    let files = hook.machine.files.as_ref();
    if !reads_juju(hook.event, endpoint) {
        return read(files, path, what);
    }
    let seen = from_juju(hook)?;
    write(files, path, what, &seen)?;
    Ok(seen)
}

/// The status notes of what `endpoint`'s remote units sent that was refused (`<unit>'s <key>`).
pub fn refused_notes(endpoint: Endpoint, refused: &BTreeSet<String>) -> Vec<Condition> {
    refused
        .iter()
        .map(|what| Condition::Note(format!("{endpoint}: {what} refused")))
        .collect()
}
