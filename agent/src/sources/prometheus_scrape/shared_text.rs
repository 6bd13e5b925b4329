//! Family texts (metric names, HELP texts, units) shared by every target that exposes them.
//!
//! The pods of one deployment, or the node exporters of every node, repeat the same families
//! word for word; a copy per target would cost each target tens of bytes per series. A text is
//! looked up under a lock only when a target meets a family it did not have, so the lock is
//! cold. Texts no target holds any more are dropped when the set has doubled since the last
//! sweep.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

struct Texts {
    set: HashSet<Arc<str>>,
    sweep_at: usize,
}

static TEXTS: LazyLock<Mutex<Texts>> = LazyLock::new(|| {
    Mutex::new(Texts {
        set: HashSet::new(),
        sweep_at: 1024,
    })
});

/// The one shared copy of `text`.
pub(super) fn shared(text: &str) -> Arc<str> {
    let mut texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = texts.set.get(text) {
        return found.clone();
    }
    if texts.set.len() >= texts.sweep_at {
        texts.set.retain(|t| Arc::strong_count(t) > 1);
        texts.sweep_at = (texts.set.len() * 2).max(1024);
    }
    let text: Arc<str> = Arc::from(text);
    texts.set.insert(text.clone());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_copy_and_unheld_ones_are_swept() {
        let a = shared("Seconds the CPUs spent in each mode.");
        let b = shared("Seconds the CPUs spent in each mode.");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "Seconds the CPUs spent in each mode.");
        let unheld = "a text nobody keeps";
        drop(shared(unheld));
        for i in 0..5000 {
            drop(shared(&format!("filler {i}")));
        }
        let texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(texts.set.len() < 5000, "{} texts kept", texts.set.len());
        assert!(!texts.set.contains(unheld));
        assert!(texts.set.contains(&*a), "a held text stays");
    }
}
