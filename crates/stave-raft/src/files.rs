//! Small files replaced whole: the node file and the snapshot files.

use std::io::{self, Write};
use std::path::Path;

/// Replaces `dir/name` with `bytes` atomically: a temporary file, synced, renamed over the old
/// one, then the directory synced (the rename itself must survive a crash). A crash leaves
/// either the old file or the new one, never a mix.
pub(crate) fn replace_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        replace_atomically(dir.path(), "f", b"one").unwrap();
        replace_atomically(dir.path(), "f", b"two").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }
}
