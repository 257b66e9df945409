//! Files the charm owns on the unit (keystone.conf, the vhost, certificates): written atomically
//! with their owner and mode, and only when their content changes, so callers restart a service
//! only when [`Written::changed_content`] says so.
//!
//! A write goes to a temporary file in the same directory (created 0600, so a secret is never
//! readable by others, even briefly), is flushed to disk, given its owner and mode, and renamed
//! over the target: a reader sees the old file or the new one, never half of one, and a crash
//! leaves the old file in place.

#[cfg(any(test, feature = "testkit"))]
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
#[cfg(any(test, feature = "testkit"))]
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file's owner, by name (resolved when the file is written).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub user: String,
    pub group: String,
}

impl Owner {
    pub fn new(user: &str, group: &str) -> Owner {
        Owner {
            user: user.to_owned(),
            group: group.to_owned(),
        }
    }

    pub fn root() -> Owner {
        Owner::new("root", "root")
    }

    /// The user Keystone's WSGI daemons and keystone-manage run as.
    pub fn keystone() -> Owner {
        Owner::new("keystone", "keystone")
    }

    fn ids(&self, path: &Path) -> Result<(u32, u32), FsError> {
        let uid = nix::unistd::User::from_name(&self.user)
            .ok()
            .flatten()
            .ok_or_else(|| FsError::NoSuchOwner {
                path: path.to_owned(),
                name: self.user.clone(),
            })?
            .uid
            .as_raw();
        let gid = nix::unistd::Group::from_name(&self.group)
            .ok()
            .flatten()
            .ok_or_else(|| FsError::NoSuchOwner {
                path: path.to_owned(),
                name: self.group.clone(),
            })?
            .gid
            .as_raw();
        Ok((uid, gid))
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Content, owner and mode were already right.
    Unchanged,
    /// The content was right; the owner or mode was corrected in place.
    Metadata,
    /// New content.
    Content,
}

impl Written {
    /// Whether readers of the file (a service) must take in new content.
    pub fn changed_content(self) -> bool {
        self == Written::Content
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot give {path} to {name}: there is no such user or group; is its package installed?"
    )]
    NoSuchOwner { path: PathBuf, name: String },
    #[error("{path} exists and is not a directory; move it away")]
    NotADirectory { path: PathBuf },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FsError {
    let path = path.to_owned();
    move |source| FsError::Io {
        action,
        path,
        source,
    }
}

/// The charm's file operations.
pub trait Files {
    /// Writes `content` to `path` (whose directory must exist) with `owner` and `mode`, unless it
    /// is already there.
    fn write(
        &self,
        path: &Path,
        content: &[u8],
        owner: &Owner,
        mode: u32,
    ) -> Result<Written, FsError>;
    /// Removes a file; false when there was none.
    fn remove(&self, path: &Path) -> Result<bool, FsError>;
    /// Makes `path` a directory with `owner` and `mode` (missing parents are created with the
    /// default mode); false when it already was exactly that.
    fn ensure_dir(&self, path: &Path, owner: &Owner, mode: u32) -> Result<bool, FsError>;
    /// A file's content; None when there is none.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, FsError>;
}

/// The machine's filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFiles;

/// Removes the temporary files (`prefix<pid>.<n>`) an earlier hook left when it was killed
/// in the middle of a write. Juju runs one hook at a time on a machine, so only this process's
/// own are in use.
fn remove_leftovers(dir: &Path, prefix: &str) {
    let own = format!("{prefix}{}.", std::process::id());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && !name.starts_with(&own) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn fix_metadata(
    path: &Path,
    meta: &fs::Metadata,
    uid: u32,
    gid: u32,
    mode: u32,
) -> Result<bool, FsError> {
    let mut changed = false;
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(io("change the owner of", path))?;
        changed = true;
    }
    if meta.mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io("change the mode of", path))?;
        changed = true;
    }
    Ok(changed)
}

impl Files for HostFiles {
    fn write(
        &self,
        path: &Path,
        content: &[u8],
        owner: &Owner,
        mode: u32,
    ) -> Result<Written, FsError> {
        let (uid, gid) = owner.ids(path)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.charm-tmp.");
        remove_leftovers(dir, &prefix);
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => {
                if fs::read(path).map_err(io("read", path))? == content {
                    return Ok(if fix_metadata(path, &meta, uid, gid, mode)? {
                        Written::Metadata
                    } else {
                        Written::Unchanged
                    });
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("inspect", path)(e)),
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let temp = dir.join(format!(
            "{prefix}{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
                .map_err(io("create a file in", dir))?;
            file.write_all(content).map_err(io("write", &temp))?;
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(io("change the owner of", &temp))?;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io("change the mode of", &temp))?;
            file.sync_all().map_err(io("flush", &temp))?;
            fs::rename(&temp, path).map_err(io("replace", path))?;
            // The rename itself reaches the disk with the directory.
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("flush the directory", dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map(|()| Written::Content)
    }

    fn remove(&self, path: &Path) -> Result<bool, FsError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("remove", path)(e)),
        }
    }

    fn ensure_dir(&self, path: &Path, owner: &Owner, mode: u32) -> Result<bool, FsError> {
        let (uid, gid) = owner.ids(path)?;
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => fix_metadata(path, &meta, uid, gid, mode),
            Ok(_) => Err(FsError::NotADirectory {
                path: path.to_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io("create", parent))?;
                }
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path)
                    .map_err(io("create", path))?;
                let meta = fs::metadata(path).map_err(io("inspect", path))?;
                fix_metadata(path, &meta, uid, gid, mode)?;
                Ok(true)
            }
            Err(e) => Err(io("inspect", path)(e)),
        }
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, FsError> {
        match fs::read(path) {
            Ok(content) => Ok(Some(content)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", path)(e)),
        }
    }
}

/// One file the unit should have.
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredFile {
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub owner: Owner,
    pub mode: u32,
}

impl std::fmt::Debug for DesiredFile {
    // keystone.conf holds the database password and key.pem a private key: never print content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredFile")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

impl DesiredFile {
    pub fn new(path: &str, content: impl Into<Vec<u8>>, owner: Owner, mode: u32) -> DesiredFile {
        DesiredFile {
            path: PathBuf::from(path),
            content: content.into(),
            owner,
            mode,
        }
    }

    /// Readable by the keystone group only (root:keystone 0640): Keystone's files hold the
    /// database password, and its WSGI daemons run as keystone.
    pub fn keystone_readable(path: &str, content: impl Into<Vec<u8>>) -> DesiredFile {
        DesiredFile::new(path, content, Owner::new("root", "keystone"), 0o640)
    }
}

/// Writes `files` (each only when it differs); the paths whose content changed.
pub fn write_files<'a>(
    target: &dyn Files,
    directories: &[PathBuf],
    files: impl IntoIterator<Item = &'a DesiredFile>,
) -> anyhow::Result<Vec<PathBuf>> {
    for dir in directories {
        target
            .ensure_dir(dir, &Owner::root(), 0o755)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let mut changed = Vec::new();
    for file in files {
        let written = target
            .write(&file.path, &file.content, &file.owner, file.mode)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.path.display()))?;
        if written.changed_content() {
            tracing::info!("wrote {}", file.path.display());
            changed.push(file.path.clone());
        }
    }
    Ok(changed)
}

/// A file or directory in [`MemoryFiles`].
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        content: Vec<u8>,
        owner: Owner,
        mode: u32,
    },
    Dir {
        owner: Owner,
        mode: u32,
    },
}

/// A test twin: an in-memory filesystem that counts content writes. Directories are implicit
/// (writing needs no parent), except those made by `ensure_dir`.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Default)]
pub struct MemoryFiles {
    entries: Mutex<BTreeMap<PathBuf, Entry>>,
    content_writes: Mutex<usize>,
}

#[cfg(any(test, feature = "testkit"))]
impl MemoryFiles {
    pub fn new() -> MemoryFiles {
        MemoryFiles::default()
    }

    pub fn entry(&self, path: &Path) -> Option<Entry> {
        self.entries.lock().ok()?.get(path).cloned()
    }

    /// How many writes changed a file's content.
    pub fn content_writes(&self) -> usize {
        self.content_writes.lock().map(|n| *n).unwrap_or(0)
    }

    /// Every file and directory, as they are now.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Entry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Starts counting content writes from zero (after setting up a machine's files).
    pub fn forget_writes(&self) {
        if let Ok(mut n) = self.content_writes.lock() {
            *n = 0;
        }
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Files for MemoryFiles {
    fn write(
        &self,
        path: &Path,
        content: &[u8],
        owner: &Owner,
        mode: u32,
    ) -> Result<Written, FsError> {
        let mut entries = self.entries.lock().map_err(|_| FsError::Io {
            action: "write",
            path: path.to_owned(),
            source: std::io::Error::other("poisoned"),
        })?;
        let new = Entry::File {
            content: content.to_vec(),
            owner: owner.clone(),
            mode,
        };
        let written = match entries.get(path) {
            Some(Entry::Dir { .. }) => {
                return Err(io("replace", path)(std::io::Error::other("is a directory")));
            }
            Some(old) if *old == new => Written::Unchanged,
            Some(Entry::File { content: old, .. }) if old == content => Written::Metadata,
            _ => Written::Content,
        };
        entries.insert(path.to_owned(), new);
        if written == Written::Content
            && let Ok(mut n) = self.content_writes.lock()
        {
            *n += 1;
        }
        Ok(written)
    }

    fn remove(&self, path: &Path) -> Result<bool, FsError> {
        let mut entries = self.entries.lock().map_err(|_| FsError::NotADirectory {
            path: path.to_owned(),
        })?;
        match entries.get(path) {
            Some(Entry::File { .. }) => Ok(entries.remove(path).is_some()),
            Some(Entry::Dir { .. }) => {
                Err(io("remove", path)(std::io::Error::other("is a directory")))
            }
            None => Ok(false),
        }
    }

    fn ensure_dir(&self, path: &Path, owner: &Owner, mode: u32) -> Result<bool, FsError> {
        let mut entries = self.entries.lock().map_err(|_| FsError::NotADirectory {
            path: path.to_owned(),
        })?;
        let new = Entry::Dir {
            owner: owner.clone(),
            mode,
        };
        match entries.get(path) {
            Some(Entry::File { .. }) => Err(FsError::NotADirectory {
                path: path.to_owned(),
            }),
            Some(old) if *old == new => Ok(false),
            _ => {
                entries.insert(path.to_owned(), new);
                Ok(true)
            }
        }
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, FsError> {
        Ok(match self.entry(path) {
            Some(Entry::File { content, .. }) => Some(content),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Temp(PathBuf);
    impl Temp {
        fn new(name: &str) -> Temp {
            let dir = std::env::temp_dir().join(format!("host-fs-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Temp(dir)
        }
    }
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("charm-tmp"))
            .collect()
    }

    #[test]
    fn writes_only_when_something_changes() {
        let t = Temp::new("write");
        let path = t.0.join("keystone.conf");
        let keystone = Owner::keystone();
        let f = HostFiles;
        assert_eq!(
            f.write(&path, b"a = 1\n", &keystone, 0o640).unwrap(),
            Written::Content
        );
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        let ids = keystone
            .ids(&path)
            .expect("the keystone user (install keystone)");
        assert_eq!((meta.uid(), meta.gid()), ids);
        let inode = meta.ino();
        assert_eq!(
            f.write(&path, b"a = 1\n", &keystone, 0o640).unwrap(),
            Written::Unchanged
        );
        assert_eq!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "an unchanged file is not rewritten"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            f.write(&path, b"a = 1\n", &keystone, 0o640).unwrap(),
            Written::Metadata
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(
            f.write(&path, b"a = 2\n", &Owner::root(), 0o600).unwrap(),
            Written::Content
        );
        assert_eq!(fs::read(&path).unwrap(), b"a = 2\n");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
        assert!(leftovers(&t.0).is_empty());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let t = Temp::new("fail");
        let path = t.0.join("f");
        let f = HostFiles;
        f.write(&path, b"old", &Owner::root(), 0o644).unwrap();
        let err = f
            .write(&path, b"new", &Owner::new("no-such-user-x", "root"), 0o644)
            .unwrap_err();
        assert!(matches!(err, FsError::NoSuchOwner { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let missing_dir = t.0.join("nope").join("f");
        let err = f
            .write(&missing_dir, b"x", &Owner::root(), 0o644)
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(leftovers(&t.0).is_empty());
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let t = Temp::new("link");
        let target = t.0.join("target");
        fs::write(&target, b"keep").unwrap();
        let link = t.0.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        HostFiles
            .write(&link, b"new", &Owner::root(), 0o644)
            .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
    }

    #[test]
    fn directories_and_removal() {
        let t = Temp::new("dir");
        let dir = t.0.join("a").join("fernet-keys");
        let f = HostFiles;
        assert!(f.ensure_dir(&dir, &Owner::keystone(), 0o700).unwrap());
        assert!(!f.ensure_dir(&dir, &Owner::keystone(), 0o700).unwrap());
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        assert!(f.ensure_dir(&dir, &Owner::keystone(), 0o750).unwrap());
        let file = dir.join("0");
        f.write(&file, b"k", &Owner::keystone(), 0o600).unwrap();
        assert!(matches!(
            f.ensure_dir(&file, &Owner::root(), 0o700),
            Err(FsError::NotADirectory { .. })
        ));
        assert_eq!(f.read(&file).unwrap().as_deref(), Some(&b"k"[..]));
        assert!(f.remove(&file).unwrap());
        assert!(!f.remove(&file).unwrap());
        assert_eq!(f.read(&file).unwrap(), None);
    }

    #[test]
    fn the_memory_twin_counts_content_writes() {
        let m = MemoryFiles::new();
        let p = Path::new("/etc/keystone/keystone.conf");
        assert_eq!(
            m.write(p, b"x", &Owner::root(), 0o640).unwrap(),
            Written::Content
        );
        assert_eq!(
            m.write(p, b"x", &Owner::root(), 0o640).unwrap(),
            Written::Unchanged
        );
        assert_eq!(
            m.write(p, b"x", &Owner::keystone(), 0o640).unwrap(),
            Written::Metadata
        );
        assert_eq!(
            m.write(p, b"y", &Owner::keystone(), 0o640).unwrap(),
            Written::Content
        );
        assert_eq!(m.content_writes(), 2);
        assert!(m.remove(p).unwrap());
        assert_eq!(m.read(p).unwrap(), None);
    }
}
