//! Prometheus remote write (protocol 1.0): a hand-encoded protobuf `WriteRequest`, Snappy
//! block compression, and a blocking [`RemoteWriter`] that batches samples and POSTs them
//! over plain HTTP/1.1 (std `TcpStream`, so the engine needs no async runtime).
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }
//! ```

use crate::labels::Labels;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes a `WriteRequest` (uncompressed protobuf).
pub fn encode_write_request(series: &[(Labels, Vec<(i64, f64)>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ts = Vec::new();
    let mut tmp = Vec::new();
    for (labels, samples) in series {
        ts.clear();
        for (k, v) in labels.iter() {
            tmp.clear();
            len_field(&mut tmp, 1, k.as_bytes());
            len_field(&mut tmp, 2, v.as_bytes());
            len_field(&mut ts, 1, &tmp);
        }
        for &(t, v) in samples {
            tmp.clear();
            tmp.push(1 << 3 | 1);
            tmp.extend_from_slice(&v.to_bits().to_le_bytes());
            tmp.push(2 << 3);
            varint(&mut tmp, t as u64);
            len_field(&mut ts, 2, &tmp);
        }
        len_field(&mut out, 1, &ts);
    }
    out
}

/// Snappy block-format compression (greedy, 4-byte hash matches, 64 KiB window).
pub fn snappy_compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 2 + 16);
    varint(&mut out, input.len() as u64);
    let mut table = vec![0usize; 1 << 14];
    let hash = |b: &[u8]| -> usize {
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        (v.wrapping_mul(0x1e35_a7bd) >> 18) as usize
    };
    let mut lit_start = 0;
    let mut i = 0;
    while i + 4 <= input.len() {
        let h = hash(&input[i..]);
        let cand = table[h];
        table[h] = i + 1;
        if cand > 0 {
            let c = cand - 1;
            let off = i - c;
            if off > 0 && off < 65_536 && input[c..c + 4] == input[i..i + 4] {
                emit_literal(&mut out, &input[lit_start..i]);
                let mut len = 4;
                while i + len < input.len() && input[c + len] == input[i + len] && len < 64 {
                    len += 1;
                }
                // Copy with 2-byte offset: tag 0b10, length-1 in the upper 6 bits.
                out.push((((len - 1) as u8) << 2) | 2);
                out.extend_from_slice(&(off as u16).to_le_bytes());
                i += len;
                lit_start = i;
                continue;
            }
        }
        i += 1;
    }
    emit_literal(&mut out, &input[lit_start..]);
    out
}

fn emit_literal(out: &mut Vec<u8>, lit: &[u8]) {
    if lit.is_empty() {
        return;
    }
    let n = lit.len() - 1;
    if n < 60 {
        out.push((n as u8) << 2);
    } else {
        let bytes = (n as u32).to_le_bytes();
        let k = if n < 1 << 8 {
            1
        } else if n < 1 << 16 {
            2
        } else if n < 1 << 24 {
            3
        } else {
            4
        };
        out.push(((59 + k) as u8) << 2);
        out.extend_from_slice(&bytes[..k]);
    }
    out.extend_from_slice(lit);
}

/// Snappy block decompression (used by tests and by receivers of our own payloads).
pub fn snappy_decompress(input: &[u8]) -> Option<Vec<u8>> {
    let mut i = 0;
    let (mut len, mut shift) = (0u64, 0);
    loop {
        let b = *input.get(i)?;
        i += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(len.min(1 << 28) as usize);
    while i < input.len() {
        let tag = input[i];
        i += 1;
        match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let k = n - 59;
                    let mut b = [0u8; 4];
                    b[..k].copy_from_slice(input.get(i..i + k)?);
                    n = u32::from_le_bytes(b) as usize;
                    i += k;
                }
                out.extend_from_slice(input.get(i..i + n + 1)?);
                i += n + 1;
            }
            kind => {
                let (n, off) = match kind {
                    1 => {
                        let b = *input.get(i)?;
                        i += 1;
                        (
                            usize::from((tag >> 2) & 7) + 4,
                            usize::from(tag >> 5) << 8 | usize::from(b),
                        )
                    }
                    2 => {
                        let b = input.get(i..i + 2)?;
                        i += 2;
                        (
                            usize::from(tag >> 2) + 1,
                            usize::from(u16::from_le_bytes([b[0], b[1]])),
                        )
                    }
                    _ => {
                        let b = input.get(i..i + 4)?;
                        i += 4;
                        (
                            usize::from(tag >> 2) + 1,
                            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
                        )
                    }
                };
                if off == 0 || off > out.len() {
                    return None;
                }
                let start = out.len() - off;
                for k in 0..n {
                    let byte = out[start + k];
                    out.push(byte);
                }
            }
        }
    }
    (out.len() as u64 == len).then_some(out)
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("remote write URL must look like http://host:port/path: {0}")]
    BadUrl(String),
    #[error("remote write I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("remote write rejected with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
}

/// Batches samples and sends them to a remote-write receiver (Prometheus, Mimir, ...).
pub struct RemoteWriter {
    host: String,
    path: String,
    batch: Vec<(Labels, Vec<(i64, f64)>)>,
    pending: usize,
    pub max_batch_samples: usize,
}

impl RemoteWriter {
    /// `url` is `http://host:port/api/v1/write` (TLS is not supported).
    pub fn new(url: &str) -> Result<RemoteWriter, RemoteWriteError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| RemoteWriteError::BadUrl(url.into()))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Ok(RemoteWriter {
            host: host.into(),
            path: path.into(),
            batch: Vec::new(),
            pending: 0,
            max_batch_samples: 10_000,
        })
    }

    /// Queues samples of one series; sends when the batch is full.
    pub fn push(
        &mut self,
        labels: Labels,
        samples: Vec<(i64, f64)>,
    ) -> Result<(), RemoteWriteError> {
        self.pending += samples.len();
        self.batch.push((labels, samples));
        if self.pending >= self.max_batch_samples {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), RemoteWriteError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let body = snappy_compress(&encode_write_request(&self.batch));
        self.post(&body)?;
        self.batch.clear();
        self.pending = 0;
        Ok(())
    }

    /// Sends one already-compressed request body.
    pub fn post(&self, body: &[u8]) -> Result<(), RemoteWriteError> {
        let mut s = TcpStream::connect(&self.host)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
             X-Prometheus-Remote-Write-Version: 0.1.0\r\nUser-Agent: reel-tsdb\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        let status: u16 = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if !(200..300).contains(&status) {
            let body = resp
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or("")
                .chars()
                .take(500)
                .collect();
            return Err(RemoteWriteError::Rejected { status, body });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_round_trip() {
        let mut data = Vec::new();
        for i in 0..5000u32 {
            data.extend_from_slice(format!("series_{} value {}\n", i % 37, i % 5).as_bytes());
        }
        data.extend((0..300u32).map(|i| (i * 7919 % 251) as u8));
        let c = snappy_compress(&data);
        assert!(c.len() < data.len() / 3, "{} vs {}", c.len(), data.len());
        assert_eq!(snappy_decompress(&c).as_deref(), Some(&data[..]));
        assert_eq!(
            snappy_decompress(&snappy_compress(b"")).as_deref(),
            Some(&b""[..])
        );
    }

    #[test]
    fn protobuf_matches_reference_bytes() {
        let req = encode_write_request(&[(Labels::new([("__name__", "up")]), vec![(1, 1.0)])]);
        // TimeSeries{labels:[{__name__, up}], samples:[{1.0, 1}]} encoded by hand from the spec.
        let mut want = vec![0x0a, 0x1d, 0x0a, 0x0e, 0x0a, 0x08];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 0x02]);
        want.extend_from_slice(b"up");
        want.extend_from_slice(&[0x12, 0x0b, 0x09]);
        want.extend_from_slice(&1.0f64.to_bits().to_le_bytes());
        want.extend_from_slice(&[0x10, 0x01]);
        assert_eq!(req, want);
    }
}
