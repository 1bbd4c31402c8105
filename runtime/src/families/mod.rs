//! The model families and the registry that names each of them once.
//!
//! One module per family (and [`hybrid`], what the hybrids with attention
//! layers share; [`moe`], the mixture-of-experts MLP; `head_blocks`, the per-head recurrences' chunk runner;
//! `mixer_layers`, the layer stack of GLA and Gated DeltaNet;
//! `step_products`, a step's independent products in one hand-off).
//! The [`families!`] table below is the only list of families in the
//! runtime: it declares the modules, defines
//! [`Architecture`] (file codes, names, cargo features, Hugging Face
//! classes), the `Inner` enum a [`Model`](crate::Model) holds, the load
//! dispatch and the `with_family!`/`map_family!` macros. Adding a family is
//! one entry here (see `runtime/ADDING_A_FAMILY.md`).

use crate::error::ModelError;
use crate::file::EddyFile;

#[cfg(any(feature = "gla", feature = "gated-deltanet", feature = "rwkv7"))]
mod head_blocks;
#[cfg(any(feature = "lfm2", feature = "recurrent-gemma", feature = "gated-deltanet"))]
pub mod hybrid;
#[cfg(any(feature = "gla", feature = "gated-deltanet"))]
mod mixer_layers;
#[cfg(feature = "gated-deltanet")]
pub mod moe;
#[cfg(any(feature = "gla", feature = "gated-deltanet", feature = "rwkv7"))]
mod step_products;

/// Generates everything that lists families from the table it is invoked
/// with. `$d` is a literal `$`, which the generated macros need for their
/// own parameters.
macro_rules! families {
    (
        $d:tt;
        $(
            $(#[$family_doc:meta])*
            family $module:ident::$Family:ident, feature $feature:literal {
                $(
                    $(#[$arch_doc:meta])*
                    $Arch:ident = $code:literal, $name:literal,
                    hf [$($class:literal),*], model_type $model_type:literal;
                )+
            }
        )+
    ) => {
        $(
            $(#[$family_doc])*
            #[cfg(feature = $feature)]
            pub mod $module;
        )+

        #[cfg(not(any($(feature = $feature),+)))]
        compile_error!("enable at least one model family feature of `eddy` (e.g. `mamba1`, or `all-families`)");

        /// Model family of a `.eddy` file. The codes are part of the file
        /// format.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Architecture {
            $($(
                $(#[$arch_doc])*
                $Arch,
            )+)+
        }

        impl Architecture {
            /// Every architecture this version knows, in code order.
            pub const ALL: &'static [Architecture] = &[$($(Architecture::$Arch,)+)+];

            /// Decode an architecture code; `None` if unknown to this version.
            pub fn from_code(code: u32) -> Option<Self> {
                match code {
                    $($($code => Some(Architecture::$Arch),)+)+
                    _ => None,
                }
            }

            /// The file code of this architecture.
            pub fn code(self) -> u32 {
                match self {
                    $($(Architecture::$Arch => $code,)+)+
                }
            }

            /// Human-readable name.
            pub fn name(self) -> &'static str {
                match self {
                    $($(Architecture::$Arch => $name,)+)+
                }
            }

            /// The cargo feature of `eddy` that compiles this architecture's
            /// family in.
            pub fn feature(self) -> &'static str {
                match self {
                    $($(Architecture::$Arch => $feature,)+)+
                }
            }

            /// Whether this build runs the architecture (its family's
            /// feature is on).
            pub fn is_compiled(self) -> bool {
                match self {
                    $($(Architecture::$Arch => cfg!(feature = $feature),)+)+
                }
            }

            /// The Hugging Face `architectures` classes converted as this
            /// architecture (none for layouts of eddy's own).
            pub fn hf_classes(self) -> &'static [&'static str] {
                match self {
                    $($(Architecture::$Arch => &[$($class),*],)+)+
                }
            }

            /// The `model_type` of a `config.json` of this architecture.
            pub fn hf_model_type(self) -> &'static str {
                match self {
                    $($(Architecture::$Arch => $model_type,)+)+
                }
            }
        }

        /// The family part of a model: one variant per family compiled in.
        #[derive(Clone, Copy, Debug)]
        pub(crate) enum Inner<'a> {
            $(
                #[cfg(feature = $feature)]
                $Family($module::$Family<'a>),
            )+
        }

        impl<'a> Inner<'a> {
            /// Bind `file` to its family (checking hyper-parameters and
            /// every tensor).
            pub(crate) fn load(file: EddyFile<'a>) -> Result<Self, ModelError> {
                Ok(match file.architecture() {
                    $($(
                        #[cfg(feature = $feature)]
                        Architecture::$Arch => Inner::$Family($module::$Family::load(file)?),
                    )+)+
                    #[allow(unreachable_patterns)] // only when a family is left out
                    other => return Err(ModelError::FamilyNotCompiled(other.name())),
                })
            }
        }

        impl<'a> Inner<'a> {
            /// Bind `file`'s hyper-parameters to its family without
            /// checking its tensors (for sizes only, see `ModelSizes`).
            pub(crate) fn load_header(file: EddyFile<'a>) -> Result<Self, ModelError> {
                Ok(match file.architecture() {
                    $($(
                        #[cfg(feature = $feature)]
                        Architecture::$Arch => Inner::$Family($module::$Family::load_header(file)?),
                    )+)+
                    #[allow(unreachable_patterns)] // only when a family is left out
                    other => return Err(ModelError::FamilyNotCompiled(other.name())),
                })
            }
        }

        /// The cargo features of the families, in table order.
        #[cfg(test)]
        pub(crate) const FAMILY_FEATURES: &[&str] = &[$($feature),+];

        /// Run `$body` with `$m` bound to the family inside `$inner`.
        macro_rules! with_family {
            ($d inner:expr, $d m:ident => $d body:expr) => {
                match $d inner {
                    $(
                        #[cfg(feature = $feature)]
                        $crate::families::Inner::$Family($d m) => $d body,
                    )+
                }
            };
        }
        pub(crate) use with_family;

        /// Rebuild `$inner` with `$m` bound to its family and `$body`
        /// giving the new family value (a `Result`), in the same variant.
        macro_rules! map_family {
            ($d inner:expr, $d m:ident => $d body:expr) => {
                match $d inner {
                    $(
                        #[cfg(feature = $feature)]
                        $crate::families::Inner::$Family($d m) => $crate::families::Inner::$Family($d body?),
                    )+
                }
            };
        }
        pub(crate) use map_family;
    };
}

// The registry. Per family: its module and loaded-model type, its cargo
// feature (also listed in runtime/Cargo.toml, checked by a test), and its
// architectures: variant, file code (file format: never change one), name,
// Hugging Face classes and `model_type` the converter recognizes. Every
// architecture loads with its family type's `load`. Codes are in
// ascending order.
families! { $;
    family mamba1::Mamba1, feature "mamba1" {
        /// Mamba-1 (selective state-space model), as `MambaForCausalLM`.
        Mamba1 = 1, "mamba1", hf ["MambaForCausalLM"], model_type "mamba";
    }
    family mamba2::Mamba2, feature "mamba2" {
        /// Mamba-2 (multi-head SSD), as `Mamba2ForCausalLM`.
        Mamba2 = 2, "mamba2", hf ["Mamba2ForCausalLM"], model_type "mamba2";
    }
    family rnn::Rnn, feature "rnn" {
        /// Stacked GRU layers (PyTorch `nn.GRU`) between embedding and head.
        Gru = 3, "gru", hf [], model_type "gru";
        /// Stacked LSTM layers (PyTorch `nn.LSTM`) between embedding and head.
        Lstm = 4, "lstm", hf [], model_type "lstm";
    }
    family rwkv4::Rwkv4, feature "rwkv4" {
        /// RWKV-4, as `RwkvForCausalLM`.
        Rwkv4 = 5, "rwkv4", hf ["RwkvForCausalLM"], model_type "rwkv";
    }
    family gated_deltanet::GatedDeltaNet, feature "gated-deltanet" {
        /// Gated DeltaNet layers with SwiGLU MLPs, as the linear-attention
        /// layers of `Qwen3NextForCausalLM`; with a layer-kinds table,
        /// Qwen3-Next as released (gated attention layers, experts).
        GatedDeltaNet = 6, "gated-deltanet", hf ["Qwen3NextForCausalLM"], model_type "qwen3_next";
    }
    family rwkv7::Rwkv7, feature "rwkv7" {
        /// RWKV-7 "Goose" (generalized delta rule), BlinkDL's checkpoint layout.
        Rwkv7 = 7, "rwkv7", hf [], model_type "rwkv7";
    }
    family gla::Gla, feature "gla" {
        /// Gated linear attention (GLA) with SwiGLU MLPs, in fla's
        /// `GLAForCausalLM` layout.
        Gla = 8, "gla", hf ["GLAForCausalLM"], model_type "gla";
    }
    family lfm2::Lfm2, feature "lfm2" {
        /// LFM2 hybrid: gated short-convolution layers and grouped-query
        /// attention layers, each followed by a SwiGLU MLP, as `Lfm2ForCausalLM`.
        Lfm2 = 9, "lfm2", hf ["Lfm2ForCausalLM"], model_type "lfm2";
    }
    family recurrent_gemma::RecurrentGemma, feature "recurrent-gemma" {
        /// RecurrentGemma / Griffin hybrid: RG-LRU recurrent blocks and local
        /// sliding-window attention, as `RecurrentGemmaForCausalLM`.
        RecurrentGemma = 10, "recurrent-gemma", hf ["RecurrentGemmaForCausalLM"],
            model_type "recurrent_gemma";
    }
}

impl Architecture {
    /// The architecture a Hugging Face `config.json` describes, from its
    /// `architectures` classes and `model_type`: the first architecture
    /// (in code order) one of whose classes is listed; else, when no class
    /// is listed or for layouts of eddy's own (no classes), the one whose
    /// `model_type` it is.
    pub fn from_hf_config(classes: &[&str], model_type: &str) -> Option<Self> {
        let by_class = Self::ALL.iter().find(|a| a.hf_classes().iter().any(|c| classes.contains(c)));
        let by_type = || {
            Self::ALL.iter().find(|a| {
                (classes.is_empty() || a.hf_classes().is_empty()) && a.hf_model_type() == model_type
            })
        };
        by_class.or_else(by_type).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::{Architecture, FAMILY_FEATURES};

    /// The names in the `[features]` entry `key = [...]` of `toml`.
    fn feature_list<'t>(toml: &'t str, key: &str) -> Option<Vec<&'t str>> {
        let line = toml.lines().find(|l| l.split('=').next().map(str::trim) == Some(key))?;
        let list = line.split_once('=')?.1.trim().strip_prefix('[')?.strip_suffix(']')?;
        Some(list.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).collect())
    }

    #[test]
    fn cargo_features_match_the_registry() {
        let toml = include_str!("../../Cargo.toml");
        let mut all = feature_list(toml, "all-families").expect("Cargo.toml has an all-families feature");
        let mut registry = FAMILY_FEATURES.to_vec();
        all.sort_unstable();
        registry.sort_unstable();
        assert_eq!(all, registry, "all-families in runtime/Cargo.toml vs the families! table");
        for feature in FAMILY_FEATURES {
            assert_eq!(
                feature_list(toml, feature),
                Some(vec![]),
                "runtime/Cargo.toml must declare `{feature} = []`"
            );
        }
    }

    #[test]
    fn codes_are_unique_ascending_and_round_trip() {
        let codes: Vec<u32> = Architecture::ALL.iter().map(|a| a.code()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "codes {codes:?}");
        for &a in Architecture::ALL {
            assert_eq!(Architecture::from_code(a.code()), Some(a));
            assert!(FAMILY_FEATURES.contains(&a.feature()));
        }
        // Codes are file format: the ones already written must never change.
        assert_eq!(Architecture::Mamba1.code(), 1);
        assert_eq!(Architecture::Lstm.code(), 4);
        assert_eq!(Architecture::RecurrentGemma.code(), 10);
        assert_eq!(Architecture::from_code(0), None);
    }

    #[test]
    fn names_classes_and_model_types_are_unique() {
        let mut seen = Vec::new();
        for &a in Architecture::ALL {
            for key in [a.name(), a.hf_model_type()].into_iter().chain(a.hf_classes().iter().copied()) {
                let owner = seen.iter().find(|(k, _)| *k == key).map(|&(_, o)| o);
                // A name may equal its own model_type (e.g. "gla").
                assert!(owner.is_none() || owner == Some(a), "{key} names two architectures");
                seen.push((key, a));
            }
        }
    }

    #[test]
    fn hf_config_detection() {
        let detect = Architecture::from_hf_config;
        assert_eq!(detect(&["MambaForCausalLM"], "mamba"), Some(Architecture::Mamba1));
        assert_eq!(detect(&[], "mamba2"), Some(Architecture::Mamba2));
        assert_eq!(detect(&["Qwen3NextForCausalLM"], "qwen3_next"), Some(Architecture::GatedDeltaNet));
        // A listed class wins over the model type; a model type alone
        // counts only when no class is listed ...
        assert_eq!(detect(&["RwkvForCausalLM"], "rwkv7"), Some(Architecture::Rwkv4));
        assert_eq!(detect(&["SomethingElse"], "mamba"), None);
        // ... or for eddy's own layouts.
        assert_eq!(detect(&["SomethingElse"], "lstm"), Some(Architecture::Lstm));
        assert_eq!(detect(&[], "rwkv7"), Some(Architecture::Rwkv7));
        assert_eq!(detect(&[], "llama"), None);
    }
}
