//! Several matrices that read the same input vector, in one hand-off.
//!
//! A decode step multiplies one vector by many matrices; split one by one,
//! every product is a pool round trip (~6 µs each on a loaded 2-core host)
//! and quantizes its input again. Here the input is quantized once, the
//! rows of all the matrices are split into one part per worker, balanced by
//! weight bytes, and the workers run their parts after one hand-off. Every
//! row is the same kernel call on the same activations as in
//! [`Linear::matvec`], and the bias and `finish` are element-wise, so the
//! results are identical to separate products for any thread count.

use super::{ActScratch, Linear};
use crate::parallel::Workers;
use eddy_kernels::{ActsI8, Kernels};

/// Most parts the rows are split into (one per worker).
const MAX_PARTS: usize = 16;

/// Part boundaries fall on multiples of this many rows where they can: the
/// matvec kernels work in blocks of rows, and a ragged edge takes their
/// slower tail path.
const ROW_ALIGN: usize = 8;

/// One worker's share: for each matrix, its first row and its output rows
/// (empty when the part has none of that matrix).
struct Part<'y, const N: usize> {
    pieces: [(usize, &'y mut [f32]); N],
}

/// A stretch of rows of the same cost (weight bytes per row).
#[derive(Clone, Copy)]
struct Span {
    rows: usize,
    row_cost: usize,
}

/// The first row (counting across `spans` one after another) of each of
/// `parts` parts of about equal cost, and the end: `parts + 1` boundaries.
fn boundaries(spans: &[Span], parts: usize) -> [usize; MAX_PARTS + 1] {
    let total: usize = spans.iter().map(|s| s.rows * s.row_cost).sum();
    let mut bounds = [0usize; MAX_PARTS + 1];
    for (j, bound) in bounds.iter_mut().enumerate().take(parts + 1).skip(1) {
        let target = total * j / parts;
        let (mut cost, mut first) = (0usize, 0usize);
        for s in spans {
            let span_cost = s.rows * s.row_cost;
            if cost + span_cost >= target {
                let local = (target - cost) / s.row_cost.max(1);
                let aligned = (local + ROW_ALIGN / 2) / ROW_ALIGN * ROW_ALIGN;
                first += aligned.min(s.rows);
                break;
            }
            cost += span_cost;
            first += s.rows;
        }
        *bound = first;
    }
    // The last part ends at the last row, whatever the rounding.
    bounds[parts] = spans.iter().map(|s| s.rows).sum();
    bounds
}

impl Linear<'_> {
    /// `ys[i] = ls[i] x (+ bias)` for matrices that all read `x`: one
    /// activation quantization and one hand-off for all their rows, rows
    /// balanced across workers by weight bytes. Results are identical to
    /// `ls[i].matvec(x, ys[i], ..)` one after another. Integer matrices of
    /// different group sizes, or an offload device, take exactly that path.
    pub(crate) fn matvec_fused<const N: usize>(
        ls: [&Linear<'_>; N],
        x: &[f32],
        ys: [&mut [f32]; N],
        act: &mut ActScratch<'_>,
        kernels: &Kernels,
        workers: Workers,
    ) {
        fused(ls, x, ys, act, (kernels, workers), None);
    }

    /// [`matvec_fused`](Self::matvec_fused) for matrices of the same row
    /// count, then `finish` on the same rows of every output: each worker
    /// gets the same rows of every matrix and finishes them, so an
    /// element-wise step (a gated MLP's gating) rides the same hand-off.
    /// `finish` gets the whole outputs when the rows cannot be split.
    pub(crate) fn matvec_fused_then<const N: usize>(
        ls: [&Linear<'_>; N],
        x: &[f32],
        ys: [&mut [f32]; N],
        act: &mut ActScratch<'_>,
        (kernels, workers): (&Kernels, Workers),
        finish: impl Fn([&mut [f32]; N]) + Sync,
    ) {
        fused(ls, x, ys, act, (kernels, workers), Some(&finish));
    }

    /// Add the bias of rows `first..first + y.len()` to `y`.
    pub(super) fn add_bias_rows(&self, first: usize, y: &mut [f32]) {
        if let Some(b) = self.bias {
            for (yo, bv) in y.iter_mut().zip(b.get(first..).unwrap_or(&[])) {
                *yo += bv;
            }
        }
    }
}

/// The group size every integer matrix of `ls` shares (`Some(None)`: no
/// integer matrix), or `None` when they differ.
fn shared_group(ls: &[&Linear<'_>]) -> Option<Option<usize>> {
    let mut shared = None;
    for g in ls.iter().filter_map(|l| l.weight.format.group_size()) {
        if shared.is_some_and(|s| s != g) {
            return None;
        }
        shared = Some(g);
    }
    Some(shared)
}

type Finish<'f, const N: usize> = Option<&'f (dyn Fn([&mut [f32]; N]) + Sync)>;

fn fused<const N: usize>(
    ls: [&Linear<'_>; N],
    x: &[f32],
    mut ys: [&mut [f32]; N],
    act: &mut ActScratch<'_>,
    (kernels, workers): (&Kernels, Workers),
    finish: Finish<'_, N>,
) {
    let cols = x.len();
    let shapes_fit = ls.iter().zip(&ys).all(|(l, y)| l.cols() == cols && y.len() == l.rows());
    let aligned = finish.is_some();
    let rows_match = !aligned || ls.iter().all(|l| l.rows() == ls[0].rows());
    let group = shared_group(&ls);
    let (Some(group), true, true, None) = (group, shapes_fit, rows_match, workers.offload()) else {
        for (l, y) in ls.iter().zip(ys.iter_mut()) {
            l.matvec(x, y, act, kernels, workers);
        }
        if let Some(finish) = finish {
            finish(ys);
        }
        return;
    };
    let ActScratch { q, scales, sums, perm } = act;
    // Non-finite input: integer rows get NaN (no activations), as in `matvec`.
    let acts = group.and_then(|group| {
        let (q, groups) = (&mut q[..cols], cols / group);
        (kernels.quantize_acts)(x, group, q, scales, sums).ok()?;
        Some(ActsI8 { q, scales: &scales[..groups], sums: &sums[..groups] })
    });
    let spans: [Span; N] = core::array::from_fn(|i| Span { rows: ls[i].rows(), row_cost: ls[i].row_bytes() });
    let parts = workers.count().clamp(1, MAX_PARTS);
    // Aligned: one stretch of rows costing all matrices' rows together,
    // cut at the same rows of each. Else the matrices one after another.
    let (bounds, offsets) = if aligned {
        let row_cost = spans.iter().map(|s| s.row_cost).sum();
        (boundaries(&[Span { rows: spans[0].rows, row_cost }], parts), [0; N])
    } else {
        let mut offsets = [0; N];
        for i in 1..N {
            offsets[i] = offsets[i - 1] + spans[i - 1].rows;
        }
        (boundaries(&spans, parts), offsets)
    };
    let mut shares: [Part<'_, N>; MAX_PARTS] =
        core::array::from_fn(|_| Part { pieces: core::array::from_fn(|_| (0, &mut [][..])) });
    for (i, y) in ys.iter_mut().enumerate() {
        let mut rest = core::mem::take(y);
        let local = |b: usize| b.saturating_sub(offsets[i]).min(spans[i].rows);
        for (j, share) in shares.iter_mut().enumerate().take(parts) {
            let (first, end) = (local(bounds[j]), local(bounds[j + 1]));
            let (piece, tail) = rest.split_at_mut(end - first);
            share.pieces[i] = (first, piece);
            rest = tail;
        }
    }
    workers.for_chunks(&mut shares[..parts], 1, perm, |_, share, perm| {
        for Part { pieces } in share {
            for (l, (first, out)) in ls.iter().zip(pieces.iter_mut()) {
                if !out.is_empty() {
                    l.rows_product(*first, x, acts.as_ref(), out, perm, kernels);
                    l.add_bias_rows(*first, out);
                }
            }
            if let Some(finish) = finish {
                finish(pieces.each_mut().map(|(_, y)| &mut **y));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::tests::{stored, values};
    use super::*;
    use crate::file::TensorView;
    use eddy_quant::TensorFormat;
    use std::vec::Vec;

    /// Stored matrices in 8-byte words (aligned float views), with biases.
    struct Stored {
        shapes: Vec<(TensorFormat, usize)>,
        words: Vec<Vec<u64>>,
        lens: Vec<usize>,
        biases: Vec<Vec<f32>>,
    }

    impl Stored {
        fn new(shapes: &[(TensorFormat, usize)], cols: usize) -> Stored {
            let (mut words, mut lens, mut biases) = (Vec::new(), Vec::new(), Vec::new());
            for (i, &(format, rows)) in shapes.iter().enumerate() {
                let data = stored(format, rows, cols, &values(rows * cols, 11 + i as u32));
                let mut w = std::vec![0u64; data.len().div_ceil(8)];
                bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..data.len()].copy_from_slice(&data);
                words.push(w);
                lens.push(data.len());
                biases.push(values(rows, 50 + i as u32));
            }
            Stored { shapes: shapes.to_vec(), words, lens, biases }
        }

        fn linear(&self, i: usize, cols: usize, bias: bool) -> Linear<'_> {
            let (format, rows) = self.shapes[i];
            let bytes = &bytemuck::cast_slice::<u64, u8>(&self.words[i])[..self.lens[i]];
            Linear {
                weight: TensorView::matrix(format, rows as u32, cols as u32, bytes),
                bias: bias.then_some(&self.biases[i][..]),
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Separate `matvec`s, then `finish` over the whole outputs.
    fn separate<const N: usize>(
        ls: [&Linear<'_>; N],
        x: &[f32],
        finish: impl Fn(&mut [Vec<f32>; N]),
    ) -> [Vec<f32>; N] {
        let cols = x.len();
        let mut words = std::vec![0f32; ActScratch::words(cols)];
        let mut act = ActScratch::from_words(&mut words, cols);
        let mut ys: [Vec<f32>; N] = core::array::from_fn(|i| std::vec![0f32; ls[i].rows()]);
        for (l, y) in ls.iter().zip(ys.iter_mut()) {
            l.matvec(x, y, &mut act, eddy_kernels::best(), Workers::single());
        }
        finish(&mut ys);
        ys
    }

    /// Mixed formats (one group size, a float matrix among them), uneven
    /// row counts, biases, and a non-finite input: the fused product gives
    /// the separate products' bits for every thread count.
    #[test]
    fn fused_equals_separate_matvecs() {
        let cols = 512;
        let shapes = [
            (TensorFormat::W4 { group: 64 }, 100),
            (TensorFormat::F32, 37),
            (TensorFormat::W8 { group: 64 }, 250),
        ];
        let s = Stored::new(&shapes, cols);
        let mut inf = values(cols, 3);
        inf[7] = f32::INFINITY;
        for x in [values(cols, 2), inf] {
            for bias in [false, true] {
                let ls = [&s.linear(0, cols, bias), &s.linear(1, cols, bias), &s.linear(2, cols, bias)];
                let want = separate(ls, &x, |_| {});
                for threads in [1, 2, 3] {
                    let workers = Workers::threads(threads).unwrap();
                    let mut words = std::vec![0f32; ActScratch::words(cols)];
                    let mut act = ActScratch::from_words(&mut words, cols);
                    let mut ys: [Vec<f32>; 3] = core::array::from_fn(|i| std::vec![0f32; shapes[i].1]);
                    let [a, b, c] = &mut ys;
                    #[cfg(feature = "threads")]
                    let before = crate::parallel::handoffs_here();
                    Linear::matvec_fused(ls, &x, [a, b, c], &mut act, eddy_kernels::best(), workers);
                    #[cfg(feature = "threads")]
                    {
                        let handoffs = crate::parallel::handoffs_here() - before;
                        assert_eq!(handoffs, usize::from(threads > 1), "one hand-off, threads {threads}");
                    }
                    for i in 0..3 {
                        assert_eq!(bits(&ys[i]), bits(&want[i]), "matrix {i} threads {threads} bias {bias}");
                    }
                }
            }
        }
    }

    /// Same-shape matrices with an element-wise finish on each worker's
    /// rows (a gated MLP), and matrices of different group sizes (the
    /// separate path): both equal separate products then the finish.
    #[test]
    fn fused_then_finishes_each_row_once() {
        let cols = 256;
        let finish = |[g, u]: [&mut [f32]; 2]| {
            for (g, u) in g.iter_mut().zip(u.iter_mut()) {
                *g = *g * 0.5 + *u;
                *u += 1.0;
            }
        };
        for shapes in [
            [(TensorFormat::W2 { group: 128 }, 203), (TensorFormat::W4 { group: 128 }, 203)],
            [(TensorFormat::W8 { group: 32 }, 203), (TensorFormat::W4 { group: 128 }, 203)],
        ] {
            let s = Stored::new(&shapes, cols);
            let ls = [&s.linear(0, cols, false), &s.linear(1, cols, true)];
            let x = values(cols, 5);
            let want = separate(ls, &x, |[g, u]| finish([g, u]));
            for threads in [1, 2, 3] {
                let workers = Workers::threads(threads).unwrap();
                let mut words = std::vec![0f32; ActScratch::words(cols)];
                let mut act = ActScratch::from_words(&mut words, cols);
                let (mut g, mut u) = (std::vec![0f32; 203], std::vec![0f32; 203]);
                let compute = (eddy_kernels::best(), workers);
                Linear::matvec_fused_then(ls, &x, [&mut g, &mut u], &mut act, compute, finish);
                assert_eq!(bits(&g), bits(&want[0]), "{shapes:?} threads {threads}");
                assert_eq!(bits(&u), bits(&want[1]), "{shapes:?} threads {threads}");
            }
        }
    }

    /// Parts cover every row once, in order, and cost about the same: no
    /// part is further from an equal share than one row block.
    #[test]
    fn boundaries_balance_bytes() {
        let spans = [
            Span { rows: 100, row_cost: 10 },
            Span { rows: 50, row_cost: 40 },
            Span { rows: 3, row_cost: 7 },
        ];
        let total: usize = spans.iter().map(|s| s.rows * s.row_cost).sum();
        for parts in 1..=MAX_PARTS {
            let b = boundaries(&spans, parts);
            assert_eq!((b[0], b[parts]), (0, 153), "{parts} parts");
            let cost_to = |row: usize| {
                let (mut cost, mut left) = (0, row);
                for s in &spans {
                    let r = left.min(s.rows);
                    cost += r * s.row_cost;
                    left -= r;
                }
                cost
            };
            for j in 0..parts {
                assert!(b[j] <= b[j + 1], "{parts} parts: {:?}", &b[..=parts]);
                let cost = cost_to(b[j + 1]) - cost_to(b[j]);
                let slack = 2 * ROW_ALIGN * 40;
                assert!(cost.abs_diff(total / parts) <= slack, "{parts} parts, part {j}: {cost} of {total}");
            }
        }
    }
}
