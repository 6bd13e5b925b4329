//! Per-file delivery progress: which emitted batches are still in flight, and the committed
//! offset, which is the end of the longest prefix of batches whose delivery is final.
//!
//! Acknowledgements may arrive out of order; the committed offset never moves backwards (except
//! on `reset`, for a truncated file). A `Failed` acknowledgement rewinds reading to the committed
//! offset and starts a new epoch: acknowledgements of the old epoch are ignored, so what was in
//! flight after the failure is read and sent again (at least once; bounded duplicates).

use std::collections::{BTreeMap, VecDeque};

use crate::flow::ack::AckStatus;

#[derive(Debug, Default)]
pub struct Progress {
    committed: u64,
    epoch: u32,
    next_seq: u64,
    /// (seq, end offset) of batches in flight, in emission order.
    in_flight: VecDeque<(u64, u64)>,
    resolved: BTreeMap<u64, AckStatus>,
}

/// What a resolved acknowledgement means for the reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Nothing new is committed yet.
    Pending,
    /// The committed offset moved to this value.
    Committed(u64),
    /// A batch failed: read again from this offset.
    Rewind(u64),
}

impl Progress {
    pub fn new(committed: u64) -> Self {
        Self {
            committed,
            ..Default::default()
        }
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Registers a batch ending at `end_offset`; returns the tag its acknowledgement carries.
    pub fn emit(&mut self, end_offset: u64) -> (u32, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push_back((seq, end_offset));
        (self.epoch, seq)
    }

    pub fn resolve(&mut self, epoch: u32, seq: u64, status: AckStatus) -> Resolution {
        if epoch != self.epoch {
            return Resolution::Pending;
        }
        self.resolved.insert(seq, status);
        let before = self.committed;
        while let Some(&(front, end)) = self.in_flight.front() {
            let Some(status) = self.resolved.remove(&front) else {
                break;
            };
            self.in_flight.pop_front();
            if status.is_final() {
                self.committed = self.committed.max(end);
            } else {
                self.epoch = self.epoch.wrapping_add(1);
                self.in_flight.clear();
                self.resolved.clear();
                return Resolution::Rewind(self.committed);
            }
        }
        if self.committed != before {
            Resolution::Committed(self.committed)
        } else {
            Resolution::Pending
        }
    }

    /// The file was truncated: everything in flight is moot; start again at `offset`.
    pub fn reset(&mut self, offset: u64) {
        self.committed = offset;
        self.epoch = self.epoch.wrapping_add(1);
        self.in_flight.clear();
        self.resolved.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        let mut p = Progress::new(0);
        let a = p.emit(10);
        let b = p.emit(20);
        let c = p.emit(30);
        assert_eq!(
            p.resolve(b.0, b.1, AckStatus::Delivered),
            Resolution::Pending
        );
        assert_eq!(
            p.resolve(c.0, c.1, AckStatus::Delivered),
            Resolution::Pending
        );
        assert_eq!(
            p.resolve(a.0, a.1, AckStatus::Delivered),
            Resolution::Committed(30)
        );
    }

    #[test]
    fn a_failure_rewinds_and_stale_acks_are_ignored() {
        let mut p = Progress::new(5);
        let a = p.emit(10);
        let b = p.emit(20);
        assert_eq!(
            p.resolve(a.0, a.1, AckStatus::Failed),
            Resolution::Rewind(5)
        );
        assert_eq!(
            p.resolve(b.0, b.1, AckStatus::Delivered),
            Resolution::Pending
        );
        assert_eq!(p.committed(), 5);
        let c = p.emit(10);
        assert_eq!(
            p.resolve(c.0, c.1, AckStatus::Rejected),
            Resolution::Committed(10)
        );
    }

    proptest! {
        /// Checkpoints never go backwards, and never pass a batch that is not final.
        #[test]
        fn committed_never_goes_backwards(order in Just((0..20usize).collect::<Vec<_>>()).prop_shuffle(),
                                          fail_at in proptest::option::of(0usize..20)) {
            let mut p = Progress::new(0);
            let tags: Vec<_> = (0..20u64).map(|i| p.emit((i + 1) * 100)).collect();
            let mut last = 0;
            let mut failed = false;
            for i in order {
                let status = if Some(i) == fail_at { AckStatus::Failed } else { AckStatus::Delivered };
                match p.resolve(tags[i].0, tags[i].1, status) {
                    Resolution::Rewind(at) => {
                        // Delivered batches before the failed one may commit in the same step.
                        prop_assert!(at >= last);
                        prop_assert_eq!(Some(at), fail_at.map(|f| f as u64 * 100));
                        last = at;
                        failed = true;
                    }
                    Resolution::Committed(at) => {
                        prop_assert!(!failed);
                        prop_assert!(at > last);
                        if let Some(f) = fail_at { prop_assert!(at <= (f as u64) * 100); }
                        last = at;
                    }
                    Resolution::Pending => {}
                }
                prop_assert!(p.committed() >= last);
            }
            if fail_at.is_none() { prop_assert_eq!(p.committed(), 2000); }
        }
    }
}
