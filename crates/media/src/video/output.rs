//! Output files that appear only when complete: written under a hidden temporary name beside their
//! destination and moved there at the end, removed if anything fails before. A failed command or job never
//! leaves an empty or half-written video (or picture) where a finished one is expected.

use std::path::{Path, PathBuf};

use super::MediaError;

/// A file being written for `dest`.
pub struct PartialFile {
    /// Removed when dropped, unless persisted.
    tmp: tempfile::TempPath,
    dest: PathBuf,
}

impl PartialFile {
    /// A new empty file `.<name>.<random>.partial` in `dest`'s directory (the same file system, so the final
    /// move is a rename).
    pub fn beside(dest: &Path) -> Result<PartialFile, MediaError> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| MediaError::internal(format!("cannot create a file in {}", dir.display()), e))?
            .into_temp_path();
        Ok(PartialFile { tmp, dest: dest.to_owned() })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished file to its destination (replacing what was there).
    pub fn persist(self) -> Result<(), MediaError> {
        let dest = self.dest;
        self.tmp.persist(&dest).map_err(|e| MediaError::internal(format!("cannot move the finished file to {}", dest.display()), e.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_persisted_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.mp4");
        {
            let p = PartialFile::beside(&dest).unwrap();
            std::fs::write(p.path(), b"half").unwrap();
            // Dropped unfinished: nothing stays.
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let p = PartialFile::beside(&dest).unwrap();
        assert!(p.path().file_name().is_some_and(|n| n.to_string_lossy().starts_with(".out.mp4.")));
        std::fs::write(p.path(), b"whole").unwrap();
        p.persist().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
