//! The record framing of a segment file, and the reading back of a run of records that
//! survives torn and damaged bytes.
//!
//! A record is `MAGIC (4) | len (4, LE) | crc32(len bytes ++ payload) (4, LE) | payload`. The
//! magic lets a reader find the next record after damaged bytes; the checksum covers the length
//! too, so a damaged length cannot send the reader past good records.

/// Marks the start of a record ("TLYR").
pub const MAGIC: [u8; 4] = *b"TLYR";
/// Bytes before a record's payload.
pub const HEADER: usize = 12;
/// Largest payload accepted: far above any event the limits let through, and small enough
/// that a damaged length cannot ask for an absurd read.
pub const MAX_PAYLOAD: usize = 4 << 20;

/// Appends one record holding `payload` to `out`.
pub fn encode(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends a record to `out` whose payload `write` appends after the header; the header is
/// filled in afterwards. Saves encoding a payload into a buffer of its own first.
pub fn encode_with<E>(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    if let Err(e) = write(out) {
        out.truncate(start);
        return Err(e);
    }
    let payload_len = out.len() - start - HEADER;
    let len = (payload_len as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&MAGIC);
    out[start + 4..start + 8].copy_from_slice(&len);
    out[start + 8..start + 12].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(())
}

/// What [`scan`] found in a buffer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Payload ranges of the good records, in order.
    pub records: Vec<std::ops::Range<usize>>,
    /// Bytes consumed: the end of the last good record or skipped damage. The rest of the
    /// buffer is an incomplete record (more may follow) or, at the end of a sealed file, a torn tail.
    pub consumed: usize,
    /// Damaged bytes skipped within `consumed`.
    pub skipped: usize,
}

/// Reads records from `buf` until `max_records`, or until what is left is not a complete
/// record. Damaged bytes (no magic, an impossible length, a wrong checksum) are skipped up to
/// the next place a good record starts; if none does, scanning stops there, so a record still
/// being written is not mistaken for damage. With `last` (nothing follows `buf`: the end of a
/// sealed segment), a record that runs past the end is damage too (its length may be what is
/// damaged), and a good record after it is still found.
pub fn scan(buf: &[u8], max_records: usize, last: bool) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0;
    while out.records.len() < max_records {
        match record_at(buf, pos) {
            Found::Record(range) => {
                pos = range.end;
                out.records.push(range);
                out.consumed = pos;
            }
            Found::Incomplete if !last => break,
            Found::Incomplete | Found::Damaged => match next_good(buf, pos + 1) {
                Some(next) => {
                    out.skipped += next - pos;
                    pos = next;
                    out.consumed = pos;
                }
                None => break,
            },
        }
    }
    out
}

enum Found {
    Record(std::ops::Range<usize>),
    Incomplete,
    Damaged,
}

fn record_at(buf: &[u8], pos: usize) -> Found {
    let Some(head) = buf.get(pos..pos + HEADER) else {
        // A short tail is incomplete only if what there is could begin a record.
        let rest = &buf[pos.min(buf.len())..];
        return if MAGIC.starts_with(&rest[..rest.len().min(4)]) {
            Found::Incomplete
        } else {
            Found::Damaged
        };
    };
    if head[..4] != MAGIC {
        return Found::Damaged;
    }
    let len = u32::from_le_bytes(head[4..8].try_into().unwrap_or_default()) as usize;
    if len > MAX_PAYLOAD {
        return Found::Damaged;
    }
    let Some(payload) = buf.get(pos + HEADER..pos + HEADER + len) else {
        return Found::Incomplete;
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[4..8]);
    crc.update(payload);
    if crc.finalize().to_le_bytes() != head[8..12] {
        return Found::Damaged;
    }
    Found::Record(pos + HEADER..pos + HEADER + len)
}

/// The first position at or after `from` where a complete good record starts.
fn next_good(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr_magic(&buf[at.min(buf.len())..]) {
        let pos = at + i;
        if let Found::Record(_) = record_at(buf, pos) {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}

fn memchr_magic(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(&mut out, p);
        }
        out
    }

    fn payloads<'b>(buf: &'b [u8], s: &Scan) -> Vec<&'b [u8]> {
        s.records.iter().map(|r| &buf[r.clone()]).collect()
    }

    #[test]
    fn round_trip() {
        let buf = records(&[b"one", b"", b"three"]);
        let s = scan(&buf, 10, false);
        assert_eq!(payloads(&buf, &s), [&b"one"[..], b"", b"three"]);
        assert_eq!((s.consumed, s.skipped), (buf.len(), 0));
        let s = scan(&buf, 2, false);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.consumed, 2 * HEADER + 3);
    }

    #[test]
    fn encode_with_matches_encode_and_undoes_a_failure() {
        let mut a = Vec::new();
        encode(&mut a, b"payload");
        let mut b = Vec::new();
        encode_with::<()>(&mut b, |o| {
            o.extend_from_slice(b"payload");
            Ok(())
        })
        .unwrap();
        assert_eq!(a, b);
        assert!(
            encode_with(&mut b, |o| {
                o.push(1);
                Err("no")
            })
            .is_err()
        );
        assert_eq!(a, b);
    }

    #[test]
    fn an_unfinished_record_is_left_for_later() {
        let buf = records(&[b"one", b"two"]);
        for cut in 1..HEADER + 3 {
            let part = &buf[..buf.len() - cut];
            let s = scan(part, 10, false);
            assert_eq!(payloads(part, &s), [&b"one"[..]], "cut {cut}");
            assert_eq!((s.consumed, s.skipped), (HEADER + 3, 0));
        }
    }

    #[test]
    fn damage_is_skipped_to_the_next_good_record() {
        let mut buf = records(&[b"one", b"two", b"three"]);
        // A flipped payload byte of the second record.
        let second = HEADER + 3;
        buf[second + HEADER] ^= 0xff;
        let s = scan(&buf, 10, false);
        assert_eq!(payloads(&buf, &s), [&b"one"[..], b"three"]);
        assert_eq!(s.skipped, HEADER + 3);
        assert_eq!(s.consumed, buf.len());
        // Garbage between records, and zeros (pages a power loss left unwritten).
        let mut buf = records(&[b"one"]);
        buf.extend_from_slice(&[0; 100]);
        buf.extend_from_slice(b"TLYRxxxxxxxx garbage");
        buf.extend(records(&[b"four"]));
        let s = scan(&buf, 10, false);
        assert_eq!(payloads(&buf, &s), [&b"one"[..], b"four"]);
        assert_eq!(s.skipped, 100 + 20);
        // A damaged length that claims more than the rest: taken for a record still being
        // written, unless nothing can follow.
        let mut buf = records(&[b"one", b"two"]);
        buf[4..8].copy_from_slice(&1000u32.to_le_bytes());
        let s = scan(&buf, 10, false);
        assert_eq!((s.records.len(), s.consumed), (0, 0));
        let s = scan(&buf, 10, true);
        assert_eq!(payloads(&buf, &s), [&b"two"[..]]);
    }

    #[test]
    fn damage_at_the_end_stays_unconsumed() {
        let mut buf = records(&[b"one"]);
        buf.extend_from_slice(b"\0\0\0\0\0garbage");
        let s = scan(&buf, 10, false);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.consumed, HEADER + 3);
        assert_eq!(s.skipped, 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 12345;
        for len in 0..400 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    if x.is_multiple_of(7) {
                        b"TLYR"[(x as usize >> 3) % 4]
                    } else {
                        (x >> 16) as u8
                    }
                })
                .collect();
            let s = scan(&buf, 1000, true);
            assert!(s.consumed <= buf.len());
        }
    }
}
