//! Linear layers over borrowed weights: `y = W x (+ b)`.

use crate::file::TensorView;
use eddy_quant::{dot_f16_f32, dot_f32, f16_to_f32_slice, TensorFormat};

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

    /// `y = W x + b` with the scalar reference kernels. `x.len() == cols`,
    /// `y.len() == rows` (validated when the model was loaded).
    pub fn matvec(&self, x: &[f32], y: &mut [f32]) {
        let cols = self.cols();
        match self.weight.format {
            TensorFormat::F32 => {
                let w = self.weight.as_f32().unwrap_or(&[]);
                for (yo, row) in y.iter_mut().zip(w.chunks_exact(cols)) {
                    *yo = dot_f32(row, x);
                }
            }
            TensorFormat::F16 => {
                let w = self.weight.as_f16_bits().unwrap_or(&[]);
                for (yo, row) in y.iter_mut().zip(w.chunks_exact(cols)) {
                    *yo = dot_f16_f32(row, x);
                }
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
        }
    }
}
