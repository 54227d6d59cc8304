//! Where a publication is written: a local folder, or memory for tests (the
//! S3 sink is in `decompte-aws`). A sink only stores bytes at
//! paths; the order of writes, which makes a publication consistent, is the
//! publisher's business.

use std::path::{Path, PathBuf};
#[cfg(any(test, feature = "testing"))]
use std::{collections::BTreeMap, sync::Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("{operation} {path}: {message}")]
pub struct SinkError {
    pub operation: &'static str,
    pub path: String,
    pub message: String,
}

#[async_trait]
pub trait Sink: Send + Sync {
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SinkError>;
    async fn write(&self, path: &str, bytes: &[u8]) -> Result<(), SinkError>;
    async fn delete(&self, path: &str) -> Result<(), SinkError>;

    /// Reads one of the publisher's own files (its state), which the sink
    /// keeps where the public site is not served from: what it holds (the
    /// reports just published, with their communes, days and instants) is
    /// not for the public.
    async fn read_private(&self, name: &str) -> Result<Option<Vec<u8>>, SinkError>;
    /// Writes one of the publisher's own files, out of the public site.
    async fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError>;

    /// Writes many files, in any order (the publisher groups what must be
    /// written before what). This default writes them one by one; a folder
    /// writes them all in one blocking task, S3 several at once.
    async fn write_files(&self, files: Vec<(String, Vec<u8>)>) -> Result<(), SinkError> {
        for (path, bytes) in &files {
            self.write(path, bytes).await?;
        }
        Ok(())
    }

    /// Writes `target` as `head` followed by each part (a file already in
    /// the sink) from its byte `skip` on, and returns the SHA-256 (hex) and
    /// size of what it wrote: the whole-scope data made of the départements'
    /// files. This default reads the parts into memory; a folder streams them.
    async fn compose(
        &self,
        target: &str,
        head: &[u8],
        parts: &[(String, usize)],
    ) -> Result<(String, u64), SinkError> {
        let mut bytes = head.to_vec();
        for (path, skip) in parts {
            let part = self.read(path).await?.ok_or_else(|| SinkError {
                operation: "compose",
                path: path.clone(),
                message: "missing part".into(),
            })?;
            bytes.extend_from_slice(part.get(*skip..).unwrap_or_default());
        }
        self.write(target, &bytes).await?;
        Ok((hex::encode(Sha256::digest(&bytes)), bytes.len() as u64))
    }
}

/// A folder on disk. Each file is written to a temporary name then renamed, so
/// that a reader never sees half a file. The publisher's own files go to
/// another folder, which must not be inside the site's.
pub struct FolderSink {
    root: PathBuf,
    private: PathBuf,
}

impl FolderSink {
    /// The site in `root`, the publisher's own files in `private` (outside
    /// `root`: whatever serves the site must never serve them).
    pub fn new(root: impl Into<PathBuf>, private: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            private: private.into(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the publisher's own files are.
    pub fn private_root(&self) -> &Path {
        &self.private
    }

    /// Resolves a site path, refusing anything that could leave the root.
    fn resolve(&self, path: &str) -> Result<PathBuf, SinkError> {
        resolve_in(&self.root, path)
    }
}

/// `path` under `root`, refusing anything that could leave it.
fn resolve_in(root: &Path, path: &str) -> Result<PathBuf, SinkError> {
    let safe = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if safe {
        Ok(root.join(path))
    } else {
        Err(SinkError {
            operation: "resolve",
            path: path.into(),
            message: "unsafe path".into(),
        })
    }
}

/// Reads a file; `None` when there is none.
async fn read_file(target: &Path, path: &str) -> Result<Option<Vec<u8>>, SinkError> {
    match tokio::fs::read(target).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SinkError {
            operation: "read",
            path: path.into(),
            message: e.to_string(),
        }),
    }
}

/// The temporary name `target` is written under before it is renamed: of
/// this process, so that two replicas publishing into a shared folder at the
/// same moment (one losing the lease as the other takes it) never rename
/// each other's half-written file.
fn temporary_of(target: &Path) -> std::path::PathBuf {
    target.with_extension(format!(
        "{}.{}.tmp",
        target.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ))
}

/// Writes a file under a temporary name, then renames it into place.
async fn write_file(target: &Path, path: &str, bytes: &[u8]) -> Result<(), SinkError> {
    let error = |e: std::io::Error| SinkError {
        operation: "write",
        path: path.into(),
        message: e.to_string(),
    };
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(error)?;
    }
    let temporary = temporary_of(target);
    tokio::fs::write(&temporary, bytes).await.map_err(error)?;
    tokio::fs::rename(&temporary, target).await.map_err(error)
}

#[async_trait]
impl Sink for FolderSink {
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SinkError> {
        read_file(&self.resolve(path)?, path).await
    }

    async fn write(&self, path: &str, bytes: &[u8]) -> Result<(), SinkError> {
        write_file(&self.resolve(path)?, path, bytes).await
    }

    async fn read_private(&self, name: &str) -> Result<Option<Vec<u8>>, SinkError> {
        read_file(&resolve_in(&self.private, name)?, name).await
    }

    async fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        write_file(&resolve_in(&self.private, name)?, name, bytes).await
    }

    async fn write_files(&self, files: Vec<(String, Vec<u8>)>) -> Result<(), SinkError> {
        let resolved = files
            .into_iter()
            .map(|(path, bytes)| self.resolve(&path).map(|target| (path, target, bytes)))
            .collect::<Result<Vec<_>, _>>()?;
        tokio::task::spawn_blocking(move || {
            let mut folders = std::collections::HashSet::new();
            for (path, target, bytes) in resolved {
                let error = |e: std::io::Error| SinkError {
                    operation: "write",
                    path: path.clone(),
                    message: e.to_string(),
                };
                if let Some(parent) = target.parent() {
                    if folders.insert(parent.to_path_buf()) {
                        std::fs::create_dir_all(parent).map_err(error)?;
                    }
                }
                let temporary = temporary_of(&target);
                std::fs::write(&temporary, &bytes).map_err(error)?;
                std::fs::rename(&temporary, &target).map_err(error)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| SinkError {
            operation: "write",
            path: String::new(),
            message: e.to_string(),
        })?
    }

    async fn compose(
        &self,
        target: &str,
        head: &[u8],
        parts: &[(String, usize)],
    ) -> Result<(String, u64), SinkError> {
        let target_path = self.resolve(target)?;
        let part_paths = parts
            .iter()
            .map(|(path, skip)| self.resolve(path).map(|p| (p, *skip as u64, path.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let head = head.to_vec();
        let name = target.to_owned();
        tokio::task::spawn_blocking(move || compose_files(&target_path, &head, &part_paths))
            .await
            .map_err(|e| SinkError {
                operation: "compose",
                path: name.clone(),
                message: e.to_string(),
            })?
            .map_err(|(path, e)| SinkError {
                operation: "compose",
                path: path.unwrap_or(name),
                message: e.to_string(),
            })
    }

    async fn delete(&self, path: &str) -> Result<(), SinkError> {
        match tokio::fs::remove_file(self.resolve(path)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SinkError {
                operation: "delete",
                path: path.into(),
                message: e.to_string(),
            }),
        }
    }
}

/// Copies `head` and the parts into a temporary file (the kernel copies,
/// `copy_file_range`), hashes them on another thread meanwhile, then
/// renames it: memory stays one buffer whatever the size.
fn compose_files(
    target: &Path,
    head: &[u8],
    parts: &[(PathBuf, u64, String)],
) -> Result<(String, u64), (Option<String>, std::io::Error)> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| (None, e))?;
    }
    let temporary = temporary_of(target);
    let (copied, hashed) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            let mut hasher = Sha256::new();
            hasher.update(head);
            let mut buffer = vec![0u8; 4 << 20];
            for (path, skip, name) in parts {
                let failed = |e| (Some(name.clone()), e);
                let mut file = std::fs::File::open(path).map_err(failed)?;
                file.seek(SeekFrom::Start(*skip)).map_err(failed)?;
                loop {
                    let n = file.read(&mut buffer).map_err(failed)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                }
            }
            Ok::<_, (Option<String>, std::io::Error)>(hex::encode(hasher.finalize()))
        });
        let copying = || {
            let mut out = std::fs::File::create(&temporary).map_err(|e| (None, e))?;
            out.write_all(head).map_err(|e| (None, e))?;
            let mut size = head.len() as u64;
            for (path, skip, name) in parts {
                let failed = |e| (Some(name.clone()), e);
                let mut file = std::fs::File::open(path).map_err(failed)?;
                file.seek(SeekFrom::Start(*skip)).map_err(failed)?;
                size += std::io::copy(&mut file, &mut out).map_err(failed)?;
            }
            Ok::<_, (Option<String>, std::io::Error)>(size)
        };
        let copied = copying();
        let hashed = hashing
            .join()
            .unwrap_or_else(|_| Err((None, std::io::Error::other("the hashing thread failed"))));
        (copied, hashed)
    });
    let size = copied?;
    let sha256 = hashed?;
    replace(&temporary, target).map_err(|e| (None, e))?;
    Ok((sha256, size))
}

/// Puts `new` in the place of `target` atomically. On Linux, a file that
/// replaces an existing one is swapped with it (`RENAME_EXCHANGE`), then
/// the old one is unlinked: ext4 flushes a file renamed over another to
/// disk first (`auto_da_alloc`), which for the half-gigabyte whole-country
/// CSV takes longer than writing it.
fn replace(new: &Path, target: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        if target.exists() && renameat_with(CWD, new, CWD, target, RenameFlags::EXCHANGE).is_ok() {
            return std::fs::remove_file(new);
        }
    }
    std::fs::rename(new, target)
}

/// An in-memory sink for tests, which can be told to fail after a number of writes.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemorySink {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    private: Mutex<BTreeMap<String, Vec<u8>>>,
    writes_before_failure: Mutex<Option<usize>>,
}

#[cfg(any(test, feature = "testing"))]
impl MemorySink {
    /// The public site.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.files.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The publisher's own files.
    pub fn private_files(&self) -> BTreeMap<String, Vec<u8>> {
        self.private.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The next `n` writes succeed, then every write fails.
    pub fn fail_after(&self, n: usize) {
        if let Ok(mut limit) = self.writes_before_failure.lock() {
            *limit = Some(n);
        }
    }

    /// One file of `files`.
    fn fetch(
        files: &Mutex<BTreeMap<String, Vec<u8>>>,
        path: &str,
    ) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(files
            .lock()
            .map_err(|_| Self::poisoned(path))?
            .get(path)
            .cloned())
    }

    /// One write into `files`, unless the injected failure comes first.
    fn store(
        &self,
        files: &Mutex<BTreeMap<String, Vec<u8>>>,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), SinkError> {
        {
            let mut limit = self
                .writes_before_failure
                .lock()
                .map_err(|_| Self::poisoned(path))?;
            match limit.as_mut() {
                Some(0) => {
                    return Err(SinkError {
                        operation: "write",
                        path: path.into(),
                        message: "injected failure".into(),
                    })
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        files
            .lock()
            .map_err(|_| Self::poisoned(path))?
            .insert(path.into(), bytes.to_vec());
        Ok(())
    }

    fn poisoned(path: &str) -> SinkError {
        SinkError {
            operation: "lock",
            path: path.into(),
            message: "poisoned".into(),
        }
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait]
impl Sink for MemorySink {
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Self::fetch(&self.files, path)
    }

    async fn write(&self, path: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.store(&self.files, path, bytes)
    }

    async fn read_private(&self, name: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Self::fetch(&self.private, name)
    }

    async fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.store(&self.private, name, bytes)
    }

    async fn delete(&self, path: &str) -> Result<(), SinkError> {
        self.files
            .lock()
            .map_err(|_| Self::poisoned(path))?
            .remove(path);
        Ok(())
    }
}
