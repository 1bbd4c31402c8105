//! Attention-cache kernels (`kv_scores`, `kv_mix`) of every compiled kernel
//! set this CPU supports against the scalar reference, bit for bit: the
//! reference (`eddy_quant::kv_dot`) fixes its summation order so SIMD
//! kernels can reproduce it exactly. NaN results only need to be NaN in
//! both (which NaN an operation returns depends on operand order).
//!
//! Shapes: head_dim 16..256 and ragged ones (single groups not a multiple
//! of 8), row counts around the kernels' blocks, strides larger than a row
//! and rows at odd addresses; values: encoded random data from tiny to
//! large, adversarial groups (all equal, all zero, saturating), and raw
//! random bytes (any code, any f16 parameter including Inf and NaN).

use eddy_kernels::{compiled, supported, Kernels, KvRows, SCALAR};
use eddy_quant::{encode_kv_row, KvFormat};
use eddy_testkit::Lcg31 as Rng;

fn kernel_sets() -> Vec<&'static Kernels> {
    let sets: Vec<_> = compiled().iter().copied().filter(|k| supported(k)).collect();
    println!("testing kernel sets: {:?}", sets.iter().map(|k| k.name).collect::<Vec<_>>());
    sets
}

/// Equal bits, or both NaN.
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// A cache of `count` rows, `stride` bytes apart, starting `offset` bytes
/// into its buffer (so rows may sit at odd addresses).
struct Cache {
    buf: Vec<u8>,
    offset: usize,
    format: KvFormat,
    head_dim: usize,
    count: usize,
    stride: usize,
}

impl Cache {
    fn rows(&self) -> KvRows<'_> {
        KvRows {
            format: self.format,
            bytes: &self.buf[self.offset..],
            stride: self.stride,
            count: self.count,
            head_dim: self.head_dim,
        }
    }

    /// Rows encoded from `values` (`count * head_dim`), with random bytes
    /// in the gaps between rows.
    fn encoded(
        rng: &mut Rng,
        format: KvFormat,
        head_dim: usize,
        values: &[f32],
        gap: usize,
        offset: usize,
    ) -> Self {
        let count = values.len() / head_dim;
        let row = format.row_bytes(head_dim).unwrap();
        let stride = row + gap;
        let mut buf: Vec<u8> = (0..offset + count * stride).map(|_| rng.next() as u8).collect();
        for (j, x) in values.chunks_exact(head_dim).enumerate() {
            let at = offset + j * stride;
            encode_kv_row(format, x, &mut buf[at..at + row]).unwrap();
        }
        Cache { buf, offset, format, head_dim, count, stride }
    }

    /// Rows of random bytes: every code and every f16 parameter.
    fn raw(rng: &mut Rng, format: KvFormat, head_dim: usize, count: usize, gap: usize) -> Self {
        let stride = format.row_bytes(head_dim).unwrap() + gap;
        let buf = (0..1 + count * stride).map(|_| rng.next() as u8).collect();
        Cache { buf, offset: 1, format, head_dim, count, stride }
    }
}

/// Scores and mix of `k` against the scalar reference, with the output
/// buffers one longer than needed (the extra value must stay untouched)
/// and, for the mix, all weights and then a prefix of them.
fn check(k: &Kernels, cache: &Cache, q: &[f32], weights: &[f32], what: &str) {
    let rows = cache.rows();
    let name = format!(
        "{} {:?} d{} n{} stride {} {what}",
        k.name, cache.format, cache.head_dim, cache.count, cache.stride
    );
    let (mut want, mut got) = (vec![7f32; cache.count + 1], vec![7f32; cache.count + 1]);
    (SCALAR.kv_scores)(rows, q, &mut want);
    (k.kv_scores)(rows, q, &mut got);
    assert!(same(&want, &got), "scores {name}:\n want {want:?}\n  got {got:?}");
    // A scores buffer shorter than the row count.
    let short = cache.count / 2;
    (SCALAR.kv_scores)(rows, q, &mut want[..short]);
    (k.kv_scores)(rows, q, &mut got[..short]);
    assert!(same(&want, &got), "short scores {name}");
    for w in [weights, &weights[..weights.len() / 3]] {
        let (mut want, mut got) = (vec![7f32; cache.head_dim], vec![-7f32; cache.head_dim]);
        (SCALAR.kv_mix)(rows, w, &mut want);
        (k.kv_mix)(rows, w, &mut got);
        assert!(same(&want, &got), "mix of {} rows {name}:\n want {want:?}\n  got {got:?}", w.len());
    }
}

const HEAD_DIMS: [usize; 7] = [16, 32, 64, 80, 96, 128, 256];
const COUNTS: [usize; 5] = [0, 1, 7, 33, 300];
/// Head dims whose single group is not a multiple of 8 (or 16): the
/// kernels' ragged tails.
const RAGGED_HEAD_DIMS: [usize; 6] = [2, 6, 7, 12, 20, 40];

fn supported_formats(head_dim: usize) -> impl Iterator<Item = KvFormat> {
    KvFormat::ALL.into_iter().filter(move |f| f.supports(head_dim))
}

#[test]
fn random_caches_are_bit_exact() {
    let mut rng = Rng(3);
    let sets = kernel_sets();
    for (case, &head_dim) in HEAD_DIMS.iter().chain(&RAGGED_HEAD_DIMS).enumerate() {
        for (c, &count) in COUNTS.iter().enumerate() {
            let amp = [1e-3f32, 1.0, 300.0][(case + c) % 3];
            let values: Vec<f32> = (0..count * head_dim).map(|_| rng.f() * amp).collect();
            let q: Vec<f32> = (0..head_dim).map(|_| rng.f() * [1.0f32, 8.0, 0.05][c % 3]).collect();
            let weights: Vec<f32> = (0..count).map(|_| rng.f().abs()).collect();
            for f in supported_formats(head_dim) {
                // Rows packed, then with a gap and at odd addresses.
                let (gap, offset) = [(0, 0), (3, 1), (17, 2), (64, 5)][(case + c) % 4];
                let cache = Cache::encoded(&mut rng, f, head_dim, &values, gap, offset);
                for k in &sets {
                    check(k, &cache, &q, &weights, "random");
                }
            }
        }
    }
}

#[test]
fn adversarial_groups_are_bit_exact() {
    let mut rng = Rng(7);
    let sets = kernel_sets();
    for head_dim in [64usize, 80, 20] {
        let count = 9;
        // Row kinds: all equal (zero Q4 scale), all zero, saturating f16
        // (and overflowing it), one outlier per group, alternating signs,
        // subnormal magnitudes.
        let kinds: [&dyn Fn(usize, usize) -> f32; 6] = [
            &|_, _| 3.25,
            &|_, _| 0.0,
            &|_, i| if i % 2 == 0 { 70000.0 } else { -65504.0 },
            &|j, i| if i % 32 == j { 1000.0 } else { 0.001 * i as f32 },
            &|j, i| if (i + j) % 2 == 0 { 1.0 } else { -1.0 },
            &|_, i| 1e-7 * (i as f32 - 10.0),
        ];
        for (n, kind) in kinds.iter().enumerate() {
            let values: Vec<f32> = (0..count * head_dim).map(|v| kind(v / head_dim, v % head_dim)).collect();
            let queries: [Vec<f32>; 3] = [
                (0..head_dim).map(|_| rng.f()).collect(),
                (0..head_dim).map(|i| if i % 3 == 0 { -0.0 } else { 60000.0 * rng.f() }).collect(),
                vec![-0.0; head_dim],
            ];
            let weights: Vec<f32> = (0..count).map(|j| [0.0, -0.0, 1.0, -2.5, 1e30][j % 5]).collect();
            for f in supported_formats(head_dim) {
                let cache = Cache::encoded(&mut rng, f, head_dim, &values, 1, 3);
                for k in &sets {
                    for q in &queries {
                        check(k, &cache, q, &weights, &format!("adversarial kind {n}"));
                    }
                }
            }
        }
    }
}

#[test]
fn raw_bytes_are_bit_exact() {
    let mut rng = Rng(11);
    let sets = kernel_sets();
    for &head_dim in HEAD_DIMS.iter().chain(&RAGGED_HEAD_DIMS) {
        for f in supported_formats(head_dim) {
            let count = 1 + rng.below(40);
            let gap = rng.below(9);
            let cache = Cache::raw(&mut rng, f, head_dim, count, gap);
            let q: Vec<f32> = (0..head_dim).map(|_| rng.f() * 4.0).collect();
            let weights: Vec<f32> = (0..count).map(|_| rng.f()).collect();
            for k in &sets {
                check(k, &cache, &q, &weights, "raw bytes");
            }
        }
    }
}

/// Random head dims (even, odd, multiples of 32 and not) and counts.
#[test]
fn random_shapes_are_bit_exact() {
    let mut rng = Rng(13);
    let sets = kernel_sets();
    for _ in 0..60 {
        let head_dim = 1 + rng.below(300);
        let count = rng.below(70);
        let values: Vec<f32> = (0..count * head_dim).map(|_| rng.f() * 2.0).collect();
        let q: Vec<f32> = (0..head_dim).map(|_| rng.f()).collect();
        let weights: Vec<f32> = (0..count).map(|_| rng.f()).collect();
        for f in supported_formats(head_dim) {
            let (gap, offset) = (rng.below(40), rng.below(4));
            let cache = Cache::encoded(&mut rng, f, head_dim, &values, gap, offset);
            for k in &sets {
                check(k, &cache, &q, &weights, "random shape");
            }
        }
    }
}

/// The largest head_dim the SIMD kernels take (64 groups of 32) and larger
/// ones, which go to the scalar reference: equal either way.
#[test]
fn largest_head_dims_are_bit_exact() {
    let mut rng = Rng(19);
    let sets = kernel_sets();
    for head_dim in [2048usize, 2080, 4096] {
        let count = 5;
        let values: Vec<f32> = (0..count * head_dim).map(|_| rng.f()).collect();
        let q: Vec<f32> = (0..head_dim).map(|_| rng.f()).collect();
        let weights: Vec<f32> = (0..count).map(|_| rng.f()).collect();
        for f in supported_formats(head_dim) {
            let cache = Cache::encoded(&mut rng, f, head_dim, &values, 2, 1);
            for k in &sets {
                check(k, &cache, &q, &weights, "large head_dim");
            }
        }
    }
}

/// Invalid calls (rows outside the buffer, a stride shorter than a row,
/// query or output of the wrong length, unsupported head_dim) behave as
/// the reference: no panic, same outputs.
#[test]
fn invalid_calls_match_the_reference() {
    let mut rng = Rng(17);
    let head_dim = 64;
    for f in KvFormat::ALL {
        let good = Cache::raw(&mut rng, f, head_dim, 5, 2);
        let row = f.row_bytes(head_dim).unwrap();
        let variants = [
            KvRows { count: 6, ..good.rows() },
            KvRows { stride: row - 1, ..good.rows() },
            KvRows { head_dim: 63, ..good.rows() },
            KvRows { head_dim: 0, ..good.rows() },
            KvRows { bytes: &[], ..good.rows() },
        ];
        for k in kernel_sets() {
            for (v, rows) in variants.iter().enumerate() {
                for len in [rows.head_dim, head_dim + 2, 0] {
                    let q: Vec<f32> = (0..len).map(|i| i as f32).collect();
                    let (mut want, mut got) = (vec![1f32; 8], vec![1f32; 8]);
                    (SCALAR.kv_scores)(*rows, &q, &mut want);
                    (k.kv_scores)(*rows, &q, &mut got);
                    assert!(same(&want, &got), "{} {f:?} invalid {v} scores, len {len}", k.name);
                    let (mut want, mut got) = (vec![1f32; len], vec![1f32; len]);
                    (SCALAR.kv_mix)(*rows, &[0.5; 8], &mut want);
                    (k.kv_mix)(*rows, &[0.5; 8], &mut got);
                    assert!(same(&want, &got), "{} {f:?} invalid {v} mix, len {len}", k.name);
                }
            }
            // A valid cache with a query or output one value too long.
            let q = vec![1f32; head_dim + 1];
            let (mut want, mut got) = (vec![1f32; 5], vec![1f32; 5]);
            (SCALAR.kv_scores)(good.rows(), &q, &mut want);
            (k.kv_scores)(good.rows(), &q, &mut got);
            assert!(same(&want, &got), "{} {f:?} long query", k.name);
        }
    }
}

/// The SIMD sets run their own attention kernels (not the scalar ones),
/// so the comparisons above test something.
#[test]
fn simd_sets_have_their_own_attention_kernels() {
    let scalar = (SCALAR.kv_scores as usize, SCALAR.kv_mix as usize);
    for k in compiled() {
        if ["avx2", "neon", "neon-sdot"].contains(&k.name) {
            assert_ne!(k.kv_scores as usize, scalar.0, "{} kv_scores", k.name);
            assert_ne!(k.kv_mix as usize, scalar.1, "{} kv_mix", k.name);
        }
    }
}
