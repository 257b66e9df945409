//! The fernet and credential key repositories on disk, replaced atomically, behind
//! [`KeyStore`] (with `MemoryKeys`, its twin in the test kit).
//!
//! Keystone reads its key repository (`/etc/keystone/fernet-keys`) on every validation, so a
//! half-written repository means failed tokens. The charm therefore keeps each set in its own
//! directory, `<repository>.sets/<fingerprint>/`, written and synced in full before use, and makes
//! the repository path a symlink to the current one. Switching sets is one `rename(2)` of a new
//! symlink over the old: at every instant, a kill -9 included, the path shows the complete old
//! set or the complete new one. A pre-existing real directory (keystone-manage's, or the Python
//! charm's) is swapped out with `renameat2(RENAME_EXCHANGE)`, equally atomic.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, chown};

use crate::key_sets::{Key, KeyError, KeyMaterial, KeySet};

/// Errors reading or writing a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the key repository {path} holds an invalid key set: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("cannot swap {path} for the new key set: {source}")]
    Swap {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> RepositoryError + 'a {
    move |source| RepositoryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Who owns the key files (keystone:keystone in production).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: Uid,
    pub gid: Gid,
}

/// One key repository directory.
#[derive(Debug, Clone)]
pub struct Repository {
    path: PathBuf,
    owner: Option<Owner>,
}

impl Repository {
    /// `owner` None leaves files owned by the writing user (tests in temporary directories).
    pub fn new(path: impl Into<PathBuf>, owner: Option<Owner>) -> Repository {
        Repository {
            path: path.into(),
            owner,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn owner(&self) -> Option<Owner> {
        self.owner
    }

    fn sets_dir(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".sets");
        self.path.with_file_name(name)
    }

    /// The set on disk; None when the repository does not exist or is empty. Files whose names
    /// are not numbers are ignored, as Keystone ignores them.
    pub fn read(&self) -> Result<Option<KeySet>, RepositoryError> {
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot list", &self.path)(e)),
        };
        let mut keys = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_error("cannot list", &self.path))?;
            let Some(index) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let text =
                fs::read_to_string(entry.path()).map_err(io_error("cannot read", &entry.path()))?;
            if text.trim().is_empty() {
                continue;
            }
            let key = Key::parse(index, &text).map_err(|source| RepositoryError::Invalid {
                path: self.path.clone(),
                source,
            })?;
            keys.insert(index, key);
        }
        if keys.is_empty() {
            return Ok(None);
        }
        KeySet::new(keys)
            .map(Some)
            .map_err(|source| RepositoryError::Invalid {
                path: self.path.clone(),
                source,
            })
    }

    /// Makes the repository hold exactly `set`. Returns whether anything changed.
    pub fn apply(&self, set: &KeySet) -> Result<bool, RepositoryError> {
        if let Ok(Some(current)) = self.read()
            && current == *set
        {
            return Ok(false);
        }
        let sets = self.sets_dir();
        self.make_dir(&sets)?;
        let name = set.fingerprint()[..16].to_owned();
        let target = sets.join(&name);
        if !target.is_dir() {
            let staging = sets.join(format!("{name}.tmp-{}", std::process::id()));
            let _ = fs::remove_dir_all(&staging);
            self.make_dir(&staging)?;
            for (index, key) in set.keys() {
                self.write_key(&staging.join(index.to_string()), key)?;
            }
            sync(&staging)?;
            fs::rename(&staging, &target).map_err(io_error("cannot rename", &staging))?;
            sync(&sets)?;
        }
        self.point_at(&name)?;
        self.remove_other_sets(&name);
        Ok(true)
    }

    /// Points the repository path at `<sets>/<name>` in one atomic step.
    fn point_at(&self, name: &str) -> Result<(), RepositoryError> {
        let sets = self.sets_dir();
        let sets_name = sets
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let link = sets.join(format!("link.tmp-{}", std::process::id()));
        let _ = fs::remove_file(&link);
        symlink(format!("{sets_name}/{name}"), &link).map_err(io_error("cannot link", &link))?;
        let existing = fs::symlink_metadata(&self.path);
        match existing {
            Ok(meta) if meta.is_dir() => {
                // A real directory: exchange it with the link, then clear it away.
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &link,
                    nix::fcntl::AT_FDCWD,
                    &self.path,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .map_err(|source| RepositoryError::Swap {
                    path: self.path.clone(),
                    source,
                })?;
                let _ = fs::remove_dir_all(&link);
            }
            _ => fs::rename(&link, &self.path).map_err(io_error("cannot replace", &self.path))?,
        }
        if let Some(parent) = self.path.parent() {
            sync(parent)?;
        }
        Ok(())
    }

    /// Removes sets that are no longer pointed at, and leftovers of interrupted writes.
    fn remove_other_sets(&self, keep: &str) {
        let Ok(entries) = fs::read_dir(self.sets_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name() == keep {
                continue;
            }
            let path = entry.path();
            // Rename before deleting, so that a directory under a set's own name is always
            // complete, even if a kill interrupts the deletion.
            let doomed = path.with_file_name(format!(
                "{}.old-{}",
                entry.file_name().to_string_lossy(),
                std::process::id()
            ));
            let path = if fs::rename(&path, &doomed).is_ok() {
                doomed
            } else {
                path
            };
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }

    fn make_dir(&self, path: &Path) -> Result<(), RepositoryError> {
        match DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error("cannot create", path)(e)),
        }
        self.give(path)
    }

    fn write_key(&self, path: &Path, key: &Key) -> Result<(), RepositoryError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error("cannot create", path))?;
        file.write_all(key.expose().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_error("cannot write", path))?;
        self.give(path)
    }

    fn give(&self, path: &Path) -> Result<(), RepositoryError> {
        if let Some(owner) = self.owner {
            chown(path, Some(owner.uid), Some(owner.gid)).map_err(|e| RepositoryError::Io {
                action: "cannot chown",
                path: path.to_path_buf(),
                source: io::Error::from(e),
            })?;
        }
        Ok(())
    }
}

fn sync(dir: &Path) -> Result<(), RepositoryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("cannot sync", dir))
}

/// Where this unit keeps its fernet and credential keys.
pub trait KeyStore {
    /// What the unit holds, when both repositories hold a valid set.
    fn read(&self) -> anyhow::Result<Option<KeyMaterial>>;
    /// Writes both sets (only what differs); whether anything changed.
    fn apply(&self, material: &KeyMaterial) -> anyhow::Result<bool>;
}

/// The repositories keystone.conf names, owned by keystone:keystone.
#[derive(Debug, Clone)]
pub struct DiskKeys {
    pub fernet: Repository,
    pub credential: Repository,
    /// Production stores refuse to write keys nobody but root could read.
    require_owner: bool,
}

impl DiskKeys {
    /// The production repositories. Without a keystone user (the package is not installed yet)
    /// reading works and writing fails with that explanation.
    pub fn system() -> DiskKeys {
        let owner = nix::unistd::User::from_name("keystone")
            .ok()
            .flatten()
            .map(|user| Owner {
                uid: user.uid,
                gid: user.gid,
            });
        DiskKeys {
            fernet: Repository::new(crate::paths::FERNET_KEYS.trim_end_matches('/'), owner),
            credential: Repository::new(crate::paths::CREDENTIAL_KEYS.trim_end_matches('/'), owner),
            require_owner: true,
        }
    }

    /// Repositories under `dir`, owned by the current user (tests on a real disk).
    pub fn in_dir(dir: &Path) -> DiskKeys {
        DiskKeys {
            fernet: Repository::new(dir.join("fernet-keys"), None),
            credential: Repository::new(dir.join("credential-keys"), None),
            require_owner: false,
        }
    }
}

impl KeyStore for DiskKeys {
    fn read(&self) -> anyhow::Result<Option<KeyMaterial>> {
        let fernet = self.fernet.read()?;
        let credential = self.credential.read()?;
        Ok(match (fernet, credential) {
            (Some(fernet), Some(credential)) => Some(KeyMaterial { fernet, credential }),
            _ => None,
        })
    }

    /// The credential set first, so the fernet repository (which decides what Keystone's
    /// tokens use) changes last.
    fn apply(&self, material: &KeyMaterial) -> anyhow::Result<bool> {
        if self.require_owner && self.fernet.owner().is_none() {
            anyhow::bail!(
                "the keystone user does not exist: the keystone package is not installed yet"
            );
        }
        let credential = self.credential.apply(&material.credential)?;
        let fernet = self.fernet.apply(&material.fernet)?;
        Ok(credential || fernet)
    }
}

/// The in-memory twin of [`DiskKeys`].
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Default)]
pub struct MemoryKeys(std::sync::Mutex<Option<KeyMaterial>>);

#[cfg(any(test, feature = "testkit"))]
impl MemoryKeys {
    pub fn new() -> MemoryKeys {
        MemoryKeys::default()
    }
}

#[cfg(any(test, feature = "testkit"))]
impl KeyStore for MemoryKeys {
    fn read(&self) -> anyhow::Result<Option<KeyMaterial>> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn apply(&self, material: &KeyMaterial) -> anyhow::Result<bool> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let changed = held.as_ref() != Some(material);
        *held = Some(material.clone());
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("repo-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn set() -> KeySet {
        KeySet::setup(Key::generate().unwrap(), Key::generate().unwrap())
    }

    #[test]
    fn apply_writes_keystone_manages_layout_and_reads_back() {
        let dir = temp("layout");
        let repo = Repository::new(dir.join("fernet-keys"), None);
        assert_eq!(repo.read().unwrap(), None);
        let keys = set();
        assert!(repo.apply(&keys).unwrap());
        assert_eq!(repo.read().unwrap(), Some(keys.clone()));
        assert!(!repo.apply(&keys).unwrap(), "same set: nothing to do");
        let target = fs::canonicalize(dir.join("fernet-keys")).unwrap();
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for index in ["0", "1"] {
            let file = target.join(index);
            assert_eq!(
                fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let text = fs::read_to_string(&file).unwrap();
            assert_eq!(text.len(), 44, "no newline");
        }
        let rotated = keys.rotate(Key::generate().unwrap(), 3);
        assert!(repo.apply(&rotated).unwrap());
        assert_eq!(repo.read().unwrap(), Some(rotated));
        let sets: Vec<_> = fs::read_dir(dir.join("fernet-keys.sets"))
            .unwrap()
            .collect();
        assert_eq!(sets.len(), 1, "old sets are removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_real_directory_from_keystone_manage_is_replaced_atomically() {
        let dir = temp("migrate");
        let path = dir.join("fernet-keys");
        fs::create_dir(&path).unwrap();
        let old = set();
        for (i, k) in old.keys() {
            fs::write(path.join(i.to_string()), k.expose()).unwrap();
        }
        let repo = Repository::new(&path, None);
        assert_eq!(repo.read().unwrap(), Some(old));
        let new = set();
        assert!(repo.apply(&new).unwrap());
        assert!(
            fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(repo.read().unwrap(), Some(new));
        fs::remove_dir_all(&dir).unwrap();
    }
}
