//! NumPy `.npy` (format version 1.0) for 1-D and 2-D little-endian `f32`
//! and `i32` arrays, so Python can load our factors and splits with
//! `numpy.load` and we can load theirs.
//!
//! Layout: `\x93NUMPY`, version `1 0`, a little-endian u16 header length,
//! an ASCII header `{'descr': '<f4', 'fortran_order': False, 'shape': (r, c), }`
//! padded with spaces and ending in `\n` so the data starts at a multiple
//! of 64 bytes, then the values in C (row-major) order.

use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element types this module reads and writes.
pub trait NpyElement: Copy {
    const DESCR: &'static str;
    fn to_le(self) -> [u8; 4];
    fn from_le(b: [u8; 4]) -> Self;
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn to_le(self) -> [u8; 4] {
        self.to_le_bytes()
    }
    fn from_le(b: [u8; 4]) -> Self {
        f32::from_le_bytes(b)
    }
}

impl NpyElement for i32 {
    const DESCR: &'static str = "<i4";
    fn to_le(self) -> [u8; 4] {
        self.to_le_bytes()
    }
    fn from_le(b: [u8; 4]) -> Self {
        i32::from_le_bytes(b)
    }
}

/// Encodes an array of the given shape (1 or 2 dimensions).
pub fn encode<T: NpyElement>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        [r, c] => format!("({r}, {c})"),
        _ => {
            return Err(Error::InvalidInput(
                "npy arrays here have 1 or 2 dimensions".into(),
            ))
        }
    };
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::InvalidInput(format!(
            "{} values do not fill shape {shape_text}",
            data.len()
        )));
    }
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        T::DESCR
    );
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + 4 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in data {
        out.extend_from_slice(&v.to_le());
    }
    Ok(out)
}

/// Decodes an array written by [`encode`] or by numpy (version 1.0 or 2.0
/// headers, C order, the element type asked for). Returns shape and data.
pub fn decode<T: NpyElement>(bytes: &[u8]) -> Result<(Vec<usize>, Vec<T>)> {
    let bad = |m: &str| Error::CorruptNpy(m.to_string());
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unsupported format version")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("header runs past the end"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    if !header.contains(&format!("'descr': '{}'", T::DESCR)) {
        return Err(Error::CorruptNpy(format!(
            "expected element type {}: {header}",
            T::DESCR
        )));
    }
    if !header.contains("'fortran_order': False") {
        return Err(bad("only C-order arrays are supported"));
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape in header"))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("shape is not a list of numbers")))
        .collect::<Result<_>>()?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    if data.len() != 4 * count {
        return Err(Error::CorruptNpy(format!(
            "{} data bytes for {count} values",
            data.len()
        )));
    }
    let values = data
        .chunks_exact(4)
        .map(|c| T::from_le([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, values))
}

/// Writes [`encode`]'s bytes to `path`.
pub fn write<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = encode(shape, data)?;
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and [`decode`]s `path`.
pub fn read<T: NpyElement>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_aligns_data_to_64_bytes() {
        let data = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0];
        let bytes = encode(&[2, 3], &data).expect("shape fits");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[10 + header_len - 1], b'\n');
        let (shape, back) = decode::<f32>(&bytes).expect("valid");
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(back, data);
        let ints = encode(&[3], &[1i32, -2, 3]).expect("shape fits");
        assert_eq!(decode::<i32>(&ints).expect("valid").1, vec![1, -2, 3]);
        assert!(decode::<f32>(&ints).is_err(), "wrong element type");
        assert!(
            decode::<f32>(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        assert!(encode(&[4], &data).is_err());
    }
}
