//! Golden vectors for the C-simulation testbenches, produced by the Rust
//! reference (`eddy_quant::matvec_i8`, `eddy::offload::scan_cpu`).
//!
//! Files (little-endian) in `fpga/hls/golden/`:
//! - `mv_*.bin`: `EDGM`, then u32 bits, group, rows, cols; the packed
//!   weights; `cols` i8 codes; per group f32 scales and i32 sums; `rows` f32
//!   expected outputs (compared bit for bit, any NaN equal to any NaN).
//! - `scan_*.bin`: `EDGS`, then u32 channels, d_state; f32 abs and rel
//!   bound; f32 arrays A, channel params `[dt, u, z, D]`, B then C, state
//!   in, expected state out, expected y, then the term magnitudes of state
//!   and y the bound is relative to (see [`SCAN_REL_BOUND`]).

use eddy::offload::{scan_cpu, ScanArgs};
use eddy_quant::{matvec_i8, quantize_activations_i8, quantize_row, TensorFormat};

/// Allowed error of the scan unit against the CPU scan, per value:
/// `|fpga - cpu| <= SCAN_ABS_BOUND + SCAN_REL_BOUND * mag`, where `mag` is
/// the size of the terms the value is made of ([`ScanCase::h_mag`],
/// [`ScanCase::y_mag`]): relative to the result itself no bound holds, as
/// `exp(A delta) h + delta B u` can cancel. The only difference from the
/// CPU is the unit's own log1p in softplus (a few ulp), so the error is a
/// few ulp of the terms. Measured worst cases are printed by the
/// `scan_error` test and listed in `fpga/README.md`.
pub const SCAN_ABS_BOUND: f32 = 1e-9;
/// Relative part of the scan bound.
pub const SCAN_REL_BOUND: f32 = 4e-6;

/// The shared deterministic generator the golden files were drawn with.
pub use eddy_testkit::Rng;

/// One matrix-vector test case.
#[derive(Clone, Debug)]
pub struct MatvecCase {
    /// File stem.
    pub name: String,
    /// Weight format.
    pub format: TensorFormat,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Packed weights.
    pub w: Vec<u8>,
    /// int8 activation codes.
    pub xq: Vec<i8>,
    /// Activation scales per group.
    pub xs: Vec<f32>,
    /// Activation code sums per group.
    pub xsum: Vec<i32>,
    /// Reference output.
    pub y: Vec<f32>,
}

impl MatvecCase {
    /// Quantized random weights and activations (what a model produces).
    pub fn random(name: &str, format: TensorFormat, rows: usize, cols: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let row_bytes = format.byte_len(1, cols as u64).unwrap_or(0) as usize;
        let mut w = vec![0u8; rows * row_bytes];
        let mut vals = vec![0f32; cols];
        for row in w.chunks_exact_mut(row_bytes) {
            vals.iter_mut().for_each(|v| *v = rng.uniform(-1.0, 1.0));
            // A random affine distortion per row so scales and minimums vary.
            let (a, b) = (rng.uniform(0.01, 4.0), rng.uniform(-2.0, 2.0));
            vals.iter_mut().for_each(|v| *v = *v * a + b);
            // Random finite f32 rows always fit f16 headers here.
            quantize_row(format, &vals, row).unwrap_or(());
        }
        let x: Vec<f32> = (0..cols).map(|_| rng.uniform(-3.0, 3.0)).collect();
        Self::with_acts(name, format, rows, cols, w, &x)
    }

    fn with_acts(name: &str, format: TensorFormat, rows: usize, cols: usize, w: Vec<u8>, x: &[f32]) -> Self {
        let group = format.group_size().unwrap_or(32);
        let groups = cols / group;
        let (mut xq, mut xs, mut xsum) = (vec![0i8; cols], vec![0f32; groups], vec![0i32; groups]);
        quantize_activations_i8(x, group, &mut xq, &mut xs, &mut xsum).unwrap_or(());
        Self::finish(name, format, rows, cols, w, xq, xs, xsum)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        name: &str,
        format: TensorFormat,
        rows: usize,
        cols: usize,
        w: Vec<u8>,
        xq: Vec<i8>,
        xs: Vec<f32>,
        xsum: Vec<i32>,
    ) -> Self {
        let mut y = vec![0f32; rows];
        matvec_i8(format, &w, cols, &xq, &xs, &xsum, &mut y);
        MatvecCase { name: name.to_string(), format, rows, cols, w, xq, xs, xsum, y }
    }

    /// Raw random bytes as weights (any f16 header, incl. subnormal, huge,
    /// infinite and NaN) and extreme activations (all +-127, huge and tiny
    /// scales, sums that do not match the codes).
    pub fn adversarial(name: &str, format: TensorFormat, rows: usize, cols: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let row_bytes = format.byte_len(1, cols as u64).unwrap_or(0) as usize;
        let w: Vec<u8> = (0..rows * row_bytes).map(|_| rng.next_u64() as u8).collect();
        let group = format.group_size().unwrap_or(32);
        let groups = cols / group;
        let xq: Vec<i8> = (0..cols)
            .map(|i| match i % 5 {
                0 => 127,
                1 => -127,
                _ => (rng.next_u64() % 255) as i32 as i8,
            })
            .collect();
        let xs: Vec<f32> = (0..groups)
            .map(|g| match g % 4 {
                0 => 1e30,
                1 => 1e-30,
                2 => 0.0,
                _ => rng.uniform(0.0, 1.0),
            })
            .collect();
        let xsum: Vec<i32> = (0..groups).map(|_| (rng.next_u64() % 65536) as i32 - 32768).collect();
        Self::finish(name, format, rows, cols, w, xq, xs, xsum)
    }

    /// The golden file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = b"EDGM".to_vec();
        for v in [
            self.format.code_bits().unwrap_or(0),
            self.format.group_size().unwrap_or(0) as u32,
            self.rows as u32,
            self.cols as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.w);
        b.extend(self.xq.iter().map(|&q| q as u8));
        self.xs.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        self.xsum.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        self.y.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        b
    }
}

/// The committed matvec cases: every code width, every group size, rows
/// that are not a multiple of any PE count, and raw-byte adversarial ones.
pub fn matvec_cases() -> Vec<MatvecCase> {
    use TensorFormat::{W2, W4, W8};
    vec![
        MatvecCase::random("mv_w2g128_37x512", W2 { group: 128 }, 37, 512, 1),
        MatvecCase::random("mv_w2g64_16x256", W2 { group: 64 }, 16, 256, 2),
        MatvecCase::random("mv_w2g32_9x96", W2 { group: 32 }, 9, 96, 3),
        MatvecCase::random("mv_w2g256_5x768", W2 { group: 256 }, 5, 768, 4),
        MatvecCase::random("mv_w4g64_20x384", W4 { group: 64 }, 20, 384, 5),
        MatvecCase::random("mv_w4g256_8x512", W4 { group: 256 }, 8, 512, 6),
        MatvecCase::random("mv_w8g32_5x64", W8 { group: 32 }, 5, 64, 7),
        MatvecCase::random("mv_w8g128_12x256", W8 { group: 128 }, 12, 256, 8),
        MatvecCase::adversarial("mv_adv_w2g32_11x128", W2 { group: 32 }, 11, 128, 9),
        MatvecCase::adversarial("mv_adv_w4g64_7x192", W4 { group: 64 }, 7, 192, 10),
        MatvecCase::adversarial("mv_adv_w8g32_13x96", W8 { group: 32 }, 13, 96, 11),
    ]
}

/// One scan test case.
#[derive(Clone, Debug)]
pub struct ScanCase {
    /// File stem.
    pub name: String,
    /// Channels.
    pub channels: usize,
    /// State size.
    pub d_state: usize,
    /// `A`, `[channels, d_state]`.
    pub a: Vec<f32>,
    /// `[channels][dt, u, z, D]`.
    pub chp: Vec<f32>,
    /// `B` then `C`.
    pub bc: Vec<f32>,
    /// State before.
    pub h_in: Vec<f32>,
    /// State after (CPU).
    pub h_out: Vec<f32>,
    /// Output (CPU).
    pub y: Vec<f32>,
    /// Per state value, the size of the terms it is made of:
    /// `|exp(A delta) h_in| + |delta B u|` (f64, rounded to f32).
    pub h_mag: Vec<f32>,
    /// Per channel: `(Σ_s |h_s C_s| + |u D|) |silu(z)|`.
    pub y_mag: Vec<f32>,
}

impl ScanCase {
    /// Random inputs in the ranges a trained Mamba shows (A = -exp(a_log)
    /// with a_log in [-1, 3]; dt before softplus in [-7, 3], some above the
    /// softplus threshold of 20).
    pub fn random(name: &str, channels: usize, d_state: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let a: Vec<f32> = (0..channels * d_state).map(|_| -rng.uniform(-1.0, 3.0).exp()).collect();
        let mut chp = Vec::with_capacity(channels * 4);
        for c in 0..channels {
            let dt = if c % 17 == 5 { rng.uniform(20.0, 24.0) } else { rng.uniform(-7.0, 3.0) };
            chp.extend_from_slice(&[
                dt,
                rng.uniform(-3.0, 3.0),
                rng.uniform(-6.0, 6.0),
                rng.uniform(-2.0, 2.0),
            ]);
        }
        let bc: Vec<f32> = (0..2 * d_state).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let h_in: Vec<f32> = (0..channels * d_state).map(|_| rng.uniform(-4.0, 4.0)).collect();
        Self::from_inputs(name, channels, d_state, a, chp, bc, h_in)
    }

    /// Expected outputs from the CPU scan for these inputs.
    pub fn from_inputs(
        name: &str,
        channels: usize,
        d_state: usize,
        a: Vec<f32>,
        chp: Vec<f32>,
        bc: Vec<f32>,
        h_in: Vec<f32>,
    ) -> Self {
        let col = |k: usize| -> Vec<f32> { chp.chunks_exact(4).map(|c| c[k]).collect() };
        let (dt, u, z, d) = (col(0), col(1), col(2), col(3));
        let (b, c) = bc.split_at(d_state);
        let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b, c, z: &z, d_state };
        let mut h_out = h_in.clone();
        let mut y = vec![0f32; channels];
        scan_cpu(&args, &mut h_out, &mut y);
        let (mut h_mag, mut y_mag) = (vec![0f32; channels * d_state], vec![0f32; channels]);
        for ch in 0..channels {
            let (dt, u, z, dd) = (dt[ch] as f64, u[ch] as f64, z[ch] as f64, d[ch] as f64);
            let delta = if dt > 20.0 { dt } else { dt.exp().ln_1p() };
            let silu = (z / (1.0 + (-z).exp())).abs();
            let mut dot = 0f64;
            for s in 0..d_state {
                let i = ch * d_state + s;
                let decay = (a[i] as f64 * delta).exp();
                h_mag[i] = ((decay * h_in[i] as f64).abs() + (delta * b[s] as f64 * u).abs()) as f32;
                dot += (h_out[i] as f64 * c[s] as f64).abs();
            }
            y_mag[ch] = ((dot + (u * dd).abs()) * silu) as f32;
        }
        ScanCase { name: name.to_string(), channels, d_state, a, chp, bc, h_in, h_out, y, h_mag, y_mag }
    }

    /// The golden file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = b"EDGS".to_vec();
        b.extend_from_slice(&(self.channels as u32).to_le_bytes());
        b.extend_from_slice(&(self.d_state as u32).to_le_bytes());
        b.extend_from_slice(&SCAN_ABS_BOUND.to_le_bytes());
        b.extend_from_slice(&SCAN_REL_BOUND.to_le_bytes());
        for arr in [&self.a, &self.chp, &self.bc, &self.h_in, &self.h_out, &self.y, &self.h_mag, &self.y_mag]
        {
            arr.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        }
        b
    }
}

/// The committed scan cases (Mamba-130M's d_state 16, and odd sizes that
/// exercise the 8 partial sums' remainder).
pub fn scan_cases() -> Vec<ScanCase> {
    vec![
        ScanCase::random("scan_64x16", 64, 16, 21),
        ScanCase::random("scan_40x13", 40, 13, 22),
        ScanCase::random("scan_8x64", 8, 64, 23),
    ]
}

/// Every golden file as (file name, bytes).
pub fn all_files() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> =
        matvec_cases().iter().map(|c| (format!("{}.bin", c.name), c.to_bytes())).collect();
    out.extend(scan_cases().iter().map(|c| (format!("{}.bin", c.name), c.to_bytes())));
    out
}
