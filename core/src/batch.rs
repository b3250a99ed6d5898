//! Packing queued records into request bodies under a record count and a byte limit.
//!
//! A body is a JSON array of already encoded records, so its size is known without encoding
//! it: two brackets, the records, and one comma between each pair. Limits apply to this
//! uncompressed UTF-8 body; gzip is applied afterwards and only when it makes the body smaller.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The split of the leading queued records into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// The first `count` records fit in one body; `count` is at least 1.
    Batch {
        /// How many records go into the body.
        count: usize,
    },
    /// The first record alone is larger than the byte limit and can never be sent.
    Oversized,
    /// There are no records.
    Empty,
}

/// Returns the size in bytes of a JSON array holding records of the given sizes.
pub fn body_len(record_lens: impl IntoIterator<Item = usize>) -> usize {
    let mut total = 2;
    let mut count: usize = 0;
    for len in record_lens {
        total += len;
        count += 1;
    }
    total + count.saturating_sub(1)
}

/// Decides how many of the leading records (given by their encoded sizes) fit into one body of
/// at most `max_records` records and `max_bytes` bytes.
pub fn pack_first(record_lens: &[usize], max_records: usize, max_bytes: usize) -> Packing {
    let Some(&first) = record_lens.first() else {
        return Packing::Empty;
    };
    if body_len([first]) > max_bytes {
        return Packing::Oversized;
    }

    let mut size = body_len([first]);
    let mut count = 1;
    for &len in record_lens
        .iter()
        .skip(1)
        .take(max_records.saturating_sub(1))
    {
        let grown = size + 1 + len;
        if grown > max_bytes {
            break;
        }
        size = grown;
        count += 1;
    }
    Packing::Batch { count }
}

/// Splits all records into consecutive batches, in order. Oversized records come out as
/// batches of one with `oversized = true`. The worker packs one batch at a time with
/// [`pack_first`]; this is the same packing applied to a whole queue.
#[cfg(test)]
pub fn plan(
    record_lens: &[usize],
    max_records: usize,
    max_bytes: usize,
) -> Vec<(std::ops::Range<usize>, bool)> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < record_lens.len() {
        match pack_first(&record_lens[start..], max_records, max_bytes) {
            Packing::Batch { count } => {
                batches.push((start..start + count, false));
                start += count;
            }
            Packing::Oversized => {
                batches.push((start..start + 1, true));
                start += 1;
            }
            Packing::Empty => break,
        }
    }
    batches
}

/// Joins encoded records into a JSON array body.
pub fn encode_body<'a>(records: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(b'[');
    for (i, record) in records.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record.as_bytes());
    }
    body.push(b']');
    body
}

/// Returns the gzip form of `body` when it is smaller, or `None`.
pub fn gzip_if_smaller(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 32), Compression::fast());
    encoder.write_all(body).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() < body.len()).then_some(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn body_len_matches_encoding() {
        let records = ["{\"a\":1}", "{}", "{\"é\":\"😀\"}"];
        let body = encode_body(records);
        assert_eq!(body.len(), body_len(records.iter().map(|r| r.len())));
        assert_eq!(body_len([]), 2);
    }

    #[test]
    fn pack_first_stops_at_byte_limit() {
        assert_eq!(
            pack_first(&[10, 10, 10], 50, 2 + 10 + 1 + 10),
            Packing::Batch { count: 2 }
        );
        assert_eq!(
            pack_first(&[10, 10, 10], 1, 1000),
            Packing::Batch { count: 1 }
        );
        assert_eq!(pack_first(&[100], 50, 50), Packing::Oversized);
        assert_eq!(pack_first(&[], 50, 50), Packing::Empty);
    }

    #[test]
    fn gzip_skipped_when_larger() {
        assert!(gzip_if_smaller(b"[1]").is_none());
        let repetitive = encode_body(std::iter::repeat_n("{\"event\":\"x\"}", 100));
        assert!(gzip_if_smaller(&repetitive).unwrap().len() < repetitive.len());
    }

    proptest! {
        #[test]
        fn plan_respects_limits_and_order(
            lens in proptest::collection::vec(1usize..400, 0..200),
            max_records in 1usize..60,
            max_bytes in 3usize..2000,
        ) {
            let batches = plan(&lens, max_records, max_bytes);

            let mut next = 0;
            for (range, oversized) in &batches {
                prop_assert_eq!(range.start, next, "batches must be consecutive and in order");
                prop_assert!(!range.is_empty());
                next = range.end;

                let size = body_len(lens[range.clone()].iter().copied());
                if *oversized {
                    prop_assert_eq!(range.len(), 1);
                    prop_assert!(size > max_bytes);
                } else {
                    prop_assert!(range.len() <= max_records);
                    prop_assert!(size <= max_bytes);
                }
            }
            prop_assert_eq!(next, lens.len(), "every record is in exactly one batch");
        }
    }
}
