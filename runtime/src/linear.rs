//! Linear layers over borrowed weights: `y = W x (+ b)`.
//!
//! Float weights (f32, f16) multiply f32 activations. Integer weights
//! (W8/W4/W2) multiply int8 activations quantized on the fly per weight
//! group (A8), accumulate exactly in i32 per group, and scale to f32.

use crate::file::TensorView;
use eddy_kernels::{ActsI8, Kernels};
use eddy_quant::{dequantize_row, f16_to_f32_slice, quantize_activations_i8, TensorFormat};

/// Caller-owned buffers for quantized activations (part of the scratch).
pub struct ActScratch<'s> {
    /// int8 codes, at least as long as the widest input.
    pub q: &'s mut [i8],
    /// One scale per activation group.
    pub scales: &'s mut [f32],
    /// One code sum per activation group.
    pub sums: &'s mut [i32],
    /// Reordered codes, for kernels that unpack weights out of order.
    pub perm: &'s mut [i8],
}

impl ActScratch<'_> {
    /// f32 words of scratch needed for inputs of up to `max_cols` values
    /// (smallest group size 32).
    pub fn words(max_cols: usize) -> usize {
        2 * max_cols.div_ceil(4) + 2 * max_cols.div_ceil(32)
    }

    /// Carve the buffers out of `words` f32 words of scratch.
    pub fn from_words(words: &mut [f32], max_cols: usize) -> ActScratch<'_> {
        let (q, rest) = words.split_at_mut(max_cols.div_ceil(4));
        let (perm, rest) = rest.split_at_mut(max_cols.div_ceil(4));
        let (scales, sums) = rest.split_at_mut(max_cols.div_ceil(32));
        ActScratch {
            q: bytemuck::cast_slice_mut(q),
            scales,
            sums: bytemuck::cast_slice_mut(&mut sums[..max_cols.div_ceil(32)]),
            perm: bytemuck::cast_slice_mut(perm),
        }
    }
}

/// A weight matrix `[rows, cols]` used in place, with an optional f32 bias.
#[derive(Clone, Copy, Debug)]
pub struct Linear<'a> {
    /// The weights.
    pub weight: TensorView<'a>,
    /// Bias of length `rows`, if any.
    pub bias: Option<&'a [f32]>,
}

impl<'a> Linear<'a> {
    /// Input length.
    pub fn cols(&self) -> usize {
        self.weight.cols() as usize
    }

    /// `y = W x + b` with the given kernel set. `x.len() == cols`,
    /// `y.len() == rows` (validated when the model was loaded).
    pub fn matvec(&self, x: &[f32], y: &mut [f32], act: &mut ActScratch<'_>, kernels: &Kernels) {
        let cols = self.cols();
        match self.weight.format {
            TensorFormat::F32 => (kernels.matvec_f32)(self.weight.as_f32().unwrap_or(&[]), cols, x, y),
            TensorFormat::F16 => (kernels.matvec_f16)(self.weight.as_f16_bits().unwrap_or(&[]), cols, x, y),
            format => {
                let group = format.group_size().unwrap_or(cols);
                let groups = cols / group;
                let q = &mut act.q[..cols];
                if quantize_activations_i8(x, group, q, act.scales, act.sums).is_err() {
                    // Non-finite activations: propagate NaN rather than garbage.
                    y.fill(f32::NAN);
                    return;
                }
                let acts = ActsI8 { q, scales: &act.scales[..groups], sums: &act.sums[..groups] };
                (kernels.matvec_i8)(format, self.weight.data, cols, &acts, y, act.perm);
            }
        }
        if let Some(b) = self.bias {
            for (yo, bv) in y.iter_mut().zip(b) {
                *yo += bv;
            }
        }
    }

    /// Copy row `r` out as f32 (embedding lookup). `r < rows`.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let cols = self.cols();
        match self.weight.format {
            TensorFormat::F32 => {
                let w = self.weight.as_f32().unwrap_or(&[]);
                if let Some(row) = w.get(r * cols..(r + 1) * cols) {
                    out.copy_from_slice(row);
                }
            }
            TensorFormat::F16 => {
                let w = self.weight.as_f16_bits().unwrap_or(&[]);
                if let Some(row) = w.get(r * cols..(r + 1) * cols) {
                    f16_to_f32_slice(row, out);
                }
            }
            format => {
                let row_bytes = format.byte_len(1, cols as u64).unwrap_or(0) as usize;
                if let Some(row) = self.weight.data.get(r * row_bytes..(r + 1) * row_bytes) {
                    dequantize_row(format, row, out);
                }
            }
        }
    }
}
