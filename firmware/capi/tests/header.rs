//! `include/eddy.h` is written by hand; these tests hold it to the Rust
//! side: the status codes, the storage sizes, and every exported function
//! with its parameter and return types.

use eddy_capi::{EddyModel, EddySession, MODEL_WORDS, SESSION_WORDS, STATUS_MESSAGES};
use std::collections::BTreeMap;

const HEADER: &str = include_str!("../include/eddy.h");
const SOURCE: &str = include_str!("../src/lib.rs");

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace(" *", "*").replace("* ", "*")
}

/// C spelling of a Rust FFI type (only the ones the API uses).
fn c_type(rust: &str) -> String {
    let rust = rust.trim();
    let c = match rust {
        "EddyStatus" => "eddy_status",
        "usize" => "size_t",
        "u32" => "uint32_t",
        "c_int" => "int",
        "*mut EddyModel" => "eddy_model*",
        "*const EddyModel" => "const eddy_model*",
        "*mut EddySession" => "eddy_session*",
        "*const u8" => "const uint8_t*",
        "*mut u8" => "uint8_t*",
        "*const u32" => "const uint32_t*",
        "*mut u64" => "uint64_t*",
        "*mut usize" => "size_t*",
        "*mut *const f32" => "const float**",
        "*const c_char" => "const char*",
        "*mut c_char" => "char*",
        other => panic!("no C mapping for Rust type `{other}`; extend c_type()"),
    };
    c.to_string()
}

/// `name -> (return type, [parameter types])` of the Rust exports.
fn rust_functions() -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for part in SOURCE.split("extern \"C\" fn ").skip(1) {
        let name = part[..part.find('(').unwrap()].to_string();
        let params = &part[part.find('(').unwrap() + 1..];
        let close = params.find(')').unwrap();
        let (params, rest) = (&params[..close], &params[close + 1..]);
        let ret = rest[..rest.find('{').unwrap()].trim().trim_start_matches("->").trim();
        let types = params
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| c_type(p.split_once(':').unwrap().1))
            .collect();
        out.insert(name, (c_type(ret), types));
    }
    out
}

/// The same from the header's prototypes.
fn header_functions() -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let code: String =
        HEADER.lines().filter(|l| !l.trim_start().starts_with("/*")).collect::<Vec<_>>().join(" ");
    for decl in code.split(';') {
        let decl = squash(decl);
        if !decl.contains("eddy_") || !decl.contains('(') {
            continue;
        }
        let head = &decl[..decl.find('(').unwrap()];
        let Some(name_at) = head.rfind([' ', '*']) else { continue };
        let name = head[name_at + 1..].to_string();
        if !name.starts_with("eddy_") || head.contains("typedef") {
            continue;
        }
        let ret = head[..name_at + 1].trim().rsplit("*/").next().unwrap().trim().to_string();
        let params = &decl[decl.find('(').unwrap() + 1..decl.rfind(')').unwrap()];
        let types = params
            .split(',')
            .map(|p| {
                let p = p.trim();
                // Drop the parameter name: the last identifier.
                let cut = p.rfind([' ', '*']).unwrap();
                p[..cut + 1].trim().to_string()
            })
            .collect();
        out.insert(name, (ret, types));
    }
    out
}

#[test]
fn functions_match_the_rust_exports() {
    let (rust, header) = (rust_functions(), header_functions());
    assert!(rust.len() >= 12, "found only {} Rust exports", rust.len());
    assert_eq!(rust.keys().collect::<Vec<_>>(), header.keys().collect::<Vec<_>>(), "exported names differ");
    for (name, sig) in &rust {
        assert_eq!(sig, &header[name], "signature of {name} differs (left: Rust, right: eddy.h)");
    }
}

#[test]
fn status_codes_match() {
    let mut codes = BTreeMap::new();
    for line in HEADER.lines() {
        let line = line.trim();
        if let Some((name, rest)) = line.strip_prefix("EDDY_").and_then(|l| l.split_once(" = ")) {
            let value: i32 =
                rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            codes.insert(value, name.to_string());
        }
    }
    assert_eq!(codes.len(), STATUS_MESSAGES.len(), "eddy.h has {codes:?}");
    for (status, _) in STATUS_MESSAGES {
        let name = &codes[&(status as i32)];
        // EDDY_ERR_BUFFER_TOO_SMALL <-> BufferTooSmall, EDDY_OK <-> Ok.
        let camel: String = name
            .trim_start_matches("ERR_")
            .split('_')
            .map(|w| w[..1].to_string() + &w[1..].to_ascii_lowercase())
            .collect();
        assert_eq!(camel, format!("{status:?}"), "code {} is {name} in eddy.h", status as i32);
    }
}

#[test]
fn storage_sizes_match() {
    let words = |name: &str| -> usize {
        let line = HEADER.lines().find(|l| l.starts_with(&format!("#define {name} "))).unwrap();
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(words("EDDY_MODEL_STORAGE_WORDS"), MODEL_WORDS);
    assert_eq!(words("EDDY_SESSION_STORAGE_WORDS"), SESSION_WORDS);
    assert_eq!(std::mem::size_of::<EddyModel>(), MODEL_WORDS * 8);
    assert_eq!(std::mem::size_of::<EddySession>(), SESSION_WORDS * 8);
}

#[test]
fn every_status_has_a_message() {
    for code in -1..12 {
        // SAFETY: eddy_status_message returns a static NUL-terminated string.
        let msg = unsafe { std::ffi::CStr::from_ptr(eddy_capi::eddy_status_message(code)) };
        assert!(!msg.to_bytes().is_empty());
    }
}
