//! The on-disk record: `magic | payload length | event count | CRC-32` (four little-endian
//! u32), then the payload. The CRC covers the length, the event count and the payload, so a
//! torn or flipped header is caught as surely as a flipped payload byte. The magic lets a reader
//! find the next record after damage by scanning, instead of giving up on the rest of a segment.

pub const MAGIC: u32 = 0x5358_5442; // "SXTB"
pub const HEADER_BYTES: usize = 16;

/// A record's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub events: u32,
    pub crc: u32,
}

fn crc_of(len: u32, events: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&events.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Frames `payload` (holding `events` events) as one record.
pub fn encode(payload: &[u8], events: u32, out: &mut Vec<u8>) {
    let len = payload.len() as u32;
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&events.to_le_bytes());
    out.extend_from_slice(&crc_of(len, events, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a header; `None` if the magic is wrong or the length is beyond `max_len`.
pub fn header(bytes: &[u8], max_len: u32) -> Option<Header> {
    if u32_at(bytes, 0)? != MAGIC {
        return None;
    }
    let len = u32_at(bytes, 4)?;
    if len > max_len {
        return None;
    }
    Some(Header {
        len,
        events: u32_at(bytes, 8)?,
        crc: u32_at(bytes, 12)?,
    })
}

/// Whether `payload` is what `header` promises.
pub fn verify(header: &Header, payload: &[u8]) -> bool {
    payload.len() == header.len as usize && crc_of(header.len, header.events, payload) == header.crc
}

/// The first offset at or after `from` in `bytes` where a whole, valid record starts.
pub fn resync(bytes: &[u8], from: usize, max_len: u32) -> Option<usize> {
    let magic = MAGIC.to_le_bytes();
    let mut at = from;
    while let Some(found) = memchr::memmem::find(bytes.get(at..)?, &magic) {
        let start = at + found;
        if let Some(h) = header(&bytes[start..], max_len) {
            let body = start + HEADER_BYTES;
            if let Some(payload) = bytes.get(body..body + h.len as usize) {
                if verify(&h, payload) {
                    return Some(start);
                }
            }
        }
        at = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_flipped_byte_is_caught() {
        let mut out = Vec::new();
        encode(b"hello, buffer", 3, &mut out);
        let h = header(&out, 1 << 20).unwrap();
        assert_eq!((h.len, h.events), (13, 3));
        assert!(verify(&h, &out[HEADER_BYTES..]));
        for i in 4..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            let ok = header(&bad, 1 << 20).is_some_and(|h| {
                bad.get(HEADER_BYTES..HEADER_BYTES + h.len as usize)
                    .is_some_and(|p| verify(&h, p))
            });
            assert!(!ok, "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn resync_finds_the_next_good_record_after_garbage() {
        let mut out = Vec::new();
        encode(b"first", 1, &mut out);
        let second_at = out.len() + 7;
        out.extend_from_slice(b"garbage");
        encode(b"second", 1, &mut out);
        // Damage the first record's payload: the scan skips it and lands on the second.
        out[HEADER_BYTES] ^= 1;
        assert_eq!(resync(&out, 0, 1 << 20), Some(second_at));
        assert_eq!(resync(&out, second_at + 1, 1 << 20), None);
    }
}
