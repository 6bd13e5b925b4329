//! Splits a byte stream into lines with `memchr`, holding at most `max_line_bytes` of an
//! unfinished line. A longer line is emitted in parts of `max_line_bytes`, each but the last
//! marked as split; a trailing `\r` is removed.

#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max_line: usize,
}

/// A line or part of one.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// More of the same line follows in the next part.
    pub split: bool,
    /// Bytes of input this line or part stands for (with its `\r\n` or `\n`).
    pub consumed: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            max_line: max_line.max(1),
        }
    }

    /// Bytes held of a line whose end has not been read yet.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    pub fn clear(&mut self) {
        self.partial.clear();
    }

    fn emit_parts(
        max: usize,
        mut line: &[u8],
        last_is_complete: bool,
        emit: &mut impl FnMut(Line<'_>),
    ) {
        while line.len() > max || (!last_is_complete && !line.is_empty()) {
            let n = max.min(line.len());
            emit(Line {
                bytes: &line[..n],
                split: true,
                consumed: n,
            });
            line = &line[n..];
        }
        if last_is_complete {
            let bytes = line.strip_suffix(b"\r").unwrap_or(line);
            emit(Line {
                bytes,
                split: false,
                consumed: line.len() + 1,
            });
        }
    }

    /// Feeds a chunk; `emit` is called for every line or part completed by it.
    pub fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(Line<'_>)) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            if self.partial.is_empty() {
                Self::emit_parts(self.max_line, &chunk[start..nl], true, &mut emit);
            } else {
                self.partial.extend_from_slice(&chunk[start..nl]);
                Self::emit_parts(self.max_line, &self.partial, true, &mut emit);
                self.partial.clear();
            }
            start = nl + 1;
        }
        let rest = &chunk[start..];
        if !rest.is_empty() {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > self.max_line {
                // Emit whole parts, keeping the (at most max_line) remainder pending.
                let keep = match self.partial.len() % self.max_line {
                    0 => self.max_line,
                    r => r,
                };
                let cut = self.partial.len() - keep;
                Self::emit_parts(self.max_line, &self.partial[..cut], false, &mut emit);
                self.partial.drain(..cut);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(s: &mut LineSplitter, chunk: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        s.push(chunk, |l| out.push((l.bytes.to_vec(), l.split)));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        let mut s = LineSplitter::new(100);
        assert_eq!(
            collect(&mut s, b"a\nbb\r\ncc"),
            vec![(b"a".to_vec(), false), (b"bb".to_vec(), false)]
        );
        assert_eq!(s.pending(), 2);
        assert_eq!(collect(&mut s, b"c\n"), vec![(b"ccc".to_vec(), false)]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn long_lines_are_split_into_marked_parts_and_memory_stays_bounded() {
        let mut s = LineSplitter::new(4);
        let out = collect(&mut s, b"abcdefghij");
        assert_eq!(
            out,
            vec![(b"abcd".to_vec(), true), (b"efgh".to_vec(), true)]
        );
        assert!(s.pending() <= 4);
        let out = collect(&mut s, b"k\n");
        assert_eq!(out, vec![(b"ijk".to_vec(), false)]);
    }

    proptest! {
        #[test]
        fn reassembled_parts_equal_the_input(lines in proptest::collection::vec("[a-z]{0,30}", 0..20),
                                             cut in 1usize..17, max in 1usize..12) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut s = LineSplitter::new(max);
            let mut got: Vec<String> = Vec::new();
            let mut cur = String::new();
            for chunk in text.as_bytes().chunks(cut) {
                let mut parts: Vec<(Vec<u8>, bool)> = Vec::new();
                s.push(chunk, |l| parts.push((l.bytes.to_vec(), l.split)));
                for (bytes, split) in parts {
                    prop_assert!(bytes.len() <= max);
                    cur.push_str(std::str::from_utf8(&bytes).unwrap());
                    if !split { got.push(std::mem::take(&mut cur)); }
                }
                prop_assert!(s.pending() <= max);
            }
            prop_assert_eq!(got, lines);
        }
    }
}
