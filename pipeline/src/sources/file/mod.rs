//! Source `file`: tails files matched by globs, one event per line, and advances each file's
//! checkpoint only when the batches holding its lines are acknowledged downstream.
//!
//! One dedicated thread per source does discovery, reading and checkpointing (file reads never run
//! on the async runtime). Each turn it reads up to `max_read_bytes` from each open file in round
//! robin, emits one batch per file with an acknowledgement tagged (file, epoch, seq), and applies
//! the acknowledgements that came back ([`progress`]). Back-pressure: when a sink's queue is full
//! the thread waits in the send, so reading pauses and lines wait on disk.
//!
//! Rotation: a file is followed by its open descriptor, so a renamed file is read to its end, for
//! `rotate_wait` after it was found gone, before it is let go; a new file at the old path is a new
//! identity, read from 0. Checkpoints are keyed by identity ([`identity`]), so files rotated
//! while Sextant was down are found again, not re-read.
//!
//! Truncation (copytruncate) is told by content, not only by size: a file is truncated when it
//! is shorter than what was read from it, or no longer starts with the bytes it was
//! fingerprinted by (checked whenever it has new bytes to read, and at every scan), so a file
//! truncated while reading was paused and rewritten past the old offset is still seen. A copy
//! beside a file (same directory) whose first bytes are that file's fingerprint is its past: while the original is intact
//! the copy is not read (its lines come from the original); once the original is truncated,
//! reading continues in the copy from the offset already reached (what was in flight stays in
//! flight), and the truncated original is read from its start. Without a copy among the
//! matching paths, the original's bytes not yet read are lost to the truncation and counted
//! (`sextant_source_skipped_bytes_total{reason="truncated"}`). A copy found after a restart
//! continues from the checkpoint its content had (a *past* in [`checkpoint`]). An empty file is
//! followed only once it has bytes: until then nothing tells a copy being made from a new file.
//!
//! Each file's events share one `Origin` whose resource carries `host.name`, `log.file.path` and
//! `log.file.name`, so per-line events carry no per-line copies of them.

pub(crate) mod checkpoint;
pub mod config;
pub mod format;
pub(crate) mod identity;
pub mod lines;
pub(crate) mod progress;
#[cfg(test)]
mod tests;
pub(crate) mod watch;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::SegQueue;

use crate::component::{BuildError, SourceContext, Task};
use crate::flow::ack::{Ack, AckStatus, Acks};
use crate::flow::batch::Batch;
use crate::flow::event::{ByteSize, Events, Origin, Scope};
use crate::flow::fanout::Fanout;
use crate::shutdown::Shutdown;
use crate::telemetry::{ComponentMetrics, LogLimiter};

use checkpoint::Checkpoints;
use config::ReadFrom;
pub use config::{FileSourceConfig, TailSettings};
use format::{
    file_resource, DecodeContext, Disposition, FileFormat, GenericFormat, Held, JsonMessages,
    LineDecoder,
};
use identity::{read_prefix, same_bytes_before, FileKey, Fingerprint};
use lines::LineSplitter;
use progress::{Progress, Resolution};

/// Checkpoints of files not seen for this long are forgotten.
const CHECKPOINT_MAX_AGE_SECS: u64 = 7 * 24 * 3600;
/// How long to sleep when no file had anything new.
const IDLE_SLEEP: Duration = Duration::from_millis(50);
/// How long shutdown waits for in-flight batches to resolve before writing checkpoints anyway.
const SHUTDOWN_ACK_WAIT: Duration = Duration::from_secs(600);

/// An acknowledgement coming back to the reader thread.
struct AckMsg {
    uid: u64,
    epoch: u32,
    seq: u64,
    status: AckStatus,
}

/// One file being tailed.
struct Tailed {
    uid: u64,
    path: PathBuf,
    key: FileKey,
    fingerprint: Fingerprint,
    file: File,
    /// Bytes read from the file (including a pending partial line).
    read_offset: u64,
    splitter: LineSplitter,
    decoder: Box<dyn LineDecoder>,
    /// Offset just after the last line handed to the decoder.
    consumed: u64,
    /// Where the record the decoder holds began (checkpoints stop there).
    held_from: Option<u64>,
    progress: Progress,
    origin: Arc<Origin>,
    /// The format's generation `origin` and `disposition` were made at.
    generation: u64,
    disposition: Disposition,
    /// When the file was opened (what `Disposition::Wait` is measured from).
    opened_at: Instant,
    /// When the file was found renamed away or deleted.
    gone_since: Option<Instant>,
    /// Its size when last looked at (what a truncation may have cut off unread).
    size_seen: u64,
    /// Events its last read made: the room the next read's batch starts with.
    events_last_read: usize,
}

/// What a new file is to the files already known, by its content.
enum PastOf {
    /// Nothing known: a file of its own.
    Nothing,
    /// A copy of a file being read, which is intact: its lines come from there.
    LiveCopy,
    /// A copy of the file at this index, which has been truncated: it takes over.
    TruncatedOriginal(usize),
    /// The content of a file since truncated: continue from this offset.
    Continues(u64),
}

/// How many trailing bytes of a copy are compared with its original.
const COPY_CHECK_BYTES: u64 = 256;

/// Whether the file still holds what was read from it: no shorter than the read offset, and
/// starting with the bytes it was fingerprinted by.
fn intact(f: &Tailed, size: u64) -> io::Result<bool> {
    Ok(size >= f.read_offset && (f.fingerprint.len == 0 || f.fingerprint.matches(&f.file)?))
}

pub fn build(config: &FileSourceConfig, cx: SourceContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let multiline = match &config.multiline {
        Some(m) => Some(Arc::new(m.compile().map_err(|e| {
            BuildError::invalid(&cx.name, format!("multiline: {e}"))
        })?)),
        None => None,
    };
    let format = GenericFormat {
        line: config.format,
        json: JsonMessages {
            parse: config.parse_json,
            keep_original: config.keep_original,
        },
        multiline,
    };
    spawn_tailer(
        config.include.clone(),
        config.exclude.clone(),
        config.tail.clone(),
        Arc::new(format),
        cx,
    )
}

/// Runs a tailer thread over `include` (minus `exclude`) with `format`; shared by every source
/// that reads files (`file`, `kubernetes_logs`).
pub fn spawn_tailer(
    include: Vec<String>,
    exclude: Vec<String>,
    tail: TailSettings,
    format: Arc<dyn FileFormat>,
    cx: SourceContext,
) -> Result<Task, BuildError> {
    config::validate_globs(&cx.name, include.iter().chain(&exclude))?;
    tail.validate(&cx.name)?;
    let handle = tokio::runtime::Handle::current();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let mut tailer = Tailer::new(include, exclude, tail, format, cx, handle);
    let name = tailer.metrics.name.clone();
    let thread_name = format!("file-{name}");
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            tailer.run();
            let _ = done_tx.send(());
        })
        .map_err(|e| BuildError::io(&name, e))?;
    Ok(Box::pin(async move {
        // The thread ending without a word panicked (its message is on stderr already): the
        // task fails the same way, so its supervisor sees it and starts the source again.
        if done_rx.await.is_err() {
            std::panic::resume_unwind(Box::new(format!("the tailer thread of {name} panicked")));
        }
    }))
}

struct Tailer {
    config: TailSettings,
    format: Arc<dyn FileFormat>,
    out: Fanout,
    shutdown: Shutdown,
    metrics: ComponentMetrics,
    handle: tokio::runtime::Handle,
    checkpoints: Checkpoints,
    files: Vec<Tailed>,
    by_key: HashMap<FileKey, u64>,
    acks: Arc<SegQueue<AckMsg>>,
    next_uid: u64,
    first_scan: bool,
    host_name: String,
    buf: Vec<u8>,
    io_errors: LogLimiter,
    malformed: LogLimiter,
    /// Files found but not opened for lack of a descriptor slot at the last scan.
    waiting: usize,
    /// When each file was last let go to make room, so the longest-waiting go first.
    released: HashMap<FileKey, Instant>,
    include: Vec<String>,
    wakeup: watch::Wakeup,
    /// Matching paths found untailable (not a file, dangling link, cannot be opened), reported
    /// once each until they go away.
    reported: std::collections::HashSet<PathBuf>,
    exclude: Vec<glob::Pattern>,
}

impl Tailed {
    /// Reads again from `offset`, forgetting partial lines and held records.
    fn rewind(&mut self, offset: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.read_offset = offset;
        self.consumed = offset;
        self.held_from = None;
        self.splitter.clear();
        self.decoder.reset();
        Ok(())
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// This host's name, for the `host.name` resource attribute.
pub fn host_name() -> String {
    std::env::var("NODE_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Tailer {
    fn new(
        include: Vec<String>,
        exclude: Vec<String>,
        config: TailSettings,
        format: Arc<dyn FileFormat>,
        cx: SourceContext,
        handle: tokio::runtime::Handle,
    ) -> Self {
        let (checkpoints, problem) = Checkpoints::load(&cx.data_dir);
        if let Some(problem) = problem {
            cx.metrics.error("checkpoint_unreadable");
            tracing::warn!(component = %cx.name, "{problem}");
        }
        let exclude = exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let (wakeup, problem) = watch::Wakeup::new(&include, config.inotify);
        if let Some(problem) = problem {
            tracing::info!(component = %cx.name, "no inotify ({problem}); polling every {}", config.glob_interval);
        }
        Self {
            wakeup,
            reported: Default::default(),
            include,
            exclude,
            buf: vec![0u8; config.max_read_bytes.as_usize().min(1 << 20)],
            config,
            format,
            out: cx.out,
            shutdown: cx.shutdown,
            metrics: cx.metrics,
            handle,
            checkpoints,
            files: Vec::new(),
            by_key: HashMap::new(),
            acks: Arc::new(SegQueue::new()),
            next_uid: 0,
            first_scan: true,
            host_name: host_name(),
            io_errors: LogLimiter::default(),
            malformed: LogLimiter::default(),
            waiting: 0,
            released: HashMap::new(),
        }
    }

    fn run(&mut self) {
        self.metrics.set_up(true);
        let mut last_scan: Option<Instant> = None;
        let mut last_checkpoint = Instant::now();
        while !self.shutdown.is_stopping() {
            self.apply_acks();
            let rescan = self.wakeup.take_rescan();
            if rescan || last_scan.is_none_or(|t| t.elapsed() >= self.config.glob_interval.0) {
                self.discover();
                last_scan = Some(Instant::now());
            }
            let read_any = self.read_round();
            self.retire_finished();
            if last_checkpoint.elapsed() >= self.config.checkpoint_interval.0 {
                self.persist();
                last_checkpoint = Instant::now();
            }
            if !read_any {
                self.wakeup.wait(IDLE_SLEEP);
            }
        }
        // Stop: read nothing more, wait for what is in flight, checkpoint last.
        let waited = Instant::now();
        while self.files.iter().any(|f| f.progress.in_flight() > 0)
            && waited.elapsed() < SHUTDOWN_ACK_WAIT
        {
            self.apply_acks();
            std::thread::sleep(Duration::from_millis(10));
        }
        self.apply_acks();
        self.persist();
        self.metrics.open_files.set(0);
        self.metrics.set_up(false);
    }

    /// Hands `batch` to the sinks. While their queues keep it waiting (a full disk buffer
    /// behind a long outage), acknowledgements that arrive meanwhile still advance and persist
    /// the checkpoints every `checkpoint_interval`: a crash then re-reads only what is not safe.
    fn send(&mut self, batch: Batch) {
        let (out, handle) = (self.out.clone(), self.handle.clone());
        let every = self.config.checkpoint_interval.0;
        let mut sending = std::pin::pin!(out.send(batch));
        loop {
            let sent = handle.block_on(async {
                tokio::select! {
                    () = &mut sending => true,
                    () = tokio::time::sleep(every) => false,
                }
            });
            if sent {
                return;
            }
            self.apply_acks();
            self.persist();
            self.publish_unread_bytes();
        }
    }

    fn persist(&mut self) {
        if let Err(e) = self.checkpoints.persist() {
            self.metrics.error("checkpoint_write");
            if let Some(suppressed) = self.io_errors.allow() {
                tracing::error!(component = %self.metrics.name, error = %e, suppressed, "cannot write checkpoints");
            }
        }
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|p| p.matches_path(path))
    }

    /// Finds new files and notices rotated, deleted and truncated ones.
    fn discover(&mut self) {
        let mut present: HashMap<FileKey, PathBuf> = HashMap::new();
        let mut untailable: Vec<(PathBuf, &'static str, String)> = Vec::new();
        for pattern in &self.include {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for path in paths.flatten() {
                if self.excluded(&path) {
                    continue;
                }
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        present.entry(FileKey::of(&meta)).or_insert(path);
                    }
                    // A directory, FIFO or socket at a matching path is never opened (a FIFO
                    // would block the reader); a dangling link cannot be. Counted once per path.
                    Ok(_) => untailable.push((path, "not_a_file", "not a regular file".into())),
                    Err(e) => untailable.push((path, "stat", e.to_string())),
                }
            }
        }
        for (path, error_type, why) in untailable {
            self.not_readable(&path, error_type, &why);
        }
        self.released.retain(|k, _| present.contains_key(k));
        self.reported.retain(|p| p.exists() || p.is_symlink());
        // Files we hold that no longer appear at any matching path were rotated away or deleted.
        for f in &mut self.files {
            if present.contains_key(&f.key) {
                f.gone_since = None;
                if let Some(p) = present.get(&f.key) {
                    if *p != f.path {
                        f.path = p.clone();
                    }
                }
            } else if f.gone_since.is_none() {
                f.gone_since = Some(Instant::now());
            }
        }
        // Truncated since the last look, even if as long as before (by content).
        for i in 0..self.files.len() {
            let f = &self.files[i];
            let Ok(meta) = f.file.metadata() else {
                continue;
            };
            if !intact(f, meta.len()).unwrap_or(true) {
                if let Err(e) = self.on_truncated(i) {
                    self.read_failed(i, &e);
                }
            }
        }
        let mut new: Vec<(FileKey, PathBuf)> = present
            .into_iter()
            .filter(|(k, _)| !self.by_key.contains_key(k))
            .collect();
        // Never-opened files first (in path order), then those let go longest ago: every file
        // gets its turn when there are more files than descriptors.
        new.sort_by(|a, b| {
            let ra = self.released.get(&a.0);
            let rb = self.released.get(&b.0);
            ra.cmp(&rb).then_with(|| a.1.cmp(&b.1))
        });
        self.waiting = new
            .len()
            .saturating_sub(self.config.max_open_files.saturating_sub(self.files.len()));
        if self.waiting > 0 {
            self.metrics.error("max_open_files");
        }
        for (key, path) in new {
            if self.files.len() >= self.config.max_open_files {
                break;
            }
            self.released.remove(&key);
            // Retried at every scan (it may be a permission fixed later), reported once.
            if self.by_key.contains_key(&key) {
                continue; // taken over as a truncated file's copy just now
            }
            if let Err(e) = self.open(key, &path, None) {
                self.not_readable(&path, "open", &format!("cannot open: {e}"));
            }
        }
        self.first_scan = false;
        self.metrics.open_files.set(self.files.len() as i64);
        self.publish_unread_bytes();
    }

    /// `sextant_source_unread_bytes`: what the followed files hold beyond what was read, by
    /// their size now (one `fstat` each, at every scan and every `checkpoint_interval` while a
    /// full queue holds a batch back), so the gauge grows while reading waits.
    fn publish_unread_bytes(&self) {
        let unread: u64 = self
            .files
            .iter()
            .filter_map(|f| Some(f.file.metadata().ok()?.len().saturating_sub(f.read_offset)))
            .sum();
        self.metrics
            .unread_bytes
            .set(i64::try_from(unread).unwrap_or(i64::MAX));
    }

    /// Counts and logs (at a rate limit) a matching path that cannot be tailed, once per path
    /// until it goes away.
    fn not_readable(&mut self, path: &Path, error_type: &str, why: &str) {
        if self.reported.insert(path.to_owned()) {
            self.metrics.error(error_type);
            if let Some(suppressed) = self.io_errors.allow() {
                tracing::warn!(component = %self.metrics.name, path = %path.display(), suppressed, "cannot tail: {why}");
            }
        }
    }

    /// Starts following the file at `path`: from its checkpoint, from `start` when given, or
    /// per what its content is to the files known ([`PastOf`]).
    fn open(&mut self, key: FileKey, path: &Path, start: Option<u64>) -> io::Result<()> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        // The path may have been replaced between stat and open: trust the descriptor.
        let key = if FileKey::of(&meta) == key {
            key
        } else {
            FileKey::of(&meta)
        };
        if self.by_key.contains_key(&key) {
            return Ok(());
        }
        let size = meta.len();
        if size == 0 && start.is_none() {
            // Nothing to read, and nothing to tell it by: it may be a copy being made
            // (copytruncate creates it, then writes). Looked at again at the next scan.
            return Ok(());
        }
        // The checkpoint of this inode, if its fingerprint says it is still the same file
        // (checked once: it reads the file's first bytes).
        let entry = self.checkpoints.get(&key);
        let known_before = entry.is_some();
        let known = match entry {
            Some(e) if start.is_none() && e.fingerprint().matches(&file)? => {
                Some((e.fingerprint(), e.offset))
            }
            _ => None,
        };
        let (fingerprint, offset) = match known {
            Some((fp, offset)) if offset <= size => (fp, offset),
            // Truncated while we were away.
            Some((fp, _)) => (fp, 0),
            // New, or a reused inode (a different file): fingerprint it now.
            None => {
                let prefix = read_prefix(&file, self.config.fingerprint_bytes)?;
                let fp = Fingerprint {
                    len: prefix.len() as u32,
                    crc: crc32fast::hash(&prefix),
                };
                let past = match start {
                    Some(_) => PastOf::Nothing,
                    None => self.past_of(key, path, &file, &prefix, size)?,
                };
                match past {
                    PastOf::LiveCopy => return Ok(()),
                    PastOf::TruncatedOriginal(i) => {
                        return self.hand_over(i, key, path.to_owned(), file, size)
                    }
                    PastOf::Continues(offset) => (fp, offset.min(size)),
                    PastOf::Nothing => {
                        let from_end = !known_before
                            && self.first_scan
                            && self.config.read_from == ReadFrom::End;
                        (fp, start.unwrap_or(if from_end { size } else { 0 }))
                    }
                }
            }
        };
        file.seek(SeekFrom::Start(offset))?;
        self.checkpoints.set(key, fingerprint, offset, path, true);
        let uid = self.next_uid;
        self.next_uid += 1;
        let generation = self.format.generation();
        let origin = self.origin_of(path);
        let disposition = self.format.disposition(path, Duration::ZERO);
        tracing::debug!(component = %self.metrics.name, path = %path.display(), offset, "following file");
        self.by_key.insert(key, uid);
        self.files.push(Tailed {
            uid,
            path: path.to_owned(),
            key,
            fingerprint,
            file,
            read_offset: offset,
            splitter: LineSplitter::new(self.config.max_line_bytes.as_usize()),
            decoder: self.format.decoder(path),
            consumed: offset,
            held_from: None,
            progress: Progress::new(offset),
            origin,
            generation,
            disposition,
            opened_at: Instant::now(),
            gone_since: None,
            size_seen: size,
            events_last_read: 0,
        });
        Ok(())
    }

    /// What a file without a checkpoint of its own (starting with `prefix`, `size` bytes long)
    /// is to the files known: see [`PastOf`]. A fingerprint identifies a copy only when it
    /// covers `fingerprint_bytes`, or the whole copy, and only of a file in the same directory
    /// (copytruncate copies beside the original; files of other containers or apps that begin,
    /// or are, the same are files of their own).
    fn past_of(
        &mut self,
        key: FileKey,
        path: &Path,
        file: &File,
        prefix: &[u8],
        size: u64,
    ) -> io::Result<PastOf> {
        let full = self.config.fingerprint_bytes;
        let covers = |fp: &Fingerprint| fp.len as usize == full || u64::from(fp.len) == size;
        // The prefix's CRC per fingerprint length, computed once (many files share a length).
        let mut crcs: HashMap<u32, u32> = HashMap::new();
        for (i, f) in self.files.iter().enumerate() {
            let fp = f.fingerprint;
            if f.key == key
                || !covers(&fp)
                || fp.len == 0
                || prefix.len() < fp.len as usize
                || f.path.parent() != path.parent()
            {
                continue;
            }
            let crc = *crcs
                .entry(fp.len)
                .or_insert_with(|| crc32fast::hash(&prefix[..fp.len as usize]));
            if crc != fp.crc {
                continue;
            }
            let original_size = f.file.metadata()?.len();
            if !intact(f, original_size)? {
                return Ok(PastOf::TruncatedOriginal(i));
            }
            // Same start: a copy only if it also ends as the original does at that length (a
            // new file that merely begins with the same banner is not).
            if size <= original_size && same_bytes_before(&f.file, file, size, COPY_CHECK_BYTES)? {
                return Ok(PastOf::LiveCopy);
            }
        }
        if let Some(past) = self
            .checkpoints
            .take_past(prefix, size, full, path.parent())
        {
            return Ok(PastOf::Continues(past.offset));
        }
        // After a restart: the copy's original may not be open yet.
        for e in self.checkpoints.matching(prefix, &key) {
            if !covers(&e.fingerprint()) || Path::new(&e.path).parent() != path.parent() {
                continue;
            }
            let original = File::open(&e.path).ok().filter(|o| {
                o.metadata().is_ok_and(|m| {
                    FileKey::of(&m)
                        == FileKey {
                            dev: e.dev,
                            ino: e.ino,
                        }
                })
            });
            let original_intact = match &original {
                Some(o) => e.fingerprint().matches(o)? && o.metadata()?.len() >= e.offset,
                None => false,
            };
            return Ok(if original_intact {
                PastOf::LiveCopy
            } else {
                PastOf::Continues(e.offset)
            });
        }
        Ok(PastOf::Nothing)
    }

    /// File `i` no longer holds what was read from it (copytruncate): reading continues in its
    /// copy if one is among the matching paths, and the truncated file is read from its start.
    fn on_truncated(&mut self, i: usize) -> io::Result<()> {
        let copy = self.find_copy(i)?;
        match copy {
            Some((key, path, file, size)) => self.hand_over(i, key, path, file, size),
            None => self.restart_at_zero(i),
        }
    }

    /// A file at a matching path, not followed yet, that starts with file `i`'s fingerprint.
    fn find_copy(&self, i: usize) -> io::Result<Option<(FileKey, PathBuf, File, u64)>> {
        let f = &self.files[i];
        let full = self.config.fingerprint_bytes;
        if f.fingerprint.len == 0 {
            return Ok(None);
        }
        for pattern in &self.include {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for path in paths.flatten() {
                if self.excluded(&path) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let key = FileKey::of(&meta);
                if !meta.is_file()
                    || key == f.key
                    || self.by_key.contains_key(&key)
                    || path.parent() != f.path.parent()
                {
                    continue;
                }
                let Ok(file) = File::open(&path) else {
                    continue;
                };
                let size = meta.len();
                let covers =
                    f.fingerprint.len as usize == full || u64::from(f.fingerprint.len) == size;
                if covers && f.fingerprint.matches_prefix(&read_prefix(&file, full)?) {
                    return Ok(Some((key, path, file, size)));
                }
            }
        }
        Ok(None)
    }

    /// File `i` was truncated and `copy` holds its content: the copy takes over where reading
    /// was (checkpoint, batches in flight, partial lines and all), and the truncated file is
    /// followed anew from its start.
    fn hand_over(
        &mut self,
        i: usize,
        key: FileKey,
        path: PathBuf,
        copy: File,
        size: u64,
    ) -> io::Result<()> {
        let f = &mut self.files[i];
        tracing::info!(component = %self.metrics.name, path = %f.path.display(), copy = %path.display(), offset = f.read_offset, "file truncated (copytruncate); its unread lines are read from the copy, then the file from its start");
        self.metrics.error("truncated");
        // Bytes the original had (when last looked at) beyond both the copy and what was read:
        // written between the copy and the truncation, they are in neither.
        let lost = f.size_seen.saturating_sub(f.read_offset.max(size));
        if lost > 0 {
            self.metrics.skipped_bytes("truncated", lost);
        }
        let (truncated_key, truncated_path) = (f.key, f.path.clone());
        f.file = copy;
        f.file.seek(SeekFrom::Start(f.read_offset))?;
        f.key = key;
        f.path = path;
        f.gone_since = None;
        f.size_seen = size;
        self.by_key.remove(&truncated_key);
        self.by_key.insert(key, f.uid);
        // The content, and so its checkpoint, is the copy's now.
        self.checkpoints.remove(&truncated_key);
        self.checkpoints
            .set(key, f.fingerprint, f.progress.committed(), &f.path, true);
        self.open(truncated_key, &truncated_path, Some(0))
    }

    /// File `i` was truncated and no copy of it was found: read it again from its start; what
    /// it held that was not read yet is lost, and counted.
    fn restart_at_zero(&mut self, i: usize) -> io::Result<()> {
        let f = &mut self.files[i];
        let unread = f
            .size_seen
            .saturating_sub(f.held_from.unwrap_or(f.consumed));
        tracing::info!(component = %self.metrics.name, path = %f.path.display(), offset = f.read_offset, unread, "file truncated; reading from its start");
        self.metrics.error("truncated");
        if unread > 0 {
            self.metrics.skipped_bytes("truncated", unread);
        }
        f.rewind(0)?;
        f.progress.reset(0);
        f.size_seen = 0;
        // Its first bytes are new: fingerprint them, so a restart knows the file again.
        f.fingerprint = Fingerprint::of(&f.file, self.config.fingerprint_bytes)?;
        self.checkpoints.set(f.key, f.fingerprint, 0, &f.path, true);
        Ok(())
    }

    fn read_failed(&mut self, i: usize, e: &io::Error) {
        self.metrics.error("read");
        if let Some(suppressed) = self.io_errors.allow() {
            tracing::warn!(component = %self.metrics.name, path = %self.files[i].path.display(), error = %e, suppressed, "read failed");
        }
    }

    fn origin_of(&self, path: &Path) -> Arc<Origin> {
        Arc::new(Origin {
            resource: file_resource(&self.host_name, path, self.format.resource(path)),
            scope: Scope {
                name: "sextant.file".into(),
                ..Default::default()
            },
        })
    }

    /// Brings a file's origin and disposition up to date with the format's metadata; false if
    /// the file is not to be read now.
    fn refresh_disposition(&mut self, i: usize) -> io::Result<bool> {
        let generation = self.format.generation();
        let f = &self.files[i];
        if generation != f.generation {
            let origin = self.origin_of(&f.path);
            let f = &mut self.files[i];
            f.origin = origin;
            f.generation = generation;
            f.disposition = self.format.disposition(&f.path, f.opened_at.elapsed());
        } else if f.disposition == Disposition::Wait {
            let d = self.format.disposition(&f.path, f.opened_at.elapsed());
            self.files[i].disposition = d;
        }
        let f = &mut self.files[i];
        match f.disposition {
            Disposition::Read | Disposition::ReadIncomplete => Ok(true),
            Disposition::Wait => Ok(false),
            Disposition::Skip => {
                // Skipped without reading, once what was sent before is settled.
                let size = f.file.metadata()?.len();
                if f.progress.in_flight() == 0 && f.held_from.is_none() && size > f.read_offset {
                    self.metrics
                        .skipped_bytes("excluded", size.saturating_sub(f.consumed));
                    self.metrics
                        .checkpointed_bytes
                        .inc_by(size.saturating_sub(f.progress.committed()));
                    f.rewind(size)?;
                    f.progress = Progress::new(size);
                    self.checkpoints
                        .set(f.key, f.fingerprint, size, &f.path, false);
                }
                Ok(false)
            }
        }
    }

    /// One turn over every open file; true if anything was read. Nothing is read while memory
    /// is above its soft limit: lines wait on disk.
    fn read_round(&mut self) -> bool {
        // Events are allocated on this thread: under pressure, what the sinks freed of them
        // goes back to the OS from here (it would stay with this thread's heap otherwise).
        crate::memory::give_back_while_pressed();
        if crate::memory::over_soft_limit() {
            return false;
        }
        let mut any = false;
        for i in 0..self.files.len() {
            match self.read_file(i) {
                Ok(Some(batch)) => {
                    any = true;
                    self.send(batch);
                }
                Ok(None) => {}
                Err(e) => self.read_failed(i, &e),
            }
        }
        any
    }

    /// Reads up to `max_read_bytes` of one file and makes a batch of its complete records.
    fn read_file(&mut self, i: usize) -> io::Result<Option<Batch>> {
        if !self.refresh_disposition(i)? {
            return Ok(None);
        }
        let max = self.config.max_read_bytes.as_usize();
        // copytruncate: shorter than what was read, or new bytes at the start (checked
        // whenever there is something to read, so a pause in reading hides nothing).
        let mut size = self.files[i].file.metadata()?.len();
        if size != self.files[i].read_offset && !intact(&self.files[i], size)? {
            self.on_truncated(i)?;
            size = self.files[i].file.metadata()?.len();
        }
        let f = &mut self.files[i];
        f.size_seen = size;
        // A file first seen shorter than `fingerprint_bytes` gets its full fingerprint once it
        // has grown, so a later reuse of its inode is still told apart.
        let want = self.config.fingerprint_bytes;
        if (f.fingerprint.len as usize) < want
            && size > u64::from(f.fingerprint.len)
            && f.fingerprint.matches(&f.file)?
        {
            f.fingerprint = Fingerprint::of(&f.file, want)?;
            self.checkpoints.extend_fingerprint(&f.key, f.fingerprint);
        }
        let mut events = Vec::with_capacity(f.events_last_read);
        // The batch's size, added up line by line while each line's events are in cache.
        let (mut sized, mut byte_size) = (0usize, 0usize);
        let mut total = 0usize;
        let cx = DecodeContext {
            origin: &f.origin,
            now: now_nanos(),
            metrics: &self.metrics,
            invalid_utf8: self.config.invalid_utf8,
            max_record_bytes: self.config.max_line_bytes.as_usize(),
            limiter: &self.malformed,
        };
        while total < max {
            let want = (max - total).min(self.buf.len());
            let n = f.file.read(&mut self.buf[..want])?;
            if n == 0 {
                break;
            }
            total += n;
            f.read_offset += n as u64;
            let (decoder, consumed, held_from) =
                (&mut f.decoder, &mut f.consumed, &mut f.held_from);
            f.splitter.push(&self.buf[..n], |mut line| {
                let start = *consumed;
                *consumed += line.consumed as u64;
                if line.bytes.first() == Some(&0) {
                    // A run of NULs: the gap a writer without O_APPEND leaves after copytruncate.
                    let nuls = line.bytes.iter().take_while(|b| **b == 0).count();
                    cx.metrics.discarded("nul_bytes", 1);
                    line.bytes = &line.bytes[nuls..];
                    if line.bytes.is_empty() {
                        return;
                    }
                }
                match decoder.decode(line, &cx, &mut events) {
                    Held::No => *held_from = None,
                    Held::Continues => {
                        held_from.get_or_insert(start);
                    }
                    Held::FromThisLine => *held_from = Some(start),
                }
                byte_size += events[sized..]
                    .iter()
                    .map(ByteSize::byte_size)
                    .sum::<usize>();
                sized = events.len();
            });
        }
        if f.held_from.is_some() && !f.decoder.flush_expired(&cx, &mut events) {
            f.held_from = None;
        }
        byte_size += events[sized..]
            .iter()
            .map(ByteSize::byte_size)
            .sum::<usize>();
        f.events_last_read = events.len();
        if total > 0 {
            self.metrics.received_bytes.inc_by(total as u64);
        }
        if events.is_empty() {
            return Ok(None);
        }
        self.metrics.received_events.inc_by(events.len() as u64);
        if f.disposition == Disposition::ReadIncomplete {
            self.metrics
                .metadata_missing_events
                .inc_by(events.len() as u64);
        }
        let end = f.held_from.unwrap_or(f.consumed);
        let (epoch, seq) = f.progress.emit(end);
        let uid = f.uid;
        let acks = self.acks.clone();
        let share = Ack::new(move |status| {
            acks.push(AckMsg {
                uid,
                epoch,
                seq,
                status,
            })
        });
        Ok(Some(Batch::with_size(
            Events::Logs(events),
            Acks::one(share),
            byte_size,
        )))
    }

    fn apply_acks(&mut self) {
        while let Some(msg) = self.acks.pop() {
            let Some(f) = self.files.iter_mut().find(|f| f.uid == msg.uid) else {
                continue;
            };
            let before = f.progress.committed();
            match f.progress.resolve(msg.epoch, msg.seq, msg.status) {
                Resolution::Pending => {}
                Resolution::Committed(offset) => {
                    self.metrics
                        .checkpointed_bytes
                        .inc_by(offset.saturating_sub(before));
                    self.checkpoints
                        .set(f.key, f.fingerprint, offset, &f.path, false);
                }
                Resolution::Rewind(offset) => {
                    self.metrics.error("redelivery");
                    tracing::debug!(component = %self.metrics.name, path = %f.path.display(), offset, "delivery failed; reading again");
                    if let Err(e) = f.rewind(offset) {
                        tracing::warn!(component = %self.metrics.name, path = %f.path.display(), error = %e, "cannot seek back");
                    }
                }
            }
        }
    }

    /// Lets go of files that are gone, read to their end, and fully acknowledged.
    fn retire_finished(&mut self) {
        let rotate_wait = self.config.rotate_wait.0;
        let mut retired = Vec::new();
        self.files.retain(|f| {
            let done = f.gone_since.is_some_and(|t| t.elapsed() >= rotate_wait)
                && f.file
                    .metadata()
                    .map(|m| m.len() <= f.read_offset)
                    .unwrap_or(true)
                && f.progress.in_flight() == 0;
            if done {
                retired.push((f.key, f.path.clone()));
            }
            !done
        });
        for (key, path) in retired {
            tracing::debug!(component = %self.metrics.name, path = %path.display(), "file gone and fully delivered; closing");
            self.by_key.remove(&key);
        }
        self.release_idle();
        self.checkpoints.prune(CHECKPOINT_MAX_AGE_SECS);
    }

    /// With files waiting for a descriptor, closes files that are read to their end and fully
    /// acknowledged; they are found again at the next scan and resume at their checkpoint.
    fn release_idle(&mut self) {
        if self.waiting == 0 {
            return;
        }
        let mut budget = self.waiting;
        let mut released = Vec::new();
        self.files.retain(|f| {
            let idle = budget > 0
                && f.progress.in_flight() == 0
                && f.held_from.is_none()
                && f.file
                    .metadata()
                    .map(|m| m.len() <= f.read_offset)
                    .unwrap_or(false);
            if idle {
                budget -= 1;
                released.push(f.key);
            }
            !idle
        });
        let now = Instant::now();
        for key in released {
            self.by_key.remove(&key);
            self.released.insert(key, now);
        }
        self.waiting = budget;
        self.metrics.open_files.set(self.files.len() as i64);
    }
}
