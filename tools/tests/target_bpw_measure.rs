//! The budget's measured loss is the loss of the file `eddy quantize`
//! writes: for each matrix, the GPTQ candidate's loss equals the output
//! error the quantization report records for the same format.

use eddy::Model;
use eddy_cli::budget::{measure, recipe_for_target};
use eddy_cli::calibrate::{collect_activation_stats_for, hessian_matrices, CalibrationOptions};
use eddy_cli::convert::WeightDtype;
use eddy_cli::quantize::quantize_model;
use eddy_cli::random::{build, Storage};
use eddy_cli::recipe::Recipe;
use eddy_cli::shapes::small_shapes;

const FULL: CalibrationOptions = CalibrationOptions { clip_search: true, activation_aware: true, gptq: true };

#[test]
fn measured_loss_is_the_written_files_output_error() {
    let (_, shape) = small_shapes().into_iter().find(|(f, _)| *f == "mamba1").expect("a small mamba1 shape");
    let random = build(&shape.plan().unwrap(), &Storage::Converted(WeightDtype::F32), 11).unwrap();
    let model = Model::from_bytes(random.bytes.as_slice()).unwrap();
    let base = Recipe::preset("w2a8").unwrap();
    let wanted = hessian_matrices(&model, &base);
    let tokens: Vec<u32> = (0..96u32).map(|i| (i * 37 + 5) % 200).collect();
    let stats =
        collect_activation_stats_for(&model, &tokens, None, &|n: &str| wanted.iter().any(|w| w == n), |_| {})
            .unwrap();
    let measured = measure(&model, &base, &|_: &str| false, Some(&stats), FULL).unwrap();
    assert!(!measured.tensors.is_empty());
    let format = eddy::TensorFormat::W4 { group: 32 };
    // Every allocatable matrix in one format, as `quantize` writes it.
    let mut rules = Recipe::preset("w2a8").unwrap();
    rules.rules.insert(0, eddy_cli::recipe::Rule { pattern: "*".into(), format });
    rules.rules.retain(|r| r.pattern != "*.dt_proj.weight");
    rules.rules.insert(
        0,
        eddy_cli::recipe::Rule { pattern: "*.dt_proj.weight".into(), format: eddy::TensorFormat::F16 },
    );
    let (_, report) = quantize_model(&model, &rules, Some(&stats), tokens.len(), FULL, |_, _| {}).unwrap();
    let mut compared = 0;
    for t in &measured.tensors {
        let c = t.candidates.iter().find(|c| c.format == format).expect("w4g32 fits every small matrix");
        let r = report.tensors.iter().find(|r| r.name == t.name).unwrap();
        if t.name == "embed.weight" {
            continue; // also scored for its lookups
        }
        let out = r.output_mse.expect("output error recorded");
        let shape_rows = model.file().tensors().find(|x| x.name == t.name).unwrap().rows() as f64;
        assert_eq!(c.loss, out * shape_rows, "{}", t.name);
        assert_eq!(c.bytes, r.bytes, "{}", t.name);
        compared += 1;
    }
    assert!(compared >= 4, "{compared} matrices compared");
    // And the allocation from those losses mixes formats within the budget.
    // (halfway between the smallest and largest reachable sizes)
    let end = |pick: fn(u64, u64) -> u64| {
        let b = measured.fixed_bytes
            + measured
                .tensors
                .iter()
                .map(|t| t.candidates.iter().map(|c| c.bytes).reduce(pick).unwrap())
                .sum::<u64>();
        b as f64 * 8.0 / measured.total_params as f64
    };
    let target = (end(u64::min) + end(u64::max)) / 2.0;
    let (recipe, a) = recipe_for_target(&model, &base, &[], Some(&stats), FULL, target).unwrap();
    let formats: std::collections::BTreeSet<_> = a.formats.iter().map(|(_, f)| f.name()).collect();
    assert!(formats.len() >= 2, "{formats:?}");
    assert!(a.bytes <= a.budget);
    assert!(recipe.name.contains(&format!("--target-bpw {target}")));
}
