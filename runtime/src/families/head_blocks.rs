//! A per-head recurrence over a prefill chunk (GLA, Gated DeltaNet,
//! RWKV-7): with an f32 state, blocks of heads run every token of the
//! chunk on the workers, one hand-off per layer; with a coded state, token
//! by token over all heads, the state stored after each token.
//!
//! Heads are independent and each is computed by the same kernel code
//! whichever block it falls in, so the results are the same for any
//! number of threads.

use crate::family::Compute;
use crate::state_store::LayerState;
use core::ops::Range;

/// Heads `first..first + count` of a recurrence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadBlock {
    /// First head.
    pub first: usize,
    /// Heads in the block.
    pub count: usize,
}

impl HeadBlock {
    /// The block's values of token `t` in rows of `row` values,
    /// `per_head` values per head.
    pub(crate) fn span(self, t: usize, row: usize, per_head: usize) -> Range<usize> {
        let start = t * row + self.first * per_head;
        start..start + self.count * per_head
    }

    /// The same heads counted in groups of `group` (e.g. the query/key
    /// heads of value heads; blocks are whole groups).
    pub(crate) fn grouped(self, group: usize) -> HeadBlock {
        let group = group.max(1);
        HeadBlock { first: self.first / group, count: self.count / group }
    }
}

/// The geometry of a per-head recurrence over a chunk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadRecurrence {
    /// Heads.
    pub heads: usize,
    /// Blocks are whole multiples of this many heads.
    pub group: usize,
    /// f32 words of state per head.
    pub state_words: usize,
    /// Output values per head and token.
    pub out_width: usize,
    /// Tokens of the chunk.
    pub tokens: usize,
}

/// Run `step(t, block, state, out)` for every token `t` of the chunk and
/// every head: `state` is the block's part of `layer.words()[span]`, `out`
/// its output of token `t` (`block.count * out_width` values), gathered
/// into `out` (`[tokens, heads * out_width]`). `blocked` stages the
/// blocks' outputs when several workers run (at least as long as `out`).
pub(crate) fn run_heads(
    cx: Compute<'_>,
    layer: &mut LayerState<'_>,
    span: Range<usize>,
    shape: HeadRecurrence,
    (out, blocked): (&mut [f32], &mut [f32]),
    step: impl Fn(usize, HeadBlock, &mut [f32], &mut [f32]) + Sync,
) {
    let HeadRecurrence { heads, group, state_words, out_width, tokens } = shape;
    let width = heads * out_width;
    let all = HeadBlock { first: 0, count: heads };
    let workers = cx.workers.count();
    let group = group.max(1);
    if !layer.codes_nothing() || workers == 1 || heads <= group {
        for (t, row) in out.chunks_exact_mut(width.max(1)).take(tokens).enumerate() {
            step(t, all, &mut layer.words()[span.clone()], row);
            layer.end_token();
        }
        return;
    }
    let per_block = heads.div_ceil(workers).div_ceil(group) * group;
    let state = &mut layer.words()[span.start..span.start + heads * state_words];
    let blocked = &mut blocked[..tokens * width];
    cx.workers.for_chunk_pairs(
        blocked,
        tokens * per_block * out_width,
        state,
        per_block * state_words,
        |i, o, s| {
            let block = HeadBlock { first: i * per_block, count: s.len() / state_words.max(1) };
            for (t, row) in o.chunks_exact_mut((block.count * out_width).max(1)).enumerate() {
                step(t, block, s, row);
            }
        },
    );
    // Block `i` holds `[tokens, count * out_width]`: back to token rows.
    crate::chunk::unblock_channels(blocked, &mut out[..tokens * width], tokens, per_block * out_width);
}

#[cfg(all(test, feature = "threads"))]
mod tests {
    use super::*;
    use crate::parallel::Workers;
    use crate::state_store::{StateFormat, StatePart, StateParts, StateStore};
    use std::vec::Vec;

    /// State and outputs after a chunk of `shape.tokens` tokens on
    /// `threads` threads, with a step whose every head depends on its own
    /// state, the token and the head's index only.
    fn run(shape: HeadRecurrence, threads: usize) -> (Vec<u32>, Vec<u32>) {
        let words = 3 + shape.heads * shape.state_words;
        let mut body: Vec<f32> = (0..words).map(|i| i as f32 * 0.25).collect();
        let mut work = std::vec![0f32; words];
        let width = shape.heads * shape.out_width;
        let (mut out, mut blocked) =
            (std::vec![0f32; shape.tokens * width], std::vec![0f32; shape.tokens * width]);
        let cx = Compute { kernels: &eddy_kernels::SCALAR, workers: Workers::threads(threads).unwrap() };
        let (sw, ow) = (shape.state_words, shape.out_width);
        let mut store = StateStore::new(StateFormat::F32, &mut body, &mut work);
        let mut layers = store.layers();
        let mut layer = layers.next(StateParts::new([StatePart::Exact(words)]));
        run_heads(cx, &mut layer, 3..words, shape, (&mut out, &mut blocked), |t, b, state, out| {
            for h in 0..b.count {
                let head = b.first + h;
                let s = &mut state[h * sw..(h + 1) * sw];
                for (j, v) in s.iter_mut().enumerate() {
                    *v = *v * 0.5 + (t * 7 + head * 3 + j) as f32;
                }
                for (j, o) in out[h * ow..(h + 1) * ow].iter_mut().enumerate() {
                    *o = s.iter().sum::<f32>() * (j + 1) as f32;
                }
            }
        });
        // (The layer writes back when dropped; the store only borrows.)
        drop(layer);
        (body.iter().map(|v| v.to_bits()).collect(), out.iter().map(|v| v.to_bits()).collect())
    }

    #[test]
    fn any_thread_count_gives_the_same_state_and_outputs() {
        for (heads, group) in [(4, 1), (7, 1), (6, 2), (1, 1), (9, 3)] {
            let shape = HeadRecurrence { heads, group, state_words: 5, out_width: 3, tokens: 11 };
            let one = run(shape, 1);
            for threads in [2, 3] {
                assert!(run(shape, threads) == one, "heads {heads} group {group} threads {threads}");
            }
        }
    }
}
