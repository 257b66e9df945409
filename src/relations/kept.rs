//! What a relation last read from Juju, kept on the machine: the hooks that cannot change it
//! render from the file instead of asking Juju, so they cost no hook-tool call.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::host::fs::{DesiredFile, Files, Owner, write_files};

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
