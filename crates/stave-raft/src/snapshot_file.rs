//! The file a state machine keeps its current snapshot in ([`SnapshotFile`]): read when the
//! state machine opens, replaced atomically ([`crate::files::replace_atomically`]) when a
//! snapshot is built or installed, so a replica whose log was purged resumes after it.
//!
//! Each state machine lays its file out its own way ([`SnapshotLayout`]: the partition's is
//! JSON, the controller's a checksummed binary frame), and both keep the snapshot's meta in
//! the same JSON ([`StoredMeta`]).

use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::entry::{decode_membership, encode_membership};
use crate::types::{LogIdOf, StoredMembershipOf, TypeConfig, from_log_id};

type SnapshotMetaOf = openraft::alias::SnapshotMetaOf<TypeConfig>;

/// How a state machine's snapshot is laid out in its file.
pub(crate) trait SnapshotLayout: Clone + Send + Sync + 'static {
    /// The file's name in the state machine's directory.
    const FILE_NAME: &'static str;

    fn encode_file(meta: &SnapshotMetaOf, snapshot: &Self) -> io::Result<Vec<u8>>;

    fn decode_file(bytes: &[u8]) -> io::Result<(SnapshotMetaOf, Self)>;
}

/// A snapshot's meta as both files store it, in JSON (small, readable): its last log id and
/// its membership with that membership's log id, log ids as `[term, index]`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredMeta {
    last: Option<(u64, u64)>,
    membership_log_id: Option<(u64, u64)>,
    membership: String,
}

impl StoredMeta {
    pub(crate) fn from_meta(meta: &SnapshotMetaOf) -> io::Result<StoredMeta> {
        Ok(StoredMeta {
            last: log_id_parts(meta.last_log_id.as_ref()),
            membership_log_id: log_id_parts(meta.last_membership.log_id().as_ref()),
            membership: String::from_utf8(encode_membership(meta.last_membership.membership())?)
                .map_err(io::Error::other)?,
        })
    }

    pub(crate) fn into_meta(self) -> io::Result<SnapshotMetaOf> {
        let membership = decode_membership(self.membership.as_bytes())?;
        Ok(SnapshotMetaOf {
            last_log_id: log_id_from(self.last),
            last_membership: StoredMembershipOf::new(
                log_id_from(self.membership_log_id),
                membership,
            ),
        })
    }
}

fn log_id_parts(id: Option<&LogIdOf>) -> Option<(u64, u64)> {
    id.map(|id| (id.leader_id.term, id.index))
}

fn log_id_from(parts: Option<(u64, u64)>) -> Option<LogIdOf> {
    parts.map(|(term, index)| from_log_id(stave_log::LogId::new(term, index)))
}

/// `{dir}/{S::FILE_NAME}`: the current snapshot of a state machine whose snapshot is `S`.
/// Cheap to clone: clones share what a newer-only file remembers.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFile<S> {
    dir: PathBuf,
    /// For a file that never goes back ([`SnapshotFile::newer_only`]): the log id of the
    /// snapshot last written or read. Held while a snapshot is written, so writes go one at a
    /// time.
    newest: Option<Arc<Mutex<Option<LogIdOf>>>>,
    layout: PhantomData<fn() -> S>,
}

impl<S: SnapshotLayout> SnapshotFile<S> {
    /// The file in `dir`. It writes every snapshot it is given: its owner orders them.
    pub(crate) fn new(dir: &Path) -> SnapshotFile<S> {
        SnapshotFile {
            dir: dir.to_path_buf(),
            newest: None,
            layout: PhantomData,
        }
    }

    /// This file, made to never go back: a snapshot older than the one last written (or
    /// read) is not written, so a slower build never replaces a newer install on disk.
    pub(crate) fn newer_only(self) -> SnapshotFile<S> {
        SnapshotFile {
            newest: Some(Arc::new(Mutex::new(None))),
            ..self
        }
    }

    /// The snapshot in the file, if there is one.
    pub(crate) fn read(&self) -> io::Result<Option<(SnapshotMetaOf, S)>> {
        let bytes = match std::fs::read(self.dir.join(S::FILE_NAME)) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let (meta, snapshot) = S::decode_file(&bytes)?;
        if let Some(newest) = &self.newest {
            *lock(newest) = meta.last_log_id;
        }
        Ok(Some((meta, snapshot)))
    }

    /// Writes `(meta, snapshot)` from a blocking thread (unless this file is newer-only and
    /// holds a newer snapshot).
    pub(crate) async fn persist(&self, meta: &SnapshotMetaOf, snapshot: &S) -> io::Result<()> {
        let file = self.clone();
        let meta = meta.clone();
        let snapshot = snapshot.clone();
        tokio::task::spawn_blocking(move || file.write(&meta, &snapshot))
            .await
            .map_err(io::Error::other)?
    }

    fn write(&self, meta: &SnapshotMetaOf, snapshot: &S) -> io::Result<()> {
        let Some(newest) = &self.newest else {
            return self.replace(meta, snapshot);
        };
        let mut newest = lock(newest);
        if meta.last_log_id < *newest {
            return Ok(());
        }
        self.replace(meta, snapshot)?;
        *newest = meta.last_log_id;
        Ok(())
    }

    /// Replaces the file atomically: a temporary file, synced, renamed over the old one, then
    /// the directory synced (the rename itself must survive a crash).
    fn replace(&self, meta: &SnapshotMetaOf, snapshot: &S) -> io::Result<()> {
        let bytes = S::encode_file(meta, snapshot)?;
        crate::files::replace_atomically(&self.dir, S::FILE_NAME, &bytes)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A layout for these tests: the meta's JSON, a newline, then the text.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Text(String);

    impl SnapshotLayout for Text {
        const FILE_NAME: &'static str = "text-snapshot";

        fn encode_file(meta: &SnapshotMetaOf, snapshot: &Self) -> io::Result<Vec<u8>> {
            let mut bytes = serde_json::to_vec(&StoredMeta::from_meta(meta)?)?;
            bytes.push(b'\n');
            bytes.extend_from_slice(snapshot.0.as_bytes());
            Ok(bytes)
        }

        fn decode_file(bytes: &[u8]) -> io::Result<(SnapshotMetaOf, Self)> {
            let text = String::from_utf8(bytes.to_vec()).map_err(io::Error::other)?;
            let (meta, text) = text.split_once('\n').ok_or(io::ErrorKind::InvalidData)?;
            let meta: StoredMeta = serde_json::from_str(meta)?;
            Ok((meta.into_meta()?, Text(text.to_owned())))
        }
    }

    fn meta(term: u64, index: u64) -> SnapshotMetaOf {
        let membership = crate::types::MembershipOf::new_with_defaults(vec![[1, 2].into()], []);
        let log_id = from_log_id(stave_log::LogId::new(term, index));
        SnapshotMetaOf {
            last_log_id: Some(log_id),
            last_membership: StoredMembershipOf::new(Some(log_id), membership),
        }
    }

    #[tokio::test]
    async fn a_file_is_empty_until_written_and_reads_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::<Text>::new(dir.path());
        assert!(file.read().unwrap().is_none());
        file.persist(&meta(1, 5), &Text("five".into()))
            .await
            .unwrap();
        assert_eq!(
            file.read().unwrap(),
            Some((meta(1, 5), Text("five".into())))
        );
        // A plain file writes whatever it is given, older or not.
        file.persist(&meta(1, 3), &Text("three".into()))
            .await
            .unwrap();
        assert_eq!(file.read().unwrap().unwrap().1, Text("three".into()));
    }

    #[tokio::test]
    async fn a_newer_only_file_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::<Text>::new(dir.path()).newer_only();
        file.persist(&meta(2, 8), &Text("eight".into()))
            .await
            .unwrap();
        file.persist(&meta(2, 7), &Text("seven".into()))
            .await
            .unwrap();
        assert_eq!(file.read().unwrap().unwrap().1, Text("eight".into()));
        // Reopened, it remembers the snapshot it read.
        let reopened = SnapshotFile::<Text>::new(dir.path()).newer_only();
        assert!(reopened.read().unwrap().is_some());
        reopened
            .persist(&meta(1, 9), &Text("older term".into()))
            .await
            .unwrap();
        assert_eq!(reopened.read().unwrap().unwrap().1, Text("eight".into()));
        reopened
            .persist(&meta(2, 8), &Text("same".into()))
            .await
            .unwrap();
        assert_eq!(reopened.read().unwrap().unwrap().1, Text("same".into()));
    }
}
