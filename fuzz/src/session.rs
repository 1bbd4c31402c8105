//! A session driven by fuzzed options, tokens and snapshot bytes.

use eddy::file::AlignedBytes;
use eddy::{KvFormat, Model, Session, StateFormat};

/// Split off the first `n` bytes (fewer at the end of the input).
fn take<'d>(data: &mut &'d [u8], n: usize) -> &'d [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

/// Run one of `models` (a seed file, chosen by the first byte) with the
/// state format, KV cache options, tokens and chunk size the input says,
/// then restore the rest of the input as a snapshot. Errors are fine;
/// panics, aborts and out-of-bounds reads are findings.
pub fn drive_session(models: &[&[u8]], mut data: &[u8]) {
    let d = &mut data;
    let Some(file) = models.get(byte(d) as usize % models.len().max(1)) else { return };
    let bytes = AlignedBytes::copy_from(file);
    let Ok(mut model) = Model::from_bytes(bytes.as_slice()) else { return };
    let bits = [32, 8, 4][byte(d) as usize % 3];
    if let Some(format) = StateFormat::from_bits(bits) {
        let _ = model.set_state_format(format);
    }
    if let Some(mut kv) = model.kv_cache() {
        let format = ["f32", "f16", "q8", "q4"][byte(d) as usize % 4];
        kv.format = KvFormat::parse(format).unwrap_or(kv.format);
        kv.sinks = u32::from(byte(d) % 8);
        kv.window = u32::from(u16::from_le_bytes([byte(d), byte(d)]) % 512);
        match model.with_kv_cache(kv) {
            Ok(m) => model = m,
            Err(_) => return,
        }
    }
    let Ok(mut session) = Session::try_new_owned(&model) else { return };
    let chunk = usize::from(byte(d) % 16);
    let n = usize::from(byte(d) % 64);
    let vocab = model.vocab_size() as u32;
    // Mostly valid ids, with out-of-range ones now and then.
    let tokens: Vec<u32> = take(d, n * 2)
        .chunks(2)
        .map(|c| {
            let t = u32::from(u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
            if t & 0x8000 != 0 { t } else { t % vocab.max(1) }
        })
        .collect();
    let _ = session.prefill_chunked(&tokens, chunk, byte(d) & 1 == 1, |_, l| {
        assert_eq!(l.len(), model.vocab_size());
    });
    if let Some(&t) = tokens.first() {
        let _ = session.step(t);
    }
    let own = session.snapshot().to_vec();
    let position = session.position();
    // An arbitrary snapshot: refused (state unchanged) or taken whole.
    if session.restore(data).is_err() {
        assert_eq!(session.snapshot(), &own[..], "a refused snapshot must leave the state unchanged");
        assert_eq!(session.position(), position);
    }
    let _ = session.step(0);
    session.restore(&own).expect("own snapshot restores");
}
