//! The checkpoint store: for each file identity, the offset up to which every line has been
//! acknowledged downstream. Written atomically (write a temporary file, fsync, rename, fsync the
//! directory), so a crash leaves the old or the new store, never a torn one. A store that cannot
//! be parsed is set aside (renamed `.corrupt`) and counted: the source starts over rather than
//! refusing to start.
//!
//! When an inode's content changes (copytruncate, or a reused inode), its old entry is kept as a
//! *past* for a while: a copy of that content (`app.log.1` made by copytruncate, a new inode)
//! found later — even after a restart — continues from the past's offset instead of being read
//! again from its start.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::identity::{FileKey, Fingerprint};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub dev: u64,
    pub ino: u64,
    pub fingerprint_len: u32,
    pub fingerprint_crc: u32,
    pub offset: u64,
    /// Last path it was seen at (for people reading the file; identity does not depend on it).
    pub path: String,
    /// Unix seconds it was last updated.
    pub updated: u64,
}

impl Entry {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            len: self.fingerprint_len,
            crc: self.fingerprint_crc,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    files: Vec<Entry>,
    /// Content that was at an inode before it changed (see the module doc).
    #[serde(default)]
    pasts: Vec<Entry>,
}

/// Pasts kept at most (the newest).
const MAX_PASTS: usize = 256;

pub struct Checkpoints {
    path: PathBuf,
    entries: HashMap<FileKey, Entry>,
    pasts: Vec<Entry>,
    dirty: bool,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Checkpoints {
    /// Loads `dir/checkpoints.json`; a missing file is an empty store.
    pub fn load(dir: &Path) -> (Self, Option<String>) {
        let path = dir.join("checkpoints.json");
        let mut problem = None;
        let mut pasts = Vec::new();
        let entries = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<OnDisk>(&bytes) {
                Ok(d) => {
                    pasts = d.pasts;
                    d.files
                        .into_iter()
                        .map(|e| {
                            (
                                FileKey {
                                    dev: e.dev,
                                    ino: e.ino,
                                },
                                e,
                            )
                        })
                        .collect()
                }
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    let _ = fs::rename(&path, &aside);
                    problem = Some(format!(
                        "checkpoint store {} is unreadable ({e}); set aside as {}",
                        path.display(),
                        aside.display()
                    ));
                    HashMap::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                problem = Some(format!(
                    "cannot read checkpoint store {}: {e}",
                    path.display()
                ));
                HashMap::new()
            }
        };
        (
            Self {
                path,
                entries,
                pasts,
                dirty: false,
            },
            problem,
        )
    }

    pub fn get(&self, key: &FileKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Records `offset` for a file; offsets only move forward unless `reset` (truncation).
    pub fn set(&mut self, key: FileKey, fp: Fingerprint, offset: u64, path: &Path, reset: bool) {
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            dev: key.dev,
            ino: key.ino,
            fingerprint_len: fp.len,
            fingerprint_crc: fp.crc,
            offset: 0,
            path: String::new(),
            updated: 0,
        });
        if entry.fingerprint() != fp {
            // Same inode, different file: this entry is the new file's, and the old content's
            // offset is kept as a past in case a copy of it turns up.
            if entry.fingerprint_len > 0 && entry.offset > 0 {
                self.pasts.push(entry.clone());
                if self.pasts.len() > MAX_PASTS {
                    self.pasts.remove(0);
                }
            }
            entry.fingerprint_len = fp.len;
            entry.fingerprint_crc = fp.crc;
            entry.offset = 0;
        }
        if reset || offset > entry.offset {
            entry.offset = offset;
        }
        entry.path = path.display().to_string();
        entry.updated = now_secs();
        self.dirty = true;
    }

    /// Replaces a file's fingerprint with a longer one taken of the same leading bytes (the
    /// file grew past its first, short fingerprint); the offset stays.
    pub fn extend_fingerprint(&mut self, key: &FileKey, fp: Fingerprint) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.fingerprint_len = fp.len;
            entry.fingerprint_crc = fp.crc;
            self.dirty = true;
        }
    }

    /// The past whose content a file starting with `prefix` (of `size` bytes) continues, taken
    /// out of the store: its fingerprint covers `full_len` bytes, or the whole file.
    pub fn take_past(
        &mut self,
        prefix: &[u8],
        size: u64,
        full_len: usize,
        dir: Option<&std::path::Path>,
    ) -> Option<Entry> {
        let i = self.pasts.iter().rposition(|p| {
            let fp = p.fingerprint();
            (fp.len as usize == full_len || u64::from(fp.len) == size)
                && fp.matches_prefix(prefix)
                && std::path::Path::new(&p.path).parent() == dir
        })?;
        self.dirty = true;
        Some(self.pasts.remove(i))
    }

    /// Entries of other files whose fingerprint `prefix` matches (a copy's original, at a
    /// restart before it was opened).
    pub fn matching(&self, prefix: &[u8], except: &FileKey) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|(k, e)| *k != except && e.fingerprint().matches_prefix(prefix))
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn remove(&mut self, key: &FileKey) {
        if self.entries.remove(key).is_some() {
            self.dirty = true;
        }
    }

    /// Forgets files not updated for `max_age_secs`.
    pub fn prune(&mut self, max_age_secs: u64) {
        let cutoff = now_secs().saturating_sub(max_age_secs);
        let before = self.entries.len();
        self.entries.retain(|_, e| e.updated >= cutoff);
        let pasts = self.pasts.len();
        self.pasts.retain(|e| e.updated >= cutoff);
        self.dirty |= self.entries.len() != before || self.pasts.len() != pasts;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Writes the store if it changed; atomic (see the module doc).
    pub fn persist(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut files: Vec<Entry> = self.entries.values().cloned().collect();
        files.sort_by_key(|e| (e.dev, e.ino));
        let body = serde_json::to_vec_pretty(&OnDisk {
            version: 1,
            files,
            pasts: self.pasts.clone(),
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        crate::state_file::write_atomically(&self.path, &body)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_round_trip_and_never_moves_back_without_reset() {
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey { dev: 1, ino: 2 };
        let fp = Fingerprint { len: 4, crc: 9 };
        let (mut c, problem) = Checkpoints::load(dir.path());
        assert!(problem.is_none());
        c.set(key, fp, 100, Path::new("/x"), false);
        c.set(key, fp, 50, Path::new("/x"), false);
        assert_eq!(c.get(&key).unwrap().offset, 100);
        c.persist().unwrap();
        let (c2, _) = Checkpoints::load(dir.path());
        assert_eq!(c2.get(&key).unwrap().offset, 100);
        let mut c2 = c2;
        c2.set(key, fp, 0, Path::new("/x"), true);
        assert_eq!(c2.get(&key).unwrap().offset, 0);
    }

    #[test]
    fn a_corrupt_store_is_set_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("checkpoints.json"), b"{not json").unwrap();
        let (c, problem) = Checkpoints::load(dir.path());
        assert_eq!(c.len(), 0);
        assert!(problem.unwrap().contains("set aside"));
        assert!(dir.path().join("checkpoints.json.corrupt").exists());
    }
}
