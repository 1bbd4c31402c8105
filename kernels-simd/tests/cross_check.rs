//! Every compiled kernel set that this CPU supports against the scalar
//! reference: bit-exact, on random and extreme inputs, odd row counts and
//! ragged f32 tails.
//!
//! `EDDY_EXPECT_KERNELS=scalar,neon,...` (set by the QEMU scripts) names
//! exactly the sets this CPU must support, so a set that silently stops
//! being compiled or detected (and so tested) fails the run.

use eddy_kernels::{compiled, supported, ActsI8, Kernels, QuantMatrix, SCALAR};
use eddy_quant::{quantize_activations_i8, quantize_row, TensorFormat, GROUP_SIZES};
use eddy_testkit::Lcg as Rng;

fn kernel_sets() -> Vec<&'static Kernels> {
    let sets: Vec<_> = compiled().iter().copied().filter(|k| supported(k)).collect();
    println!("testing kernel sets: {:?}", sets.iter().map(|k| k.name).collect::<Vec<_>>());
    sets
}

fn check_i8(k: &Kernels, f: TensorFormat, rows: usize, cols: usize, w: &[f32], x: &[f32]) {
    let g = f.group_size().unwrap();
    let rb = f.byte_len(1, cols as u64).unwrap() as usize;
    let mut m = vec![0u8; rb * rows];
    for r in 0..rows {
        quantize_row(f, &w[r * cols..(r + 1) * cols], &mut m[r * rb..(r + 1) * rb]).unwrap();
    }
    let (mut q, mut s, mut sums) = (vec![0i8; cols], vec![0f32; cols / g], vec![0i32; cols / g]);
    quantize_activations_i8(x, g, &mut q, &mut s, &mut sums).unwrap();
    let (mut want, mut got) = (vec![0f32; rows], vec![1f32; rows]);
    let mut perm = vec![0i8; cols];
    let w = QuantMatrix { format: f, bytes: &m, cols };
    (SCALAR.matvec_i8)(w, &ActsI8 { q: &q, scales: &s, sums: &sums }, &mut want, &mut perm);
    (k.matvec_i8)(w, &ActsI8 { q: &q, scales: &s, sums: &sums }, &mut got, &mut perm);
    let (wb, gb): (Vec<u32>, Vec<u32>) =
        (want.iter().map(|v| v.to_bits()).collect(), got.iter().map(|v| v.to_bits()).collect());
    assert_eq!(wb, gb, "{} {f:?} {rows}x{cols}", k.name);
}

/// Every integer weight format (W2, W4, W8) at every group size, with its
/// group size, group by group.
fn integer_formats() -> impl Iterator<Item = (u32, TensorFormat)> {
    GROUP_SIZES.into_iter().flat_map(|group| {
        [TensorFormat::W2 { group }, TensorFormat::W4 { group }, TensorFormat::W8 { group }]
            .map(|f| (group, f))
    })
}

#[test]
fn integer_kernels_are_bit_exact() {
    let mut rng = Rng(5);
    for k in kernel_sets() {
        for (group, f) in integer_formats() {
            for (rows, mult) in [(1, 1), (7, 3), (13, 2), (16, 1), (25, 2)] {
                let cols = group as usize * mult;
                let w: Vec<f32> = (0..rows * cols).map(|_| rng.f()).collect();
                let x: Vec<f32> = (0..cols).map(|_| rng.f() * 5.0).collect();
                check_i8(k, f, rows, cols, &w, &x);
            }
        }
    }
}

#[test]
fn integer_kernels_exact_at_extremes() {
    for k in kernel_sets() {
        for f in [
            TensorFormat::W2 { group: 256 },
            TensorFormat::W4 { group: 256 },
            TensorFormat::W8 { group: 256 },
        ] {
            let cols = 512;
            // Alternating extremes saturate codes at 0 and max and
            // activations at ±127: any i16 saturation would show.
            // 11 rows: one block of eight rows plus a ragged tail.
            let rows = 11;
            let w: Vec<f32> = (0..rows * cols).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
            for x in [
                vec![1.0f32; cols],
                vec![-1.0f32; cols],
                (0..cols).map(|i| if i % 2 == 0 { 7.0 } else { -7.0 }).collect(),
            ] {
                check_i8(k, f, rows, cols, &w, &x);
            }
            check_i8(k, f, rows, cols, &vec![0.0; rows * cols], &vec![0.0; cols]);
        }
    }
}

#[test]
fn float_kernels_are_bit_exact_including_ragged_tails() {
    let mut rng = Rng(11);
    for k in kernel_sets() {
        // Row counts below, at and past one block of eight rows.
        for (cols, rows) in [(1, 5), (7, 13), (8, 8), (9, 21), (31, 5), (48, 16), (64, 3), (100, 11)] {
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.f()).collect();
            let x: Vec<f32> = (0..cols).map(|_| rng.f()).collect();
            let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (SCALAR.matvec_f32)(&w, cols, &x, &mut a);
            (k.matvec_f32)(&w, cols, &x, &mut b);
            assert_eq!(bits(&a), bits(&b), "{} f32 {rows}x{cols}", k.name);
            let w16: Vec<u16> = w.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
            (SCALAR.matvec_f16)(&w16, cols, &x, &mut a);
            (k.matvec_f16)(&w16, cols, &x, &mut b);
            assert_eq!(bits(&a), bits(&b), "{} f16 {rows}x{cols}", k.name);
        }
    }
}

/// Multi-token f16 kernels: every (token, row) equals the scalar
/// `matvec_f16` of that token, over ragged rows, columns and tokens, with
/// infinities and NaN among the inputs; also with too little scratch.
#[test]
fn multi_token_f16_kernels_are_bit_exact() {
    let mut rng = Rng(23);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut covered = 0;
    for k in kernel_sets() {
        let Some(matmat) = k.matmat_f16 else { continue };
        covered += 1;
        for (cols, rows, tokens) in
            [(1, 5, 3), (7, 13, 1), (8, 8, 8), (9, 21, 5), (48, 1536 / 64, 9), (100, 11, 2)]
        {
            let w16: Vec<u16> =
                (0..rows * cols).map(|_| half::f16::from_f32(rng.f() * 3.0).to_bits()).collect();
            let mut xs: Vec<f32> = (0..tokens * cols).map(|_| rng.f()).collect();
            if tokens > 2 {
                xs[cols] = f32::INFINITY;
                xs[2 * cols] = f32::NAN;
            }
            let mut want = vec![0f32; tokens * rows];
            for (x, o) in xs.chunks_exact(cols).zip(want.chunks_exact_mut(rows)) {
                (SCALAR.matvec_f16)(&w16, cols, x, o);
            }
            for scratch in [eddy_kernels::matmat_scratch_len(cols, 1), 0] {
                let mut got = vec![1f32; tokens * rows];
                matmat(&w16, cols, &xs, &mut got, &mut vec![0i8; scratch]);
                assert_eq!(
                    bits(&want),
                    bits(&got),
                    "{} f16 {rows}x{cols}x{tokens}, scratch {scratch}",
                    k.name
                );
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(covered > 0, "the AVX2 set must provide matmat_f16");
    }
    #[cfg(target_arch = "aarch64")]
    assert!(covered >= 1, "the NEON sets must provide matmat_f16");
    let _ = covered;
}

/// Multi-token f32 kernels: every (token, row) equals the scalar
/// `matvec_f32` of that token, over ragged rows, columns and tokens (the
/// kernels' tiles and column tail), with infinities and NaN among the
/// inputs.
#[test]
fn multi_token_f32_kernels_are_bit_exact() {
    let mut rng = Rng(29);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut covered = 0;
    for k in kernel_sets() {
        let Some(matmat) = k.matmat_f32 else { continue };
        covered += 1;
        for (cols, rows, tokens) in
            [(1, 5, 3), (7, 13, 1), (8, 8, 8), (9, 21, 5), (48, 1536 / 64, 9), (100, 11, 2), (1029, 7, 4)]
        {
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.f() * 3.0).collect();
            let mut xs: Vec<f32> = (0..tokens * cols).map(|_| rng.f()).collect();
            if tokens > 2 {
                xs[cols] = f32::INFINITY;
                xs[2 * cols] = f32::NAN;
            }
            let mut want = vec![0f32; tokens * rows];
            for (x, o) in xs.chunks_exact(cols).zip(want.chunks_exact_mut(rows)) {
                (SCALAR.matvec_f32)(&w, cols, x, o);
            }
            let mut got = vec![1f32; tokens * rows];
            matmat(&w, cols, &xs, &mut got);
            assert_eq!(bits(&want), bits(&got), "{} f32 {rows}x{cols}x{tokens}", k.name);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(covered > 0, "the AVX2 set must provide matmat_f32");
    }
    let _ = covered;
}

#[test]
fn names_resolve() {
    assert_eq!(eddy_kernels::by_name("scalar").unwrap().name, "scalar");
    assert!(eddy_kernels::by_name("no-such-isa").is_none());
    assert!(supported(eddy_kernels::best()));
    // A CPU with AVX2+FMA+F16C must get (and so test) the AVX2 set: if
    // detection broke, every comparison above would silently be scalar.
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
    {
        assert!(kernel_sets().iter().any(|k| k.name == "avx2"));
        // With AVX-512 VNNI the `avx512-vnni` and `avx2-vnni-prefill` sets
        // are tested here too; the latter is automatic on AMD CPUs only
        // (`x86_sets_follow_the_cpu_features` checks which is `best`).
        let vnni = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni");
        assert_eq!(kernel_sets().iter().any(|k| k.name == "avx512-vnni"), vnni);
        assert_eq!(kernel_sets().iter().any(|k| k.name == "avx2-vnni-prefill"), vnni);
    }
    // aarch64: plain NEON always; NEON+sdot exactly when the CPU has
    // dotprod (and then it is the best set). EDDY_EXPECT_KERNELS (below)
    // pins the answer per emulated CPU independently of this detection.
    #[cfg(target_arch = "aarch64")]
    {
        let dot = std::arch::is_aarch64_feature_detected!("dotprod");
        assert!(eddy_kernels::by_name("neon").is_some(), "neon must be available on aarch64");
        assert_eq!(eddy_kernels::by_name("neon-sdot").is_some(), dot, "neon-sdot iff dotprod");
        assert_eq!(eddy_kernels::best().name, if dot { "neon-sdot" } else { "neon" });
    }
}

/// Random shapes: every integer format and group size, odd and even group
/// counts, row counts that leave ragged tails after the kernels' row
/// blocks, activations from tiny to saturating; f32/f16 with random
/// ragged column counts. Integer results bit for bit; float results bit
/// for bit too (the kernels keep the reference's operation order).
#[test]
fn random_shapes_are_bit_exact() {
    let mut rng = Rng(23);
    let mut pick = |n: usize| ((rng.f() + 1.0) * 0.5 * n as f32) as usize % n;
    let mut shapes = Vec::new();
    for _ in 0..40 {
        let group = GROUP_SIZES[pick(GROUP_SIZES.len())];
        let f = [TensorFormat::W2 { group }, TensorFormat::W4 { group }, TensorFormat::W8 { group }][pick(3)];
        let (rows, groups, amp) = (1 + pick(23), 1 + pick(5), [0.01f32, 1.0, 40.0][pick(3)]);
        shapes.push((f, rows, groups * group as usize, amp));
    }
    let float_cols: Vec<usize> = (0..12).map(|_| 1 + pick(97)).collect();
    let mut rng = Rng(29);
    for k in kernel_sets() {
        for &(f, rows, cols, amp) in &shapes {
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.f()).collect();
            let x: Vec<f32> = (0..cols).map(|_| rng.f() * amp).collect();
            check_i8(k, f, rows, cols, &w, &x);
        }
        for &cols in &float_cols {
            let rows = 3;
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.f()).collect();
            let x: Vec<f32> = (0..cols).map(|_| rng.f() * 3.0).collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (mut a, mut b) = (vec![0f32; rows], vec![1f32; rows]);
            (SCALAR.matvec_f32)(&w, cols, &x, &mut a);
            (k.matvec_f32)(&w, cols, &x, &mut b);
            assert_eq!(bits(&a), bits(&b), "{} f32 {rows}x{cols}", k.name);
            let w16: Vec<u16> = w.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
            b.fill(1.0);
            (SCALAR.matvec_f16)(&w16, cols, &x, &mut a);
            (k.matvec_f16)(&w16, cols, &x, &mut b);
            assert_eq!(bits(&a), bits(&b), "{} f16 {rows}x{cols}", k.name);
        }
    }
}

/// Kernel sets that must have a multi-token kernel on this CPU.
fn expected_matmat_sets() -> Vec<&'static str> {
    let mut names = Vec::new();
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
    {
        names.push("avx2");
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
        {
            names.push("avx512-vnni");
            names.push("avx2-vnni-prefill");
            if amx_expected() {
                names.push("avx512-amx");
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        names.push("neon");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            names.push("neon-sdot");
        }
    }
    names
}

/// True if the `avx512-amx` set runs here, checked against Linux's CPU
/// flags (it lists `amx_tile` and `amx_int8` only when it supports the tile
/// state): the set's own check must agree with them on the CPUID and XCR0
/// bits and on the `avx512-vnni` features. Only its last steps may turn
/// the set off on a CPU with the flags: `EDDY_AMX=0`, the `arch_prctl`
/// permission, and the forked probe (machines whose tile instructions
/// fault although CPUID lists them).
#[cfg(target_arch = "x86_64")]
fn amx_expected() -> bool {
    use eddy_kernels::x86::amx::{amx_status, AmxStatus};
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has =
        |flag: &str| flags.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == flag));
    let vnni = std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni");
    let listed = has("amx_tile") && has("amx_int8") && vnni;
    let status = amx_status();
    println!("AMX: CPU flags {}, check says {status:?}", if listed { "listed" } else { "absent" });
    match status {
        AmxStatus::Usable => {
            assert!(listed, "AMX usable but Linux lists no amx_tile/amx_int8 (or the VNNI features)");
            true
        }
        AmxStatus::DisabledByEnv | AmxStatus::PermissionRefused | AmxStatus::ProbeFailed => false,
        other => {
            assert!(!listed, "Linux lists AMX and the VNNI features but the check says {other:?}");
            false
        }
    }
}

/// The sets with a multi-token kernel, checked against the expected ones.
fn matmat_sets() -> Vec<&'static Kernels> {
    let sets: Vec<_> = kernel_sets().into_iter().filter(|k| k.matmat_i8.is_some()).collect();
    for name in expected_matmat_sets() {
        assert!(sets.iter().any(|k| k.name == name), "{name} must provide matmat_i8");
    }
    sets
}

/// `tokens` random token vectors (token 0 saturating at ±127, the last
/// at +127, to exercise i16 headroom) times a random `rows x cols` matrix in `f`: the
/// multi-token kernel of `k` against the scalar matvec of each token.
fn check_matmat(k: &Kernels, rng: &mut Rng, f: TensorFormat, rows: usize, tokens: usize, cols: usize) {
    let matmat = k.matmat_i8.unwrap();
    let g = f.group_size().unwrap();
    let rb = f.byte_len(1, cols as u64).unwrap() as usize;
    let mut m = vec![0u8; rb * rows];
    for r in 0..rows {
        // Row 0: nearly all codes at their maximum (the worst case for
        // i16 sums, with the all-+127 token below).
        let w: Vec<f32> = (0..cols)
            .map(|i| {
                if r > 0 {
                    rng.f()
                } else if i % 16 == 0 {
                    -1.0
                } else {
                    1.0
                }
            })
            .collect();
        quantize_row(f, &w, &mut m[r * rb..(r + 1) * rb]).unwrap();
    }
    let gs = cols / g;
    let mut q = vec![0i8; tokens * cols];
    let mut s = vec![0f32; tokens * gs];
    let mut sums = vec![0i32; tokens * gs];
    for t in 0..tokens {
        let x: Vec<f32> = (0..cols)
            .map(|i| match (t, i % 2) {
                (0, 0) => 9.0,
                (0, _) => -9.0,
                // All +127: same-sign sums, the worst case for i16 sums.
                _ if t + 1 == tokens => 9.0,
                _ => rng.f() * 4.0,
            })
            .collect();
        let (q, s, sums) =
            (&mut q[t * cols..(t + 1) * cols], &mut s[t * gs..(t + 1) * gs], &mut sums[t * gs..(t + 1) * gs]);
        quantize_activations_i8(&x, g, q, s, sums).unwrap();
    }
    let acts: Vec<ActsI8> = (0..tokens)
        .map(|t| ActsI8 {
            q: &q[t * cols..(t + 1) * cols],
            scales: &s[t * gs..(t + 1) * gs],
            sums: &sums[t * gs..(t + 1) * gs],
        })
        .collect();
    let mut want = vec![0f32; tokens * rows];
    let mut perm = vec![0i8; tokens * cols];
    let w = QuantMatrix { format: f, bytes: &m, cols };
    for (a, o) in acts.iter().zip(want.chunks_exact_mut(rows)) {
        (SCALAR.matvec_i8)(w, a, o, &mut perm);
    }
    // With the scratch the kernels ask for, and with only `tokens * cols`
    // bytes (AVX2 then takes its row-per-lane kernel instead of the
    // token-per-lane one): both exact.
    for scratch in [eddy_kernels::matmat_scratch_len(cols, tokens), tokens * cols] {
        let mut perm = vec![0i8; scratch];
        let mut got = vec![1f32; tokens * rows];
        matmat(w, &acts, &mut got, &mut perm);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&want),
            bits(&got),
            "{} {f:?} {rows} rows x {tokens} tokens x {cols} cols, {scratch} bytes of scratch",
            k.name
        );
    }
}

/// Multi-token kernels: every (token, row) equals the scalar matvec of
/// that token, for token counts around the kernels' batches (four tokens
/// on aarch64, eight on AVX2), row
/// counts around blocks of four and eight, and every format and group size.
#[test]
fn multi_token_kernels_are_bit_exact() {
    let mut rng = Rng(11);
    for k in matmat_sets() {
        for (group, f) in integer_formats() {
            for (rows, tokens) in
                [(8, 1), (13, 3), (16, 4), (25, 5), (9, 9), (6, 8), (11, 17), (13, 40), (30, 64)]
            {
                check_matmat(k, &mut rng, f, rows, tokens, group as usize * 2);
            }
        }
    }
}

/// Multi-token kernels at every token count from 1 to 17 (whole and
/// partial batches of eight tokens), every format and group size, an odd
/// number of groups and row counts that leave partial 12-row tiles.
#[test]
fn multi_token_kernels_at_every_token_count() {
    let mut rng = Rng(23);
    for k in matmat_sets() {
        for (group, f) in integer_formats() {
            for tokens in 1..=17 {
                check_matmat(k, &mut rng, f, 5 + 2 * tokens, tokens, group as usize * 3);
            }
        }
    }
}

/// Multi-token kernels at the w2a8 models' shapes (W2 g128 layers, W8 g64
/// head, W4 g64), several row blocks with a ragged last tile and an odd
/// token count.
#[test]
fn multi_token_kernels_at_model_shapes() {
    let mut rng = Rng(29);
    for k in matmat_sets() {
        check_matmat(k, &mut rng, TensorFormat::W2 { group: 128 }, 1541, 13, 768);
        check_matmat(k, &mut rng, TensorFormat::W2 { group: 128 }, 771, 7, 1536);
        check_matmat(k, &mut rng, TensorFormat::W8 { group: 64 }, 301, 9, 1024);
        check_matmat(k, &mut rng, TensorFormat::W4 { group: 64 }, 205, 11, 768);
        // Enough tokens for the AMX tiles (two passes of 32, the last short).
        check_matmat(k, &mut rng, TensorFormat::W2 { group: 128 }, 1541, 37, 768);
        check_matmat(k, &mut rng, TensorFormat::W8 { group: 64 }, 301, 50, 1024);
    }
}

/// Multi-token kernels over matrices larger than their cache blocks (32
/// KiB of weights), with a ragged last block and ragged rows and tokens.
#[test]
fn multi_token_kernels_span_cache_blocks() {
    let mut rng = Rng(17);
    for k in matmat_sets() {
        // 24-, 72- and 132-byte rows: 3001, 1003 and 603 rows are 2-3 blocks.
        check_matmat(k, &mut rng, TensorFormat::W2 { group: 32 }, 3001, 5, 64);
        check_matmat(k, &mut rng, TensorFormat::W4 { group: 64 }, 1003, 6, 128);
        check_matmat(k, &mut rng, TensorFormat::W8 { group: 128 }, 603, 4, 128);
        // The AMX kernel's blocks (48 KiB of unpacked codes: 768 rows of 64).
        check_matmat(k, &mut rng, TensorFormat::W2 { group: 32 }, 1601, 21, 64);
    }
}

#[test]
fn expected_kernel_sets_are_the_ones_tested() {
    let Ok(expected) = std::env::var("EDDY_EXPECT_KERNELS") else { return };
    let expected: Vec<&str> = expected.split(',').filter(|n| !n.is_empty()).collect();
    let tested: Vec<&str> = kernel_sets().iter().map(|k| k.name).collect();
    assert_eq!(tested, expected, "kernel sets supported (and so tested) on this CPU");
    assert_eq!(eddy_kernels::best().name, *expected.last().unwrap());
    // Every compiled set that is not expected must be reported unsupported
    // (e.g. neon-sdot on a CPU without dotprod), not run.
    for k in compiled() {
        let want = expected.contains(&k.name);
        assert_eq!(eddy_kernels::by_name(k.name).is_some(), want, "by_name({})", k.name);
    }
}

#[test]
fn integer_kernels_fall_back_on_uncovered_shapes() {
    // Shapes the SIMD paths do not take (no columns, float formats, short
    // activation buffers) must neither panic nor differ from the reference.
    let f = TensorFormat::W4 { group: 32 };
    for k in kernel_sets() {
        let mut perm = [0i8; 0];
        let acts = ActsI8 { q: &[], scales: &[], sums: &[] };
        // Outputs start as non-zero, so one that the reference writes and
        // a kernel leaves unwritten (or the reverse) shows.
        let (mut want, mut got) = (vec![1f32; 9], vec![1f32; 9]);
        let no_cols = QuantMatrix { format: f, bytes: &[], cols: 0 };
        (SCALAR.matvec_i8)(no_cols, &acts, &mut want, &mut perm);
        (k.matvec_i8)(no_cols, &acts, &mut got, &mut perm);
        assert_eq!(want, got, "{} cols 0", k.name);
        let m = vec![0u8; 9 * 64];
        let (mut want, mut got) = (vec![1f32; 9], vec![1f32; 9]);
        let float = QuantMatrix { format: TensorFormat::F32, bytes: &m, cols: 16 };
        (SCALAR.matvec_i8)(float, &acts, &mut want, &mut perm);
        (k.matvec_i8)(float, &acts, &mut got, &mut perm);
        assert_eq!(want, got, "{} f32 format", k.name);
    }
}

/// A compiled set this CPU does not support (e.g. neon-sdot without
/// dotprod) must still be safe to call: it falls back to code the CPU has
/// and stays bit-exact (matrix-vector and multi-token kernels).
#[test]
fn unsupported_sets_fall_back_bit_exactly() {
    let mut rng = Rng(31);
    for k in compiled().iter().copied().filter(|k| !supported(k)) {
        println!("unsupported set called: {}", k.name);
        for f in
            [TensorFormat::W2 { group: 64 }, TensorFormat::W4 { group: 32 }, TensorFormat::W8 { group: 64 }]
        {
            let (rows, cols) = (6, 128);
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.f()).collect();
            let x: Vec<f32> = (0..cols).map(|_| rng.f()).collect();
            check_i8(k, f, rows, cols, &w, &x);
            if k.matmat_i8.is_some() {
                check_matmat(k, &mut rng, f, 9, 5, cols);
            }
        }
    }
}

/// The x86-64 kernel sets each kind of CPU must get, written out so that a
/// machine of the other kind cannot surprise CI: the project runs on AMD
/// EPYC and Intel Xeon hosts, some with AVX2+FMA only and some with
/// AVX-512 (F/BW/VL/VNNI). `avx512-vnni` and `avx2-vnni-prefill` are
/// supported (and tested above) exactly when the CPU has AVX-512F+VL+VNNI
/// on top of AVX2+FMA+F16C; `avx512-vnni` is never the automatic choice,
/// `avx512-amx` is wherever it runs (AMX tiles, see `amx_expected`),
/// else `avx2-vnni-prefill` on AMD CPUs, else `avx2` (README, "Kernels").
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_sets_follow_the_cpu_features() {
    let has = |f: &str| match f {
        "avx2" => std::is_x86_feature_detected!("avx2"),
        "fma" => std::is_x86_feature_detected!("fma"),
        "f16c" => std::is_x86_feature_detected!("f16c"),
        "avx512f" => std::is_x86_feature_detected!("avx512f"),
        "avx512vl" => std::is_x86_feature_detected!("avx512vl"),
        "avx512vnni" => std::is_x86_feature_detected!("avx512vnni"),
        // AMX-TILE and AMX-INT8 as Linux reports them (OS support
        // included), unless `EDDY_AMX` turns the set off.
        "amx" => amx_expected(),
        _ => unreachable!("feature {f} is not in the table"),
    };
    // (set, CPU features it needs)
    const VNNI: &[&str] = &["avx2", "fma", "f16c", "avx512f", "avx512vl", "avx512vnni"];
    let table: [(&str, &[&str]); 5] = [
        ("scalar", &[]),
        ("avx2", &["avx2", "fma", "f16c"]),
        ("avx512-vnni", VNNI),
        ("avx2-vnni-prefill", VNNI),
        ("avx512-amx", &["avx2", "fma", "f16c", "avx512f", "avx512vl", "avx512vnni", "amx"]),
    ];
    let mut want = Vec::new();
    for (set, needs) in table {
        let runs = needs.iter().all(|f| has(f));
        println!("{set}: needs {needs:?}, this CPU {}", if runs { "has them" } else { "does not" });
        assert_eq!(eddy_kernels::by_name(set).is_some(), runs, "by_name({set})");
        if runs {
            want.push(set);
        }
    }
    let tested: Vec<&str> = kernel_sets().iter().map(|k| k.name).collect();
    assert_eq!(tested, want, "sets tested on this CPU");
    let amd = std::fs::read_to_string("/proc/cpuinfo")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("vendor_id") && l.ends_with("AuthenticAMD")));
    let best = match (want.contains(&"avx2-vnni-prefill") && amd, want.contains(&"avx2")) {
        _ if want.contains(&"avx512-amx") => "avx512-amx",
        (true, _) => "avx2-vnni-prefill",
        (false, true) => "avx2",
        (false, false) => "scalar",
    };
    assert_eq!(eddy_kernels::best().name, best);
}
