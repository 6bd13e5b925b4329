//! The disk buffer's files: numbered segment files of records ([`record`]) and a ledger, with
//! the bookkeeping of what was read and acknowledged. Synchronous; the async stage around it is
//! in `mod.rs`.
//!
//! - Appends go to the newest segment; a segment past `max_segment_bytes` is sealed and a new
//!   one started. On open, a new segment is always started, so a torn tail left by a crash is
//!   only ever read, never appended to.
//! - Records are read in order. Each record read is outstanding until acknowledged; the ledger
//!   (`ledger.json`, written atomically) holds where the oldest unacknowledged record starts, so a
//!   restart replays only what was not acknowledged (plus acknowledged records that came after an
//!   unacknowledged one: bounded by what is in flight). A segment is deleted once sealed, read to
//!   its end and wholly acknowledged. A failed delivery puts the record back to be read again.
//! - A record whose header or CRC does not check out is counted and skipped: the reader scans for
//!   the next valid record ([`record::resync`]) and goes on. Bytes at a sealed segment's end too
//!   short to be a record are a torn tail: counted and skipped. Nothing here ever refuses to start
//!   because of what is in the files.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{self, HEADER_BYTES};

/// Where a record is: segment number and byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordId {
    pub segment: u64,
    pub start: u64,
    pub end: u64,
}

/// A record read back.
#[derive(Debug)]
pub struct ReadRecord {
    pub id: RecordId,
    pub payload: Vec<u8>,
}

/// Why an append did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// No room under `max_bytes` until something is acknowledged (or the oldest is dropped).
    Full,
    /// The record alone is larger than a segment may be.
    TooLarge,
}

/// Damage found while reading, for the caller to count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Damage {
    pub corrupted_bytes: u64,
    pub torn_tail_bytes: u64,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes written (all of them whole records, for the segment this process writes).
    size: u64,
    sealed: bool,
    /// Records handed out and not yet part of the acknowledged prefix: (id, acknowledged).
    outstanding: VecDeque<(RecordId, bool)>,
    /// Everything before this offset is acknowledged (or was skipped as damage).
    acked_to: u64,
    read_done: bool,
}

impl Segment {
    /// Creates segment file `seq`, empty, to append to.
    fn create(dir: &Path, seq: u64) -> io::Result<(File, Segment)> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, seq))?;
        let segment = Segment {
            seq,
            size: 0,
            sealed: false,
            outstanding: VecDeque::new(),
            acked_to: 0,
            read_done: false,
        };
        Ok((file, segment))
    }
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Ledger {
    segment: u64,
    offset: u64,
}

pub struct Segments {
    dir: PathBuf,
    max_bytes: u64,
    max_segment_bytes: u64,
    live: VecDeque<Segment>,
    writer: File,
    total_bytes: u64,
    read_seq: u64,
    read_offset: u64,
    /// Records to read again (their delivery failed), before anything new.
    redo: VecDeque<RecordId>,
    /// A segment was created since the directory was last synced.
    dir_dirty: bool,
    ledger_written: Ledger,
    /// The segment file being read, kept open.
    reader: Option<(u64, File)>,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

impl Segments {
    /// Opens (or creates) the buffer in `dir`; returns it and what is wrong with what was found
    /// (a message to log), if anything.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        max_segment_bytes: u64,
    ) -> io::Result<(Self, Option<String>)> {
        std::fs::create_dir_all(dir)?;
        let mut seqs: Vec<(u64, u64)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            seqs.push((seq, entry.metadata()?.len()));
        }
        seqs.sort_unstable();
        let mut problem = None;
        let ledger: Ledger = match std::fs::read(dir.join("ledger.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                problem = Some(format!(
                    "buffer ledger unreadable ({e}); replaying every segment"
                ));
                Ledger::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => return Err(e),
        };
        let mut live = VecDeque::new();
        let mut total_bytes = 0;
        for (seq, size) in seqs {
            if seq < ledger.segment {
                // Wholly acknowledged before the last stop; its deletion did not happen.
                let _ = std::fs::remove_file(segment_path(dir, seq));
                continue;
            }
            let acked_to = if seq == ledger.segment {
                ledger.offset.min(size)
            } else {
                0
            };
            live.push_back(Segment {
                seq,
                size,
                sealed: true,
                outstanding: VecDeque::new(),
                acked_to,
                read_done: false,
            });
            total_bytes += size;
        }
        let next = live.back().map_or(ledger.segment, |s| s.seq + 1);
        let (writer, active) = Segment::create(dir, next)?;
        live.push_back(active);
        let (read_seq, read_offset) = live.front().map_or((next, 0), |s| (s.seq, s.acked_to));
        let mut s = Self {
            dir: dir.to_owned(),
            max_bytes,
            max_segment_bytes,
            live,
            writer,
            total_bytes,
            read_seq,
            read_offset,
            redo: VecDeque::new(),
            dir_dirty: true,
            ledger_written: ledger,
            reader: None,
        };
        s.sync()?;
        Ok((s, problem))
    }

    /// Bytes of records not yet acknowledged (what the buffer still holds for the sink; the
    /// files may be larger until their acknowledged records are deleted with their segment).
    pub fn unacknowledged_bytes(&self) -> u64 {
        self.live
            .iter()
            .map(|s| s.size.saturating_sub(s.acked_to))
            .sum()
    }

    /// Bytes held on disk.
    #[cfg(test)]
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Every record written has been handed out and none waits to be read again.
    pub fn is_read_out(&self) -> bool {
        if !self.redo.is_empty() {
            return false;
        }
        match self.live.back() {
            None => true,
            Some(last) => {
                self.read_seq > last.seq
                    || (self.read_seq == last.seq && self.read_offset >= last.size)
            }
        }
    }

    /// The largest payload one record can carry (a record fits in one segment).
    pub fn max_payload_len(&self) -> usize {
        (self.max_segment_bytes as usize).saturating_sub(HEADER_BYTES)
    }

    fn max_record_len(&self) -> u32 {
        self.max_segment_bytes.min(u64::from(u32::MAX)) as u32
    }

    /// Appends one record.
    pub fn append(&mut self, payload: &[u8], events: u32) -> Result<io::Result<()>, AppendError> {
        let len = (HEADER_BYTES + payload.len()) as u64;
        if len > self.max_segment_bytes {
            return Err(AppendError::TooLarge);
        }
        if self.total_bytes + len > self.max_bytes {
            return Err(AppendError::Full);
        }
        Ok(self.append_unchecked(payload, events, len))
    }

    fn append_unchecked(&mut self, payload: &[u8], events: u32, len: u64) -> io::Result<()> {
        let full = self
            .live
            .back()
            .is_some_and(|s| s.size > 0 && s.size + len > self.max_segment_bytes);
        if full {
            self.roll()?;
        }
        let mut buf = Vec::with_capacity(len as usize);
        record::encode(payload, events, &mut buf);
        if let Err(e) = self.writer.write_all(&buf) {
            // A partial write would leave a bad record in the middle: start afresh after it.
            self.roll()?;
            return Err(e);
        }
        if let Some(active) = self.live.back_mut() {
            active.size += len;
        }
        self.total_bytes += len;
        Ok(())
    }

    /// Seals the active segment and starts the next.
    fn roll(&mut self) -> io::Result<()> {
        let Some(active) = self.live.back_mut() else {
            return Ok(());
        };
        let next = active.seq + 1;
        // Whatever was written is made durable before the segment is let go of.
        self.writer.sync_data()?;
        active.size = self.writer.metadata()?.len();
        active.sealed = true;
        let (writer, active) = Segment::create(&self.dir, next)?;
        self.writer = writer;
        self.live.push_back(active);
        self.dir_dirty = true;
        self.collect_garbage();
        Ok(())
    }

    /// Makes appends durable: the active segment, new directory entries, and the ledger.
    pub fn sync(&mut self) -> io::Result<()> {
        self.writer.sync_data()?;
        self.sync_metadata()
    }

    /// The directory and ledger part of [`sync`](Self::sync): persists what acknowledgements
    /// released without an fsync of the data.
    pub fn sync_metadata(&mut self) -> io::Result<()> {
        if self.dir_dirty {
            File::open(&self.dir)?.sync_all()?;
            self.dir_dirty = false;
        }
        let ledger = self.ledger();
        if ledger != self.ledger_written {
            let tmp = self.dir.join("ledger.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&ledger).map_err(io::Error::other)?)?;
            File::open(&tmp)?.sync_data()?;
            std::fs::rename(&tmp, self.dir.join("ledger.json"))?;
            self.ledger_written = ledger;
        }
        Ok(())
    }

    /// Where the oldest unacknowledged record starts (or, with nothing outstanding, where
    /// reading goes on).
    fn ledger(&self) -> Ledger {
        match self.live.front() {
            Some(s) => {
                let offset = match s.outstanding.front() {
                    Some((id, _)) => id.start,
                    None if s.seq == self.read_seq => self.read_offset,
                    None => s.acked_to,
                };
                Ledger {
                    segment: s.seq,
                    offset,
                }
            }
            None => Ledger::default(),
        }
    }

    /// Reads `buf.len()` bytes of segment `seq` at `offset`, keeping the file open between calls.
    fn read_at(&mut self, seq: u64, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
            self.reader = Some((seq, File::open(segment_path(&self.dir, seq))?));
        }
        match &self.reader {
            Some((_, f)) => f.read_exact_at(buf, offset),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn segment_mut(&mut self, seq: u64) -> Option<&mut Segment> {
        let first = self.live.front()?.seq;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.live.get_mut(i).filter(|s| s.seq == seq)
    }

    /// The next record to deliver, and any damage skipped on the way to it.
    pub fn next(&mut self, damage: &mut Damage) -> io::Result<Option<ReadRecord>> {
        while let Some(id) = self.redo.pop_front() {
            // A redone record was valid when first read; its segment may since have been
            // dropped (drop_oldest), then it is gone.
            if self.segment_mut(id.segment).is_none() {
                continue;
            }
            let mut bytes = vec![0u8; (id.end - id.start) as usize];
            self.read_at(id.segment, &mut bytes, id.start)?;
            if let Some(h) = record::header(&bytes, self.max_record_len()) {
                if let Some(payload) = bytes.get(HEADER_BYTES..) {
                    if record::verify(&h, payload) {
                        let payload = payload.to_vec();
                        return Ok(Some(ReadRecord { id, payload }));
                    }
                }
            }
            // Damaged since it was read: let it go like any damage.
            damage.corrupted_bytes += id.end - id.start;
            self.resolve(id, true);
        }
        loop {
            let max_len = self.max_record_len();
            let (seq, offset) = (self.read_seq, self.read_offset);
            let Some(seg) = self.segment_mut(seq) else {
                // The segment was dropped: go on with the oldest one left.
                match self.live.front() {
                    Some(first) if first.seq > seq => {
                        self.read_seq = first.seq;
                        self.read_offset = first.acked_to;
                        continue;
                    }
                    _ => return Ok(None),
                }
            };
            let (size, sealed) = (seg.size, seg.sealed);
            if offset + HEADER_BYTES as u64 > size {
                if !sealed {
                    return Ok(None);
                }
                if offset < size {
                    damage.torn_tail_bytes += size - offset;
                }
                seg.read_done = true;
                if seg.outstanding.is_empty() {
                    seg.acked_to = size;
                }
                self.read_seq = seq + 1;
                self.read_offset = 0;
                self.collect_garbage();
                continue;
            }
            let mut head = [0u8; HEADER_BYTES];
            self.read_at(seq, &mut head, offset)?;
            if let Some(h) = record::header(&head, max_len) {
                let end = offset + (HEADER_BYTES as u64) + u64::from(h.len);
                if end <= size {
                    let mut payload = vec![0u8; h.len as usize];
                    self.read_at(seq, &mut payload, offset + HEADER_BYTES as u64)?;
                    if record::verify(&h, &payload) {
                        let id = RecordId {
                            segment: seq,
                            start: offset,
                            end,
                        };
                        if let Some(seg) = self.segment_mut(seq) {
                            seg.outstanding.push_back((id, false));
                        }
                        self.read_offset = end;
                        return Ok(Some(ReadRecord { id, payload }));
                    }
                }
            }
            // Damage: find the next record that checks out, or the end of the segment.
            let mut rest = vec![0u8; (size - offset) as usize];
            self.read_at(seq, &mut rest, offset)?;
            match record::resync(&rest, 1, max_len) {
                Some(skip) => {
                    damage.corrupted_bytes += skip as u64;
                    self.read_offset = offset + skip as u64;
                }
                None => {
                    // Nothing valid follows: a torn tail if it could be the start of one
                    // unfinished record, else corruption.
                    if sealed && record::header(&rest, u32::MAX).is_some() {
                        damage.torn_tail_bytes += size - offset;
                    } else {
                        damage.corrupted_bytes += size - offset;
                    }
                    self.read_offset = size;
                    if !sealed {
                        // The writer only appends whole records; skip to what it writes next.
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Settles a record read earlier: delivered (or refused for good) is final; otherwise it is
    /// read again. Returns bytes freed.
    pub fn resolve(&mut self, id: RecordId, done: bool) -> u64 {
        let Some(seg) = self.segment_mut(id.segment) else {
            return 0;
        };
        if !done {
            if seg.outstanding.iter().any(|(o, _)| *o == id) {
                self.redo.push_back(id);
            }
            return 0;
        }
        if let Some(entry) = seg.outstanding.iter_mut().find(|(o, _)| *o == id) {
            entry.1 = true;
        }
        while let Some((front, true)) = seg.outstanding.front().copied() {
            seg.acked_to = seg.acked_to.max(front.end);
            seg.outstanding.pop_front();
        }
        self.collect_garbage()
    }

    /// Deletes the oldest segments that are sealed, read and wholly acknowledged.
    fn collect_garbage(&mut self) -> u64 {
        let mut freed = 0;
        while let Some(front) = self.live.front() {
            let done = front.sealed && front.read_done && front.outstanding.is_empty();
            if !done || self.live.len() == 1 {
                break;
            }
            let seq = front.seq;
            freed += front.size;
            self.total_bytes -= front.size;
            self.live.pop_front();
            if self.reader.as_ref().is_some_and(|(s, _)| *s == seq) {
                self.reader = None;
            }
            let _ = std::fs::remove_file(segment_path(&self.dir, seq));
        }
        freed
    }

    /// Deletes the oldest segment whatever it holds (`when_full: drop_oldest`); returns the
    /// events it held that were not yet acknowledged. The active segment is sealed first if it
    /// is the only one.
    pub fn drop_oldest(&mut self) -> io::Result<u64> {
        if self.live.len() == 1 {
            self.roll()?;
        }
        let Some(front) = self.live.pop_front() else {
            return Ok(0);
        };
        let path = segment_path(&self.dir, front.seq);
        let events = std::fs::read(&path)
            .map(|bytes| count_events(&bytes, front.acked_to as usize, self.max_record_len()))
            .unwrap_or(0);
        self.total_bytes -= front.size;
        if self.reader.as_ref().is_some_and(|(s, _)| *s == front.seq) {
            self.reader = None;
        }
        let _ = std::fs::remove_file(&path);
        self.redo.retain(|id| id.segment != front.seq);
        Ok(events)
    }
}

/// Events in the valid records of `bytes` from `from`.
fn count_events(bytes: &[u8], mut from: usize, max_len: u32) -> u64 {
    let mut events = 0;
    while let Some(start) = record::resync(bytes, from, max_len) {
        if let Some(h) = bytes.get(start..).and_then(|b| record::header(b, max_len)) {
            events += u64::from(h.events);
            from = start + HEADER_BYTES + h.len as usize;
        } else {
            break;
        }
    }
    events
}
