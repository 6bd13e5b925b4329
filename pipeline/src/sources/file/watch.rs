//! Wake-ups for the tailer thread: inotify (through `notify`) on the directories its globs
//! start from, with polling as the fallback.
//!
//! Contract: [`Wakeup::wait`] returns as soon as a watched directory tree changes (a file was
//! written, created, renamed or removed), or after the poll interval whatever happens, so a lost
//! or unsupported notification (inotify's watch limit reached, a network file system) only costs
//! latency, never lines. [`Wakeup::take_rescan`] says whether files were created, renamed or
//! removed since it was last asked, so discovery runs at once rather than at the next
//! `glob_interval`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

#[derive(Default)]
struct Flags {
    changed: bool,
    rescan: bool,
}

#[derive(Default)]
struct Shared {
    flags: Mutex<Flags>,
    cv: Condvar,
}

/// How the tailer learns there is something to do.
pub struct Wakeup {
    shared: Arc<Shared>,
    /// Holds the inotify watches; `None` when polling.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Wakeup {
    /// Watches the fixed directory each pattern starts from (`/var/log/pods` for
    /// `/var/log/pods/*/*/*.log`), recursively when the pattern goes deeper. Falls back to
    /// polling alone, with the reason, when inotify cannot be set up.
    pub fn new(patterns: &[String], enabled: bool) -> (Self, Option<String>) {
        let shared = Arc::new(Shared::default());
        if !enabled {
            return (
                Self {
                    shared,
                    _watcher: None,
                },
                None,
            );
        }
        match watch(patterns, &shared) {
            Ok(w) => (
                Self {
                    shared,
                    _watcher: Some(w),
                },
                None,
            ),
            Err(reason) => (
                Self {
                    shared,
                    _watcher: None,
                },
                Some(reason),
            ),
        }
    }

    #[cfg(test)]
    pub fn is_watching(&self) -> bool {
        self._watcher.is_some()
    }

    /// Waits until something changed or `timeout` passed.
    pub fn wait(&self, timeout: Duration) {
        let flags = self.shared.flags.lock().unwrap_or_else(|e| e.into_inner());
        if flags.changed {
            drop(flags);
        } else {
            let _ = self
                .shared
                .cv
                .wait_timeout_while(flags, timeout, |f| !f.changed);
        }
        let mut flags = self.shared.flags.lock().unwrap_or_else(|e| e.into_inner());
        flags.changed = false;
    }

    /// Whether files appeared, moved or went away since the last call.
    pub fn take_rescan(&self) -> bool {
        let mut flags = self.shared.flags.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut flags.rescan)
    }
}

fn notify_change(shared: &Shared, rescan: bool) {
    let mut flags = shared.flags.lock().unwrap_or_else(|e| e.into_inner());
    flags.changed = true;
    flags.rescan |= rescan;
    drop(flags);
    shared.cv.notify_one();
}

fn watch(patterns: &[String], shared: &Arc<Shared>) -> Result<notify::RecommendedWatcher, String> {
    let target = shared.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(e) => {
                let rescan = matches!(
                    e.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(_))
                );
                notify_change(&target, rescan);
            }
            // Lost events (queue overflow): look at everything again.
            Err(_) => notify_change(&target, true),
        }
    })
    .map_err(|e| e.to_string())?;
    let mut watched = 0;
    for (dir, mode) in patterns.iter().filter_map(|p| base_dir(p)) {
        // A directory that does not exist yet is found by polling; others are watched.
        if dir.is_dir() {
            watcher
                .watch(&dir, mode)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            watched += 1;
        }
    }
    if watched == 0 {
        return Err("none of the directories to watch exists yet".into());
    }
    Ok(watcher)
}

/// The directory a glob pattern starts from, and whether it matches below that directory's
/// own entries.
fn base_dir(pattern: &str) -> Option<(PathBuf, RecursiveMode)> {
    let path = Path::new(pattern);
    let mut base = PathBuf::new();
    let mut rest = 0;
    for (i, c) in path.components().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            rest = path.components().count() - i;
            break;
        }
        base.push(c);
    }
    if rest == 0 {
        // No wildcard: the pattern is one file; watch its directory.
        let parent = base.parent()?.to_owned();
        return Some((parent, RecursiveMode::NonRecursive));
    }
    let mode = if rest > 1 {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    Some((base, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_the_fixed_part_of_each_pattern() {
        assert_eq!(
            base_dir("/var/log/pods/*/*/*.log"),
            Some(("/var/log/pods".into(), RecursiveMode::Recursive))
        );
        assert_eq!(
            base_dir("/var/log/app/*.log"),
            Some(("/var/log/app".into(), RecursiveMode::NonRecursive))
        );
        assert_eq!(
            base_dir("/var/log/app/current.log"),
            Some(("/var/log/app".into(), RecursiveMode::NonRecursive))
        );
    }

    #[test]
    fn a_write_wakes_the_waiter_long_before_the_poll_interval() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = format!("{}/*.log", dir.path().display());
        let (wakeup, problem) = Wakeup::new(&[pattern], true);
        assert_eq!(problem, None);
        assert!(wakeup.is_watching());
        let path = dir.path().join("a.log");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(path, "line\n").unwrap();
        });
        let started = std::time::Instant::now();
        wakeup.wait(Duration::from_secs(30));
        writer.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "woken by inotify"
        );
        assert!(wakeup.take_rescan(), "a created file asks for discovery");
        assert!(!wakeup.take_rescan());
    }

    #[test]
    fn without_inotify_it_polls() {
        let (wakeup, problem) = Wakeup::new(&["/does/not/exist/*.log".into()], true);
        assert!(problem.is_some());
        assert!(!wakeup.is_watching());
        let started = std::time::Instant::now();
        wakeup.wait(Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
