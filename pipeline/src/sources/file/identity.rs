//! A file's identity: device and inode, plus a fingerprint (CRC-32 of its first bytes) so that a
//! reused inode is not mistaken for the file that had it before.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

impl FileKey {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// CRC-32 of the first `len` bytes. A file shorter than the fingerprint size at first sight gets
/// a shorter fingerprint, which still matches when the file has grown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub len: u32,
    pub crc: u32,
}

fn read_prefix(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

impl Fingerprint {
    /// The fingerprint of up to `max` first bytes of `file`.
    pub fn of(file: &File, max: usize) -> io::Result<Self> {
        let prefix = read_prefix(file, max)?;
        Ok(Self {
            len: prefix.len() as u32,
            crc: crc32fast::hash(&prefix),
        })
    }

    /// Whether `file` still starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        let prefix = read_prefix(file, self.len as usize)?;
        Ok(prefix.len() == self.len as usize && crc32fast::hash(&prefix) == self.crc)
    }
}
