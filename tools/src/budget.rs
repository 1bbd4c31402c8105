//! `--target-bpw`: a byte budget instead of a fixed format. Each matrix is
//! quantized once in every candidate format to measure its expected loss
//! (the output error on calibration inputs, through the GPTQ Hessian when
//! there is one); formats are then allocated per tensor to minimise the
//! summed loss with all tensors' bytes within the budget.
//!
//! The allocation is the greedy solution of a multiple-choice knapsack on
//! each tensor's lower convex hull of (bytes, loss): upgrades are taken in
//! order of loss saved per byte, which is optimal at every hull vertex.

use crate::calibrate::{quantize_matrix, tensor_to_f32, ActivationStats, CalibrationOptions};
use crate::gptq::{gptq_quantize_factored, inverse_hessian_factor};
use crate::quantize::{output_mse, OUTPUT_MSE_MAX_MACS};
use crate::recipe::{Recipe, Rule};
use eddy::{Model, TensorFormat};

/// The formats the allocator chooses among (those eddy stores and runs
/// with integer kernels), smallest first.
pub const CANDIDATE_FORMATS: [TensorFormat; 8] = [
    TensorFormat::W2 { group: 256 },
    TensorFormat::W2 { group: 128 },
    TensorFormat::W2 { group: 64 },
    TensorFormat::W2 { group: 32 },
    TensorFormat::W4 { group: 128 },
    TensorFormat::W4 { group: 64 },
    TensorFormat::W4 { group: 32 },
    TensorFormat::W8 { group: 64 },
];

/// Why a budget cannot be met or measured.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The target is not a usable number.
    #[error("--target-bpw {0} is not a positive, finite number of bits per weight (e.g. 2.5)")]
    BadTarget(f64),
    /// Even the smallest formats do not fit.
    #[error(
        "--target-bpw {target} is below what this model can reach: {min:.3} bits per weight with every \
         allocatable matrix in its smallest format (the rest are fixed by the recipe or --set); ask for at \
         least {min:.3}"
    )]
    TooSmall {
        /// The requested bits per weight.
        target: f64,
        /// The smallest reachable.
        min: f64,
    },
    /// Every matrix fits in its largest candidate: there is nothing to choose.
    #[error(
        "--target-bpw {target} is above {max:.3} bits per weight, where every matrix is already in its \
         largest candidate format ({largest}); use --recipe w8a8 instead, or ask for less"
    )]
    TooLarge {
        /// The requested bits per weight.
        target: f64,
        /// The largest reachable.
        max: f64,
        /// The largest candidate format's name.
        largest: &'static str,
    },
    /// The recipe leaves no matrix in an integer format to allocate.
    #[error("--target-bpw has no matrix to allocate: the recipe and --set fix every matrix's format")]
    NothingToAllocate,
    /// Measuring a candidate failed.
    #[error("cannot measure `{name}` as {format}: {reason}")]
    Measure {
        /// Tensor name.
        name: String,
        /// Format name.
        format: &'static str,
        /// Why.
        reason: String,
    },
}

/// One format a tensor may take: its bytes and its expected loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The storage format.
    pub format: TensorFormat,
    /// Bytes the tensor takes in it.
    pub bytes: u64,
    /// Expected loss (summed calibration-weighted squared error).
    pub loss: f64,
}

/// A tensor whose format the allocator chooses.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorChoices {
    /// Canonical name.
    pub name: String,
    /// The formats it may take (any order).
    pub candidates: Vec<Candidate>,
}

/// The formats chosen for a budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// Tensor name and its format, in the order given.
    pub formats: Vec<(String, TensorFormat)>,
    /// Bytes of all tensors (fixed and allocated).
    pub bytes: u64,
    /// The budget in bytes.
    pub budget: u64,
    /// Summed expected loss of the allocated tensors.
    pub loss: f64,
}

/// `candidates` reduced to their lower convex hull in (bytes, loss), by
/// increasing bytes: every step saves loss at a falling rate per byte.
fn convex_hull(candidates: &[Candidate]) -> Vec<Candidate> {
    let mut sorted = candidates.to_vec();
    sorted.sort_by(|a, b| a.bytes.cmp(&b.bytes).then(a.loss.total_cmp(&b.loss)));
    let mut hull: Vec<Candidate> = Vec::new();
    for c in sorted {
        // A point no better than the last kept one is dominated.
        if hull.last().is_some_and(|l| c.loss >= l.loss) {
            continue;
        }
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // b is above the segment a-c: drop it.
            let cross = (b.bytes - a.bytes) as f64 * (c.loss - a.loss)
                - (c.bytes - a.bytes) as f64 * (b.loss - a.loss);
            if cross <= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(c);
    }
    hull
}

/// Choose a format for each of `tensors` so that `fixed_bytes` plus their
/// bytes stay within `target_bpw * total_params / 8`, at the least summed
/// loss the greedy hull walk finds.
pub fn allocate(
    tensors: &[TensorChoices],
    fixed_bytes: u64,
    total_params: u64,
    target_bpw: f64,
) -> Result<Allocation, BudgetError> {
    if !target_bpw.is_finite() || target_bpw <= 0.0 {
        return Err(BudgetError::BadTarget(target_bpw));
    }
    let hulls: Vec<Vec<Candidate>> = tensors.iter().map(|t| convex_hull(&t.candidates)).collect();
    if hulls.is_empty() || hulls.iter().any(Vec::is_empty) {
        return Err(BudgetError::NothingToAllocate);
    }
    let bpw = |bytes: u64| bytes as f64 * 8.0 / total_params.max(1) as f64;
    let budget = (target_bpw * total_params as f64 / 8.0).floor() as u64;
    let min_bytes = fixed_bytes + hulls.iter().map(|h| h[0].bytes).sum::<u64>();
    if min_bytes > budget {
        return Err(BudgetError::TooSmall { target: target_bpw, min: bpw(min_bytes) });
    }
    let max_bytes = fixed_bytes + hulls.iter().map(|h| h[h.len() - 1].bytes).sum::<u64>();
    if max_bytes <= budget {
        let largest = CANDIDATE_FORMATS[CANDIDATE_FORMATS.len() - 1].name();
        return Err(BudgetError::TooLarge { target: target_bpw, max: bpw(max_bytes), largest });
    }
    let mut at = vec![0usize; hulls.len()];
    let mut bytes = min_bytes;
    // Tensors whose next step no longer fits are done.
    let mut done = vec![false; hulls.len()];
    loop {
        // The next step saving the most loss per byte (ties: first tensor).
        let mut best: Option<(usize, f64)> = None;
        for (i, h) in hulls.iter().enumerate() {
            if done[i] || at[i] + 1 >= h.len() {
                continue;
            }
            let (cur, next) = (h[at[i]], h[at[i] + 1]);
            let rate = (cur.loss - next.loss) / (next.bytes - cur.bytes).max(1) as f64;
            if best.is_none_or(|(_, r)| rate > r) {
                best = Some((i, rate));
            }
        }
        let Some((i, _)) = best else { break };
        let step = hulls[i][at[i] + 1].bytes - hulls[i][at[i]].bytes;
        if bytes + step > budget {
            done[i] = true;
            continue;
        }
        bytes += step;
        at[i] += 1;
    }
    let formats =
        tensors.iter().zip(&hulls).zip(&at).map(|((t, h), &k)| (t.name.clone(), h[k].format)).collect();
    let loss = hulls.iter().zip(&at).map(|(h, &k)| h[k].loss).sum();
    Ok(Allocation { formats, bytes, budget, loss })
}

/// What [`measure`] found: the allocatable tensors' choices and the bytes
/// and weights of everything.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Tensors the allocator chooses for.
    pub tensors: Vec<TensorChoices>,
    /// Bytes of the tensors whose format is fixed.
    pub fixed_bytes: u64,
    /// Weights in all tensors.
    pub total_params: u64,
}

/// Measure every candidate format of each matrix `recipe` stores in an
/// integer format (unless `pinned`, e.g. by --set): its bytes and expected
/// loss, the squared output error per token on calibration inputs. With
/// the GPTQ Hessian `H = E[x xᵀ]` (GPTQ on, the matrix small enough for
/// the report's output error) the candidate is quantized with GPTQ as it
/// will be and the loss is `tr(ΔW H ΔWᵀ)`; otherwise it is quantized with
/// the clip search and the loss is the calibration-weighted error
/// `Σ_r Σ_c E[x_c²] ΔW_rc²` (the same quantity for uncorrelated inputs).
/// An embedding is also looked up row by row: the average row's squared
/// error is added for that use. Other tensors are fixed at the bytes the
/// recipe gives them.
pub fn measure(
    model: &Model<'_>,
    recipe: &Recipe,
    pinned: &dyn Fn(&str) -> bool,
    stats: Option<&ActivationStats>,
    opts: CalibrationOptions,
) -> Result<Measured, BudgetError> {
    let matrices = crate::calibrate::matrix_names(model);
    let tied = model.file().hparam(eddy::HParam::TiedEmbeddings) == Some(1);
    let mut notes = Vec::new();
    let mut out = Measured { tensors: Vec::new(), fixed_bytes: 0, total_params: 0 };
    for t in model.file().tensors() {
        out.total_params += t.numel();
        let (rows, cols) = (t.rows(), t.cols());
        let target = if matrices.iter().any(|m| m == t.name) { recipe.format_for(t.name) } else { None };
        let target = target.map(|f| crate::quantize::fit_group(f, cols, t.name, &mut notes));
        let values = match target {
            Some(f) if f.code_bits().is_some() && !pinned(t.name) => tensor_to_f32(&t),
            _ => None,
        };
        let Some(v) = values else {
            out.fixed_bytes += match target {
                Some(f) => f.byte_len(rows, cols).unwrap_or(t.data.len() as u64),
                None => t.data.len() as u64,
            };
            continue;
        };
        let imp = stats.and_then(|s| s.mean_sq.get(t.name)).map(Vec::as_slice);
        let (r, c) = (rows as usize, cols as usize);
        // With a Hessian (GPTQ on) the candidate is quantized as it will be
        // (GPTQ, except a tied embedding) and its loss is the exact output
        // error `E|ΔW x|²`, correlations included.
        let tied_embed = tied && t.name == "embed.weight";
        let macs = rows.saturating_mul(cols).saturating_mul(cols);
        let hessian = stats
            .and_then(|s| s.hessians.get(t.name))
            .filter(|h| opts.gptq && h.len() == c * c && macs <= OUTPUT_MSE_MAX_MACS);
        let factor = hessian.filter(|_| !tied_embed).and_then(|h| inverse_hessian_factor(h, c));
        let mut candidates = Vec::new();
        for format in CANDIDATE_FORMATS {
            let Ok(bytes) = format.byte_len(rows, cols) else { continue };
            if format.group_size().is_some_and(|g| cols % g as u64 != 0) {
                continue;
            }
            let measure_err = |reason: String| BudgetError::Measure {
                name: t.name.to_string(),
                format: format.name(),
                reason,
            };
            let gptq = match (hessian, factor.as_deref()) {
                (Some(h), Some(u)) => gptq_quantize_factored(format, r, c, &v, h, Some(u), opts.clip_search)
                    .map_err(|e| measure_err(e.to_string()))?,
                _ => None,
            };
            let (data, err) = match gptq {
                Some(done) => done,
                None => {
                    quantize_matrix(format, r, c, &v, imp, opts).map_err(|e| measure_err(e.to_string()))?
                }
            };
            let n = t.numel() as f64;
            let weighted = if imp.is_some() && opts.activation_aware { err.weighted_mse } else { err.mse };
            let mut loss = match hessian {
                Some(h) => output_mse(format, r, c, &v, &data, h) * r as f64,
                None => weighted * n,
            };
            if t.name == "embed.weight" {
                loss += err.mse * n / r.max(1) as f64;
            }
            candidates.push(Candidate { format, bytes, loss });
        }
        if candidates.is_empty() {
            out.fixed_bytes +=
                target.and_then(|f| f.byte_len(rows, cols).ok()).unwrap_or(t.data.len() as u64);
            continue;
        }
        out.tensors.push(TensorChoices { name: t.name.to_string(), candidates });
    }
    Ok(out)
}

/// `base` with one exact-name rule per allocated tensor ahead of its rules.
pub fn recipe_from(base: &Recipe, allocation: &Allocation, target_bpw: f64) -> Recipe {
    let mut rules: Vec<Rule> = allocation
        .formats
        .iter()
        .map(|(name, format)| Rule { pattern: name.clone(), format: *format })
        .collect();
    rules.extend(base.rules.iter().cloned());
    Recipe { name: format!("{} at --target-bpw {target_bpw}", base.name), rules }
}

/// The recipe that fits `target_bpw`: `base` (with `overrides`, whose
/// matrices stay as they say) measured on `stats` and allocated; with the
/// allocation it came from.
pub fn recipe_for_target(
    model: &Model<'_>,
    base: &Recipe,
    overrides: &[String],
    stats: Option<&ActivationStats>,
    opts: CalibrationOptions,
    target_bpw: f64,
) -> Result<(Recipe, Allocation), BudgetError> {
    if !target_bpw.is_finite() || target_bpw <= 0.0 {
        return Err(BudgetError::BadTarget(target_bpw));
    }
    let patterns: Vec<&str> =
        overrides.iter().filter_map(|o| o.split_once('=').map(|(p, _)| p.trim())).collect();
    let pinned = |name: &str| patterns.iter().any(|p| crate::recipe::glob_match(p, name));
    let measured = measure(model, base, &pinned, stats, opts)?;
    let allocation = allocate(&measured.tensors, measured.fixed_bytes, measured.total_params, target_bpw)?;
    Ok((recipe_from(base, &allocation, target_bpw), allocation))
}

impl Allocation {
    /// How many tensors got each format, e.g. `w2g128 x 9, w4g64 x 3`.
    pub fn summary(&self) -> String {
        let mut counts: Vec<(TensorFormat, usize)> = Vec::new();
        for (_, f) in &self.formats {
            match counts.iter_mut().find(|(g, _)| g == f) {
                Some((_, n)) => *n += 1,
                None => counts.push((*f, 1)),
            }
        }
        counts.sort_by_key(|(f, _)| CANDIDATE_FORMATS.iter().position(|c| c == f));
        counts.iter().map(|(f, n)| format!("{} x {n}", f.name())).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
