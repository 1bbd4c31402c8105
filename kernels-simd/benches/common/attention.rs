//! One attention head over a cache of `window` rows, shared by the
//! criterion bench (`benches/attention.rs`) and the quick timing / QEMU
//! example (`examples/kv_attention.rs`): scores by `kv_scores`, a plain
//! scalar softmax, the output by `kv_mix`.

use eddy_kernels::{Kernels, KvRows};
use eddy_quant::{encode_kv_row, KvFormat};

/// A key cache and a value cache of one head, and one query.
pub struct Head {
    pub format: KvFormat,
    pub head_dim: usize,
    pub window: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    row_bytes: usize,
    pub query: Vec<f32>,
}

impl Head {
    /// Random keys, values and query (fixed seed), encoded in `format`.
    pub fn random(format: KvFormat, head_dim: usize, window: usize) -> Self {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let row_bytes = format.row_bytes(head_dim).expect("format supports head_dim");
        let mut cache = |scale: f32| {
            let mut bytes = vec![0u8; window * row_bytes];
            let mut x = vec![0f32; head_dim];
            for row in bytes.chunks_exact_mut(row_bytes) {
                x.iter_mut().for_each(|v| *v = next() * scale);
                encode_kv_row(format, &x, row).expect("row length");
            }
            bytes
        };
        let (keys, values) = (cache(2.0), cache(1.0));
        let query = (0..head_dim).map(|_| next()).collect();
        Head { format, head_dim, window, keys, values, row_bytes, query }
    }

    fn rows<'a>(&self, bytes: &'a [u8]) -> KvRows<'a> {
        KvRows {
            format: self.format,
            bytes,
            stride: self.row_bytes,
            count: self.window,
            head_dim: self.head_dim,
        }
    }

    /// `out = softmax(q · k / sqrt(d)) · V` with `k`'s kernels; `scores`
    /// holds `window` values.
    pub fn attend(&self, k: &Kernels, scores: &mut [f32], out: &mut [f32]) {
        (k.kv_scores)(self.rows(&self.keys), &self.query, scores);
        softmax(scores, 1.0 / (self.head_dim as f32).sqrt());
        (k.kv_mix)(self.rows(&self.values), scores, out);
    }
}

/// `s = exp(t (s - max)) / Σ`, in place: the plain scalar softmax.
pub fn softmax(scores: &mut [f32], t: f32) {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (t * (*s - max)).exp();
        sum += *s;
    }
    let inv = 1.0 / sum;
    scores.iter_mut().for_each(|s| *s *= inv);
}
