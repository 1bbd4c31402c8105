//! Minimal writer of NumPy `.npy` files (format version 1.0, little-endian
//! f32, C order). Written by hand because it is ~20 lines and the `npyz`
//! style crates pull far more than a header and a byte dump.

use std::io::Write;

/// Write a 2-D f32 array of `rows x cols` (row-major `data`) as `.npy`.
pub fn write_f32_2d(mut w: impl Write, rows: usize, cols: usize, data: &[f32]) -> std::io::Result<()> {
    if data.len() != rows * cols {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("npy: {} values for shape ({rows}, {cols})", data.len()),
        ));
    }
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' must be a
    // multiple of 64 bytes.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    for v in data {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_aligned_and_data_follows() {
        let mut out = Vec::new();
        super::write_f32_2d(&mut out, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let hlen = u16::from_le_bytes([out[8], out[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert!(std::str::from_utf8(&out[10..10 + hlen]).unwrap().contains("'shape': (2, 3)"));
        assert_eq!(out.len(), 10 + hlen + 24);
        assert_eq!(&out[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
        assert!(super::write_f32_2d(&mut Vec::new(), 2, 2, &[0.0]).is_err());
    }
}
