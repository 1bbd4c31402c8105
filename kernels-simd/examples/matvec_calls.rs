//! Runs one kernel set's integer matrix-vector product a given number of
//! times on a synthetic matrix, for instruction counting under QEMU (see
//! `scripts/bench-aarch64.sh`): the setup is cheap (no quantization
//! search), so the difference between two call counts is the kernel's.
//!
//! `matvec_calls SET FORMAT ROWS COLS CALLS [TOKENS]`, e.g.
//! `matvec_calls neon-sdot w2g64 1536 768 3`. With TOKENS, each call is
//! one multi-token product (`matmat_i8`, or one `matvec_i8` per token for
//! a set without it) of TOKENS activation vectors. Prints a checksum of
//! the output (so the work cannot be optimised away) to stdout.

#[path = "../benches/common/calls.rs"]
mod calls;

use eddy_kernels::{supported, ActsI8, QuantMatrix};
use eddy_quant::{TensorFormat, GROUP_HEADER_BYTES};
use std::hint::black_box;
use std::process::ExitCode;

/// The formats this tool accepts, by name.
const FORMATS: [TensorFormat; 5] = [
    TensorFormat::W2 { group: 32 },
    TensorFormat::W2 { group: 64 },
    TensorFormat::W2 { group: 128 },
    TensorFormat::W4 { group: 64 },
    TensorFormat::W8 { group: 64 },
];

fn main() -> ExitCode {
    let usage = "SET FORMAT ROWS COLS CALLS [TOKENS] (FORMAT: w2g32, w2g64, w2g128, w4g64 or w8g64)";
    calls::checksum_main("matvec_calls", usage, run)
}

fn run(args: &[String]) -> Result<f64, String> {
    let (set, format, rows, cols, calls, tokens) = match args {
        [a, b, c, d, e] => (a, b, c, d, e, None),
        [a, b, c, d, e, t] => (a, b, c, d, e, Some(t)),
        _ => return Err(format!("expected 5 or 6 arguments, got {}", args.len())),
    };
    let k = calls::kernel_set(set, "available here", supported)?;
    let f = FORMATS.into_iter().find(|f| f.name() == format).ok_or(format!("unknown format `{format}`"))?;
    let number = |s: &String| s.parse::<usize>().map_err(|e| format!("`{s}`: {e}"));
    let (rows, cols, calls) = (number(rows)?, number(cols)?, number(calls)?);
    let tokens = tokens.map(number).transpose()?;
    let group = f.group_size().ok_or("not an integer format")?;
    if cols == 0 || cols % group != 0 {
        return Err(format!("COLS must be a positive multiple of {group}"));
    }
    let group_bytes = f.group_bytes().ok_or("not an integer format")?;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as u8
    };
    // Random codes under small f16 group headers (scale 2^-7, min -2^-6).
    let mut matrix: Vec<u8> = (0..rows * cols / group * group_bytes).map(|_| next()).collect();
    for header in matrix.chunks_exact_mut(group_bytes) {
        header[..GROUP_HEADER_BYTES].copy_from_slice(&[0x00, 0x20, 0x00, 0xa4]);
    }
    let n = tokens.unwrap_or(1);
    let q: Vec<i8> = (0..n * cols).map(|_| (next() as i8).max(-127)).collect();
    let sums: Vec<i32> = q.chunks_exact(group).map(|g| g.iter().map(|&v| v as i32).sum()).collect();
    let scales = vec![0.01f32; n * cols / group];
    let (per_token, groups) = (cols, cols / group);
    let acts: Vec<ActsI8> = (0..n)
        .map(|t| ActsI8 {
            q: &q[t * per_token..(t + 1) * per_token],
            scales: &scales[t * groups..(t + 1) * groups],
            sums: &sums[t * groups..(t + 1) * groups],
        })
        .collect();
    let (mut out, mut perm) = (vec![0f32; n * rows], vec![0i8; eddy_kernels::matmat_scratch_len(cols, n)]);
    for _ in 0..calls {
        match (tokens, k.matmat_i8) {
            (None, _) => (k.matvec_i8)(
                QuantMatrix { format: f, bytes: black_box(&matrix), cols },
                &acts[0],
                &mut out,
                &mut perm,
            ),
            (Some(_), Some(matmat)) => {
                matmat(QuantMatrix { format: f, bytes: black_box(&matrix), cols }, &acts, &mut out, &mut perm)
            }
            (Some(_), None) => {
                for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows)) {
                    (k.matvec_i8)(
                        QuantMatrix { format: f, bytes: black_box(&matrix), cols },
                        a,
                        o,
                        &mut perm,
                    );
                }
            }
        }
        black_box(&mut out);
    }
    Ok(out.iter().map(|&v| v as f64).sum())
}
