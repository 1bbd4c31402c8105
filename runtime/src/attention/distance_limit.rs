//! LM-Infinite's distance limit (Han et al., 2023, "LM-Infinite: Zero-Shot
//! Extreme Length Generalization for Large Language Models", section 4):
//! with rotary embedding the score of a query at `p` and a key at `j`
//! depends only on the distance `p - j`; a model never saw distances
//! beyond its trained context, so they are clamped: the score uses
//! `min(p - j, limit)`. Together with the Lambda window (sinks + recent
//! tokens) this is the paper's Λ-shaped attention.
//!
//! Keys stay cached rotated at their own position `j` (so nothing about
//! the cache changes and near keys cost nothing extra). A far key is
//! rescored with the query rotated to position `j + limit` instead of
//! `p`, which is the rotated query turned back by `p - j - limit`: the
//! same `kv_scores` kernel on that one row then gives the clamped score.
//! With the window no longer than the limit (LM-Infinite's own setting)
//! only the sinks are far, a handful of rows per query.

use super::{rotary_table, AttentionShape, CacheLayout};
use eddy_kernels::{Kernels, KvRows};

/// f32 words of work [`FarKeys::rescore`] needs: a rotary table and one
/// turned-back query head.
pub(super) fn work_words(shape: &AttentionShape) -> usize {
    shape.rotary_dims + shape.head_dim
}

/// Rotate `x` backwards (by minus the angles of `table`, from
/// [`rotary_table`]): the inverse of [`super::rotate`].
fn rotate_back(x: &mut [f32], table: &[f32], rotary_dims: usize) {
    let half = rotary_dims / 2;
    let (cos, sin) = table.split_at(half);
    for i in 0..half {
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos[i] + b * sin[i];
        x[i + half] = b * cos[i] - a * sin[i];
    }
}

/// The keys of one KV head that a query at `pos` sees further back than
/// `limit` tokens.
pub(super) struct FarKeys<'c> {
    /// Shape of the layer.
    pub shape: &'c AttentionShape,
    /// Where rows live in the cache.
    pub layout: &'c CacheLayout,
    /// The layer's cache bytes.
    pub cache: &'c [u8],
    /// The KV head the query head reads.
    pub kv: usize,
    /// Position of the query.
    pub pos: u64,
    /// Largest distance the query may see.
    pub limit: u64,
}

impl FarKeys<'_> {
    /// Positions the query sees further back than the limit: sinks, then
    /// window tokens older than `pos - limit` (the window holds
    /// `pos + 1 - window ..= pos`).
    fn positions(&self) -> impl Iterator<Item = u64> {
        let (sinks, window) = (self.layout.sinks as u64, self.layout.window as u64);
        let last_far = self.pos.checked_sub(self.limit + 1);
        let sinks_far = last_far.map_or(0, |last| sinks.min(last + 1));
        let window_from = sinks.max((self.pos + 1).saturating_sub(window));
        let window_far = last_far.map_or(0..0, |last| window_from..(last + 1).max(window_from));
        (0..sinks_far).chain(window_far)
    }

    /// Replace the score of every far key in `scores` (one per live slot,
    /// computed with the query `q` rotated at `pos`) by the score at
    /// distance `limit`; `work` holds [`work_words`].
    pub(super) fn rescore(&self, q: &[f32], scores: &mut [f32], work: &mut [f32], kernels: &Kernels) {
        let (shape, layout) = (self.shape, self.layout);
        if shape.rotary_dims == 0 {
            // Without rotary embedding scores do not depend on distance.
            return;
        }
        let (table, turned) = work.split_at_mut(shape.rotary_dims);
        let turned = &mut turned[..shape.head_dim];
        let (slot_bytes, rb) = (layout.slot_bytes(), layout.row_bytes);
        for at in self.positions() {
            let slot = layout.slot_of(at);
            let Some(score) = scores.get_mut(slot) else { continue };
            rotary_table(self.pos - at - self.limit, shape, table);
            turned.copy_from_slice(q);
            rotate_back(turned, table, shape.rotary_dims);
            let row = KvRows {
                format: layout.format,
                bytes: &self.cache[slot * slot_bytes + self.kv * rb..],
                stride: slot_bytes,
                count: 1,
                head_dim: shape.head_dim,
            };
            (kernels.kv_scores)(row, turned, core::slice::from_mut(score));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{attend, attend_chunk, scratch_words, ChunkRows, KvCacheOptions};
    use super::*;
    use crate::family::Compute;
    use eddy_quant::KvFormat;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn shape(rotary_dims: usize) -> AttentionShape {
        AttentionShape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            rotary_dims,
            rope_theta: 100.0,
            score_scale: 0.25,
        }
    }

    fn noise(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `x` (one head) rotated by `angle_pos` in f64: RoPE as written in
    /// the RoFormer paper with the "rotate half" pairing.
    fn rope(sh: &AttentionShape, x: &[f64], angle_pos: f64) -> Vec<f64> {
        let mut y = x.to_vec();
        let half = sh.rotary_dims / 2;
        for i in 0..half {
            let f = (sh.rope_theta as f64).powf(-(2.0 * i as f64) / sh.rotary_dims as f64);
            let (c, s) = ((angle_pos * f).cos(), (angle_pos * f).sin());
            y[i] = x[i] * c - x[i + half] * s;
            y[i + half] = x[i + half] * c + x[i] * s;
        }
        y
    }

    /// LM-Infinite's attention written from the paper, in f64 on the
    /// un-rotated queries and keys: the Λ mask (the first `sinks` tokens
    /// and the last `window`), each score `<R(d) q, k>` with
    /// `d = min(p - j, limit)` (the query rotated by the clamped distance,
    /// the key at 0), softmax, weighted sum of the values.
    fn masked_reference(
        sh: &AttentionShape,
        (sinks, window, limit): (usize, usize, usize),
        p: usize,
        q: &[f32],
        ks: &[Vec<f32>],
        vs: &[Vec<f32>],
    ) -> Vec<f32> {
        let hd = sh.head_dim;
        let f64s = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let mut out = vec![0f32; sh.n_heads * hd];
        for h in 0..sh.n_heads {
            let kv = h / (sh.n_heads / sh.n_kv_heads);
            let visible: Vec<usize> = (0..=p).filter(|&j| j < sinks || j + window > p).collect();
            let s: Vec<f64> = visible
                .iter()
                .map(|&j| {
                    let qd = rope(sh, &f64s(&q[h * hd..(h + 1) * hd]), (p - j).min(limit) as f64);
                    let k = f64s(&ks[j][kv * hd..(kv + 1) * hd]);
                    qd.iter().zip(&k).map(|(a, b)| a * b).sum::<f64>() * sh.score_scale as f64
                })
                .collect();
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for i in 0..hd {
                let acc: f64 = visible.iter().zip(&e).map(|(&j, w)| w / z * vs[j][kv * hd + i] as f64).sum();
                out[h * hd + i] = acc as f32;
            }
        }
        out
    }

    /// The largest difference between [`attend`] with a distance limit and
    /// the masked reference over `steps` tokens.
    fn worst_error(sh: &AttentionShape, (sinks, window, limit): (u32, u32, u32), steps: usize) -> f32 {
        let options = KvCacheOptions { format: KvFormat::F32, sinks, window };
        let layout = CacheLayout::new(sh, options).unwrap().with_distance_limit(Some(limit)).unwrap();
        let mut cache = vec![0u8; layout.bytes().unwrap()];
        let mut scratch = vec![0f32; scratch_words(sh, &layout, 1)];
        let (qd, kd) = (sh.n_heads * sh.head_dim, sh.n_kv_heads * sh.head_dim);
        let (mut ks, mut vs) = (Vec::new(), Vec::new());
        let mut seed = 0x51f1_5e3d_0b4a_7c15u64;
        let mut worst = 0f32;
        for p in 0..steps {
            let q: Vec<f32> = (0..qd).map(|_| noise(&mut seed) * 2.0).collect();
            let k: Vec<f32> = (0..kd).map(|_| noise(&mut seed) * 2.0).collect();
            let v: Vec<f32> = (0..kd).map(|_| noise(&mut seed)).collect();
            ks.push(k.clone());
            vs.push(v.clone());
            let mut out = vec![0f32; qd];
            let rows = ChunkRows { q: &mut q.clone(), k: &mut k.clone(), v: &mut v.clone(), out: &mut out };
            attend((sh, &layout), &mut cache, p as u64, rows, &mut scratch, &eddy_kernels::SCALAR);
            let want =
                masked_reference(sh, (sinks as usize, window as usize, limit as usize), p, &q, &ks, &vs);
            for (a, b) in out.iter().zip(&want) {
                worst = worst.max((a - b).abs());
            }
        }
        worst
    }

    /// Golden test: the cache with a distance limit equals LM-Infinite's
    /// masked attention, for a window inside the limit (only sinks are
    /// far, the paper's setting), a window past it (window keys are far
    /// too), no sinks, and partial rotary dims; and it is not plain
    /// Lambda attention once distances pass the limit.
    #[test]
    fn distance_limit_is_lm_infinite_masked_attention() {
        for (rotary, sinks, window, limit) in [(16, 3, 6, 8), (16, 2, 12, 5), (8, 0, 9, 4), (16, 1, 30, 30)] {
            let sh = shape(rotary);
            let e = worst_error(&sh, (sinks, window, limit), 40);
            assert!(e < 2e-6, "rotary {rotary} sinks {sinks} window {window} limit {limit}: error {e}");
        }
        // The same reference with the limit beyond every distance is plain
        // Lambda attention; a binding limit must change the outputs.
        let sh = shape(16);
        let options = KvCacheOptions { format: KvFormat::F32, sinks: 3, window: 6 };
        let run = |limit| {
            let layout = CacheLayout::new(&sh, options).unwrap().with_distance_limit(limit).unwrap();
            let mut cache = vec![0u8; layout.bytes().unwrap()];
            let mut scratch = vec![0f32; scratch_words(&sh, &layout, 1)];
            let mut seed = 7u64;
            let mut outs = Vec::new();
            for p in 0..20u64 {
                let (qd, kd) = (sh.n_heads * sh.head_dim, sh.n_kv_heads * sh.head_dim);
                let mut q: Vec<f32> = (0..qd).map(|_| noise(&mut seed) * 2.0).collect();
                let mut k: Vec<f32> = (0..kd).map(|_| noise(&mut seed) * 2.0).collect();
                let mut v: Vec<f32> = (0..kd).map(|_| noise(&mut seed)).collect();
                let mut out = vec![0f32; qd];
                let rows = ChunkRows { q: &mut q, k: &mut k, v: &mut v, out: &mut out };
                attend((&sh, &layout), &mut cache, p, rows, &mut scratch, &eddy_kernels::SCALAR);
                outs.extend(out);
            }
            outs
        };
        let (plain, huge, limited) = (run(None), run(Some(1000)), run(Some(8)));
        assert_eq!(plain, huge, "a limit no distance reaches changes nothing");
        assert_ne!(plain, limited, "a binding limit must change the outputs");
    }

    /// Without rotary embedding the limit changes nothing.
    #[test]
    fn distance_limit_without_rotary_is_a_no_op() {
        let e = worst_error(&shape(0), (2, 5, 3), 20);
        assert!(e < 2e-6, "error {e}");
    }

    /// A chunk equals the same tokens stepped, bit for bit, with a limit.
    #[test]
    fn chunks_with_a_distance_limit_equal_steps() {
        let sh = shape(16);
        let (qd, kd) = (sh.n_heads * sh.head_dim, sh.n_kv_heads * sh.head_dim);
        let options = KvCacheOptions { format: KvFormat::Q4, sinks: 2, window: 40 };
        let layout = CacheLayout::new(&sh, options).unwrap().with_distance_limit(Some(6)).unwrap();
        let mut workers = vec![crate::parallel::Workers::single()];
        #[cfg(feature = "threads")]
        workers.push(crate::parallel::Workers::threads(2).unwrap());
        let mut seed = 99u64;
        for w in workers {
            let (mut step_cache, mut chunk_cache) =
                (vec![0u8; layout.bytes().unwrap()], vec![0u8; layout.bytes().unwrap()]);
            let mut pos = 0u64;
            for n in [1usize, 17, 20, 9] {
                let q: Vec<f32> = (0..n * qd).map(|_| noise(&mut seed) * 2.0).collect();
                let k: Vec<f32> = (0..n * kd).map(|_| noise(&mut seed) * 2.0).collect();
                let v: Vec<f32> = (0..n * kd).map(|_| noise(&mut seed)).collect();
                let (mut sq, mut sk, mut sv, mut so) = (q.clone(), k.clone(), v.clone(), vec![0f32; n * qd]);
                let mut scratch = vec![0f32; scratch_words(&sh, &layout, 1)];
                for t in 0..n {
                    let rows = ChunkRows {
                        q: &mut sq[t * qd..(t + 1) * qd],
                        k: &mut sk[t * kd..(t + 1) * kd],
                        v: &mut sv[t * kd..(t + 1) * kd],
                        out: &mut so[t * qd..(t + 1) * qd],
                    };
                    attend(
                        (&sh, &layout),
                        &mut step_cache,
                        pos + t as u64,
                        rows,
                        &mut scratch,
                        &eddy_kernels::SCALAR,
                    );
                }
                let (mut cq, mut ck, mut cv, mut co) = (q, k, v, vec![0f32; n * qd]);
                let mut scratch = vec![0f32; scratch_words(&sh, &layout, n)];
                let mut rows = ChunkRows { q: &mut cq, k: &mut ck, v: &mut cv, out: &mut co };
                let cx = Compute { kernels: &eddy_kernels::SCALAR, workers: w };
                attend_chunk(&sh, &layout, &mut chunk_cache, pos, n, &mut rows, None, &mut scratch, cx);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                assert_eq!(bits(&co), bits(&so), "pos {pos} n {n} {w:?}");
                pos += n as u64;
            }
        }
    }
}
