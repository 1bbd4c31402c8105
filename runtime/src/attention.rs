//! Attention over a bounded, quantized KV cache: the attention layers of
//! hybrid models (local sliding-window attention of Griffin/RecurrentGemma,
//! full attention of LFM2-style hybrids).
//!
//! The cache is "Lambda-shaped": the first `sinks` tokens of the sequence
//! (attention sinks) plus the most recent `window` tokens, so its size is
//! fixed however long the stream runs. Token `p` is stored in slot `p` if
//! `p < sinks`, else in ring slot `sinks + (p - sinks) % window`; a query
//! at position `p` (stored before it attends) sees positions
//! `0..sinks` and `p - window + 1 ..= p`. With `sinks = 0` this is exactly a
//! sliding window of `window` tokens; with `sinks + window` at least the
//! sequence length it is full attention.
//!
//! Keys are stored after rotary embedding at their original position, so
//! a token keeps the position it was seen at for as long as it stays
//! cached (relative distances are those of the full cache). Rows are kept
//! in [`KvFormat`] (f32, f16, 8 or 4 bits with group scales), and scores
//! and outputs are computed directly on the stored rows by the kernel
//! set's `kv_scores`/`kv_mix`: no dequantized copy of the cache exists.
//!
//! Optionally ([`CacheLayout::with_distance_limit`], LM-Infinite) the
//! relative distance a query sees is clamped: a key further than `limit`
//! tokens back is scored as if it were exactly `limit` back
//! ([`distance_limit`]), so a model streaming past its trained context
//! never sees a rotary distance it was not trained on.
//!
//! A prefill chunk ([`attend_chunk`]) stores its keys and values first and
//! then runs its queries split across workers, bit-identical to stepping,
//! as long as no token of the chunk overwrites a slot an earlier query of
//! the chunk reads (until the ring wraps); from there it steps.

use crate::family::Compute;
use crate::ops::rms_norm_in_place;
use eddy_kernels::{Kernels, KvRows};
use eddy_quant::{encode_kv_row, KvFormat};

mod distance_limit;

/// How an attention layer caches keys and values: the storage format and
/// the Lambda window. Part of a model's run-time options, as it sets the
/// state size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvCacheOptions {
    /// Storage format of cached keys and values.
    pub format: KvFormat,
    /// Tokens at the start of the sequence that stay cached (attention
    /// sinks).
    pub sinks: u32,
    /// Most recent tokens cached (at least 1).
    pub window: u32,
}

/// Largest `sinks + window` accepted: a cache slot count that cannot
/// overflow size arithmetic on 32-bit targets.
pub const MAX_CACHE_SLOTS: u32 = 1 << 24;

/// Shape of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AttentionShape {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`; grouped-query attention).
    pub n_kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Leading values of each head that get rotary embedding (even, at
    /// most `head_dim`; 0 for none). Rotation pairs value `i` with
    /// `i + rotary_dims / 2` ("rotate half").
    pub rotary_dims: usize,
    /// Rotary base frequency.
    pub rope_theta: f32,
    /// Factor applied to every score (usually `head_dim^-1/2`).
    pub score_scale: f32,
}

/// Where each cached row lives inside a layer's cache bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CacheLayout {
    format: KvFormat,
    sinks: usize,
    window: usize,
    kv_heads: usize,
    head_dim: usize,
    row_bytes: usize,
    /// LM-Infinite's distance limit (`None`: distances are not clamped).
    distance_limit: Option<u64>,
}

impl CacheLayout {
    /// The layout for `shape` under `options`; `None` if the format cannot
    /// hold the head size or the window is empty or too large.
    pub(crate) fn new(shape: &AttentionShape, options: KvCacheOptions) -> Option<Self> {
        let slots = options.sinks.checked_add(options.window)?;
        if options.window == 0 || slots > MAX_CACHE_SLOTS {
            return None;
        }
        Some(CacheLayout {
            format: options.format,
            sinks: options.sinks as usize,
            window: options.window as usize,
            kv_heads: shape.n_kv_heads,
            head_dim: shape.head_dim,
            row_bytes: options.format.row_bytes(shape.head_dim)?,
            distance_limit: None,
        })
    }

    /// The same layout with relative distances clamped at `limit` tokens
    /// (`None`: not clamped); `None` if `limit` is `Some(0)`.
    pub(crate) fn with_distance_limit(mut self, limit: Option<u32>) -> Option<Self> {
        if limit == Some(0) {
            return None;
        }
        self.distance_limit = limit.map(u64::from);
        Some(self)
    }

    /// Cache slots (`sinks + window`).
    pub(crate) fn slots(&self) -> usize {
        self.sinks + self.window
    }

    /// Bytes of one slot's keys (all KV heads); the same for values.
    fn slot_bytes(&self) -> usize {
        self.kv_heads * self.row_bytes
    }

    /// Bytes of keys plus values for every slot; `None` on overflow.
    pub(crate) fn bytes(&self) -> Option<usize> {
        self.slots().checked_mul(self.slot_bytes())?.checked_mul(2)
    }

    /// f32 words that hold [`bytes`](Self::bytes) (the session state is
    /// made of words).
    pub(crate) fn words(&self) -> Option<usize> {
        Some(self.bytes()?.div_ceil(4))
    }

    /// The slot that token `pos` is stored in.
    pub(crate) fn slot_of(&self, pos: u64) -> usize {
        if pos < self.sinks as u64 {
            pos as usize
        } else {
            self.sinks + ((pos - self.sinks as u64) % self.window as u64) as usize
        }
    }

    /// Slots holding tokens once token `pos` is stored.
    pub(crate) fn live(&self, pos: u64) -> usize {
        pos.saturating_add(1).min(self.slots() as u64) as usize
    }
}

/// Score buffers [`attend_chunk`] can use at most: one per job its
/// queries are split into (jobs are balanced by work stealing, so a few
/// per core).
const QUERY_LANES: usize = 8;

/// f32 words of scratch [`attend`] (`tokens = 1`) and [`attend_chunk`]
/// for chunks of up to `tokens` tokens need: a rotary table, then one
/// lane per query job (up to [`QUERY_LANES`]).
pub(crate) fn scratch_words(shape: &AttentionShape, layout: &CacheLayout, tokens: usize) -> usize {
    shape.rotary_dims + lane_words(shape, layout) * tokens.clamp(1, QUERY_LANES)
}

/// f32 words of one query job's lane: a score per slot, then with a
/// distance limit the work of [`distance_limit::rescore_far_keys`].
fn lane_words(shape: &AttentionShape, layout: &CacheLayout) -> usize {
    let far = if layout.distance_limit.is_some() { distance_limit::work_words(shape) } else { 0 };
    layout.slots() + far
}

/// Apply rotary embedding in place to one head vector, with `table` from
/// [`rotary_table`] (`cos` then `sin` of each frequency).
fn rotate(x: &mut [f32], table: &[f32], rotary_dims: usize) {
    let half = rotary_dims / 2;
    let (cos, sin) = table.split_at(half);
    for i in 0..half {
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

/// `cos` and `sin` of `pos * theta^(-2i / rotary_dims)` for each of the
/// `rotary_dims / 2` frequencies. Angles are computed in f64: at a
/// million tokens an f32 angle would be off by a tenth of a radian.
fn rotary_table(pos: u64, shape: &AttentionShape, table: &mut [f32]) {
    let half = shape.rotary_dims / 2;
    let (cos, sin) = table.split_at_mut(half);
    for i in 0..half {
        let inv_freq = libm::pow(shape.rope_theta as f64, -((2 * i) as f64) / shape.rotary_dims as f64);
        let angle = pos as f64 * inv_freq;
        cos[i] = libm::cos(angle) as f32;
        sin[i] = libm::sin(angle) as f32;
    }
}

/// In-place softmax of `scores` (max subtracted first).
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = libm::expf(*s - max);
        sum += *s;
    }
    let inv = if sum > 0.0 { 1.0 / sum } else { 0.0 };
    for s in scores.iter_mut() {
        *s *= inv;
    }
}

/// One token of attention at position `pos` (`r` holds one token's rows):
/// rotate `q` (all query heads) and `k` (all KV heads) in place, store `k` and `v` in the cache, and
/// write every query head's attention output to `out`. `cache` is the
/// layer's [`CacheLayout::bytes`]; `scratch` holds [`scratch_words`].
pub(crate) fn attend(
    (shape, layout): (&AttentionShape, &CacheLayout),
    cache: &mut [u8],
    pos: u64,
    r: ChunkRows<'_>,
    scratch: &mut [f32],
    kernels: &Kernels,
) {
    let (table, scores) = scratch.split_at_mut(shape.rotary_dims);
    store_token(shape, layout, cache, pos, (r.q, r.k, r.v), table);
    attend_heads(shape, layout, cache, pos, r.q, r.out, scores, kernels);
}

/// The first half of [`attend`]: rotate `q` and `k` at `pos` (`table`
/// holds `rotary_dims` words) and store `k` and `v` in `pos`'s slot.
fn store_token(
    shape: &AttentionShape,
    layout: &CacheLayout,
    cache: &mut [u8],
    pos: u64,
    (q, k, v): (&mut [f32], &mut [f32], &[f32]),
    table: &mut [f32],
) {
    let hd = shape.head_dim;
    if shape.rotary_dims > 0 {
        rotary_table(pos, shape, table);
        for head in q.chunks_exact_mut(hd).chain(k.chunks_exact_mut(hd)) {
            rotate(head, table, shape.rotary_dims);
        }
    }
    let slot_bytes = layout.slot_bytes();
    let values_at = layout.slots() * slot_bytes;
    let slot = layout.slot_of(pos) * slot_bytes;
    let rb = layout.row_bytes;
    for (h, (kh, vh)) in k.chunks_exact(hd).zip(v.chunks_exact(hd)).enumerate() {
        // Lengths come from the layout; an error here is impossible.
        let _ = encode_kv_row(layout.format, kh, &mut cache[slot + h * rb..slot + (h + 1) * rb]);
        let at = values_at + slot + h * rb;
        let _ = encode_kv_row(layout.format, vh, &mut cache[at..at + rb]);
    }
}

/// Every query head of the token at `pos` over the slots live then:
/// scores (far keys rescored under a distance limit), scaling, softmax
/// and the weighted sum of values into `out` (`lane` holds
/// [`lane_words`]).
#[allow(clippy::too_many_arguments)] // the pieces of one attention step
fn attend_heads(
    shape: &AttentionShape,
    layout: &CacheLayout,
    cache: &[u8],
    pos: u64,
    q: &[f32],
    out: &mut [f32],
    lane: &mut [f32],
    kernels: &Kernels,
) {
    let (hd, rb, slot_bytes) = (shape.head_dim, layout.row_bytes, layout.slot_bytes());
    let values_at = layout.slots() * slot_bytes;
    let (scores, far_work) = lane.split_at_mut(layout.slots());
    let live = layout.live(pos);
    let scores = &mut scores[..live];
    let group = shape.n_heads / shape.n_kv_heads;
    for (h, (qh, oh)) in q.chunks_exact(hd).zip(out.chunks_exact_mut(hd)).enumerate() {
        let kv = h / group;
        let rows = |base: usize| KvRows {
            format: layout.format,
            bytes: &cache[base + kv * rb..],
            stride: slot_bytes,
            count: live,
            head_dim: hd,
        };
        (kernels.kv_scores)(rows(0), qh, scores);
        if let Some(limit) = layout.distance_limit {
            let far = distance_limit::FarKeys { shape, layout, cache, kv, pos, limit };
            far.rescore(qh, scores, far_work, kernels);
        }
        for s in scores.iter_mut() {
            *s *= shape.score_scale;
        }
        softmax(scores);
        (kernels.kv_mix)(rows(values_at), scores, oh);
    }
}

/// Per-head RMSNorm weights of queries and keys and their epsilon, applied
/// before rotary embedding.
pub(crate) type QkNorms<'w> = Option<(&'w [f32], &'w [f32], f32)>;

/// A chunk's rows, token-major, at least `n` each: queries and outputs
/// `n * n_heads * head_dim`, keys and values `n * n_kv_heads * head_dim`
/// (mutable, so the projections fill them in place).
pub(crate) struct ChunkRows<'r> {
    /// Queries (normed and rotated in place).
    pub q: &'r mut [f32],
    /// Keys (normed and rotated in place).
    pub k: &'r mut [f32],
    /// Values.
    pub v: &'r mut [f32],
    /// Attention outputs.
    pub out: &'r mut [f32],
}

/// `n` tokens of attention at positions `pos..pos + n`, exactly as `n`
/// [`attend`] calls in order (each after its token's per-head norms).
/// While the chunk's tokens land in slots no earlier query reads (the
/// cache is not yet full: a query at `p` reads slots `0..=p`), every key
/// and value is stored first and the queries then run split across
/// `workers` by tokens, each with the scores, softmax and sums of a step;
/// once the ring wraps, a token overwrites a slot earlier queries read, so
/// the rest of the chunk steps. `scratch` holds [`scratch_words`] for `n`
/// tokens (fewer score buffers only mean fewer jobs).
#[allow(clippy::too_many_arguments)] // shape, cache, rows and the compute context
pub(crate) fn attend_chunk(
    shape: &AttentionShape,
    layout: &CacheLayout,
    cache: &mut [u8],
    pos: u64,
    n: usize,
    r: &mut ChunkRows<'_>,
    norms: QkNorms<'_>,
    scratch: &mut [f32],
    cx: Compute<'_>,
) {
    let hd = shape.head_dim;
    let (qd, kd) = (shape.n_heads * hd, shape.n_kv_heads * hd);
    let norm = |t: usize, q: &mut [f32], k: &mut [f32]| {
        if let Some((q_norm, k_norm, eps)) = norms {
            q[t * qd..(t + 1) * qd]
                .chunks_exact_mut(hd)
                .for_each(|head| rms_norm_in_place(head, q_norm, eps));
            k[t * kd..(t + 1) * kd]
                .chunks_exact_mut(hd)
                .for_each(|head| rms_norm_in_place(head, k_norm, eps));
        }
    };
    let slots = layout.slots();
    let fresh = (slots as u64).saturating_sub(pos).min(n as u64) as usize;
    let lane = lane_words(shape, layout);
    let score_lanes = scratch.len().saturating_sub(shape.rotary_dims) / lane.max(1);
    let batched = if fresh > 1 && score_lanes > 0 { fresh } else { 0 };
    if batched > 0 {
        let (table, lanes) = scratch.split_at_mut(shape.rotary_dims);
        for t in 0..batched {
            norm(t, r.q, r.k);
            let (qt, kt) = (&mut r.q[t * qd..(t + 1) * qd], &mut r.k[t * kd..(t + 1) * kd]);
            store_token(shape, layout, cache, pos + t as u64, (qt, kt, &r.v[t * kd..(t + 1) * kd]), table);
        }
        let jobs = score_lanes.min(batched);
        let per_job = batched.div_ceil(jobs);
        let (cache, q, kernels) = (&*cache, &*r.q, cx.kernels);
        cx.workers.for_chunk_pairs(
            &mut r.out[..batched * qd],
            per_job * qd,
            lanes,
            lane,
            |j, out, scores| {
                for (i, ot) in out.chunks_exact_mut(qd).enumerate() {
                    let t = j * per_job + i;
                    let at = pos + t as u64;
                    attend_heads(shape, layout, cache, at, &q[t * qd..(t + 1) * qd], ot, scores, kernels);
                }
            },
        );
    }
    for t in batched..n {
        norm(t, r.q, r.k);
        let (qt, kt) = (&mut r.q[t * qd..(t + 1) * qd], &mut r.k[t * kd..(t + 1) * kd]);
        let (v, out) = (&mut r.v[t * kd..(t + 1) * kd], &mut r.out[t * qd..(t + 1) * qd]);
        attend(
            (shape, layout),
            cache,
            pos + t as u64,
            ChunkRows { q: qt, k: kt, v, out },
            scratch,
            cx.kernels,
        );
    }
}

/// Words at the start of an attention family's state that hold the 64-bit
/// count of tokens its caches have seen (the rotary position of the next
/// token).
pub(crate) const POSITION_WORDS: usize = 2;

/// The position stored by [`store_position`].
pub(crate) fn load_position(words: &[f32]) -> u64 {
    (words[0].to_bits() as u64) | ((words[1].to_bits() as u64) << 32)
}

/// Store `pos` in the first [`POSITION_WORDS`] words.
pub(crate) fn store_position(words: &mut [f32], pos: u64) {
    words[0] = f32::from_bits(pos as u32);
    words[1] = f32::from_bits((pos >> 32) as u32);
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn shape() -> AttentionShape {
        AttentionShape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 32,
            rotary_dims: 16,
            rope_theta: 10_000.0,
            score_scale: 32f32.powf(-0.5),
        }
    }

    fn noise(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Plain f64 attention over an explicit list of visible positions.
    fn naive(
        sh: &AttentionShape,
        qs: &[f32],
        ks: &[Vec<f32>],
        vs: &[Vec<f32>],
        visible: &[usize],
    ) -> Vec<f32> {
        let hd = sh.head_dim;
        let mut out = vec![0f32; sh.n_heads * hd];
        for h in 0..sh.n_heads {
            let kv = h / (sh.n_heads / sh.n_kv_heads);
            let q = &qs[h * hd..(h + 1) * hd];
            let s: Vec<f64> = visible
                .iter()
                .map(|&p| {
                    let k = &ks[p][kv * hd..(kv + 1) * hd];
                    q.iter().zip(k).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() * sh.score_scale as f64
                })
                .collect();
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for i in 0..hd {
                let acc: f64 = visible.iter().zip(&e).map(|(&p, w)| w / z * vs[p][kv * hd + i] as f64).sum();
                out[h * hd + i] = acc as f32;
            }
        }
        out
    }

    /// Rotate a copy of `x` (all heads) at `pos` in f64, independently of
    /// the code under test.
    fn rope_f64(sh: &AttentionShape, x: &[f32], pos: u64) -> Vec<f32> {
        let mut y = x.to_vec();
        let half = sh.rotary_dims / 2;
        for head in y.chunks_exact_mut(sh.head_dim) {
            for i in 0..half {
                let f = (sh.rope_theta as f64).powf(-(2.0 * i as f64) / sh.rotary_dims as f64);
                let (c, s) = ((pos as f64 * f).cos(), (pos as f64 * f).sin());
                let (a, b) = (head[i] as f64, head[i + half] as f64);
                head[i] = (a * c - b * s) as f32;
                head[i + half] = (b * c + a * s) as f32;
            }
        }
        y
    }

    /// Run `steps` tokens through a cache with `options`, compare each
    /// output with naive attention over the positions the Lambda window
    /// keeps, and return the largest error.
    fn worst_error(options: KvCacheOptions, steps: u64) -> f32 {
        let sh = shape();
        let layout = CacheLayout::new(&sh, options).unwrap();
        let mut cache = vec![0u8; layout.bytes().unwrap()];
        let mut scratch = vec![0f32; scratch_words(&sh, &layout, 1)];
        let (qd, kd) = (sh.n_heads * sh.head_dim, sh.n_kv_heads * sh.head_dim);
        let (mut ks, mut vs) = (Vec::new(), Vec::new());
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut worst = 0f32;
        for pos in 0..steps {
            let mut q: Vec<f32> = (0..qd).map(|_| noise(&mut seed) * 2.0).collect();
            let mut k: Vec<f32> = (0..kd).map(|_| noise(&mut seed) * 2.0).collect();
            let v: Vec<f32> = (0..kd).map(|_| noise(&mut seed)).collect();
            let (q_rot, k_rot) = (rope_f64(&sh, &q, pos), rope_f64(&sh, &k, pos));
            ks.push(k_rot);
            vs.push(v.clone());
            let mut out = vec![0f32; qd];
            let rows = ChunkRows { q: &mut q, k: &mut k, v: &mut v.clone(), out: &mut out };
            attend((&sh, &layout), &mut cache, pos, rows, &mut scratch, &eddy_kernels::SCALAR);
            let p = pos as usize;
            let visible: Vec<usize> = (0..=p)
                .filter(|&j| j < options.sinks as usize || j + (options.window as usize) > p)
                .collect();
            let want = naive(&sh, &q_rot, &ks, &vs, &visible);
            for (a, b) in out.iter().zip(&want) {
                worst = worst.max((a - b).abs());
            }
        }
        worst
    }

    #[test]
    fn f32_cache_is_exact_lambda_attention() {
        // Full cache, pure sliding window, and sinks + wrapped window.
        for (sinks, window) in [(0, 64), (0, 5), (3, 7), (1, 1)] {
            let e = worst_error(KvCacheOptions { format: KvFormat::F32, sinks, window }, 40);
            assert!(e < 2e-6, "sinks {sinks} window {window}: error {e}");
        }
    }

    #[test]
    fn quantized_caches_stay_within_measured_bounds() {
        // Outputs are averages of values in [-1, 1]. Measured worst errors:
        // f16 3.0e-4, q8 6.3e-3, q4 9.6e-2; bounds about 3x that.
        for (format, bound) in [(KvFormat::F16, 1e-3), (KvFormat::Q8, 2e-2), (KvFormat::Q4, 0.3)] {
            let e = worst_error(KvCacheOptions { format, sinks: 2, window: 9 }, 30);
            assert!(e < bound, "{format:?}: error {e} (bound {bound})");
            assert!(e > 0.0, "{format:?} cannot be exact");
        }
    }

    #[test]
    fn slots_follow_the_lambda_window() {
        let layout =
            CacheLayout::new(&shape(), KvCacheOptions { format: KvFormat::Q4, sinks: 2, window: 3 }).unwrap();
        let slots: Vec<usize> = (0..9).map(|p| layout.slot_of(p)).collect();
        assert_eq!(slots, [0, 1, 2, 3, 4, 2, 3, 4, 2]);
        assert_eq!((layout.live(0), layout.live(3), layout.live(1 << 40)), (1, 4, 5));
        // 5 slots x 2 kv heads x 20 bytes (16 codes + 4 of scale/min), keys and values.
        assert_eq!(layout.bytes(), Some(5 * 2 * 20 * 2));
        let bad = |sinks, window| {
            CacheLayout::new(&shape(), KvCacheOptions { format: KvFormat::F16, sinks, window })
        };
        assert!(bad(4, 0).is_none());
        assert!(bad(u32::MAX, 2).is_none());
        assert!(bad(0, MAX_CACHE_SLOTS + 1).is_none());
    }

    /// A chunk through [`attend_chunk`] against the same tokens through
    /// [`attend`] one by one (after the same per-head norms): outputs, the
    /// rotated queries and keys and the cache bytes identical, for chunks
    /// that fill a fresh cache, start part way, run into and past the ring's
    /// wrap, on one thread and two.
    #[test]
    fn chunks_equal_steps_bit_for_bit() {
        let sh = shape();
        let (qd, kd, hd) = (sh.n_heads * sh.head_dim, sh.n_kv_heads * sh.head_dim, sh.head_dim);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let q_norm: Vec<f32> = (0..hd).map(|_| 1.0 + noise(&mut seed) * 0.5).collect();
        let k_norm: Vec<f32> = (0..hd).map(|_| 1.0 + noise(&mut seed) * 0.5).collect();
        let mut workers = vec![crate::parallel::Workers::single()];
        #[cfg(feature = "threads")]
        workers.push(crate::parallel::Workers::threads(2).unwrap());
        let cases =
            [(KvFormat::F32, 0, 64), (KvFormat::Q4, 2, 9), (KvFormat::F16, 0, 5), (KvFormat::Q8, 3, 20)];
        for (format, sinks, window) in cases {
            let layout = CacheLayout::new(&sh, KvCacheOptions { format, sinks, window }).unwrap();
            for norms in [None, Some((&q_norm[..], &k_norm[..], 1e-5))] {
                for &w in &workers {
                    let mut step_cache = vec![0u8; layout.bytes().unwrap()];
                    let mut chunk_cache = step_cache.clone();
                    let mut pos = 0u64;
                    // Chunk lengths: 1 (a step), fills, and ones across the wrap.
                    for n in [1usize, 6, 13, 2, 25, 7] {
                        let q: Vec<f32> = (0..n * qd).map(|_| noise(&mut seed) * 2.0).collect();
                        let k: Vec<f32> = (0..n * kd).map(|_| noise(&mut seed) * 2.0).collect();
                        let v: Vec<f32> = (0..n * kd).map(|_| noise(&mut seed)).collect();
                        let (mut sq, mut sk, mut sv, mut so) =
                            (q.clone(), k.clone(), v.clone(), vec![0f32; n * qd]);
                        let mut scratch = vec![0f32; scratch_words(&sh, &layout, 1)];
                        for t in 0..n {
                            let (qt, kt) = (&mut sq[t * qd..(t + 1) * qd], &mut sk[t * kd..(t + 1) * kd]);
                            if let Some((qn, kn, eps)) = norms {
                                qt.chunks_exact_mut(hd).for_each(|h| rms_norm_in_place(h, qn, eps));
                                kt.chunks_exact_mut(hd).for_each(|h| rms_norm_in_place(h, kn, eps));
                            }
                            let rows = ChunkRows {
                                q: qt,
                                k: kt,
                                v: &mut sv[t * kd..(t + 1) * kd],
                                out: &mut so[t * qd..(t + 1) * qd],
                            };
                            let at = pos + t as u64;
                            attend(
                                (&sh, &layout),
                                &mut step_cache,
                                at,
                                rows,
                                &mut scratch,
                                &eddy_kernels::SCALAR,
                            );
                        }
                        let (mut cq, mut ck, mut cv, mut co) = (q, k, v, vec![1f32; n * qd]);
                        let mut scratch = vec![0f32; scratch_words(&sh, &layout, n)];
                        let mut rows = ChunkRows { q: &mut cq, k: &mut ck, v: &mut cv, out: &mut co };
                        let cx = Compute { kernels: &eddy_kernels::SCALAR, workers: w };
                        attend_chunk(
                            &sh,
                            &layout,
                            &mut chunk_cache,
                            pos,
                            n,
                            &mut rows,
                            norms,
                            &mut scratch,
                            cx,
                        );
                        let what = format!("{format:?} sinks {sinks} window {window} pos {pos} n {n} {w:?}");
                        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                        assert_eq!(bits(&co), bits(&so), "outputs: {what}");
                        assert_eq!((bits(&cq), bits(&ck)), (bits(&sq), bits(&sk)), "q, k: {what}");
                        assert!(chunk_cache == step_cache, "cache: {what}");
                        pos += n as u64;
                    }
                }
            }
        }
    }

    #[test]
    fn position_round_trips_through_state_words() {
        let mut w = [0f32; 2];
        for p in [0u64, 1, 1 << 33, u64::MAX] {
            store_position(&mut w, p);
            assert_eq!(load_position(&w), p);
        }
    }
}
