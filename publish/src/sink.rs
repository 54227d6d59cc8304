//! Where a publication is written: a local folder, or memory for tests (the
//! S3 sink is in `decompte-aws`). A sink only stores bytes at
//! paths; the order of writes, which makes a publication consistent, is the
//! publisher's business.

#[cfg(any(test, feature = "testing"))]
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("{operation} {path}: {message}")]
pub struct SinkError {
    pub operation: &'static str,
    pub path: String,
    pub message: String,
}

/// A part of a composed file: a file of the sink from its byte `skip` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub path: String,
    pub skip: usize,
    /// The SHA-256 (hex) of the whole file as the publication's manifest
    /// has it, if it does: a sink that remembers how it hashed a composed
    /// file need not read the parts that did not change since.
    pub sha256: Option<String>,
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
        parts: &[Part],
    ) -> Result<(String, u64), SinkError> {
        let mut bytes = head.to_vec();
        for part in parts {
            let read = self.read(&part.path).await?.ok_or_else(|| SinkError {
                operation: "compose",
                path: part.path.clone(),
                message: "missing part".into(),
            })?;
            bytes.extend_from_slice(read.get(part.skip..).unwrap_or_default());
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
    /// How each composed file was last hashed, part by part.
    hashed: Mutex<HashMap<PathBuf, Hashed>>,
}

/// How a composed file was hashed: its head, then the SHA-256 state after
/// each part, with that part as it was (its path, the bytes skipped, its
/// own SHA-256). Composed again with the same head, the file is hashed
/// again from its first part that changed: one correction in a département
/// does not read again the country's file up to it.
#[derive(Clone, Default)]
struct Hashed {
    head: Vec<u8>,
    after: Vec<(Part, Sha256)>,
}

/// A file composed: its SHA-256 (hex), its size, and how many of its bytes
/// were read to hash it (the others' hash was remembered).
#[derive(Debug)]
pub(crate) struct Composition {
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) hashed_bytes: u64,
}

impl FolderSink {
    /// The site in `root`, the publisher's own files in `private` (outside
    /// `root`: whatever serves the site must never serve them).
    pub fn new(root: impl Into<PathBuf>, private: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            private: private.into(),
            hashed: Mutex::new(HashMap::new()),
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

    /// [`Sink::compose`], saying how many bytes it read to hash the file.
    pub(crate) async fn compose_parts(
        &self,
        target: &str,
        head: &[u8],
        parts: &[Part],
    ) -> Result<Composition, SinkError> {
        let target_path = self.resolve(target)?;
        let part_paths = parts
            .iter()
            .map(|part| self.resolve(&part.path).map(|p| (p, part.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        // Taken out while composing: a failure forgets it.
        let previous = self
            .hashed
            .lock()
            .ok()
            .and_then(|mut hashed| hashed.remove(&target_path))
            .filter(|previous| previous.head == head);
        let head = head.to_vec();
        let name = target.to_owned();
        let composed_path = target_path.clone();
        let (composition, hashed) = tokio::task::spawn_blocking(move || {
            compose_files(
                &composed_path,
                &head,
                &part_paths,
                previous.unwrap_or_default(),
            )
        })
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
        })?;
        if let Ok(mut remembered) = self.hashed.lock() {
            remembered.insert(target_path, hashed);
        }
        Ok(composition)
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
        parts: &[Part],
    ) -> Result<(String, u64), SinkError> {
        let composition = self.compose_parts(target, head, parts).await?;
        tracing::debug!(
            target,
            size = composition.size,
            hashed_bytes = composition.hashed_bytes,
            "composed"
        );
        Ok((composition.sha256, composition.size))
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
/// renames it: memory stays one buffer whatever the size. The hash resumes
/// from `previous` after the longest run of parts, from the first, that
/// are as they were (the same path, skip and SHA-256).
fn compose_files(
    target: &Path,
    head: &[u8],
    parts: &[(PathBuf, Part)],
    previous: Hashed,
) -> Result<(Composition, Hashed), (Option<String>, std::io::Error)> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| (None, e))?;
    }
    let temporary = temporary_of(target);
    let (copied, hashed) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            let unchanged = previous
                .after
                .iter()
                .zip(parts)
                .take_while(|((was, _), (_, part))| part.sha256.is_some() && was == part)
                .count();
            let mut hasher = match unchanged.checked_sub(1) {
                Some(last) => previous.after[last].1.clone(),
                None => {
                    let mut hasher = Sha256::new();
                    hasher.update(head);
                    hasher
                }
            };
            let mut after = previous.after[..unchanged].to_vec();
            let mut hashed_bytes = 0u64;
            let mut buffer = vec![0u8; 4 << 20];
            // What follows a part of unknown SHA-256 cannot be trusted next
            // time: nothing is remembered past it.
            let mut trusted = true;
            for (path, part) in &parts[unchanged..] {
                let failed = |e| (Some(part.path.clone()), e);
                let mut file = std::fs::File::open(path).map_err(failed)?;
                file.seek(SeekFrom::Start(part.skip as u64))
                    .map_err(failed)?;
                loop {
                    let n = file.read(&mut buffer).map_err(failed)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                    hashed_bytes += n as u64;
                }
                trusted &= part.sha256.is_some();
                if trusted {
                    after.push((part.clone(), hasher.clone()));
                }
            }
            let sha256 = hex::encode(hasher.finalize());
            Ok::<_, (Option<String>, std::io::Error)>((sha256, hashed_bytes, after))
        });
        let copying = || {
            let mut out = std::fs::File::create(&temporary).map_err(|e| (None, e))?;
            out.write_all(head).map_err(|e| (None, e))?;
            let mut size = head.len() as u64;
            for (path, part) in parts {
                let failed = |e| (Some(part.path.clone()), e);
                let mut file = std::fs::File::open(path).map_err(failed)?;
                file.seek(SeekFrom::Start(part.skip as u64))
                    .map_err(failed)?;
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
    let (sha256, hashed_bytes, after) = hashed?;
    replace(&temporary, target).map_err(|e| (None, e))?;
    Ok((
        Composition {
            sha256,
            size,
            hashed_bytes,
        },
        Hashed {
            head: head.to_vec(),
            after,
        },
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A composed file is hashed again from its first part that changed,
    /// and its SHA-256 is always that of its bytes.
    #[tokio::test]
    async fn a_composed_file_is_hashed_again_from_its_first_changed_part() {
        let folder = tempfile::tempdir().expect("folder");
        let sink = FolderSink::new(folder.path().join("site"), folder.path().join("state"));
        let head = b"date,n\n";
        let mut contents: Vec<Vec<u8>> = (0..3)
            .map(|i| format!("date,n\n2020-04-0{i},{}\n", i * 11).into_bytes())
            .collect();
        let parts = |contents: &[Vec<u8>], known: bool| -> Vec<Part> {
            contents
                .iter()
                .enumerate()
                .map(|(i, bytes)| Part {
                    path: format!("d/{i}.csv"),
                    skip: head.len(),
                    sha256: known.then(|| sha(bytes)),
                })
                .collect()
        };
        for (i, bytes) in contents.iter().enumerate() {
            sink.write(&format!("d/{i}.csv"), bytes)
                .await
                .expect("part");
        }
        let body =
            |contents: &[Vec<u8>]| contents.iter().map(|c| c.len() - head.len()).sum::<usize>();
        let compose = |parts: Vec<Part>, head: &'static [u8]| {
            let sink = &sink;
            async move {
                let composition = sink
                    .compose_parts("all.csv", head, &parts)
                    .await
                    .expect("composed");
                let bytes = std::fs::read(sink.root().join("all.csv")).expect("file");
                assert_eq!(composition.sha256, sha(&bytes));
                assert_eq!(composition.size, bytes.len() as u64);
                (bytes, composition.hashed_bytes)
            }
        };

        // The first time, every part is read.
        let (bytes, hashed) = compose(parts(&contents, true), head).await;
        assert_eq!(hashed, body(&contents) as u64);
        assert!(bytes.starts_with(head) && bytes.ends_with(b"2020-04-02,22\n"));
        // Nothing changed: nothing is read.
        let (_, hashed) = compose(parts(&contents, true), head).await;
        assert_eq!(hashed, 0);
        // The second part changed: it and the third are read.
        contents[1] = b"date,n\n2020-04-01,1234\n".to_vec();
        sink.write("d/1.csv", &contents[1]).await.expect("part");
        let (bytes, hashed) = compose(parts(&contents, true), head).await;
        assert_eq!(
            hashed,
            (body(&contents) - (contents[0].len() - head.len())) as u64
        );
        assert!(String::from_utf8_lossy(&bytes).contains("2020-04-01,1234\n"));
        // Another head: every part again.
        let (_, hashed) = compose(parts(&contents, true), b"date,nombre\n").await;
        assert_eq!(hashed, body(&contents) as u64);
        // Parts of unknown SHA-256 are read every time.
        let (_, hashed) = compose(parts(&contents, false), head).await;
        assert_eq!(hashed, body(&contents) as u64);
        let (_, hashed) = compose(parts(&contents, false), head).await;
        assert_eq!(hashed, body(&contents) as u64);
    }
}
