//! The SIMD passes of the linear-attention state updates, written once
//! for every ISA: GLA's gated outer product, Gated DeltaNet's delta rule
//! and RWKV-7's generalized delta rule. An ISA supplies its eight-lane f32
//! vector ([`StateLanes`]) and entry points with its `target_feature`;
//! every function here is `#[inline(always)]`, so it is compiled inside
//! those entry points with their features.
//!
//! Every lane computes one value column of the state, and each column's
//! sums over the key rows run in the reference's order, so the results are
//! the reference's bit for bit (multiplies and adds kept apart, operands in
//! the reference's order). GLA and Gated DeltaNet store a head's state as
//! `[key, value]`: a vector is eight consecutive values of one key row.
//! RWKV-7 stores it as `[value, key]` and sums along each row: eight rows
//! are read as an 8 x 8 block, transposed so that a vector holds one key
//! column of eight value rows, and transposed back after the update.
//! Columns (or rows) that do not fill a vector run the same arithmetic
//! one value at a time.
//!
//! Inputs too short for the heads the buffers hold go to the reference,
//! which stops part-way through them.

use crate::kv_pass::KvLanes;
use crate::reference::{self, DeltaRuleArgs, GatedOuterProductArgs, GeneralizedDeltaRuleArgs};

/// An ISA's entry point of a state update: `$module::$pass::<$lanes>`
/// inside a function compiled with `$feature`, the reference when
/// `$available` is false.
macro_rules! state_update {
    ($(#[$doc:meta])* $name:ident($args:ty) = $module:ident::$pass:ident::<$lanes:ty>, feature $feature:literal,
     if $available:expr) => {
        $(#[$doc])*
        pub fn $name(args: &$args, state: &mut [f32], out: &mut [f32]) {
            #[target_feature(enable = $feature)]
            unsafe fn run(args: &$args, state: &mut [f32], out: &mut [f32]) {
                // SAFETY: the feature is enabled here, which is all the
                // pass needs.
                unsafe { $crate::$module::$pass::<$lanes>(args, state, out) }
            }
            if !$available {
                return $crate::reference::$pass(args, state, out);
            }
            // SAFETY: the CPU has the feature.
            unsafe { run(args, state, out) }
        }
    };
}
pub(crate) use state_update;

/// Lanes of a [`StateLanes`] vector.
pub(crate) const LANES: usize = 8;

/// Value columns one pass of GLA and Gated DeltaNet keeps in registers.
const BLOCK_VECTORS: usize = 4;

/// An eight-lane f32 vector of one ISA: the attention kernels' vector
/// (splat, load, store, add, multiply) plus what the state updates also
/// need.
pub(crate) trait StateLanes: KvLanes {
    /// `self - b` per lane.
    unsafe fn sub(self, b: Self) -> Self;
    /// The 8 x 8 transpose: lane `c` of vector `r` goes to lane `r` of
    /// vector `c`.
    unsafe fn transpose(rows: &mut [Self; LANES]);
}

/// Heads the buffers of a [`GatedOuterProductArgs`] call hold, `None` if
/// an input is too short for them (or a width is zero).
fn gop_heads(a: &GatedOuterProductArgs<'_>, state: &[f32], out: &[f32]) -> Option<usize> {
    let (kd, vd) = (a.key_dim, a.value_dim);
    let heads =
        a.heads.min(state.len() / (kd * vd).max(1)).min(out.len() / vd.max(1)).min(a.v.len() / vd.max(1));
    let rows = heads * kd;
    (kd > 0 && vd > 0 && a.decay.len() >= rows && a.k.len() >= rows && a.q.len() >= rows).then_some(heads)
}

/// See [`reference::GatedOuterProduct`]; bit-exact with
/// [`reference::gated_outer_product`].
///
/// # Safety
/// The CPU must run `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn gated_outer_product<V: StateLanes>(
    a: &GatedOuterProductArgs<'_>,
    state: &mut [f32],
    out: &mut [f32],
) {
    let Some(heads) = gop_heads(a, state, out) else {
        reference::gated_outer_product(a, state, out);
        return;
    };
    let (kd, vd) = (a.key_dim, a.value_dim);
    for h in 0..heads {
        // SAFETY: `gop_heads` checked every buffer for `heads` heads.
        let head = unsafe {
            GopHead {
                m: Head::of(state, out, a.v, (a.q, a.k), (h, h), (kd, vd)),
                decay: a.decay.as_ptr().add(h * kd),
            }
        };
        // SAFETY: the head's pointers cover its rows and columns.
        unsafe { each_column_block::<V, _>(&head, vd) };
    }
}

/// A head of GLA or Gated DeltaNet: pointers to its state (`kd` rows of
/// `vd` values), output, values, query and key.
struct Head {
    s: *mut f32,
    o: *mut f32,
    v: *const f32,
    q: *const f32,
    k: *const f32,
    kd: usize,
    vd: usize,
}

impl Head {
    /// Value head `h` (query/key head `key_head`) of the buffers.
    ///
    /// # Safety
    /// Every buffer holds the heads (`q`, `k` the key head).
    #[inline(always)]
    unsafe fn of(
        state: &mut [f32],
        out: &mut [f32],
        v: &[f32],
        (q, k): (&[f32], &[f32]),
        (h, key_head): (usize, usize),
        (kd, vd): (usize, usize),
    ) -> Self {
        // SAFETY: inside the buffers, as the caller guarantees.
        unsafe {
            Head {
                s: state.as_mut_ptr().add(h * kd * vd),
                o: out.as_mut_ptr().add(h * vd),
                v: v.as_ptr().add(h * vd),
                q: q.as_ptr().add(key_head * kd),
                k: k.as_ptr().add(key_head * kd),
                kd,
                vd,
            }
        }
    }
}

impl Head {
    /// Columns `c..c + 8 N` of every row `i`: `S_i ← α_i S_i + k_i w`
    /// (`α_i` from `decay`, or no decay: `S_i + k_i w`), then the read-out
    /// `o = Σ_i q_i S_i` in row order, stored to the output.
    ///
    /// # Safety
    /// The columns lie inside the head, `decay` (if not null) holds `kd`
    /// values; the CPU runs `V`.
    #[inline(always)]
    unsafe fn write_and_read<V: StateLanes, const N: usize>(&self, c: usize, decay: *const f32, w: &[V; N]) {
        // SAFETY: (whole function) inside the head and `decay`, as the
        // caller guarantees.
        unsafe {
            let mut acc = [V::splat(0.0); N];
            for i in 0..self.kd {
                let (ki, qi) = (V::splat(*self.k.add(i)), V::splat(*self.q.add(i)));
                let row = self.s.add(i * self.vd + c);
                for b in 0..N {
                    let p = row.add(b * LANES);
                    let old = V::load(p);
                    let kept = if decay.is_null() { old } else { V::splat(*decay.add(i)).mul(old) };
                    let x = kept.add(ki.mul(w[b]));
                    x.store(p);
                    acc[b] = acc[b].add(x.mul(qi));
                }
            }
            for (b, ab) in acc.iter().enumerate() {
                ab.store(self.o.add(c + b * LANES));
            }
        }
    }

    /// [`write_and_read`](Self::write_and_read) of column `c` alone.
    ///
    /// # Safety
    /// As for [`write_and_read`](Self::write_and_read).
    #[inline(always)]
    unsafe fn write_and_read_column(&self, c: usize, decay: *const f32, w: f32) {
        // SAFETY: (whole function) inside the head and `decay`, as the
        // caller guarantees.
        unsafe {
            let mut acc = 0.0f32;
            for i in 0..self.kd {
                let p = self.s.add(i * self.vd + c);
                let kept = if decay.is_null() { *p } else { *decay.add(i) * *p };
                *p = kept + *self.k.add(i) * w;
                acc += *p * *self.q.add(i);
            }
            *self.o.add(c) = acc;
        }
    }
}

/// An update that runs column by column over a [`Head`]'s rows.
trait ColumnPass {
    /// Columns `c..c + 8 N`.
    ///
    /// # Safety
    /// They lie inside the head; the CPU runs `V`.
    unsafe fn columns<V: StateLanes, const N: usize>(&self, c: usize);
    /// Column `c` alone.
    ///
    /// # Safety
    /// It lies inside the head.
    unsafe fn column(&self, c: usize);
}

/// Every column of `pass`'s head (`vd` columns): blocks of 32 in registers, then of 8,
/// then one at a time.
///
/// # Safety
/// The head's pointers cover its rows and columns; the CPU runs `V`.
#[inline(always)]
unsafe fn each_column_block<V: StateLanes, P: ColumnPass>(pass: &P, vd: usize) {
    let mut c = 0;
    while c + BLOCK_VECTORS * LANES <= vd {
        // SAFETY: columns `c..c + 32` lie inside the head.
        unsafe { pass.columns::<V, BLOCK_VECTORS>(c) };
        c += BLOCK_VECTORS * LANES;
    }
    while c + LANES <= vd {
        // SAFETY: columns `c..c + 8` lie inside the head.
        unsafe { pass.columns::<V, 1>(c) };
        c += LANES;
    }
    for c in c..vd {
        // SAFETY: column `c` lies inside the head.
        unsafe { pass.column(c) };
    }
}

/// One head of a gated outer product and its decays per key row.
struct GopHead {
    m: Head,
    decay: *const f32,
}

impl ColumnPass for GopHead {
    #[inline(always)]
    unsafe fn columns<V: StateLanes, const N: usize>(&self, c: usize) {
        // SAFETY: the columns lie inside the head, `decay` holds its rows.
        unsafe {
            let mut v = [V::splat(0.0); N];
            for (b, vb) in v.iter_mut().enumerate() {
                *vb = V::load(self.m.v.add(c + b * LANES));
            }
            self.m.write_and_read(c, self.decay, &v);
        }
    }

    #[inline(always)]
    unsafe fn column(&self, c: usize) {
        // SAFETY: as above, one column.
        unsafe { self.m.write_and_read_column(c, self.decay, *self.m.v.add(c)) }
    }
}

/// Heads the buffers of a [`DeltaRuleArgs`] call hold: as many as the
/// reference runs (it stops at the first head without all its inputs).
fn delta_heads(a: &DeltaRuleArgs<'_>, state: &[f32], out: &[f32]) -> usize {
    let (kd, vd) = (a.key_dim, a.value_dim);
    if kd == 0 || vd == 0 {
        return 0;
    }
    let heads = a.heads.min(state.len() / (kd * vd)).min(out.len() / vd).min(a.v.len() / vd);
    let per_key = a.heads_per_key.max(1);
    (0..heads)
        .find(|&h| {
            let keys = (h / per_key + 1) * kd;
            a.q.len() < keys || a.k.len() < keys || a.beta.len() <= h || a.decay.len() <= h
        })
        .unwrap_or(heads)
}

/// See [`reference::DeltaRule`]; bit-exact with [`reference::delta_rule`].
///
/// # Safety
/// The CPU must run `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn delta_rule<V: StateLanes>(a: &DeltaRuleArgs<'_>, state: &mut [f32], out: &mut [f32]) {
    let (kd, vd) = (a.key_dim, a.value_dim);
    let per_key = a.heads_per_key.max(1);
    for h in 0..delta_heads(a, state, out) {
        // SAFETY: `delta_heads` checked every buffer for head `h`.
        let head = DeltaHead {
            m: unsafe { Head::of(state, out, a.v, (a.q, a.k), (h, h / per_key), (kd, vd)) },
            beta: a.beta[h],
            decay: a.decay[h],
        };
        // SAFETY: the head's pointers cover its rows and columns.
        unsafe { each_column_block::<V, _>(&head, vd) };
    }
}

/// One value head of a delta rule, its strength and decay.
struct DeltaHead {
    m: Head,
    beta: f32,
    decay: f32,
}

impl ColumnPass for DeltaHead {
    /// The reference's three passes over the rows, of which the last two
    /// (update, read-out) run as one: a column's read-out needs only that
    /// column.
    #[inline(always)]
    unsafe fn columns<V: StateLanes, const N: usize>(&self, c: usize) {
        // SAFETY: (whole function) every pointer stays inside the head's
        // rows and columns `c..c + 8 N`, as the caller guarantees.
        unsafe {
            let decay = V::splat(self.decay);
            let mut read = [V::splat(0.0); N];
            for i in 0..self.m.kd {
                let ki = V::splat(*self.m.k.add(i));
                let row = self.m.s.add(i * self.m.vd + c);
                for (b, rb) in read.iter_mut().enumerate() {
                    let p = row.add(b * LANES);
                    let x = V::load(p).mul(decay);
                    x.store(p);
                    *rb = rb.add(x.mul(ki));
                }
            }
            let beta = V::splat(self.beta);
            let mut u = [V::splat(0.0); N];
            for (b, ub) in u.iter_mut().enumerate() {
                *ub = V::load(self.m.v.add(c + b * LANES)).sub(read[b]).mul(beta);
            }
            self.m.write_and_read(c, core::ptr::null(), &u);
        }
    }

    #[inline(always)]
    unsafe fn column(&self, c: usize) {
        // SAFETY: (whole function) inside the head, as the caller
        // guarantees.
        unsafe {
            let mut read = 0.0f32;
            for i in 0..self.m.kd {
                let p = self.m.s.add(i * self.m.vd + c);
                *p *= self.decay;
                read += *p * *self.m.k.add(i);
            }
            let u = (*self.m.v.add(c) - read) * self.beta;
            self.m.write_and_read_column(c, core::ptr::null(), u);
        }
    }
}

/// See [`reference::GeneralizedDeltaRule`]; bit-exact with
/// [`reference::generalized_delta_rule`].
///
/// # Safety
/// The CPU must run `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn generalized_delta_rule<V: StateLanes>(
    a: &GeneralizedDeltaRuleArgs<'_>,
    state: &mut [f32],
    out: &mut [f32],
) {
    let n = a.head_size;
    if n == 0 {
        return;
    }
    // The reference stops at the first head without all its inputs.
    let inputs = [a.r, a.w, a.k, a.v, a.kappa, a.kappa_a].iter().map(|x| x.len()).min().unwrap_or(0);
    let heads = a.heads.min(state.len() / (n * n)).min(out.len() / n).min(inputs / n);
    for h in 0..heads {
        // SAFETY: every buffer holds `heads` heads.
        let head = unsafe {
            GdrHead {
                s: state.as_mut_ptr().add(h * n * n),
                o: out.as_mut_ptr().add(h * n),
                r: a.r.as_ptr().add(h * n),
                w: a.w.as_ptr().add(h * n),
                k: a.k.as_ptr().add(h * n),
                v: a.v.as_ptr().add(h * n),
                kappa: a.kappa.as_ptr().add(h * n),
                kappa_a: a.kappa_a.as_ptr().add(h * n),
                n,
            }
        };
        let mut i = 0;
        while i + LANES <= n {
            // SAFETY: rows `i..i + 8` lie inside the head.
            unsafe { head.rows::<V>(i) };
            i += LANES;
        }
        for i in i..n {
            // SAFETY: row `i` lies inside the head.
            unsafe { head.row(i) };
        }
    }
}

/// One head of a generalized delta rule: pointers to its `n x n` state
/// (rows by value), output and inputs.
struct GdrHead {
    s: *mut f32,
    o: *mut f32,
    r: *const f32,
    w: *const f32,
    k: *const f32,
    v: *const f32,
    kappa: *const f32,
    kappa_a: *const f32,
    n: usize,
}

impl GdrHead {
    /// Rows `i..i + 8`, one per lane.
    ///
    /// # Safety
    /// They lie inside the head; the CPU runs `V`.
    #[inline(always)]
    unsafe fn rows<V: StateLanes>(&self, i: usize) {
        let n = self.n;
        let full = n - n % LANES;
        // SAFETY: (whole function) rows `i..i + 8` and columns `0..n` lie
        // inside the head, as the caller guarantees.
        unsafe {
            let base = self.s.add(i * n);
            // sa = S_i · (-κ) for the eight rows, in column order.
            let mut sa = V::splat(0.0);
            for j in (0..full).step_by(LANES) {
                let block = load_block::<V>(base, n, j);
                for (c, col) in block.iter().enumerate() {
                    sa = sa.sub(col.mul(V::splat(*self.kappa.add(j + c))));
                }
            }
            for j in full..n {
                sa = sa.sub(gather::<V>(base, n, j).mul(V::splat(*self.kappa.add(j))));
            }
            let vi = V::load(self.v.add(i));
            let mut acc = V::splat(0.0);
            for j in (0..full).step_by(LANES) {
                let mut block = load_block::<V>(base, n, j);
                for (c, col) in block.iter_mut().enumerate() {
                    *col = self.update(*col, j + c, sa, vi, &mut acc);
                }
                V::transpose(&mut block);
                for (r, b) in block.iter().enumerate() {
                    b.store(base.add(r * n + j));
                }
            }
            for j in full..n {
                let col = self.update(gather::<V>(base, n, j), j, sa, vi, &mut acc);
                scatter(col, base, n, j);
            }
            acc.store(self.o.add(i));
        }
    }

    /// Column `j` of eight rows updated (`col`: its old values; `sa`,
    /// `vi`: the rows' removal read-out and values), its read-out added
    /// to `acc`.
    ///
    /// # Safety
    /// Column `j` lies inside the head; the CPU runs `V`.
    #[inline(always)]
    unsafe fn update<V: StateLanes>(&self, col: V, j: usize, sa: V, vi: V, acc: &mut V) -> V {
        // SAFETY: inside the head, as the caller guarantees.
        unsafe {
            let x = col
                .mul(V::splat(*self.w.add(j)))
                .add(sa.mul(V::splat(*self.kappa_a.add(j))))
                .add(vi.mul(V::splat(*self.k.add(j))));
            *acc = acc.add(x.mul(V::splat(*self.r.add(j))));
            x
        }
    }

    /// Row `i` alone, as the reference.
    ///
    /// # Safety
    /// It lies inside the head.
    #[inline(always)]
    unsafe fn row(&self, i: usize) {
        let n = self.n;
        // SAFETY: (whole function) row `i` lies inside the head, as the
        // caller guarantees.
        unsafe {
            let row = self.s.add(i * n);
            let mut sa = 0.0f32;
            for j in 0..n {
                sa -= *row.add(j) * *self.kappa.add(j);
            }
            let vi = *self.v.add(i);
            let mut acc = 0.0f32;
            for j in 0..n {
                let p = row.add(j);
                *p = *p * *self.w.add(j) + sa * *self.kappa_a.add(j) + vi * *self.k.add(j);
                acc += *p * *self.r.add(j);
            }
            *self.o.add(i) = acc;
        }
    }
}

/// The 8 x 8 block of the eight rows from `base` (`n` apart) at columns
/// `j..j + 8`, transposed: vector `c` holds column `j + c`.
///
/// # Safety
/// The block lies in one allocation; the CPU runs `V`.
#[inline(always)]
unsafe fn load_block<V: StateLanes>(base: *const f32, n: usize, j: usize) -> [V; LANES] {
    // SAFETY: inside the rows, as the caller guarantees.
    unsafe {
        let mut block = [V::splat(0.0); LANES];
        for (r, b) in block.iter_mut().enumerate() {
            *b = V::load(base.add(r * n + j));
        }
        V::transpose(&mut block);
        block
    }
}

/// Column `j` of the eight rows from `base` (`n` apart) as one vector.
///
/// # Safety
/// The eight values lie in one allocation; the CPU runs `V`.
#[inline(always)]
unsafe fn gather<V: StateLanes>(base: *const f32, n: usize, j: usize) -> V {
    let mut lanes = [0f32; LANES];
    for (r, l) in lanes.iter_mut().enumerate() {
        // SAFETY: inside the rows, as the caller guarantees.
        *l = unsafe { *base.add(r * n + j) };
    }
    // SAFETY: `lanes` holds eight values.
    unsafe { V::load(lanes.as_ptr()) }
}

/// The inverse of [`gather`].
///
/// # Safety
/// As for [`gather`].
#[inline(always)]
unsafe fn scatter<V: StateLanes>(col: V, base: *mut f32, n: usize, j: usize) {
    let mut lanes = [0f32; LANES];
    // SAFETY: `lanes` holds eight values; the targets lie inside the rows.
    unsafe {
        col.store(lanes.as_mut_ptr());
        for (r, l) in lanes.iter().enumerate() {
            *base.add(r * n + j) = *l;
        }
    }
}
