//! Write a random model of a public shape as an f32 `.eddy` file with a
//! tokenizer embedded, so `eddy quantize --calib` can be measured at real
//! sizes without a checkpoint or Python:
//!
//! ```sh
//! cargo run --release -p eddy-cli --example random_model_file -- \
//!     lfm2-350m models/lfm2-fortunes/tokenizer.json lfm2-350m-f32.eddy
//! ```
//!
//! The tokenizer's ids must fit the shape's vocabulary (any of the
//! `models/*-fortunes` tokenizers, 1,024 ids, fits every public shape).

use anyhow::{bail, Context, Result};
use eddy::BlobKind;
use eddy_cli::convert::WeightDtype;
use eddy_cli::random::{build, Storage};
use eddy_cli::shapes::{public_shape, public_shape_table};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [shape, tokenizer, output] = args.as_slice() else {
        bail!("usage: random_model_file SHAPE TOKENIZER_JSON OUTPUT\nshapes:\n{}", public_shape_table());
    };
    let named = public_shape(shape)
        .with_context(|| format!("unknown shape `{shape}`; known shapes:\n{}", public_shape_table()))?;
    let json = std::fs::read(tokenizer).with_context(|| format!("cannot read {tokenizer}"))?;
    let plan = named.config().plan().with_context(|| format!("shape `{shape}`"))?;
    let plan = plan.with_blob(BlobKind::TokenizerJson, json);
    let built = build(&plan, &Storage::Converted(WeightDtype::F32), 1)?;
    std::fs::write(output, built.bytes.as_slice()).with_context(|| format!("cannot write {output}"))?;
    eprintln!(
        "wrote {output}: {} bytes, {:.1} M parameters",
        built.bytes.as_slice().len(),
        plan.parameters() as f64 / 1e6
    );
    Ok(())
}
