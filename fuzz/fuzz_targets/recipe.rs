//! Recipe parsing: TOML text and `--set` rules; a parsed recipe is then
//! asked for the format of a few names. Errors are fine; panics are
//! findings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (toml, rules) = text.split_once('\n').map_or((text, ""), |(r, t)| (t, r));
    let rules: Vec<String> = rules.split(';').map(str::to_string).collect();
    let Ok(recipe) = eddy_cli::recipe::Recipe::from_toml(toml, "fuzz.toml", "fuzz") else { return };
    let names = ["embed.weight".to_string(), "layers.0.in_proj.weight".to_string()];
    let _ = eddy_cli::recipe::Recipe::require_override_matches(&rules, &names);
    if let Ok(recipe) = recipe.with_overrides(&rules) {
        for n in &names {
            let _ = recipe.format_for(n);
        }
    }
});
