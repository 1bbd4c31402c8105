//! A layer's independent matrix products (the projections of the same
//! normed rows, LoRA chains) in one hand-off to the workers.
//!
//! In a decode step each product is a matrix-vector product, split by rows
//! across the workers: one pool round trip per product, and the small
//! LoRA products finish before the second thread has even woken up, so
//! one thread ran most of the step (RWKV-7 0.1B: 15 round trips per
//! layer). Here a step's products are dealt whole to the workers (each
//! product on one thread, balanced by weight count) and run side by side
//! after one hand-off. A product's result does not depend on the thread
//! that computes it nor on a row split, so results are the same for any
//! thread count. A prefill chunk (or one thread, a calibration observer,
//! an offload device) runs them one after another as before: each
//! chunk product already splits its tokens across the workers.

use crate::family::RunCtx;
use crate::linear::{ActScratch, Linear};
use crate::parallel::Workers;

/// Most groups (threads) a step's products are dealt to.
const MAX_GROUPS: usize = 4;

/// A LoRA's second half: its activation, up matrix and output rows.
pub(crate) type LoraUp<'p, 'a> = (fn(f32) -> f32, &'p Linear<'a>, &'p mut [f32]);

/// One product `y = l(x)`, optionally followed by a LoRA's second half
/// `y2 = up(act(y))` (then `y` is the LoRA's hidden rows).
pub(crate) struct Product<'p, 'a> {
    /// The matrix.
    pub l: &'p Linear<'a>,
    /// Its input rows.
    pub x: &'p [f32],
    /// Its output rows.
    pub y: &'p mut [f32],
    /// The LoRA's activation, up matrix and output rows.
    pub then: Option<LoraUp<'p, 'a>>,
}

impl Product<'_, '_> {
    /// Weights read: what the product's time is proportional to.
    fn cost(&self) -> usize {
        let up = self.then.as_ref().map_or(0, |(_, up, _)| up.rows() * up.cols());
        self.l.rows() * self.l.cols() + up
    }

    /// Run it for `n` rows with the activation scratch of `rc`.
    fn run(self, n: usize, rc: &mut RunCtx<'_, '_, '_>) {
        rc.project(self.l, self.x, self.y, n);
        if let Some((act, up, y2)) = self.then {
            apply(act, self.y);
            rc.project(up, self.y, y2, n);
        }
    }
}

fn apply(act: fn(f32) -> f32, v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = act(*x);
    }
}

/// f32 words of scratch [`run_products`] needs for inputs of up to
/// `max_cols` values.
pub(crate) fn scratch_words(max_cols: usize) -> usize {
    MAX_GROUPS * ActScratch::words(max_cols)
}

/// The products dealt to one worker, and its activation scratch.
struct Group<'p, 'a, 's, const N: usize> {
    products: [Option<Product<'p, 'a>>; N],
    acts: Option<ActScratch<'s>>,
}

/// Run every product of `products` for `n` rows (each product's `x` and
/// `y` hold `n` rows). `scratch` holds [`scratch_words`]`(max_cols)`.
pub(crate) fn run_products<const N: usize>(
    products: [Product<'_, '_>; N],
    n: usize,
    (scratch, max_cols): (&mut [f32], usize),
    rc: &mut RunCtx<'_, '_, '_>,
) {
    let workers = rc.cx.workers;
    let groups = workers.count().min(MAX_GROUPS).min(N);
    let together = n == 1 && groups > 1 && rc.observe.is_none() && workers.offload().is_none();
    if !together || scratch.len() < scratch_words(max_cols) {
        for p in products {
            p.run(n, rc);
        }
        return;
    }
    let mut slots: [Group<'_, '_, '_, N>; MAX_GROUPS] =
        core::array::from_fn(|_| Group { products: core::array::from_fn(|_| None), acts: None });
    let words = ActScratch::words(max_cols);
    for (slot, w) in slots.iter_mut().zip(scratch.chunks_exact_mut(words)) {
        slot.acts = Some(ActScratch::from_words(w, max_cols));
    }
    // Greedy by weight count, each product to the least loaded group.
    let mut load = [0usize; MAX_GROUPS];
    for (i, p) in products.into_iter().enumerate() {
        let g = (0..groups).min_by_key(|&g| load[g]).unwrap_or(0);
        load[g] += p.cost();
        slots[g].products[i] = Some(p);
    }
    let kernels = rc.cx.kernels;
    workers.for_chunks(&mut slots[..groups], 1, &mut [], |_, slot, _| {
        for Group { products, acts } in slot {
            let Some(acts) = acts else { continue };
            for p in products.iter_mut().filter_map(Option::take) {
                p.l.matvec(p.x, p.y, acts, kernels, Workers::single());
                if let Some((act, up, y2)) = p.then {
                    apply(act, p.y);
                    up.matvec(p.y, y2, acts, kernels, Workers::single());
                }
            }
        }
    });
}
