//! The SIMD int8 activation quantizers' pass over the groups, written once
//! for every ISA: the length check, one finiteness check of the whole
//! input, every whole group through the ISA's group kernel
//! ([`GroupQuantizer`]) and a ragged last group, like every error, through
//! the reference `eddy_quant::quantize_activations_i8` (which finds and
//! reports the first bad value).

use eddy_quant::QuantError;

/// One ISA's group kernel.
pub(crate) trait GroupQuantizer {
    /// Values per step: groups the kernel takes are a multiple of it.
    const STEP: usize;

    /// True if this CPU runs the kernel.
    fn usable() -> bool;

    /// True if no value is infinite or NaN.
    ///
    /// # Safety
    /// [`usable`](Self::usable) is true; `x.len()` is a multiple of
    /// [`STEP`](Self::STEP).
    unsafe fn all_finite(x: &[f32]) -> bool;

    /// One group of finite values: writes the codes and returns `(scale,
    /// Σ codes)`.
    ///
    /// # Safety
    /// [`usable`](Self::usable) is true; `q` holds at least `x.len()`
    /// codes and `x.len()` is a multiple of [`STEP`](Self::STEP).
    unsafe fn quantize_group(x: &[f32], q: &mut [i8]) -> (f32, i32);
}

/// [`crate::QuantizeActs`] with `Q`'s group kernel for whole groups that
/// are a multiple of its step.
pub(crate) fn quantize_activations_i8<Q: GroupQuantizer>(
    x: &[f32],
    group: usize,
    out_q: &mut [i8],
    out_scales: &mut [f32],
    out_sums: &mut [i32],
) -> Result<(), QuantError> {
    let groups = x.len().div_ceil(group.max(1));
    let lengths_ok =
        group != 0 && out_q.len() >= x.len() && out_scales.len() >= groups && out_sums.len() >= groups;
    if !lengths_ok || group % Q::STEP != 0 || !Q::usable() {
        return eddy_quant::quantize_activations_i8(x, group, out_q, out_scales, out_sums);
    }
    let whole = x.len() / group;
    // SAFETY: the CPU runs the kernel (checked above); `whole * group` is a
    // multiple of the step and at most `x.len()`.
    let finite = unsafe { Q::all_finite(&x[..whole * group]) };
    if !finite || !x[whole * group..].iter().all(|v| v.is_finite()) {
        // The reference finds and reports the first non-finite value.
        return eddy_quant::quantize_activations_i8(x, group, out_q, out_scales, out_sums);
    }
    for g in 0..whole {
        let span = g * group..(g + 1) * group;
        // SAFETY: as above; `span` lies inside `x` and `out_q` (the length
        // checks above), and `group` is a multiple of the step.
        let (scale, sum) = unsafe { Q::quantize_group(&x[span.clone()], &mut out_q[span]) };
        out_scales[g] = scale;
        out_sums[g] = sum;
    }
    if whole < groups {
        let at = whole * group;
        let tail = (&mut out_scales[whole..groups], &mut out_sums[whole..groups]);
        eddy_quant::quantize_activations_i8(&x[at..], group, &mut out_q[at..x.len()], tail.0, tail.1)?;
    }
    Ok(())
}
