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

/// Up to `len` first bytes of `file`.
pub fn read_prefix(file: &File, len: usize) -> io::Result<Vec<u8>> {
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

    /// Whether `prefix` (a file's first bytes, at least as many as this fingerprint covers)
    /// starts with the bytes this fingerprint was taken of. An empty fingerprint matches
    /// nothing: it says nothing about a file.
    pub fn matches_prefix(&self, prefix: &[u8]) -> bool {
        let len = self.len as usize;
        len > 0 && prefix.len() >= len && crc32fast::hash(&prefix[..len]) == self.crc
    }

    /// Whether `file` still starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        let prefix = read_prefix(file, self.len as usize)?;
        Ok(prefix.len() == self.len as usize && crc32fast::hash(&prefix) == self.crc)
    }
}

/// Whether the `len` bytes ending at `end` are the same in both files (both at least that long).
pub fn same_bytes_before(a: &File, b: &File, end: u64, len: u64) -> io::Result<bool> {
    let len = len.min(end) as usize;
    let start = end - len as u64;
    let (mut x, mut y) = (vec![0u8; len], vec![0u8; len]);
    a.read_exact_at(&mut x, start)?;
    b.read_exact_at(&mut y, start)?;
    Ok(x == y)
}
