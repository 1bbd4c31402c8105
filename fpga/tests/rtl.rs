//! RTL checks of the integer datapath (`fpga/rtl/mac_tile.v`, hand-written,
//! not generated from the HLS code): Icarus Verilog simulation against the
//! Rust reference's group sums with a cycle count, and yosys synthesis for
//! relative resource use. Needs `iverilog` and `yosys` (scripts/setup.sh).

use eddy_fpga::cycles::{matvec_cost, Design, U280};
use eddy_fpga::golden::Rng;
use eddy_quant::{code_at, group_dot_i32, TensorFormat};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pipeline depth of mac_tile.v: products, adder tree, accumulate.
const DEPTH: u64 = 3;

fn rtl_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rtl")
}

fn tool(name: &str) -> Command {
    let probe = Command::new(name).arg("-V").output();
    assert!(probe.is_ok(), "`{name}` is not installed; scripts/setup.sh installs it");
    Command::new(name)
}

/// Big-endian hex of `bits` bits given as little-endian bytes.
fn hex(le: &[u8], bits: usize) -> String {
    let digits = bits.div_ceil(4);
    let mut s = String::new();
    for d in (0..digits).rev() {
        let byte = le.get(d / 2).copied().unwrap_or(0);
        let nib = if d % 2 == 0 { byte & 0xf } else { byte >> 4 };
        s.push(char::from_digit(nib as u32, 16).unwrap());
    }
    s
}

/// Simulate one tile of `pe` rows x `groups` groups; returns (cycles, beats).
fn simulate(pe: usize, simd: usize, format: TensorFormat, groups: usize, seed: u64) -> (u64, u64) {
    let (group, bits) = (format.group_size().unwrap(), format.code_bits().unwrap());
    let code_bytes = group * bits as usize / 8;
    let mut rng = Rng::new(seed);
    let rows: Vec<Vec<u8>> =
        (0..pe).map(|_| (0..groups * code_bytes).map(|_| rng.next_u64() as u8).collect()).collect();
    let acts: Vec<i8> = (0..groups * group).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
    let steps = group / simd;
    let width = 1 + pe * simd * 8 + simd * 8;
    let mut beats = String::new();
    for g in 0..groups {
        for step in 0..steps {
            let mut v = vec![0u8; width.div_ceil(8) + 1];
            for l in 0..simd {
                v[l] = acts[g * group + step * simd + l] as u8;
            }
            for (p, row) in rows.iter().enumerate() {
                let codes = &row[g * code_bytes..(g + 1) * code_bytes];
                for l in 0..simd {
                    v[simd + p * simd + l] = code_at(bits, codes, step * simd + l);
                }
            }
            if step + 1 == steps {
                let bit = width - 1;
                v[bit / 8] |= 1 << (bit % 8);
            }
            beats.push_str(&hex(&v, width));
            beats.push('\n');
        }
    }
    let mut sums = String::new();
    for g in 0..groups {
        let mut v = Vec::new();
        for row in &rows {
            let codes = &row[g * code_bytes..(g + 1) * code_bytes];
            v.extend_from_slice(&group_dot_i32(bits, codes, &acts[g * group..(g + 1) * group]).to_le_bytes());
        }
        sums.push_str(&hex(&v, pe * 32));
        sums.push('\n');
    }
    let n_beats = groups * steps;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rtl-{pe}x{simd}-{bits}-{seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("beats.hex"), beats).unwrap();
    std::fs::write(dir.join("sums.hex"), sums).unwrap();
    let out = tool("iverilog")
        .args(["-g2012", "-o"])
        .arg(dir.join("sim"))
        .arg(format!("-Ptb_mac_tile.PE={pe}"))
        .arg(format!("-Ptb_mac_tile.SIMD={simd}"))
        .arg(format!("-Ptb_mac_tile.BEATS={n_beats}"))
        .arg(format!("-Ptb_mac_tile.GROUPS={groups}"))
        .arg(rtl_dir().join("tb_mac_tile.v"))
        .arg(rtl_dir().join("mac_tile.v"))
        .output()
        .unwrap();
    assert!(out.status.success(), "iverilog: {}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new("vvp").arg("sim").current_dir(&dir).output().expect("vvp");
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    let line =
        text.lines().find(|l| l.starts_with("cycles=")).unwrap_or_else(|| panic!("no result:\n{text}"));
    assert!(line.ends_with("errors=0"), "RTL group sums differ from the reference:\n{text}");
    let cycles: u64 = line["cycles=".len()..].split_whitespace().next().unwrap().parse().unwrap();
    (cycles, n_beats as u64)
}

#[test]
fn rtl_mac_tile_matches_reference_and_cycle_model() {
    for (pe, simd, format, groups, seed) in [
        (4, 4, TensorFormat::W2 { group: 32 }, 4, 1),
        (2, 8, TensorFormat::W4 { group: 64 }, 3, 2),
        (3, 2, TensorFormat::W8 { group: 32 }, 2, 3),
    ] {
        let (cycles, beats) = simulate(pe, simd, format, groups, seed);
        let design = Design { pe: pe as u32, simd: simd as u32, ..U280.design };
        let group = format.group_size().unwrap() as u64;
        let model = matvec_cost(&design, &U280, format, pe as u64, groups as u64 * group);
        println!(
            "RTL {pe}x{simd} {}: {cycles} cycles for {beats} beats; model iterations {}",
            format.name(),
            model.iters
        );
        assert_eq!(model.iters, beats);
        assert_eq!(cycles, model.iters + DEPTH, "the MAC pipeline must sustain one iteration per cycle");
    }
}

/// yosys synth_xilinx (UltraScale+) cell counts of one configuration.
fn synth(pe: u32, simd: u32) -> (u64, u64, u64) {
    let stat = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("yosys-{pe}x{simd}.txt"));
    let script = format!(
        "read_verilog {}; chparam -set PE {pe} -set SIMD {simd} mac_tile; synth_xilinx -family xcup -top mac_tile; \
         tee -q -o {} stat",
        rtl_dir().join("mac_tile.v").display(),
        stat.display()
    );
    let out = tool("yosys").args(["-q", "-p", &script]).output().unwrap();
    assert!(out.status.success(), "yosys: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&stat).unwrap();
    let count = |prefix: &str| -> u64 {
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let (name, n) = (it.next()?, it.next()?);
                name.starts_with(prefix).then(|| n.parse::<u64>().ok()).flatten()
            })
            .sum()
    };
    (count("LUT"), count("FD"), count("DSP48E2"))
}

#[test]
fn yosys_resources_scale_with_the_mac_array() {
    let small = synth(2, 4);
    let big = synth(4, 4);
    println!("yosys synth_xilinx xcup mac_tile: 2x4 LUT/FF/DSP {small:?}, 4x4 {big:?}");
    // One DSP per int8 multiplier (yosys does not pack two per DSP).
    assert_eq!(small.2, 8);
    assert_eq!(big.2, 16);
    // Doubling PE about doubles the logic.
    assert!(big.0 > small.0 * 3 / 2 && big.0 < small.0 * 5 / 2, "{small:?} {big:?}");
}
