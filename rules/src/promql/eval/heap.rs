//! Go's `container/heap` over a slice with a caller's ordering: `topk` and `bottomk` keep the
//! same elements as Prometheus when values tie only if the heap moves them the same way.

/// Adds `item` and restores the heap order (`heap.Push`).
pub(crate) fn push<T>(heap: &mut Vec<T>, item: T, less: impl Fn(&T, &T) -> bool) {
    heap.push(item);
    let last = heap.len() - 1;
    up(heap, last, &less);
}

/// Restores the heap order after the element at `i` changed (`heap.Fix`).
pub(crate) fn fix<T>(heap: &mut [T], i: usize, less: impl Fn(&T, &T) -> bool) {
    if !down(heap, i, &less) {
        up(heap, i, &less);
    }
}

fn up<T>(heap: &mut [T], mut j: usize, less: &impl Fn(&T, &T) -> bool) {
    while j > 0 {
        let parent = (j - 1) / 2;
        if !less(&heap[j], &heap[parent]) {
            break;
        }
        heap.swap(parent, j);
        j = parent;
    }
}

fn down<T>(heap: &mut [T], start: usize, less: &impl Fn(&T, &T) -> bool) -> bool {
    let n = heap.len();
    let mut i = start;
    loop {
        let left = 2 * i + 1;
        if left >= n {
            break;
        }
        let mut j = left;
        if left + 1 < n && less(&heap[left + 1], &heap[left]) {
            j = left + 1;
        }
        if !less(&heap[j], &heap[i]) {
            break;
        }
        heap.swap(i, j);
        i = j;
    }
    i > start
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_is_the_least() {
        let less = |a: &i32, b: &i32| a < b;
        let mut heap = Vec::new();
        for v in [5, 3, 8, 1, 9, 2] {
            super::push(&mut heap, v, less);
        }
        assert_eq!(heap[0], 1);
        heap[0] = 7;
        super::fix(&mut heap, 0, less);
        assert_eq!(heap[0], 2);
    }
}
