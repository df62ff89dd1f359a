//! Write-ahead log: length-prefixed, CRC32-checked records, fsync'd with group commit.
//!
//! Record on disk: `u32 len (LE) | u32 crc32(payload) (LE) | payload`. Payload kinds:
//! `1` series: `u32 id | u16 n | n × (u16 len, name bytes, u16 len, value bytes)`;
//! `2` samples: `u32 n | i64 base_t | n × (varint id, varint zigzag(t − base_t), u64 value bits)`. A torn or corrupt tail
//! ends replay (it was never acknowledged) and is cut off before new records are written.

use crate::labels::Labels;
use parking_lot::{Condvar, Mutex};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE), the checksum `crc32fast` computes; table-driven to avoid a dependency.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

pub enum Record {
    Series(u32, Labels),
    Samples(Vec<(u32, i64, f64)>),
}

pub fn encode_series(out: &mut Vec<u8>, id: u32, labels: &Labels) {
    let mut p = Vec::with_capacity(64);
    p.push(1u8);
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&(labels.len() as u16).to_le_bytes());
    for (k, v) in labels.iter() {
        for s in [k, v] {
            let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
            p.extend_from_slice(&(b.len() as u16).to_le_bytes());
            p.extend_from_slice(b);
        }
    }
    frame(out, &p);
}

pub fn encode_samples(out: &mut Vec<u8>, samples: &[(u32, i64, f64)]) {
    let mut p = Vec::with_capacity(13 + samples.len() * 14);
    p.push(2u8);
    p.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    let base = samples.first().map_or(0, |s| s.1);
    p.extend_from_slice(&base.to_le_bytes());
    for &(id, t, v) in samples {
        put_varint(&mut p, u64::from(id));
        let d = t.wrapping_sub(base);
        put_varint(&mut p, zigzag(d));
        p.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    frame(out, &p);
}

/// LEB128, as the WAL and the block index write integers.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a [`put_varint`] at `*pos`, moving past it; `None` if cut short or too long.
pub(crate) fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

struct Cursor<'a>(&'a [u8]);
impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn varint(&mut self) -> Option<u64> {
        let mut pos = 0;
        let v = read_varint(self.0, &mut pos)?;
        self.0 = &self.0[pos..];
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn decode_payload(p: &[u8]) -> Option<Record> {
    let mut c = Cursor(p);
    match c.take(1)?[0] {
        1 => {
            let id = c.u32()?;
            let n = c.u16()?;
            let mut pairs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                pairs.push((c.string()?, c.string()?));
            }
            Some(Record::Series(id, Labels::new(pairs)))
        }
        2 => {
            let n = c.u32()? as usize;
            let base = c.u64()? as i64;
            let mut v = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                let id = u32::try_from(c.varint()?).ok()?;
                let z = c.varint()?;
                let t = base.wrapping_add(unzigzag(z));
                v.push((id, t, f64::from_bits(c.u64()?)));
            }
            Some(Record::Samples(v))
        }
        _ => None,
    }
}

/// Reads every intact record; returns them with the byte length of the intact prefix.
pub fn read_all(path: &Path) -> std::io::Result<(Vec<Record>, u64)> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    }
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        let Some(rec) = decode_payload(payload) else {
            break;
        };
        records.push(rec);
        pos += 8 + len;
    }
    Ok((records, pos as u64))
}

struct CommitState {
    buf: Vec<u8>,
    /// Number of records handed to `append`; the sequence of the latest one.
    appended: u64,
    durable: u64,
    syncing: bool,
    failed: Option<String>,
}

/// The log writer. `stage` queues bytes in order without syncing; `commit` waits until
/// everything staged so far is on disk. Whoever arrives while no sync is running becomes the
/// leader and writes + fsyncs the whole queue for every waiter (group commit).
pub struct Wal {
    state: Mutex<CommitState>,
    done: Condvar,
    file: Mutex<File>,
}

impl Wal {
    /// Opens (creating) the log, cutting off any torn tail at `valid_len`.
    pub fn open(path: &Path, valid_len: u64) -> std::io::Result<Wal> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        file.set_len(valid_len)?;
        file.seek(SeekFrom::End(0))?;
        file.sync_all()?;
        Ok(Wal {
            state: Mutex::new(CommitState {
                buf: Vec::new(),
                appended: 0,
                durable: 0,
                syncing: false,
                failed: None,
            }),
            done: Condvar::new(),
            file: Mutex::new(file),
        })
    }

    /// Queues bytes (whole framed records) and returns their sequence number.
    pub fn stage(&self, bytes: &[u8]) -> u64 {
        let mut st = self.state.lock();
        st.buf.extend_from_slice(bytes);
        st.appended += 1;
        st.appended
    }

    /// Blocks until the record with sequence `seq` (and all before it) is fsync'd.
    pub fn commit(&self, seq: u64) -> std::io::Result<()> {
        let mut st = self.state.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(std::io::Error::other(e.clone()));
            }
            if st.durable >= seq {
                return Ok(());
            }
            if st.syncing {
                self.done.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let buf = std::mem::take(&mut st.buf);
            let target = st.appended;
            drop(st);
            let res = {
                let mut f = self.file.lock();
                f.write_all(&buf).and_then(|()| f.sync_data())
            };
            st = self.state.lock();
            st.syncing = false;
            match res {
                Ok(()) => st.durable = target,
                // A failed fsync leaves the file in an unknown state; refuse further writes.
                Err(e) => st.failed = Some(e.to_string()),
            }
            self.done.notify_all();
        }
    }

    /// Refuses every later commit with `e` (the log on disk can no longer be trusted to
    /// match the head, e.g. after a failed swap in a checkpoint).
    pub fn poison(&self, e: &std::io::Error) {
        let mut st = self.state.lock();
        if st.failed.is_none() {
            st.failed = Some(format!("WAL checkpoint failed: {e}"));
        }
        self.done.notify_all();
    }

    /// Replaces the log with `path` (already written and synced by the caller). The caller
    /// must guarantee no appends are in flight.
    pub fn replace_file(&self, path: &Path) -> std::io::Result<()> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        file.seek(SeekFrom::End(0))?;
        let mut st = self.state.lock();
        st.buf.clear();
        st.durable = st.appended;
        *self.file.lock() = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_vector() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn torn_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("wal");
        let mut bytes = Vec::new();
        encode_series(&mut bytes, 0, &Labels::metric("m", &[("a", "b")]));
        encode_samples(
            &mut bytes,
            &[
                (0, 1, 1.0),
                (70_000, -2, 2.0),
                (u32::MAX, i64::MAX, f64::NAN),
            ],
        );
        let good = bytes.len();
        encode_samples(&mut bytes, &[(0, 3, 3.0)]);
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("write");
        let (recs, valid) = read_all(&path).expect("read");
        assert_eq!(recs.len(), 2);
        let Record::Samples(s) = &recs[1] else {
            panic!("samples record")
        };
        assert_eq!(
            (s[1].0, s[1].1, s[2].0, s[2].1),
            (70_000, -2, u32::MAX, i64::MAX)
        );
        assert!(s[2].2.is_nan());
        assert_eq!(valid as usize, good);
    }
}
