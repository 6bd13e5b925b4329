//! The bounded queue between components: lock-free (crossbeam's `SegQueue`), bounded in bytes,
//! with async wake-ups on both ends.
//!
//! Contract:
//! - `push` reserves the item's bytes before enqueueing it. When the reservation does not fit,
//!   `WhenFull::Block` waits until a consumer frees room (back-pressure reaches the producer, and
//!   the time spent waiting is counted), `WhenFull::DropNewest` hands the item back as dropped and
//!   counts it. An item larger than the whole bound is let in when the queue is empty, so an
//!   oversized batch slows the flow instead of wedging it.
//! - `pop` waits for an item; after `close` it drains what is left and then returns `None`.
//! - Both futures are cancel-safe: an item is taken or put only in synchronous code.
//! - A queue in front of a disk stage ([`ByteQueue::with_spill_window`]) admits only a small
//!   window of bytes while the process spills (see [`crate::memory`]): its producers then go at
//!   the disk's pace instead of filling memory up to the queue's bound.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_queue::SegQueue;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::flow::batch::Batch;
use crate::telemetry::QueueMetrics;

/// What a full queue does with one more item.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: back-pressure (the default; nothing is lost).
    #[default]
    Block,
    /// Drop the item being pushed and count it.
    DropNewest,
}

/// What a queue holds must say how many bytes it stands for.
pub trait QueueItem: Send {
    fn queue_bytes(&self) -> usize;
    fn queue_events(&self) -> usize;
}

impl QueueItem for Batch {
    fn queue_bytes(&self) -> usize {
        self.byte_size()
    }
    fn queue_events(&self) -> usize {
        self.len()
    }
}

/// The result of a push.
#[derive(Debug)]
pub enum Pushed<T> {
    Queued,
    /// `DropNewest` and full, or the queue is closed: the item is handed back.
    Refused(T),
}

pub struct ByteQueue<T> {
    items: SegQueue<T>,
    bytes: AtomicUsize,
    events: AtomicUsize,
    max_bytes: usize,
    /// The bound while the process spills (`usize::MAX`: the same as `max_bytes`).
    spill_window: usize,
    when_full: WhenFull,
    closed: AtomicBool,
    not_empty: Notify,
    not_full: Notify,
    metrics: QueueMetrics,
}

impl<T: QueueItem> ByteQueue<T> {
    pub fn new(max_bytes: usize, when_full: WhenFull, metrics: QueueMetrics) -> Self {
        Self {
            items: SegQueue::new(),
            bytes: AtomicUsize::new(0),
            events: AtomicUsize::new(0),
            max_bytes: max_bytes.max(1),
            spill_window: usize::MAX,
            when_full,
            closed: AtomicBool::new(false),
            not_empty: Notify::new(),
            not_full: Notify::new(),
            metrics,
        }
    }

    /// Bounds the queue to `bytes` while the process spills (a queue in front of a disk stage).
    pub fn with_spill_window(mut self, bytes: usize) -> Self {
        self.spill_window = bytes.max(1);
        self
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Items currently held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Tries to reserve `size` bytes; an empty queue admits anything.
    fn try_reserve(&self, size: usize) -> bool {
        let bound = if self.spill_window < self.max_bytes && crate::memory::spilling() {
            self.spill_window
        } else {
            self.max_bytes
        };
        let mut current = self.bytes.load(Ordering::Acquire);
        loop {
            if current != 0 && current.saturating_add(size) > bound {
                return false;
            }
            match self.bytes.compare_exchange_weak(
                current,
                current + size,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    fn enqueue(&self, item: T) {
        // Counted before the item is visible, as its bytes were reserved before: a consumer
        // that pops it at once must find it counted, or the counter would dip below zero.
        let events = item.queue_events();
        let now_events = self.events.fetch_add(events, Ordering::AcqRel) + events;
        self.items.push(item);
        self.metrics.set_depth(now_events, self.bytes());
        self.not_empty.notify_one();
    }

    /// Pushes without waiting: `Refused` when full (whatever the policy) or closed.
    pub fn try_push(&self, item: T) -> Pushed<T> {
        if self.closed.load(Ordering::Acquire) || !self.try_reserve(item.queue_bytes()) {
            return Pushed::Refused(item);
        }
        self.enqueue(item);
        Pushed::Queued
    }

    /// Pushes, waiting for room under `Block`; see the module doc.
    pub async fn push(&self, item: T) -> Pushed<T> {
        self.push_until(item, std::future::pending()).await
    }

    /// Like [`push`](Self::push), but hands the item back as `Refused` if `give_up` completes
    /// while it waits for room (the spill stage stops waiting when memory crosses its limit).
    pub async fn push_until(
        &self,
        item: T,
        give_up: impl std::future::Future<Output = ()>,
    ) -> Pushed<T> {
        let size = item.queue_bytes();
        let mut blocked_since: Option<Instant> = None;
        tokio::pin!(give_up);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Pushed::Refused(item);
            }
            if self.try_reserve(size) {
                break;
            }
            if self.when_full == WhenFull::DropNewest {
                self.metrics.dropped(item.queue_events());
                return Pushed::Refused(item);
            }
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Re-check after registering, so a pop between the check and the wait is not missed.
            if self.try_reserve(size) {
                break;
            }
            blocked_since.get_or_insert_with(Instant::now);
            tokio::select! {
                () = notified => {}
                () = &mut give_up => {
                    if let Some(since) = blocked_since {
                        self.metrics.blocked(since.elapsed());
                    }
                    return Pushed::Refused(item);
                }
            }
        }
        if let Some(since) = blocked_since {
            self.metrics.blocked(since.elapsed());
        }
        self.enqueue(item);
        Pushed::Queued
    }

    /// Takes an item without waiting.
    pub fn try_pop(&self) -> Option<T> {
        let item = self.items.pop()?;
        let bytes = item.queue_bytes();
        let events = item.queue_events();
        let now_bytes = self
            .bytes
            .fetch_sub(bytes, Ordering::AcqRel)
            .saturating_sub(bytes);
        let now_events = self
            .events
            .fetch_sub(events, Ordering::AcqRel)
            .saturating_sub(events);
        self.metrics.set_depth(now_events, now_bytes);
        self.not_full.notify_waiters();
        Some(item)
    }

    /// Waits for an item; `None` once closed and drained.
    pub async fn pop(&self) -> Option<T> {
        loop {
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.closed.load(Ordering::Acquire) {
                return self.try_pop();
            }
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            notified.await;
        }
    }

    /// No more pushes; consumers drain what is left.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Debug)]
    struct Item(usize);
    impl QueueItem for Item {
        fn queue_bytes(&self) -> usize {
            self.0
        }
        fn queue_events(&self) -> usize {
            1
        }
    }

    fn queue(max: usize, when_full: WhenFull) -> Arc<ByteQueue<Item>> {
        Arc::new(ByteQueue::new(max, when_full, QueueMetrics::detached()))
    }

    #[tokio::test]
    async fn keeps_order_and_counts_bytes() {
        let q = queue(100, WhenFull::Block);
        for i in 1..=4 {
            assert!(matches!(q.push(Item(i * 10)).await, Pushed::Queued));
        }
        assert_eq!(q.bytes(), 100);
        for i in 1..=4 {
            assert_eq!(q.pop().await.map(|x| x.0), Some(i * 10));
        }
        assert_eq!(q.bytes(), 0);
    }

    #[tokio::test]
    async fn drop_newest_refuses_when_full() {
        let q = queue(100, WhenFull::DropNewest);
        assert!(matches!(q.push(Item(80)).await, Pushed::Queued));
        assert!(matches!(q.push(Item(30)).await, Pushed::Refused(Item(30))));
        assert!(matches!(q.push(Item(20)).await, Pushed::Queued));
        assert_eq!(q.len(), 2);
    }

    #[tokio::test]
    async fn an_oversized_item_enters_an_empty_queue() {
        let q = queue(10, WhenFull::Block);
        assert!(matches!(q.push(Item(1000)).await, Pushed::Queued));
        assert_eq!(q.pop().await.map(|x| x.0), Some(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn block_waits_for_room_and_never_exceeds_the_bound() {
        let q = queue(100, WhenFull::Block);
        q.push(Item(60)).await;
        let producer = {
            let q = q.clone();
            tokio::spawn(async move {
                q.push(Item(60)).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!producer.is_finished(), "second push must wait: 120 > 100");
        assert_eq!(q.bytes(), 60);
        assert_eq!(q.pop().await.map(|x| x.0), Some(60));
        producer.await.unwrap();
        assert_eq!(q.bytes(), 60);
    }

    #[tokio::test]
    async fn while_the_process_spills_a_queue_admits_only_its_spill_window() {
        let q = Arc::new(
            ByteQueue::new(100, WhenFull::DropNewest, QueueMetrics::detached())
                .with_spill_window(30),
        );
        let plain = queue(100, WhenFull::DropNewest);
        crate::memory::set_spilling_for_test(true);
        let pushed = |q: &ByteQueue<Item>, n| matches!(q.try_push(Item(n)), Pushed::Queued);
        assert!(pushed(&q, 20));
        assert!(!pushed(&q, 20), "40 > the window of 30");
        assert!(
            pushed(&plain, 20) && pushed(&plain, 20),
            "no window: the full bound"
        );
        crate::memory::set_spilling_for_test(false);
        assert!(
            pushed(&q, 20) && pushed(&q, 60),
            "not spilling: the full bound"
        );
        assert_eq!(q.bytes(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn push_until_hands_the_item_back_when_it_gives_up_waiting() {
        let q = queue(100, WhenFull::Block);
        q.push(Item(60)).await;
        // Room: queued whatever give_up would do.
        assert!(matches!(
            q.push_until(Item(40), std::future::ready(())).await,
            Pushed::Queued
        ));
        // Full: waits until give_up completes, then hands the item back, queue unchanged.
        let give_up = tokio::time::sleep(Duration::from_millis(30));
        let started = tokio::time::Instant::now();
        assert!(matches!(
            q.push_until(Item(10), give_up).await,
            Pushed::Refused(Item(10))
        ));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!((q.len(), q.bytes()), (2, 100));
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let q = queue(100, WhenFull::Block);
        q.push(Item(1)).await;
        q.close();
        assert!(matches!(q.push(Item(2)).await, Pushed::Refused(_)));
        assert_eq!(q.pop().await.map(|x| x.0), Some(1));
        assert!(q.pop().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_producers_one_consumer_lose_nothing() {
        let q = queue(1000, WhenFull::Block);
        let producers: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move {
                    for _ in 0..1000 {
                        q.push(Item(7)).await;
                    }
                })
            })
            .collect();
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while let Some(item) = q.pop().await {
                    assert_eq!(item.0, 7);
                    n += 1;
                    if n == 4000 {
                        break;
                    }
                }
                n
            })
        };
        for p in producers {
            p.await.unwrap();
        }
        assert_eq!(consumer.await.unwrap(), 4000);
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn counters_never_dip_below_zero_when_a_pop_races_its_push() {
        // Consumers spinning on try_pop take items the instant they are pushed; the event
        // counter must already include them (it once did not, and underflowed under load).
        // More threads than cores, so a producer is often preempted between the two steps.
        let q = queue(usize::MAX / 2, WhenFull::Block);
        let (producers, consumers, per_producer) = (6, 3, 100_000);
        let total = producers * per_producer;
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let consumer_threads: Vec<_> = (0..consumers)
            .map(|_| {
                let (q, taken) = (q.clone(), taken.clone());
                std::thread::spawn(move || {
                    while taken.load(std::sync::atomic::Ordering::Relaxed) < total {
                        if q.try_pop().is_some() {
                            taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let producer_threads: Vec<_> = (0..producers)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for _ in 0..per_producer {
                        assert!(matches!(q.try_push(Item(1)), Pushed::Queued));
                    }
                })
            })
            .collect();
        for t in producer_threads.into_iter().chain(consumer_threads) {
            t.join().expect("no counter underflow or overflow");
        }
        assert_eq!((q.len(), q.bytes()), (0, 0));
    }
}
