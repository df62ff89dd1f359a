//! Gorilla chunk encoding (Pelkonen et al., VLDB 2015): delta-of-delta timestamps and
//! XOR-compressed floats, written with a bit-level writer.
//!
//! Layout of a chunk: `u16 count` (big endian), then a bit stream: first timestamp (64 bits),
//! first value (64 bits), then per sample a delta-of-delta code and a value code. Unlike the
//! paper, the first delta uses the same delta-of-delta code (against 0), and the largest
//! bucket holds a full 64-bit delta-of-delta so that any i64 timestamps round-trip.
//!
//! Integer mode (flag `0x8000` in the count): when a whole chunk is encoded at once and every
//! value is an integer below 2^53 in magnitude (counters almost always are), values are
//! written as delta-of-deltas too instead of XORs; a counter rising by a few units per scrape
//! then costs ~6 bits instead of ~12. The head's streaming encoder always uses XOR mode.

#[derive(Default, Clone, Debug)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0..=8); 8 means a new byte is needed.
    used: u8,
}

impl BitWriter {
    pub fn new() -> BitWriter {
        BitWriter {
            bytes: Vec::new(),
            used: 8,
        }
    }

    pub fn write_bit(&mut self, bit: bool) {
        if self.used == 8 {
            self.bytes.push(0);
            self.used = 0;
        }
        if bit {
            if let Some(b) = self.bytes.last_mut() {
                *b |= 0x80 >> self.used;
            }
        }
        self.used += 1;
    }

    /// Writes the low `n` bits of `v`, most significant first.
    pub fn write_bits(&mut self, v: u64, mut n: u32) {
        while n > 0 {
            if self.used == 8 {
                self.bytes.push(0);
                self.used = 0;
            }
            let free = 8 - u32::from(self.used);
            let take = free.min(n);
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(b) = self.bytes.last_mut() {
                *b |= chunk << (free - take);
            }
            self.used += take as u8;
            n -= take;
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader { bytes, pos: 0 }
    }

    pub fn read_bit(&mut self) -> Option<bool> {
        let b = *self.bytes.get(self.pos / 8)?;
        let bit = b & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Some(bit)
    }

    pub fn read_bits(&mut self, mut n: u32) -> Option<u64> {
        let mut v: u64 = 0;
        while n > 0 {
            let b = *self.bytes.get(self.pos / 8)?;
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = avail.min(n);
            let chunk = (u64::from(b) >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 {
                chunk
            } else {
                (v << take) | chunk
            };
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }
}

/// Streaming encoder for one chunk.
#[derive(Clone, Debug)]
pub struct ChunkEncoder {
    bits: BitWriter,
    count: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
    pub min_t: i64,
}

/// Bucket table for delta-of-delta: (prefix bits, prefix length, payload bits).
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 7), (0b110, 3, 9), (0b1110, 4, 12)];

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder::new()
    }
}

impl ChunkEncoder {
    pub fn new() -> ChunkEncoder {
        ChunkEncoder {
            bits: BitWriter::new(),
            count: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: u32::MAX,
            trailing: 0,
            min_t: 0,
        }
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    pub fn max_t(&self) -> i64 {
        self.t
    }

    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        if self.count == 0 {
            self.bits.write_bits(t as u64, 64);
            self.bits.write_bits(vb, 64);
            self.min_t = t;
        } else {
            let delta = t.wrapping_sub(self.t);
            let dod = delta.wrapping_sub(self.delta);
            self.write_dod(dod);
            self.write_xor(vb);
            self.delta = delta;
        }
        self.t = t;
        self.v = vb;
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        write_bucketed(&mut self.bits, dod, &DOD_BUCKETS);
    }

    fn write_xor(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.bits.write_bit(false);
            return;
        }
        self.bits.write_bit(true);
        let leading = x.leading_zeros().min(31);
        let trailing = x.trailing_zeros();
        if self.leading != u32::MAX && leading >= self.leading && trailing >= self.trailing {
            self.bits.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.bits.write_bits(x >> self.trailing, sig);
        } else {
            self.bits.write_bit(true);
            let sig = 64 - leading - trailing;
            self.bits.write_bits(u64::from(leading), 5);
            // 64 significant bits does not fit in 6 bits; encode it as 0.
            self.bits.write_bits(u64::from(sig & 63), 6);
            self.bits.write_bits(x >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    /// The encoded chunk: 2-byte sample count followed by the bit stream.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.bits.bytes().len());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(self.bits.bytes());
        out
    }

    pub fn encoded_len(&self) -> usize {
        2 + self.bits.bytes().len()
    }
}

const INT_FLAG: u16 = 0x8000;
/// Value delta-of-delta buckets in integer mode; a `11111` prefix is followed by 64 raw bits.
const INT_BUCKETS: [(u64, u32, u32); 4] = [
    (0b10, 2, 4),
    (0b110, 3, 8),
    (0b1110, 4, 16),
    (0b11110, 5, 32),
];

fn as_exact_int(v: f64) -> Option<i64> {
    if !v.is_finite() || v.abs() >= 9_007_199_254_740_992.0 {
        return None;
    }
    let i = v as i64;
    ((i as f64).to_bits() == v.to_bits()).then_some(i)
}

/// A delta-of-delta in the first bucket (prefix, prefix bits, value bits)
/// that holds it: `0` alone for zero, bucket `n` holds
/// `-(2^(bits-1))+1 ..= 2^(bits-1)`, and all ones (one bit more than the
/// last prefix) escapes to 64 raw bits.
fn write_bucketed(bits: &mut BitWriter, dod: i64, buckets: &[(u64, u32, u32)]) {
    if dod == 0 {
        bits.write_bit(false);
        return;
    }
    for &(prefix, plen, nbits) in buckets {
        if (-(1i64 << (nbits - 1)) + 1..=1i64 << (nbits - 1)).contains(&dod) {
            bits.write_bits(prefix, plen);
            bits.write_bits((dod as u64) & ((1u64 << nbits) - 1), nbits);
            return;
        }
    }
    let escape_len = buckets.len() as u32 + 1;
    bits.write_bits((1u64 << escape_len) - 1, escape_len);
    bits.write_bits(dod as u64, 64);
}

/// Reads what [`write_bucketed`] wrote with the same buckets.
fn read_bucketed(r: &mut BitReader, buckets: &[(u64, u32, u32)]) -> Option<i64> {
    if !r.read_bit()? {
        return Some(0);
    }
    for &(_, _, nbits) in buckets {
        if !r.read_bit()? {
            // Larger raw values than the bucket's top are negative.
            let raw = r.read_bits(nbits)? as i64;
            return Some(if raw > 1i64 << (nbits - 1) { raw - (1i64 << nbits) } else { raw });
        }
    }
    Some(r.read_bits(64)? as i64)
}

/// Encodes a whole slice of samples into one chunk (integer mode when every value allows it).
pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let ints: Option<Vec<i64>> = samples.iter().map(|&(_, v)| as_exact_int(v)).collect();
    if let (Some(ints), true) = (
        ints,
        !samples.is_empty() && samples.len() < usize::from(INT_FLAG),
    ) {
        let mut ts = ChunkEncoder::new();
        let (mut prev_v, mut prev_dv) = (0i64, 0i64);
        for (k, (&(t, _), &v)) in samples.iter().zip(&ints).enumerate() {
            if k == 0 {
                ts.bits.write_bits(t as u64, 64);
                ts.bits.write_bits(v as u64, 64);
                ts.min_t = t;
            } else {
                let delta = t.wrapping_sub(ts.t);
                ts.write_dod(delta.wrapping_sub(ts.delta));
                ts.delta = delta;
                let dv = v.wrapping_sub(prev_v);
                write_bucketed(&mut ts.bits, dv.wrapping_sub(prev_dv), &INT_BUCKETS);
                prev_dv = dv;
            }
            ts.t = t;
            prev_v = v;
        }
        let mut out = Vec::with_capacity(2 + ts.bits.bytes().len());
        out.extend_from_slice(&(samples.len() as u16 | INT_FLAG).to_be_bytes());
        out.extend_from_slice(ts.bits.bytes());
        return out;
    }
    let mut e = ChunkEncoder::new();
    for &(t, v) in samples {
        e.append(t, v);
    }
    e.to_bytes()
}

/// Decodes a chunk; `None` when it is truncated or malformed.
pub fn decode(bytes: &[u8]) -> Option<Vec<(i64, f64)>> {
    let count = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]) & !INT_FLAG;
    let mut out = Vec::with_capacity(usize::from(count));
    decode_into(bytes, &mut out)?;
    Some(out)
}



/// Appends a chunk's samples to `out`.
pub fn decode_into(bytes: &[u8], out: &mut Vec<(i64, f64)>) -> Option<()> {
    let header = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
    let count = usize::from(header & !INT_FLAG);
    if count == 0 {
        return Some(());
    }
    let mut r = BitReader::new(&bytes[2..]);
    if header & INT_FLAG != 0 {
        let mut t = r.read_bits(64)? as i64;
        let mut v = r.read_bits(64)? as i64;
        out.push((t, v as f64));
        let (mut delta, mut dv) = (0i64, 0i64);
        for _ in 1..count {
            delta = delta.wrapping_add(read_bucketed(&mut r, &DOD_BUCKETS)?);
            t = t.wrapping_add(delta);
            dv = dv.wrapping_add(read_bucketed(&mut r, &INT_BUCKETS)?);
            v = v.wrapping_add(dv);
            out.push((t, v as f64));
        }
        return Some(());
    }
    let mut t = r.read_bits(64)? as i64;
    let mut v = r.read_bits(64)?;
    out.push((t, f64::from_bits(v)));
    let (mut delta, mut leading, mut trailing) = (0i64, 0u32, 0u32);
    for _ in 1..count {
        let dod = read_bucketed(&mut r, &DOD_BUCKETS)?;
        delta = delta.wrapping_add(dod);
        t = t.wrapping_add(delta);
        if r.read_bit()? {
            if r.read_bit()? {
                leading = r.read_bits(5)? as u32;
                let mut sig = r.read_bits(6)? as u32;
                if sig == 0 {
                    sig = 64;
                }
                trailing = 64u32.checked_sub(leading + sig)?;
            }
            let sig = 64 - leading - trailing;
            let bits = r.read_bits(sig)?;
            v ^= bits << trailing;
        }
        out.push((t, f64::from_bits(v)));
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic pseudo-random numbers without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn assert_roundtrip(samples: &[(i64, f64)]) {
        let bytes = encode(samples);
        let got = decode(&bytes).expect("decodes");
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "value bits differ");
        }
    }

    #[test]
    fn roundtrip_random_property() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..2000 {
            let n = (rng.next() % 200) as usize + 1;
            let mut t = rng.next() as i64;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                // Mix regular, jittered, negative and huge deltas.
                let step = match rng.next() % 6 {
                    0 => 10_000,
                    1 => 10_000 + (rng.next() % 100) as i64 - 50,
                    2 => -((rng.next() % 5000) as i64),
                    3 => rng.next() as i64,
                    4 => (rng.next() % 3000) as i64,
                    _ => 0,
                };
                t = t.wrapping_add(step);
                let v = match (rng.next() + case) % 7 {
                    0 => f64::from_bits(rng.next()), // any bit pattern, NaNs included
                    1 => f64::NAN,
                    2 => f64::from_bits(0x7ff0_0000_0000_0001 | (rng.next() & 0xffff)), // signalling NaN payloads
                    3 => (rng.next() % 1000) as f64,
                    4 => -0.0,
                    5 => f64::INFINITY,
                    _ => (rng.next() % 10) as f64 * 0.1,
                };
                samples.push((t, v));
            }
            assert_roundtrip(&samples);
        }
    }

    #[test]
    fn roundtrip_integer_mode_property() {
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let n = (rng.next() % 200) as usize + 1;
            let (mut t, mut v) = (
                rng.next() as i64 >> 8,
                (rng.next() % (1 << 40)) as i64 - (1 << 39),
            );
            let samples: Vec<(i64, f64)> = (0..n)
                .map(|_| {
                    t = t.wrapping_add(match rng.next() % 3 {
                        0 => 10_000,
                        1 => -((rng.next() % 100) as i64),
                        _ => rng.next() as i64 >> 1,
                    });
                    v = match rng.next() % 4 {
                        0 => v + (rng.next() % 5) as i64,
                        1 => (rng.next() as i64) >> 11, // any integer below 2^53
                        2 => -v,
                        _ => v,
                    };
                    (t, v as f64)
                })
                .collect();
            let bytes = encode(&samples);
            assert!(bytes[0] & 0x80 != 0, "integer mode expected");
            assert_roundtrip(&samples);
        }
        // -0.0 and 2^53 are not exact small integers: XOR mode keeps their bits.
        assert_roundtrip(&[(0, -0.0), (1, 1.0)]);
        assert_roundtrip(&[(0, 9_007_199_254_740_992.0), (1, 1.0)]);
        assert!(encode(&[(0, -0.0)])[0] & 0x80 == 0);
    }

    #[test]
    fn streaming_encoder_matches_decoder() {
        let mut e = ChunkEncoder::new();
        let samples: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, (i as f64).sin())).collect();
        for &(t, v) in &samples {
            e.append(t, v);
        }
        assert_eq!(decode(&e.to_bytes()), Some(samples));
    }

    #[test]
    fn roundtrip_edge_values() {
        assert_roundtrip(&[
            (i64::MIN, f64::MIN),
            (i64::MAX, f64::MAX),
            (0, f64::from_bits(1)),
            (i64::MIN, 0.0),
        ]);
        assert_roundtrip(&[(5, f64::from_bits(u64::MAX)), (6, f64::from_bits(0))]);
        assert_roundtrip(&[]);
    }

    #[test]
    fn truncated_chunk_is_none_not_panic() {
        let bytes = encode(&[(1, 1.0), (2, 2.0), (3, 3.5)]);
        for cut in 0..bytes.len() - 1 {
            let _ = decode(&bytes[..cut]);
        }
        assert!(decode(&bytes[..bytes.len() - 2]).is_none());
    }

    #[test]
    fn regular_10s_slowly_varying_compresses_below_1_5_bytes() {
        // A counter that grows by small integer amounts each 10 s scrape (typical requests_total)
        // and a gauge that mostly repeats (typical of memory/connection gauges).
        let mut rng = Rng(42);
        let (mut total_bytes, mut total_samples) = (0usize, 0usize);
        for series in 0..100 {
            let mut v = (rng.next() % 1000) as f64;
            let samples: Vec<(i64, f64)> = (0..120)
                .map(|i| {
                    if series % 2 == 0 {
                        v += (rng.next() % 4) as f64;
                    } else if rng.next() % 8 == 0 {
                        v += 1.0;
                    }
                    (1_700_000_000_000 + i * 10_000, v)
                })
                .collect();
            let bytes = encode(&samples);
            total_bytes += bytes.len();
            total_samples += samples.len();
        }
        let bps = total_bytes as f64 / total_samples as f64;
        eprintln!("gorilla bytes/sample on regular 10s data: {bps:.3}");
        assert!(bps < 1.5, "{bps}");
    }
}
