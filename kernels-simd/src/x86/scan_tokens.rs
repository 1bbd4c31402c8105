//! AVX2 selective scan of several tokens (prefill), bit-exact with one
//! [`super::scan::selective_scan`] call per token.
//!
//! Per block of eight channels and [`TOKEN_BLOCK`] tokens it runs three
//! passes: softplus and gate of every token (one channel per lane), then
//! every decay `exp(A delta)` of those tokens as one stream of independent
//! `exp`s (no state update waits on them), then the state updates and
//! `C·h` sums token by token. One token at a time, the decays' `exp` chains
//! and the updates depending on them competed for the same small window of
//! the out-of-order core.

use super::reduce_lanes8;
use super::scan::{exp8_each, neg_abs8, selective_scan, silu8_with, softplus8_with, LANES};
use crate::vector::{selective_scan_by_token, ScanTokens};
use core::arch::x86_64::*;

/// Tokens whose softplus, gates and decays are computed before their
/// state updates.
const TOKEN_BLOCK: usize = 8;
/// State vectors (of eight states) per channel one decay pass covers;
/// larger `d_state`s run in groups of this many.
const GROUP_VECTORS: usize = 2;
/// `exp`s evaluated side by side.
const EXP_WIDTH: usize = 8;

/// See [`crate::vector::SelectiveScanTokens`]. Runs token by token when a
/// row is short, `d_state` is not a multiple of eight or the CPU lacks
/// AVX2; the last `channels % 8` channels run the reference per token.
pub fn selective_scan_tokens(args: &ScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let (channels, ds) = (args.d.len(), args.d_state);
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) || !super::avx2_available() {
        selective_scan_by_token(selective_scan, args, state, y);
        return;
    }
    let blocks = channels / LANES;
    // SAFETY: AVX2 was detected; `complete` checked every row, `a`,
    // `state` and `y` for `channels` channels and `tokens` tokens.
    unsafe { scan_blocks(args, state, y, blocks) };
    let done = blocks * LANES;
    if done < channels {
        for t in 0..args.tokens {
            let y_t = &mut y[t * channels..(t + 1) * channels];
            crate::vector::selective_scan_scalar_from(done, &args.token(t), state, y_t);
        }
    }
}

/// The first `blocks * 8` channels, every token.
#[target_feature(enable = "avx2")]
unsafe fn scan_blocks(args: &ScanTokens<'_>, state: &mut [f32], y: &mut [f32], blocks: usize) {
    let (channels, ds) = (args.d.len(), args.d_state);
    let mut work = BlockWork {
        deltas: [[0f32; LANES]; TOKEN_BLOCK],
        gates: [_mm256_setzero_ps(); TOKEN_BLOCK],
        dots: [[_mm256_setzero_ps(); LANES]; TOKEN_BLOCK],
        decays: [_mm256_setzero_ps(); TOKEN_BLOCK * LANES * GROUP_VECTORS],
    };
    for block in 0..blocks {
        let ch0 = block * LANES;
        for t0 in (0..args.tokens).step_by(TOKEN_BLOCK) {
            let tb = TOKEN_BLOCK.min(args.tokens - t0);
            let at = Rows { args, t0, ch0 };
            deltas_and_gates(&at, &mut work, tb);
            let mut j0 = 0;
            while j0 < ds {
                if ds - j0 >= GROUP_VECTORS * LANES {
                    scan_group::<GROUP_VECTORS>(&at, &mut work, state.as_mut_ptr(), tb, j0);
                    j0 += GROUP_VECTORS * LANES;
                } else {
                    scan_group::<1>(&at, &mut work, state.as_mut_ptr(), tb, j0);
                    j0 += LANES;
                }
            }
            let d = _mm256_loadu_ps(args.d.as_ptr().add(ch0));
            for t in 0..tb {
                let du = _mm256_mul_ps(_mm256_loadu_ps(at.row(&args.u, t).add(ch0)), d);
                let out = _mm256_mul_ps(_mm256_add_ps(reduce_lanes8(&work.dots[t]), du), work.gates[t]);
                _mm256_storeu_ps(y.as_mut_ptr().add((t0 + t) * channels + ch0), out);
            }
        }
    }
}

/// `softplus(dt)` and `silu(z)` of the block's `tb` tokens, their `exp`s
/// side by side.
#[inline(always)]
unsafe fn deltas_and_gates(at: &Rows<'_, '_>, work: &mut BlockWork, tb: usize) {
    let (mut dt, mut z) = ([_mm256_setzero_ps(); TOKEN_BLOCK], [_mm256_setzero_ps(); TOKEN_BLOCK]);
    // Exponents: `-|dt|` of each token, then `-z`; unused slots stay 0.
    let mut e = [_mm256_setzero_ps(); 2 * TOKEN_BLOCK];
    for t in 0..tb {
        dt[t] = _mm256_loadu_ps(at.row(&at.args.dt, t).add(at.ch0));
        z[t] = _mm256_loadu_ps(at.row(&at.args.z, t).add(at.ch0));
        e[t] = neg_abs8(dt[t]);
        e[TOKEN_BLOCK + t] = _mm256_xor_ps(z[t], _mm256_set1_ps(-0.0));
    }
    let mut first = 0;
    while first < 2 * TOKEN_BLOCK {
        let mut x = [_mm256_setzero_ps(); EXP_WIDTH];
        x.copy_from_slice(&e[first..first + EXP_WIDTH]);
        e[first..first + EXP_WIDTH].copy_from_slice(&exp8_each(x));
        first += EXP_WIDTH;
    }
    for t in 0..tb {
        _mm256_storeu_ps(work.deltas[t].as_mut_ptr(), softplus8_with(dt[t], e[t]));
        work.gates[t] = silu8_with(z[t], e[TOKEN_BLOCK + t]);
    }
}

/// Where one block's rows are: tokens from `t0`, channels from `ch0`.
struct Rows<'a, 'x> {
    /// The scan's inputs.
    args: &'a ScanTokens<'x>,
    /// First token of the block.
    t0: usize,
    /// First channel of the block.
    ch0: usize,
}

impl Rows<'_, '_> {
    /// Token `t0 + t`'s row of `rows`.
    ///
    /// # Safety
    /// The token is one of the scan's and its rows are complete.
    #[inline(always)]
    unsafe fn row(&self, rows: &crate::TokenRows<'_>, t: usize) -> *const f32 {
        // SAFETY (caller): inside `rows.data`.
        rows.data.as_ptr().add((self.t0 + t) * rows.stride)
    }
}

/// One block's per-token values (eight channels, up to [`TOKEN_BLOCK`]
/// tokens), kept across blocks so nothing is cleared that is not used.
struct BlockWork {
    /// `softplus(dt)` per token and channel.
    deltas: [[f32; LANES]; TOKEN_BLOCK],
    /// `silu(z)` per token, one channel per lane.
    gates: [__m256; TOKEN_BLOCK],
    /// `C·h` partial sums per token and channel (eight lanes each).
    dots: [[__m256; LANES]; TOKEN_BLOCK],
    /// Decays of one group: `(t, i, v)` at `(t * LANES + i) * NV + v`.
    decays: [__m256; TOKEN_BLOCK * LANES * GROUP_VECTORS],
}

/// States `j0..j0 + NV * 8` of the block's channels over its `tb` tokens:
/// decays first, then the updates and `C·h` sums.
#[inline(always)]
unsafe fn scan_group<const NV: usize>(
    at: &Rows<'_, '_>,
    work: &mut BlockWork,
    state: *mut f32,
    tb: usize,
    j0: usize,
) {
    let (args, ch0, ds) = (at.args, at.ch0, at.args.d_state);
    let decays = work.decays.as_mut_ptr();
    // The decays, EXP_WIDTH `exp`s side by side: `EXP_WIDTH / NV`
    // channels of one token at a time.
    let per_group = EXP_WIDTH / NV;
    for t in 0..tb {
        for i0 in (0..LANES).step_by(per_group) {
            let mut x = [_mm256_setzero_ps(); EXP_WIDTH];
            for (k, xk) in x.iter_mut().enumerate() {
                let (i, v) = (i0 + k / NV, k % NV);
                let a = _mm256_loadu_ps(args.a.as_ptr().add((ch0 + i) * ds + j0 + v * LANES));
                *xk = _mm256_mul_ps(a, _mm256_set1_ps(work.deltas[t][i]));
            }
            let e = exp8_each(x);
            let p = decays.add((t * LANES + i0) * NV);
            for (k, ek) in e.into_iter().enumerate() {
                *p.add(k) = ek;
            }
        }
    }
    for t in 0..tb {
        let (b, c, u) = (at.row(&args.b, t).add(j0), at.row(&args.c, t).add(j0), at.row(&args.u, t).add(ch0));
        let (mut bv, mut cv) = ([_mm256_setzero_ps(); NV], [_mm256_setzero_ps(); NV]);
        for v in 0..NV {
            (bv[v], cv[v]) = (_mm256_loadu_ps(b.add(v * LANES)), _mm256_loadu_ps(c.add(v * LANES)));
        }
        for i in 0..LANES {
            let (delta, uv) = (_mm256_set1_ps(work.deltas[t][i]), _mm256_set1_ps(*u.add(i)));
            let mut dot = if j0 == 0 { _mm256_setzero_ps() } else { work.dots[t][i] };
            for v in 0..NV {
                // h = exp(a delta) h + (delta b) u, then dot += h c.
                let h = state.add((ch0 + i) * ds + j0 + v * LANES);
                let input = _mm256_mul_ps(_mm256_mul_ps(delta, bv[v]), uv);
                let hv = _mm256_add_ps(
                    _mm256_mul_ps(*decays.add((t * LANES + i) * NV + v), _mm256_loadu_ps(h)),
                    input,
                );
                _mm256_storeu_ps(h, hv);
                dot = _mm256_add_ps(dot, _mm256_mul_ps(hv, cv[v]));
            }
            work.dots[t][i] = dot;
        }
    }
}
