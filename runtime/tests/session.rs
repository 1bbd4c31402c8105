//! Sessions over random tiny Mamba-1 models: buffer sizing and checks,
//! token checks, prefill/step equivalence, snapshot/restore, and the
//! borrowed and owned buffer variants (state layout: `runtime/FORMAT.md`).

use eddy::file::AlignedBytes;
use eddy::writer::TensorData;
use eddy::{Model, Session, SessionError, TensorFormat, Workers};
use eddy_quant::quantize_row;
use eddy_testkit::Rng;

mod common;
use common::{header, schema, Mamba1Config};

const TINY: Mamba1Config = Mamba1Config {
    vocab_size: 13,
    d_model: 8,
    n_layer: 2,
    d_state: 4,
    d_conv: 4,
    d_inner: 16,
    dt_rank: 2,
    norm_eps: 1e-5,
    tied_embeddings: false,
    proj_bias: true,
    conv_bias: true,
};

/// Wide enough for group-32 integer formats on every matrix but dt_proj.
const QHP: Mamba1Config = Mamba1Config { vocab_size: 13, d_model: 32, d_inner: 64, dt_rank: 4, ..TINY };

/// How matrices are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mat {
    F32,
    F16,
    /// f32, but with values rounded to f16 first (same numbers as `F16`).
    F32FromF16,
    /// Integer group formats (W8, W4, W2 in turn, group 32) where the
    /// columns allow, f16 elsewhere.
    Quant,
}

/// A matrix quantized row by row with the reference quantizer.
fn quantized(name: String, shape: &[u32], values: &[f32], format: TensorFormat) -> TensorData {
    let cols = *shape.last().unwrap() as usize;
    let row_bytes = format.byte_len(1, cols as u64).unwrap() as usize;
    let mut data = vec![0u8; values.len() / cols * row_bytes];
    for (row, out) in values.chunks_exact(cols).zip(data.chunks_exact_mut(row_bytes)) {
        quantize_row(format, row, out).unwrap();
    }
    TensorData { name, format, shape: shape.to_vec(), data }
}

/// A random Mamba-1 file with the canonical schema of `hp`.
fn build(hp: &Mamba1Config, seed: u64, mat: Mat) -> Vec<u8> {
    let mut b = header(hp);
    let mut rng = Rng::new(seed);
    let int_formats =
        [TensorFormat::W8 { group: 32 }, TensorFormat::W4 { group: 32 }, TensorFormat::W2 { group: 32 }];
    let mut next_int = 0usize;
    for (name, mut shape, f32_only) in schema(hp) {
        let matrix = !f32_only;
        // These files store the conv weight 2-D, `[d_inner, d_conv]`; the
        // file_format tests cover the Hugging Face 3-D shape.
        if name.ends_with("conv1d.weight") {
            shape.remove(1);
        }
        let n: u32 = shape.iter().product();
        let norm = name.ends_with("norm.weight") || name == "norm_f.weight";
        let scale = if matrix { 1.5 } else { 1.0 };
        let mut values: Vec<f32> = (0..n)
            .map(|_| if norm { 1.0 + 0.2 * rng.uniform(-0.5, 0.5) } else { scale * rng.uniform(-0.5, 0.5) })
            .collect();
        let t = match (matrix, mat) {
            (true, Mat::F16) => TensorData::f16(name, &shape, &values),
            (true, Mat::Quant) if shape[shape.len() - 1] % 32 == 0 => {
                next_int += 1;
                quantized(name, &shape, &values, int_formats[next_int % 3])
            }
            (true, Mat::Quant) => TensorData::f16(name, &shape, &values),
            (true, Mat::F32FromF16) => {
                for x in &mut values {
                    *x = half_round(*x);
                }
                TensorData::f32(name, &shape, &values)
            }
            _ => TensorData::f32(name, &shape, &values),
        };
        b.tensor(t).unwrap();
    }
    b.to_bytes()
}

/// Round an f32 to the nearest f16 value, through the writer's own
/// conversion (an f16 tensor's bytes decoded back).
fn half_round(x: f32) -> f32 {
    let t = TensorData::f16("x", &[1], &[x]);
    let bits = u16::from_le_bytes([t.data[0], t.data[1]]);
    // binary16 -> binary32, exact.
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1F) as i32;
    let man = (bits & 0x3FF) as u32;
    let mag = match exp {
        0 => man as f32 * (2.0f32).powi(-24),
        31 => f32::INFINITY,
        e => f32::from_bits((((e - 15 + 127) as u32) << 23) | (man << 13)),
    };
    f32::from_bits(mag.to_bits() | sign)
}

fn aligned(hp: &Mamba1Config, seed: u64, mat: Mat) -> AlignedBytes {
    AlignedBytes::copy_from(&build(hp, seed, mat))
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn tokens(seed: u64, n: usize, vocab: u32) -> Vec<u32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.below(vocab)).collect()
}

/// Run `toks` step by step, collecting each step's logits as bits.
fn run_steps<S: AsRef<[f32]> + AsMut<[f32]>>(s: &mut Session<'_, '_, S>, toks: &[u32]) -> Vec<Vec<u32>> {
    toks.iter().map(|&t| bits(s.step(t).unwrap())).collect()
}

#[test]
fn buffer_sizes_match_documented_formula() {
    for hp in [
        TINY,
        Mamba1Config {
            n_layer: 3,
            d_conv: 1,
            d_state: 16,
            tied_embeddings: true,
            proj_bias: false,
            conv_bias: false,
            ..TINY
        },
    ] {
        let a = aligned(&hp, 1, Mat::F32);
        let m = Model::from_bytes(a.as_slice()).unwrap();
        let (v, dm, di, ds, dc, dr, nl) = (
            hp.vocab_size as usize,
            hp.d_model as usize,
            hp.d_inner as usize,
            hp.d_state as usize,
            hp.d_conv as usize,
            hp.dt_rank as usize,
            hp.n_layer as usize,
        );
        assert_eq!(m.state_bytes(), 4 * (4 + nl * di * (dc - 1 + ds)));
        // Float vectors, then int8 activation codes + per-group scales and sums.
        let max_cols = dm.max(di).max(dr);
        let act_words = 2 * max_cols.div_ceil(4) + 2 * max_cols.div_ceil(32);
        assert_eq!(m.scratch_bytes(), 4 * (3 * dm + 5 * di + dr + 2 * ds + v + act_words));
        let s = Session::new_owned(&m);
        assert_eq!(s.snapshot().len(), m.state_bytes());
        assert_eq!(s.logits().len(), v);
        assert!(s.logits().iter().all(|&x| x == 0.0));
    }
}

#[test]
fn fresh_state_layout() {
    let a = aligned(&TINY, 1, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let mut s = Session::new_owned(&m);
    let word = |snap: &[u8], i: usize| u32::from_le_bytes(snap[4 * i..4 * i + 4].try_into().unwrap());
    let snap = s.snapshot().to_vec();
    assert_eq!(&snap[0..4], b"EDST");
    assert_eq!(word(&snap, 1), m.file().checksum());
    assert_eq!((word(&snap, 2), word(&snap, 3)), (0, 0));
    assert!(snap[16..].iter().all(|&b| b == 0));
    s.prefill(&[1, 2, 3]).unwrap();
    let snap = s.snapshot().to_vec();
    assert_eq!(&snap[0..4], b"EDST");
    assert_eq!(word(&snap, 1), m.file().checksum());
    assert_eq!((word(&snap, 2), word(&snap, 3)), (3, 0));
    // Layer 0 conv window of channel 0 holds the last d_conv - 1 inputs,
    // oldest first; after 3 tokens with d_conv = 4 the window is full, so
    // none of its words are still zero (random weights).
    let dc1 = TINY.d_conv as usize - 1;
    let body = &snap[16..];
    let win: Vec<f32> =
        body[..4 * dc1].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert!(win.iter().all(|&x| x != 0.0), "{win:?}");
}

#[test]
fn borrowed_buffers_too_small_or_misaligned() {
    let a = aligned(&TINY, 1, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let (sb, cb) = (m.state_bytes(), m.scratch_bytes());
    // Aligned backing memory, sliced as needed.
    let mut st = AlignedBytes::copy_from(&vec![0u8; sb + 64]);
    let mut sc = AlignedBytes::copy_from(&vec![0u8; cb + 64]);

    let r = Session::new(&m, &mut st.as_mut_slice()[..sb - 1], &mut sc.as_mut_slice()[..cb]);
    assert_eq!(r.err(), Some(SessionError::BufferTooSmall { which: "state", needed: sb, got: sb - 1 }));
    let r = Session::new(&m, &mut st.as_mut_slice()[..0], &mut sc.as_mut_slice()[..cb]);
    assert!(matches!(r.err(), Some(SessionError::BufferTooSmall { which: "state", got: 0, .. })));
    let r = Session::new(&m, &mut st.as_mut_slice()[..sb], &mut sc.as_mut_slice()[..cb - 4]);
    assert_eq!(r.err(), Some(SessionError::BufferTooSmall { which: "scratch", needed: cb, got: cb - 4 }));
    for off in [1usize, 2, 3] {
        let r = Session::new(&m, &mut st.as_mut_slice()[off..off + sb], &mut sc.as_mut_slice()[..cb]);
        assert_eq!(r.err(), Some(SessionError::BufferMisaligned { which: "state" }));
        let r = Session::new(&m, &mut st.as_mut_slice()[..sb], &mut sc.as_mut_slice()[off..off + cb]);
        assert_eq!(r.err(), Some(SessionError::BufferMisaligned { which: "scratch" }));
    }
    // Larger and 4-byte (not 64-byte) aligned buffers are fine.
    let mut s = Session::new(&m, &mut st.as_mut_slice()[4..], &mut sc.as_mut_slice()[8..]).unwrap();
    assert!(s.step(1).is_ok());
    assert_eq!(s.position(), 1);
    // Messages say which buffer and how big.
    let msg = SessionError::BufferTooSmall { which: "scratch", needed: 100, got: 7 }.to_string();
    assert!(msg.contains("scratch") && msg.contains("100") && msg.contains('7'));
}

#[test]
fn session_new_resets_dirty_buffers() {
    let a = aligned(&TINY, 1, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let fresh = Session::new_owned(&m).snapshot().to_vec();
    let mut st = AlignedBytes::copy_from(&vec![0xA7u8; m.state_bytes()]);
    let mut sc = AlignedBytes::copy_from(&vec![0x5Au8; m.scratch_bytes()]);
    let s = Session::new(&m, st.as_mut_slice(), sc.as_mut_slice()).unwrap();
    assert_eq!(s.snapshot(), &fresh[..]);
    assert_eq!(s.position(), 0);
}

#[test]
fn token_out_of_range_leaves_state_unchanged() {
    let a = aligned(&TINY, 2, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let mut s = Session::new_owned(&m);
    s.prefill(&tokens(1, 5, TINY.vocab_size)).unwrap();
    let before = s.snapshot().to_vec();
    let logits_before = bits(s.logits());
    for bad in [TINY.vocab_size, TINY.vocab_size + 1, u32::MAX] {
        assert_eq!(
            s.step(bad).err(),
            Some(SessionError::TokenOutOfRange { token: bad, vocab: TINY.vocab_size })
        );
        assert_eq!(s.snapshot(), &before[..]);
        // A bad token anywhere in a prompt is caught before any work.
        assert_eq!(
            s.prefill(&[1, 2, bad, 3]).err(),
            Some(SessionError::TokenOutOfRange { token: bad, vocab: TINY.vocab_size })
        );
        assert_eq!(s.snapshot(), &before[..]);
        assert_eq!(bits(s.logits()), logits_before);
    }
    assert_eq!(s.position(), 5);
    assert!(s.step(TINY.vocab_size - 1).is_ok());
    let msg = SessionError::TokenOutOfRange { token: 13, vocab: 13 }.to_string();
    assert!(msg.contains("13"));
}

#[test]
fn prefill_empty_is_an_error() {
    let a = aligned(&TINY, 2, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let mut s = Session::new_owned(&m);
    let before = s.snapshot().to_vec();
    assert_eq!(s.prefill(&[]).err(), Some(SessionError::EmptyPrompt));
    assert_eq!(s.prefill_with(&[], |_, _| panic!("no logits"), true).err(), Some(SessionError::EmptyPrompt));
    assert_eq!(s.snapshot(), &before[..]);
}

#[test]
fn prefill_matches_steps_bit_exactly() {
    for (hp, mat) in [(TINY, Mat::F32), (TINY, Mat::F16), (QHP, Mat::Quant)] {
        let a = aligned(&hp, 3, mat);
        let m = Model::from_bytes(a.as_slice()).unwrap();
        for n in [1usize, 2, 7, 33] {
            let toks = tokens(n as u64, n, TINY.vocab_size);
            let mut stepped = Session::new_owned(&m);
            let per_step = run_steps(&mut stepped, &toks);
            let mut pre = Session::new_owned(&m);
            let last = bits(pre.prefill(&toks).unwrap());
            assert_eq!(&last, per_step.last().unwrap(), "n = {n}");
            assert_eq!(pre.snapshot(), stepped.snapshot());
            assert_eq!(pre.position(), n as u64);
            // All positions' logits through prefill_with.
            let mut all = Vec::new();
            let mut pw = Session::new_owned(&m);
            pw.prefill_with(&toks, |i, l| all.push((i, bits(l))), true).unwrap();
            assert_eq!(all.len(), n);
            for (i, (j, l)) in all.iter().enumerate() {
                assert_eq!(i, *j);
                assert_eq!(l, &per_step[i]);
            }
            // Only the last when all_logits is false.
            let mut only = Vec::new();
            let mut pl = Session::new_owned(&m);
            pl.prefill_with(&toks, |i, _| only.push(i), false).unwrap();
            assert_eq!(only, vec![n - 1]);
            assert_eq!(pl.snapshot(), stepped.snapshot());
        }
    }
}

#[test]
fn snapshot_restore_resumes_bit_exactly() {
    for (hp, mat) in [(TINY, Mat::F32), (TINY, Mat::F16), (QHP, Mat::Quant)] {
        let a = aligned(&hp, 4, mat);
        let m = Model::from_bytes(a.as_slice()).unwrap();
        let mut s = Session::new_owned(&m);
        let prompt = tokens(10, 6, TINY.vocab_size);
        let cont = tokens(11, 9, TINY.vocab_size);
        s.prefill(&prompt).unwrap();
        let snap = s.snapshot().to_vec();
        assert_eq!(snap.len(), m.state_bytes());
        let first = run_steps(&mut s, &cont);
        assert_eq!(s.position(), 15);
        s.restore(&snap).unwrap();
        assert_eq!(s.position(), 6);
        let second = run_steps(&mut s, &cont);
        assert_eq!(first, second);
        // Into another session of the same model, including a borrowed one.
        let mut st = AlignedBytes::copy_from(&vec![0u8; m.state_bytes()]);
        let mut sc = AlignedBytes::copy_from(&vec![0u8; m.scratch_bytes()]);
        let mut other = Session::new(&m, st.as_mut_slice(), sc.as_mut_slice()).unwrap();
        other.restore(&snap).unwrap();
        assert_eq!(other.position(), 6);
        assert_eq!(run_steps(&mut other, &cont), first);
        // The different continuation after restore differs (state matters).
        s.restore(&snap).unwrap();
        let alt = run_steps(&mut s, &tokens(12, 9, TINY.vocab_size));
        assert_ne!(alt, first);
    }
}

#[test]
fn restore_rejects_foreign_or_malformed_snapshots() {
    let a = aligned(&TINY, 5, Mat::F32);
    let b = aligned(&TINY, 6, Mat::F32); // same shapes, other weights
    let hp2 = Mamba1Config { d_state: 8, ..TINY };
    let c = aligned(&hp2, 5, Mat::F32); // other state length
    let ma = Model::from_bytes(a.as_slice()).unwrap();
    let mb = Model::from_bytes(b.as_slice()).unwrap();
    let mc = Model::from_bytes(c.as_slice()).unwrap();
    assert_eq!(ma.state_bytes(), mb.state_bytes());
    assert_ne!(ma.file().checksum(), mb.file().checksum());
    assert_ne!(ma.state_bytes(), mc.state_bytes());

    let mut sa = Session::new_owned(&ma);
    sa.prefill(&[1, 2, 3]).unwrap();
    let before = sa.snapshot().to_vec();

    let mut sb = Session::new_owned(&mb);
    sb.prefill(&[4, 5]).unwrap();
    let snap_b = sb.snapshot().to_vec();
    assert_eq!(sa.restore(&snap_b), Err(SessionError::BadSnapshot));
    assert_eq!(sa.snapshot(), &before[..]);

    let mut sc = Session::new_owned(&mc);
    sc.step(1).unwrap();
    assert_eq!(sa.restore(sc.snapshot()), Err(SessionError::BadSnapshot));
    assert_eq!(sc.restore(&before), Err(SessionError::BadSnapshot));
    assert_eq!(sa.snapshot(), &before[..]);

    // Wrong lengths.
    assert_eq!(sa.restore(&[]), Err(SessionError::BadSnapshot));
    assert_eq!(sa.restore(&before[..before.len() - 4]), Err(SessionError::BadSnapshot));
    assert_eq!(sa.restore(&before[..before.len() - 1]), Err(SessionError::BadSnapshot));
    let mut longer = before.clone();
    longer.extend_from_slice(&[0; 4]);
    assert_eq!(sa.restore(&longer), Err(SessionError::BadSnapshot));
    // Damaged magic or checksum words.
    for i in 0..8 {
        let mut bad = before.clone();
        bad[i] ^= 0x20;
        assert_eq!(sa.restore(&bad), Err(SessionError::BadSnapshot), "byte {i}");
    }
    assert_eq!(sa.snapshot(), &before[..]);
    // An untouched copy still restores.
    sa.step(7).unwrap();
    sa.restore(&before).unwrap();
    assert_eq!(sa.snapshot(), &before[..]);
    assert!(SessionError::BadSnapshot.to_string().contains("snapshot"));
}

#[test]
fn position_counts_tokens() {
    let a = aligned(&TINY, 7, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let mut s = Session::new_owned(&m);
    assert_eq!(s.position(), 0);
    s.step(0).unwrap();
    assert_eq!(s.position(), 1);
    s.prefill(&[1, 2, 3, 4]).unwrap();
    assert_eq!(s.position(), 5);
    s.prefill_with(&[5, 6], |_, _| {}, true).unwrap();
    assert_eq!(s.position(), 7);
    let _ = s.step(TINY.vocab_size);
    let _ = s.prefill(&[]);
    assert_eq!(s.position(), 7);
    s.reset();
    assert_eq!(s.position(), 0);
}

#[test]
fn reset_returns_to_initial_state() {
    let a = aligned(&TINY, 8, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let fresh = Session::new_owned(&m).snapshot().to_vec();
    let mut s = Session::new_owned(&m);
    let toks = tokens(3, 10, TINY.vocab_size);
    let first = run_steps(&mut s, &toks);
    assert_ne!(s.snapshot(), &fresh[..]);
    s.reset();
    assert_eq!(s.snapshot(), &fresh[..]);
    assert_eq!(run_steps(&mut s, &toks), first);
    // Same for a borrowed session.
    let mut st = AlignedBytes::copy_from(&vec![0u8; m.state_bytes()]);
    let mut sc = AlignedBytes::copy_from(&vec![0u8; m.scratch_bytes()]);
    let mut b = Session::new(&m, st.as_mut_slice(), sc.as_mut_slice()).unwrap();
    b.prefill(&toks).unwrap();
    b.reset();
    assert_eq!(b.snapshot(), &fresh[..]);
    assert!(std::ptr::eq(b.model(), &m));
}

#[test]
fn borrowed_and_owned_sessions_agree_bit_exactly() {
    for (hp, mat) in [
        (TINY, Mat::F32),
        (TINY, Mat::F16),
        (
            Mamba1Config { tied_embeddings: true, proj_bias: false, conv_bias: false, d_conv: 2, ..TINY },
            Mat::F16,
        ),
        (QHP, Mat::Quant),
        (Mamba1Config { tied_embeddings: true, ..QHP }, Mat::Quant),
    ] {
        let a = aligned(&hp, 9, mat);
        let m = Model::from_bytes(a.as_slice()).unwrap();
        let toks = tokens(4, 20, hp.vocab_size);
        let mut owned = Session::new_owned(&m);
        let o = run_steps(&mut owned, &toks);
        let mut st = AlignedBytes::copy_from(&vec![0u8; m.state_bytes()]);
        let mut sc = AlignedBytes::copy_from(&vec![0u8; m.scratch_bytes()]);
        let mut borrowed = Session::new(&m, st.as_mut_slice(), sc.as_mut_slice()).unwrap();
        let b = run_steps(&mut borrowed, &toks);
        assert_eq!(o, b);
        assert_eq!(owned.snapshot(), borrowed.snapshot());
        assert!(o.iter().flatten().all(|&x| f32::from_bits(x).is_finite()));
    }
}

#[test]
fn f16_matrices_compute_the_same_numbers_as_f32() {
    // With matrix values exactly representable in f16, the f16 model and
    // the f32 model do the same arithmetic in the same order.
    let a16 = aligned(&TINY, 10, Mat::F16);
    let a32 = aligned(&TINY, 10, Mat::F32FromF16);
    let raw = aligned(&TINY, 10, Mat::F32);
    let m16 = Model::from_bytes(a16.as_slice()).unwrap();
    let m32 = Model::from_bytes(a32.as_slice()).unwrap();
    let mraw = Model::from_bytes(raw.as_slice()).unwrap();
    assert_eq!(m16.state_bytes(), m32.state_bytes());
    assert!(a16.as_slice().len() < a32.as_slice().len());
    let toks = tokens(5, 16, TINY.vocab_size);
    let l16 = run_steps(&mut Session::new_owned(&m16), &toks);
    let l32 = run_steps(&mut Session::new_owned(&m32), &toks);
    assert_eq!(l16, l32);
    // And close to the unrounded model.
    let lraw = run_steps(&mut Session::new_owned(&mraw), &toks);
    for (x, y) in l16.iter().flatten().zip(lraw.iter().flatten()) {
        let (x, y) = (f32::from_bits(*x), f32::from_bits(*y));
        assert!((x - y).abs() <= 2e-2 * (1.0 + y.abs()), "{x} vs {y}");
    }
    assert_ne!(l16, lraw);
}

#[test]
fn quantized_model_runs_with_all_integer_formats() {
    let a = aligned(&QHP, 11, Mat::Quant);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let names: Vec<&str> = m.file().tensors().map(|t| t.format.name()).collect();
    for f in ["w8g32", "w4g32", "w2g32", "f16", "f32"] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
    let toks = tokens(6, 12, QHP.vocab_size);
    let mut s = Session::new_owned(&m);
    let l = run_steps(&mut s, &toks);
    assert!(l.iter().flatten().all(|&x| f32::from_bits(x).is_finite()));
    // Different tokens give different logits (the model is not degenerate).
    assert_ne!(l[0], l[1]);
}

#[test]
fn batched_prefill_matches_steps_bit_exactly() {
    for (hp, mat) in [(TINY, Mat::F32), (TINY, Mat::F16), (QHP, Mat::Quant)] {
        let a = aligned(&hp, 5, mat);
        for threads in [1usize, 2, 3] {
            let mut m = Model::from_bytes(a.as_slice()).unwrap();
            m.set_workers(Workers::threads(threads).unwrap());
            assert_eq!(m.workers().count(), threads);
            for n in [1usize, 2, 7, 33] {
                let toks = tokens(n as u64 + 100, n, hp.vocab_size);
                let mut stepped = Session::new_owned(&m);
                let per_step = run_steps(&mut stepped, &toks);
                for chunk in [1usize, 4, 16, 64] {
                    let ctx = format!("{mat:?} threads {threads} n {n} chunk {chunk}");
                    let mut all = Vec::new();
                    let mut s = Session::new_owned(&m);
                    s.prefill_chunked(&toks, chunk, true, |i, l| all.push((i, bits(l)))).unwrap();
                    assert_eq!(all.len(), n, "{ctx}");
                    for (i, (j, l)) in all.iter().enumerate() {
                        assert_eq!(i, *j, "{ctx}");
                        assert_eq!(l, &per_step[i], "{ctx}: position {i}");
                    }
                    assert_eq!(s.snapshot(), stepped.snapshot(), "{ctx}");
                    assert_eq!(bits(s.logits()), *per_step.last().unwrap(), "{ctx}");
                    // Last logits only, in caller memory.
                    let mut only = Vec::new();
                    let mut s = Session::new_owned(&m);
                    let mut buf = vec![0f32; m.prefill_scratch_bytes(chunk, false).unwrap() / 4];
                    s.prefill_batched(&toks, chunk, bytemuck::cast_slice_mut(&mut buf), false, |i, l| {
                        only.push((i, bits(l)))
                    })
                    .unwrap();
                    assert_eq!(only, vec![(n - 1, per_step[n - 1].clone())], "{ctx}");
                    assert_eq!(s.snapshot(), stepped.snapshot(), "{ctx}");
                }
            }
        }
    }
}

#[test]
fn batched_prefill_rejects_bad_input_without_changing_state() {
    let a = aligned(&TINY, 8, Mat::F32);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let mut s = Session::new_owned(&m);
    s.step(1).unwrap();
    let before = s.snapshot().to_vec();
    let need = m.prefill_scratch_bytes(8, true).unwrap();
    let mut small = vec![0f32; need / 4 - 1];
    let err = s.prefill_batched(&[1, 2, 3], 8, bytemuck::cast_slice_mut(&mut small), true, |_, _| {});
    assert!(matches!(err, Err(SessionError::BufferTooSmall { .. })), "{err:?}");
    let err = s.prefill_chunked(&[1, 2, TINY.vocab_size], 8, true, |_, _| {});
    assert!(matches!(err, Err(SessionError::TokenOutOfRange { .. })), "{err:?}");
    let err = s.prefill_chunked(&[], 8, true, |_, _| {});
    assert!(matches!(err, Err(SessionError::EmptyPrompt)), "{err:?}");
    assert_eq!(s.snapshot(), &before[..]);
}
