//! Linear layers over borrowed weights: `y = W x (+ b)`.
//!
//! Float weights (f32, f16) multiply f32 activations. Integer weights
//! (W8/W4/W2) multiply int8 activations quantized on the fly per weight
//! group (A8), accumulate exactly in i32 per group, and scale to f32.

use crate::file::TensorView;
use crate::parallel::Workers;
use eddy_kernels::{ActsI8, Kernels, QuantMatrix};
use eddy_quant::{dequantize_row, f16_to_f32_slice, TensorFormat};

mod fused;

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

/// Caller-owned buffers for the int8 activations of a batch of tokens
/// (prefill): one [`ActScratch`]-like set per token, plus one reordering
/// buffer.
pub struct BatchActScratch<'s> {
    /// int8 codes, `tokens * max_cols`.
    pub q: &'s mut [i8],
    /// Scales, `tokens * groups(max_cols)`.
    pub scales: &'s mut [f32],
    /// Code sums, `tokens * groups(max_cols)`.
    pub sums: &'s mut [i32],
    /// The multi-token kernels' scratch for [`KERNEL_TOKENS`] tokens
    /// (`eddy_kernels::matmat_scratch_len`).
    pub perm: &'s mut [i8],
    max_cols: usize,
}

impl BatchActScratch<'_> {
    /// f32 words of scratch for `tokens` inputs of up to `max_cols` values.
    pub fn words(max_cols: usize, tokens: usize) -> usize {
        let groups = max_cols.div_ceil(32);
        tokens * (max_cols.div_ceil(4) + 2 * groups) + Self::perm_words(max_cols)
    }

    /// f32 words of the multi-token kernels' scratch for [`KERNEL_TOKENS`]
    /// tokens (also enough for one token's reordering).
    fn perm_words(max_cols: usize) -> usize {
        eddy_kernels::matmat_scratch_len(max_cols.div_ceil(4) * 4, KERNEL_TOKENS).div_ceil(4)
    }

    /// Carve the buffers out of `words` f32 words of scratch.
    pub fn from_words(words: &mut [f32], max_cols: usize, tokens: usize) -> BatchActScratch<'_> {
        let groups = max_cols.div_ceil(32);
        let code_words = max_cols.div_ceil(4);
        let (q, rest) = words.split_at_mut(tokens * code_words);
        let (perm, rest) = rest.split_at_mut(Self::perm_words(max_cols));
        let (scales, rest) = rest.split_at_mut(tokens * groups);
        let sums = &mut rest[..tokens * groups];
        BatchActScratch {
            q: bytemuck::cast_slice_mut(q),
            scales,
            sums: bytemuck::cast_slice_mut(sums),
            perm: bytemuck::cast_slice_mut(perm),
            max_cols: code_words * 4,
        }
    }
}

/// Tokens handed to one multi-token kernel call (`Kernels::matmat_i8`):
/// the kernel reads each weight block once per call.
pub const KERNEL_TOKENS: usize = 64;

/// Bytes of weights a row block aims for in prefill: small enough to stay
/// in L1/L2 while every token of the chunk is multiplied with it.
const PREFILL_BLOCK_BYTES: usize = 32 * 1024;

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

    /// Output length.
    pub fn rows(&self) -> usize {
        self.weight.rows() as usize
    }

    /// Rows `first..first + count` as a layer of their own (no bias; one
    /// expert of a stacked matrix); `None` if out of range.
    pub(crate) fn row_block(&self, first: usize, count: usize) -> Option<Linear<'a>> {
        Some(Linear { weight: self.weight.row_block(first as u64, count as u64)?, bias: None })
    }

    /// Bytes of one stored row.
    fn row_bytes(&self) -> usize {
        self.weight.format.byte_len(1, self.weight.cols()).unwrap_or(0) as usize
    }

    /// Rows `first..first + out.len()` of `W x` (no bias) with one kernel
    /// call. `acts` are the quantized activations for integer formats.
    fn rows_product(
        &self,
        first: usize,
        x: &[f32],
        acts: Option<&ActsI8<'_>>,
        out: &mut [f32],
        perm: &mut [i8],
        kernels: &Kernels,
    ) {
        let cols = self.cols();
        let rows = first..first + out.len();
        match (self.weight.format, acts) {
            (TensorFormat::F32, _) => {
                let w = self.weight.as_f32().unwrap_or(&[]);
                (kernels.matvec_f32)(w.get(rows.start * cols..rows.end * cols).unwrap_or(&[]), cols, x, out)
            }
            (TensorFormat::F16, _) => {
                let w = self.weight.as_f16_bits().unwrap_or(&[]);
                (kernels.matvec_f16)(w.get(rows.start * cols..rows.end * cols).unwrap_or(&[]), cols, x, out)
            }
            (format, Some(acts)) => {
                let rb = self.row_bytes();
                let w = self.weight.data.get(rows.start * rb..rows.end * rb).unwrap_or(&[]);
                (kernels.matvec_i8)(QuantMatrix { format, bytes: w, cols }, acts, out, perm)
            }
            // Integer weights without activations cannot happen (callers
            // quantize first); keep the function total.
            (_, None) => out.fill(f32::NAN),
        }
    }

    fn add_bias(&self, y: &mut [f32]) {
        self.add_bias_rows(0, y);
    }

    /// `y = W x + b` with the given kernel set, rows split across
    /// `workers`. `x.len() == cols`, `y.len() == rows` (validated when the
    /// model was loaded).
    pub fn matvec(
        &self,
        x: &[f32],
        y: &mut [f32],
        act: &mut ActScratch<'_>,
        kernels: &Kernels,
        workers: Workers,
    ) {
        let cols = self.cols();
        let rows_per_worker = y.len().div_ceil(workers.count());
        let perm = &mut act.perm[..];
        match self.weight.format.group_size() {
            None => workers.for_chunks(y, rows_per_worker, perm, |i, out, perm| {
                self.rows_product(i * rows_per_worker, x, None, out, perm, kernels)
            }),
            Some(group) => {
                let groups = cols / group;
                let q = &mut act.q[..cols];
                let quantize = kernels.quantize_acts;
                if quantize(x, group, q, act.scales, act.sums).is_err() {
                    // Non-finite activations: propagate NaN rather than garbage.
                    y.fill(f32::NAN);
                    return;
                }
                let acts = ActsI8 { q, scales: &act.scales[..groups], sums: &act.sums[..groups] };
                let matrix = self.weight.data.get(..self.rows() * self.row_bytes()).unwrap_or(&[]);
                if crate::offload::try_matvec(workers, self.weight.format, matrix, cols, &acts, y) {
                    self.add_bias(y);
                    return;
                }
                workers.for_chunks(y, rows_per_worker, perm, |i, out, perm| {
                    self.rows_product(i * rows_per_worker, x, Some(&acts), out, perm, kernels)
                });
            }
        }
        self.add_bias(y);
    }

    /// `ys[t] = W xs[t] + b` for `tokens` inputs at once (prefill): each
    /// block of weight rows is read from memory once and multiplied with
    /// every token while it is in cache. Tokens are split across
    /// `workers`. Results are bit-identical to [`matvec`](Self::matvec)
    /// per token. `xs.len() == tokens * cols`, `ys.len() == tokens * rows`.
    pub fn matmat(
        &self,
        xs: &[f32],
        ys: &mut [f32],
        tokens: usize,
        act: &mut BatchActScratch<'_>,
        kernels: &Kernels,
        workers: Workers,
    ) {
        let (cols, rows) = (self.cols(), self.rows());
        if tokens == 0 || cols == 0 || rows == 0 {
            return;
        }
        let tokens_per_worker = tokens.div_ceil(workers.count());
        let group = self.weight.format.group_size();
        let groups = group.map_or(0, |g| cols / g);
        let BatchActScratch { q, scales, sums, perm, max_cols } = act;
        let (code_stride, group_stride) = (*max_cols, max_cols.div_ceil(32));
        let mut all_finite = true;
        if let Some(group) = group {
            let quantize = kernels.quantize_acts;
            for t in 0..tokens {
                let x = &xs[t * cols..(t + 1) * cols];
                let q = &mut q[t * code_stride..t * code_stride + cols];
                let scales = &mut scales[t * group_stride..t * group_stride + groups];
                let sums = &mut sums[t * group_stride..t * group_stride + groups];
                all_finite &= quantize(x, group, q, scales, sums).is_ok();
            }
        }
        let (q, scales, sums) = (&*q, &*scales, &*sums);
        let token_acts = |t: usize| ActsI8 {
            q: &q[t * code_stride..t * code_stride + cols],
            scales: &scales[t * group_stride..t * group_stride + groups],
            sums: &sums[t * group_stride..t * group_stride + groups],
        };
        let matrix = self.weight.data.get(..rows * self.row_bytes()).unwrap_or(&[]);
        if group.is_some()
            && crate::offload::try_matmat(workers, self.weight.format, matrix, cols, &token_acts, ys, tokens)
        {
            // Every token's rows came from the offload device.
        } else if let (Some(matmat), Some(_)) = (kernels.matmat_i8, group) {
            // The kernel shares each unpacked weight among several tokens.
            workers.for_chunks(ys, tokens_per_worker * rows, perm, |chunk, out, perm| {
                let first_token = chunk * tokens_per_worker;
                for (b, out) in out.chunks_mut(KERNEL_TOKENS * rows).enumerate() {
                    let first = first_token + b * KERNEL_TOKENS;
                    let n = out.len() / rows;
                    let mut acts: [ActsI8<'_>; KERNEL_TOKENS] =
                        core::array::from_fn(|_| ActsI8 { q: &[], scales: &[], sums: &[] });
                    for (i, a) in acts.iter_mut().take(n).enumerate() {
                        *a = token_acts(first + i);
                    }
                    let data = self.weight.data.get(..rows * self.row_bytes()).unwrap_or(&[]);
                    matmat(
                        QuantMatrix { format: self.weight.format, bytes: data, cols },
                        &acts[..n],
                        out,
                        perm,
                    );
                }
            });
        } else {
            self.matmat_by_blocks(xs, ys, tokens, &token_acts, kernels, workers, perm);
        }
        if !all_finite {
            // Same contract as `matvec`: non-finite input gives NaN output.
            for (x, y) in xs.chunks_exact(cols).zip(ys.chunks_exact_mut(rows)) {
                if x.iter().any(|v| !v.is_finite()) {
                    y.fill(f32::NAN);
                }
            }
        }
        self.add_bias_batch(ys, rows);
    }

    /// [`matmat`](Self::matmat) for float weights (the set's multi-token
    /// float kernel on each worker's tokens) and kernel sets without
    /// `matmat_i8` (one kernel call per row block and token).
    #[allow(clippy::too_many_arguments)]
    fn matmat_by_blocks<'x>(
        &self,
        xs: &[f32],
        ys: &mut [f32],
        tokens: usize,
        token_acts: &(dyn Fn(usize) -> ActsI8<'x> + Sync),
        kernels: &Kernels,
        workers: Workers,
        perm: &mut [i8],
    ) {
        let (cols, rows) = (self.cols(), self.rows());
        let block_rows = (PREFILL_BLOCK_BYTES / self.row_bytes().max(1)).clamp(8, rows.max(8));
        let tokens_per_worker = tokens.div_ceil(workers.count());
        let group = self.weight.format.group_size();
        // The float kernels' inputs for a worker's tokens, its output.
        let token_rows = |chunk: usize, out: &[f32]| {
            let first = chunk * tokens_per_worker * cols;
            &xs[first..first + out.len() / rows * cols]
        };
        match (self.weight.format, kernels.matmat_f16, kernels.matmat_f32) {
            (TensorFormat::F16, Some(matmat_f16), _) => {
                let w = self.weight.as_f16_bits().unwrap_or(&[]);
                workers.for_chunks(ys, tokens_per_worker * rows, perm, |chunk, out, perm| {
                    matmat_f16(w, cols, token_rows(chunk, out), out, perm);
                });
                return;
            }
            (TensorFormat::F32, _, Some(matmat_f32)) => {
                let w = self.weight.as_f32().unwrap_or(&[]);
                workers.for_chunks(ys, tokens_per_worker * rows, perm, |chunk, out, _| {
                    matmat_f32(w, cols, token_rows(chunk, out), out);
                });
                return;
            }
            _ => {}
        }
        workers.for_chunks(ys, tokens_per_worker * rows, perm, |chunk, out, perm| {
            let first_token = chunk * tokens_per_worker;
            for block_start in (0..rows).step_by(block_rows) {
                let block_end = (block_start + block_rows).min(rows);
                for (i, y) in out.chunks_exact_mut(rows).enumerate() {
                    let t = first_token + i;
                    let x = &xs[t * cols..(t + 1) * cols];
                    let acts = group.map(|_| token_acts(t));
                    self.rows_product(
                        block_start,
                        x,
                        acts.as_ref(),
                        &mut y[block_start..block_end],
                        perm,
                        kernels,
                    );
                }
            }
        });
    }

    fn add_bias_batch(&self, ys: &mut [f32], rows: usize) {
        for y in ys.chunks_exact_mut(rows.max(1)) {
            self.add_bias(y);
        }
    }

    /// Rows `tokens` of the matrix one after another in `out` (`cols`
    /// values each): the embedding of a chunk.
    pub(crate) fn rows_into(&self, tokens: &[u32], out: &mut [f32]) {
        for (&t, x) in tokens.iter().zip(out.chunks_exact_mut(self.cols())) {
            self.row(t as usize, x);
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

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_quant::{f32_to_f16_bits, quantize_row};

    /// Deterministic values in [-1, 1).
    pub(super) fn values(n: usize, seed: u32) -> std::vec::Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    pub(super) fn stored(format: TensorFormat, rows: usize, cols: usize, w: &[f32]) -> std::vec::Vec<u8> {
        match format {
            TensorFormat::F32 => bytemuck::cast_slice(w).to_vec(),
            TensorFormat::F16 => {
                let bits: std::vec::Vec<u16> = w.iter().map(|&v| f32_to_f16_bits(v)).collect();
                bytemuck::cast_slice(&bits).to_vec()
            }
            f => {
                let rb = f.byte_len(1, cols as u64).unwrap() as usize;
                let mut out = std::vec![0u8; rows * rb];
                for (r, o) in w.chunks_exact(cols).zip(out.chunks_exact_mut(rb)) {
                    quantize_row(f, r, o).unwrap();
                }
                out
            }
        }
    }

    /// Matrices of several row blocks: `matmat` must equal `matvec` per
    /// token bit for bit, for every format and thread count.
    #[test]
    fn matmat_equals_matvec_per_token() {
        let cases = [
            (TensorFormat::F32, 100, 256),
            (TensorFormat::F16, 100, 512),
            (TensorFormat::W8 { group: 32 }, 100, 2048),
            (TensorFormat::W4 { group: 64 }, 70, 4096),
            (TensorFormat::W2 { group: 128 }, 130, 8192),
        ];
        let tokens = 5;
        for (i, (format, rows, cols)) in cases.into_iter().enumerate() {
            let data = stored(format, rows, cols, &values(rows * cols, i as u32 + 1));
            // Whole 64-byte words so f32/f16 views are aligned.
            let mut words = std::vec![0u64; data.len().div_ceil(8)];
            bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..data.len()].copy_from_slice(&data);
            let bytes = &bytemuck::cast_slice::<u64, u8>(&words)[..data.len()];
            let bias = values(rows, 99);
            let lin = Linear {
                weight: TensorView::matrix(format, rows as u32, cols as u32, bytes),
                bias: Some(&bias),
            };
            assert!(PREFILL_BLOCK_BYTES / lin.row_bytes() < rows, "{format:?}: one block only");
            let mut xs = values(tokens * cols, 7 + i as u32);
            xs[3 * cols + 5] = f32::INFINITY;
            for threads in [1, 2] {
                let workers = Workers::threads(threads).unwrap();
                let kernels = eddy_kernels::best();
                let mut step_words = std::vec![0f32; ActScratch::words(cols)];
                let mut batch_words = std::vec![0f32; BatchActScratch::words(cols, tokens)];
                let mut ys = std::vec![0f32; tokens * rows];
                let mut batch = BatchActScratch::from_words(&mut batch_words, cols, tokens);
                lin.matmat(&xs, &mut ys, tokens, &mut batch, kernels, workers);
                for t in 0..tokens {
                    let mut y = std::vec![0f32; rows];
                    let mut act = ActScratch::from_words(&mut step_words, cols);
                    lin.matvec(&xs[t * cols..(t + 1) * cols], &mut y, &mut act, kernels, workers);
                    let got: std::vec::Vec<u32> =
                        ys[t * rows..(t + 1) * rows].iter().map(|v| v.to_bits()).collect();
                    let want: std::vec::Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, want, "{format:?} threads {threads} token {t}");
                }
            }
        }
    }
}
