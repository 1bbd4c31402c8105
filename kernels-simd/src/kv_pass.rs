//! The SIMD attention kernels' passes over a KV cache, written once for
//! every ISA: the geometry of the rows, the per-call Q4 query sums, the
//! scores loop (four rows at a time) and the mix loop (passes of up to 64
//! output values in registers). An ISA supplies its eight-lane f32 vector
//! ([`KvLanes`]: loads, arithmetic, the reference's pairwise reduction)
//! and its entry points with their `target_feature` ([`KvIsa`]); every
//! generic function here is `#[inline(always)]`, so it is compiled inside
//! those functions with their features.
//!
//! Each lane `l` of a unit of eight values holds value `8 u + l`: exactly
//! the reference's lane `j % 8` (`eddy_quant::kv_dot`), so the products add
//! up in the reference's order, and every operation keeps the operand
//! order of the ISA kernels it replaced (NaN payloads depend on it).

use crate::KvRows;
use eddy_quant::{kv_group, KvFormat};

/// Scale groups per row the SIMD scores kernels keep Q4 query sums for on
/// the stack (head_dim up to 2048 at groups of 32); rows with more go to
/// the scalar reference.
pub(crate) const MAX_GROUPS: usize = 64;

/// Lanes of the reference's partial sums (see `eddy_quant::kv_dot`).
pub(crate) const LANES: usize = 8;

/// Geometry of a valid set of rows.
pub(crate) struct KvShape {
    /// Values per row.
    pub head_dim: usize,
    /// Values per scale group (32, or the whole row).
    pub group: usize,
    /// Groups per row.
    pub groups: usize,
    /// Offset of the group parameters in a row (bytes of codes).
    pub code_bytes: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// The first byte of row 0.
    pub base: *const u8,
}

/// The query of an attention-scores call and its Q4 sums (zero for other
/// formats; see [`KvShape::query_sums`]).
pub(crate) struct Query<'a> {
    /// `head_dim` values.
    pub q: &'a [f32],
    /// Σ q per group and lane.
    pub sums: [[f32; LANES]; MAX_GROUPS],
}

impl KvShape {
    /// The shape of `rows` if the SIMD kernels cover it: valid rows (see
    /// [`KvRows::row_bytes`]), a query or output of `len == head_dim`
    /// values, at most [`MAX_GROUPS`] groups. `None` sends the caller to
    /// the scalar reference, which handles (or ignores) everything else.
    pub(crate) fn of(rows: &KvRows<'_>, len: usize) -> Option<Self> {
        rows.row_bytes()?;
        let head_dim = rows.head_dim;
        let group = kv_group(head_dim);
        let groups = head_dim / group;
        let code_bytes = match rows.format {
            KvFormat::F32 => 4 * head_dim,
            KvFormat::F16 => 2 * head_dim,
            KvFormat::Q8 => head_dim,
            KvFormat::Q4 => head_dim / 2,
        };
        (len == head_dim && groups <= MAX_GROUPS).then_some(KvShape {
            head_dim,
            group,
            groups,
            code_bytes,
            stride: rows.stride,
            base: rows.bytes.as_ptr(),
        })
    }

    /// Σ q per group and lane (`sums[g][j % 8] += q[g * group + j]` in
    /// order), exactly as the reference sums it for every Q4 row: the
    /// kernels compute it once per call.
    pub(crate) fn query_sums(&self, q: &[f32]) -> [[f32; LANES]; MAX_GROUPS] {
        let mut sums = [[0f32; LANES]; MAX_GROUPS];
        for (s, qg) in sums.iter_mut().zip(q.chunks_exact(self.group)) {
            for (j, qi) in qg.iter().enumerate() {
                s[j % LANES] += qi;
            }
        }
        sums
    }
}

/// One storage format of the rows: its group parameters and how one value
/// is read (the same on every ISA).
pub(crate) trait KvCodes {
    /// The format.
    const FORMAT: KvFormat;
    /// f16 parameters per group after the codes: none (F32, F16), a scale
    /// (Q8), or a scale and a minimum (Q4).
    const PARAMS: usize;
    /// Value (F32, F16) or code (Q8, Q4) `i` of the row at `row`.
    ///
    /// # Safety
    /// `row` points at a whole row with `i < head_dim`.
    unsafe fn one(row: *const u8, i: usize) -> f32;
}

/// f32 rows.
pub(crate) struct F32;
/// f16 rows.
pub(crate) struct F16;
/// int8 codes with one f16 scale per group.
pub(crate) struct Q8;
/// 4-bit codes with an f16 scale and minimum per group.
pub(crate) struct Q4;

// The reads below cover value `i` of the row, inside it by the callers'
// contract; `read` of a byte array needs no alignment.
impl KvCodes for F32 {
    const FORMAT: KvFormat = KvFormat::F32;
    const PARAMS: usize = 0;
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { f32::from_le_bytes((row.add(4 * i) as *const [u8; 4]).read()) }
    }
}

impl KvCodes for F16 {
    const FORMAT: KvFormat = KvFormat::F16;
    const PARAMS: usize = 0;
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { half::f16::from_le_bytes((row.add(2 * i) as *const [u8; 2]).read()).to_f32() }
    }
}

impl KvCodes for Q8 {
    const FORMAT: KvFormat = KvFormat::Q8;
    const PARAMS: usize = 1;
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { (*row.add(i) as i8) as f32 }
    }
}

impl KvCodes for Q4 {
    const FORMAT: KvFormat = KvFormat::Q4;
    const PARAMS: usize = 2;
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { ((*row.add(i / 2) >> (4 * (i % 2))) & 0x0f) as f32 }
    }
}

/// The same group parameters as [`KvLanes::group_params`], as scalars, as
/// the reference decodes them.
///
/// # Safety
/// `params` points at the row's group parameters and `g` is one of its
/// groups.
#[inline(always)]
unsafe fn group_params_scalar<C: KvCodes>(params: *const u8, g: usize) -> (f32, f32) {
    // SAFETY: reads group `g`'s parameter bytes.
    let f16_at = |at: usize| unsafe { half::f16::from_le_bytes((params.add(at) as *const [u8; 2]).read()) };
    match C::PARAMS {
        2 => (f16_at(4 * g).to_f32(), f16_at(4 * g + 2).to_f32()),
        1 => (f16_at(2 * g).to_f32(), 0.0),
        _ => (1.0, 0.0),
    }
}

/// Eight f32 lanes of one ISA (the reference's eight partial sums).
///
/// # Safety
/// Every method needs the ISA's features (the callers' `target_feature`
/// functions enable them) and reads or writes only what it says.
pub(crate) trait KvLanes: Copy {
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// `x` in every lane.
    unsafe fn splat(x: f32) -> Self;
    /// Eight floats at `p`.
    unsafe fn load(p: *const f32) -> Self;
    /// Store the eight lanes at `p`.
    unsafe fn store(self, p: *mut f32);
    /// `self + b` lane by lane.
    unsafe fn add(self, b: Self) -> Self;
    /// `self * b` lane by lane.
    unsafe fn mul(self, b: Self) -> Self;
    /// `scale * x + min` where the product is exact (a Q4 code times an
    /// f16 scale), so a fused multiply-add gives the same value.
    unsafe fn scale_add(scale: Self, x: Self, min: Self) -> Self;
    /// Values `i..i + 8` of the row at `row` in format `C`, as f32.
    unsafe fn unit<C: KvCodes>(row: *const u8, i: usize) -> Self;
    /// Scale and minimum (0 for Q8) of group `g`, in every lane.
    unsafe fn group_params<C: KvCodes>(params: *const u8, g: usize) -> (Self, Self);
    /// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
    unsafe fn reduce(self) -> f32;
    /// [`reduce`](Self::reduce) of four rows, stored at `out[0..4]`.
    unsafe fn reduce4(a: &[Self; 4], out: *mut f32) {
        for (r, v) in a.iter().enumerate() {
            // SAFETY (caller): `out` holds four floats.
            unsafe { *out.add(r) = v.reduce() };
        }
    }
}

/// One ISA's attention kernels: whether the CPU runs them and its passes
/// compiled with its features (each a `target_feature` function calling
/// [`scores_rows`] or [`mix_rows`] with its [`KvLanes`]).
pub(crate) trait KvIsa {
    /// True if this CPU runs the ISA's kernels.
    fn available() -> bool;
    /// [`scores_rows`] with the ISA's lanes.
    ///
    /// # Safety
    /// As [`scores_rows`], on a CPU where [`available`](Self::available).
    unsafe fn scores_rows<C: KvCodes>(s: &KvShape, query: &Query<'_>, scores: &mut [f32]);
    /// [`mix_rows`] with the ISA's lanes.
    ///
    /// # Safety
    /// As [`mix_rows`], on a CPU where [`available`](Self::available).
    unsafe fn mix_rows<C: KvCodes>(s: &KvShape, weights: &[f32], out: &mut [f32]);
}

/// See [`crate::KvScores`]: the ISA's kernels where they cover the rows,
/// else [`crate::scalar::kv_scores`] (bit-identical either way).
#[inline(always)]
pub(crate) fn kv_scores<I: KvIsa>(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]) {
    let Some(shape) = KvShape::of(&rows, q.len()).filter(|_| I::available()) else {
        crate::scalar::kv_scores(rows, q, scores);
        return;
    };
    let n = rows.count.min(scores.len());
    let scores = &mut scores[..n];
    let sums = if rows.format == KvFormat::Q4 { shape.query_sums(q) } else { [[0f32; LANES]; MAX_GROUPS] };
    let query = Query { q, sums };
    // SAFETY: the CPU runs the ISA's kernels; KvRows::row_bytes (in
    // KvShape::of) checked that rows 0..count, `stride` bytes apart, each
    // hold a whole row of `head_dim` values inside `bytes`, and n <= count;
    // `q` holds `head_dim` values.
    unsafe {
        match rows.format {
            KvFormat::F32 => I::scores_rows::<F32>(&shape, &query, scores),
            KvFormat::F16 => I::scores_rows::<F16>(&shape, &query, scores),
            KvFormat::Q8 => I::scores_rows::<Q8>(&shape, &query, scores),
            KvFormat::Q4 => I::scores_rows::<Q4>(&shape, &query, scores),
        }
    }
}

/// See [`crate::KvMix`]: the ISA's kernels where they cover the rows, else
/// [`crate::scalar::kv_mix`] (bit-identical either way).
#[inline(always)]
pub(crate) fn kv_mix<I: KvIsa>(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]) {
    let Some(shape) = KvShape::of(&rows, out.len()).filter(|_| I::available()) else {
        crate::scalar::kv_mix(rows, weights, out);
        return;
    };
    let weights = &weights[..rows.count.min(weights.len())];
    // SAFETY: as in `kv_scores`, with `weights.len() <= count` rows and
    // `out` holding `head_dim` values.
    unsafe {
        match rows.format {
            KvFormat::F32 => I::mix_rows::<F32>(&shape, weights, out),
            KvFormat::F16 => I::mix_rows::<F16>(&shape, weights, out),
            KvFormat::Q8 => I::mix_rows::<Q8>(&shape, weights, out),
            KvFormat::Q4 => I::mix_rows::<Q4>(&shape, weights, out),
        }
    }
}

/// `acc[r]` lane `j % 8` += value `start + j` of row `r` times `q[start +
/// j]`, for `j` in `0..len` in order (the reference's inner loop).
///
/// # Safety
/// The ISA's features present; every `rows[r]` points at a whole row and
/// `q` at `head_dim` values, with `start + len <= head_dim`.
#[inline(always)]
unsafe fn accumulate<V: KvLanes, C: KvCodes, const R: usize>(
    rows: &[*const u8; R],
    q: *const f32,
    start: usize,
    len: usize,
    acc: &mut [V; R],
) {
    let units = len / 8;
    // SAFETY: every read is inside a row or `q` per the contract.
    unsafe {
        for u in 0..units {
            let i = start + 8 * u;
            let qv = V::load(q.add(i));
            for r in 0..R {
                acc[r] = acc[r].add(V::unit::<C>(rows[r], i).mul(qv));
            }
        }
        if len % 8 != 0 {
            // Ragged tail (head_dim not a multiple of 8): lanes 0.. in order.
            for (a, &row) in acc.iter_mut().zip(rows) {
                let mut lanes = [0f32; LANES];
                a.store(lanes.as_mut_ptr());
                for j in units * 8..len {
                    lanes[j - units * 8] += C::one(row, start + j) * *q.add(start + j);
                }
                *a = V::load(lanes.as_ptr());
            }
        }
    }
}

/// The reference's eight lanes of `R` rows' dot products with `q`.
///
/// # Safety
/// As [`accumulate`]; `qsum` holds the Q4 query sums of every group.
#[inline(always)]
unsafe fn row_lanes<V: KvLanes, C: KvCodes, const R: usize>(
    s: &KvShape,
    rows: &[*const u8; R],
    q: *const f32,
    qsum: &[[f32; LANES]; MAX_GROUPS],
) -> [V; R] {
    // SAFETY: reads inside the rows (group parameters of groups < s.groups)
    // and `qsum`; `accumulate` per its contract.
    unsafe {
        let mut lanes = [V::zero(); R];
        if C::PARAMS == 0 {
            accumulate::<V, C, R>(rows, q, 0, s.head_dim, &mut lanes);
            return lanes;
        }
        for (g, qs) in qsum.iter().enumerate().take(s.groups) {
            let mut acc = [V::zero(); R];
            accumulate::<V, C, R>(rows, q, g * s.group, s.group, &mut acc);
            let qs = V::load(qs.as_ptr());
            for ((l, a), &row) in lanes.iter_mut().zip(&acc).zip(rows) {
                let (scale, min) = V::group_params::<C>(row.add(s.code_bytes), g);
                let scaled = scale.mul(*a);
                let term = if C::PARAMS == 2 { scaled.add(min.mul(qs)) } else { scaled };
                *l = l.add(term);
            }
        }
        lanes
    }
}

/// Scores of rows `0..scores.len()`: four at a time, then one at a time.
///
/// # Safety
/// The ISA's features present; rows `0..scores.len()` at `base + j *
/// stride` are whole rows; the query has `head_dim` values.
#[inline(always)]
pub(crate) unsafe fn scores_rows<V: KvLanes, C: KvCodes>(s: &KvShape, query: &Query<'_>, scores: &mut [f32]) {
    let (base, q, qsum) = (s.base, query.q.as_ptr(), &query.sums);
    let mut blocks = scores.chunks_exact_mut(4);
    let mut j = 0;
    // SAFETY: rows j..j + 4 (or j) are below scores.len(); `row_lanes`
    // per its contract; each block holds exactly four floats.
    unsafe {
        for out in &mut blocks {
            let rows = [0, 1, 2, 3].map(|r| base.add((j + r) * s.stride));
            let lanes = row_lanes::<V, C, 4>(s, &rows, q, qsum);
            V::reduce4(&lanes, out.as_mut_ptr());
            j += 4;
        }
        for out in blocks.into_remainder() {
            let lanes = row_lanes::<V, C, 1>(s, &[base.add(j * s.stride)], q, qsum);
            *out = lanes[0].reduce();
            j += 1;
        }
    }
}

/// `out = Σ_j weights[j] row_j`: passes of 8, 4, 2 and 1 units of output
/// in registers, then the ragged tail column by column.
///
/// # Safety
/// The ISA's features present; rows `0..weights.len()` at `base + j *
/// stride` are whole rows; `out` has `head_dim` values.
#[inline(always)]
pub(crate) unsafe fn mix_rows<V: KvLanes, C: KvCodes>(s: &KvShape, weights: &[f32], out: &mut [f32]) {
    let base = s.base;
    let units = s.head_dim / 8;
    let mut u0 = 0;
    // SAFETY: every pass covers units below head_dim / 8; the tail reads
    // value `i < head_dim` and its group's parameters of rows < weights.len().
    unsafe {
        while units - u0 >= 8 {
            mix_pass::<V, C, 8>(s, weights, out, u0);
            u0 += 8;
        }
        for width in [4, 2, 1] {
            if units - u0 >= width {
                match width {
                    4 => mix_pass::<V, C, 4>(s, weights, out, u0),
                    2 => mix_pass::<V, C, 2>(s, weights, out, u0),
                    _ => mix_pass::<V, C, 1>(s, weights, out, u0),
                }
                u0 += width;
            }
        }
        for (i, o) in out.iter_mut().enumerate().skip(units * 8) {
            let g = i / s.group;
            let mut acc = 0f32;
            for (j, &w) in weights.iter().enumerate() {
                let row = base.add(j * s.stride);
                let (scale, min) = group_params_scalar::<C>(row.add(s.code_bytes), g);
                let c = C::one(row, i);
                let v = match C::PARAMS {
                    0 => c,
                    1 => scale * c,
                    _ => scale * c + min,
                };
                acc += w * v;
            }
            *o = acc;
        }
    }
}

/// Output values `8 u0 .. 8 (u0 + U)` over every row. With groups of 32,
/// passes start at a multiple of 32 values (units come in fours and passes
/// of 8 go first), so units `0..4` use one group and `4..8` the next;
/// otherwise the row is a single group.
///
/// # Safety
/// As [`mix_rows`], with `u0 + U <= head_dim / 8`.
#[inline(always)]
unsafe fn mix_pass<V: KvLanes, C: KvCodes, const U: usize>(
    s: &KvShape,
    weights: &[f32],
    out: &mut [f32],
    u0: usize,
) {
    let (base, c0) = (s.base, 8 * u0);
    let (g0, two_groups) = if s.group == 32 { (c0 / 32, U > 4) } else { (0, false) };
    debug_assert!(s.group != 32 || c0 % 32 == 0);
    // SAFETY: reads units u0..u0 + U and the parameters of groups g0 (and
    // g0 + 1 with two groups) of rows < weights.len(); writes values
    // c0..c0 + 8 U <= head_dim of `out`.
    unsafe {
        let mut acc = [V::zero(); U];
        for (j, &w) in weights.iter().enumerate() {
            let row = base.add(j * s.stride);
            let p = V::splat(w);
            let zero = V::zero();
            let ((s0, m0), (s1, m1)) = match C::PARAMS {
                0 => ((zero, zero), (zero, zero)),
                _ => {
                    let first = V::group_params::<C>(row.add(s.code_bytes), g0);
                    (
                        first,
                        if two_groups { V::group_params::<C>(row.add(s.code_bytes), g0 + 1) } else { first },
                    )
                }
            };
            for (u, a) in acc.iter_mut().enumerate() {
                let x = V::unit::<C>(row, c0 + 8 * u);
                let (scale, min) = if u < 4 { (s0, m0) } else { (s1, m1) };
                let v = match C::PARAMS {
                    0 => x,
                    1 => scale.mul(x),
                    _ => V::scale_add(scale, x, min),
                };
                *a = a.add(p.mul(v));
            }
        }
        for (u, a) in acc.iter().enumerate() {
            a.store(out.as_mut_ptr().add(c0 + 8 * u));
        }
    }
}
