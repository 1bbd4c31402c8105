//! The board path without a board: UIO discovery, register and buffer
//! maps on ordinary files, the driver writing the documented offsets, a
//! silent device timing out; the exported HLS project and host config.

use eddy_fpga::cycles::{self, KV260, U280};
use eddy_fpga::uio::{find_uio, BoardDevice, BoardError, HostConfig, UdmaBuf, UioBus};
use eddy_fpga::{regs, Accel, ArgError, DeviceMemory, DriverError, MatvecJob, RegisterBus, SimBus};
use eddy_quant::TensorFormat;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("board-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fake sysfs + /dev: uio0 is another device, uio1 is ours; one udmabuf.
fn fake_board(root: &Path) {
    for (n, name) in [(0, "other_ip"), (1, "eddy_accel")] {
        let d = root.join(format!("sys/uio/uio{n}/maps/map0"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(root.join(format!("sys/uio/uio{n}/name")), format!("{name}\n")).unwrap();
        std::fs::write(d.join("size"), "0x1000\n").unwrap();
    }
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::write(root.join("dev/uio1"), vec![0u8; 0x1000]).unwrap();
    let u = root.join("sys/u-dma-buf/udmabuf0");
    std::fs::create_dir_all(&u).unwrap();
    std::fs::write(u.join("phys_addr"), "0x0000000070000000\n").unwrap();
    std::fs::write(u.join("size"), "1048576\n").unwrap();
    std::fs::write(root.join("dev/udmabuf0"), vec![0u8; 1 << 20]).unwrap();
}

#[test]
fn uio_is_found_by_name_and_registers_land_at_documented_offsets() {
    let root = scratch("uio");
    fake_board(&root);
    let (node, size) = find_uio(&root.join("sys/uio"), &root.join("dev"), "eddy_accel").unwrap();
    assert_eq!((node.clone(), size), (root.join("dev/uio1"), 0x1000));
    assert!(matches!(
        find_uio(&root.join("sys/uio"), &root.join("dev"), "nope"),
        Err(BoardError::NoUio { .. })
    ));
    let mut regs_bus = UioBus::map(&node, size).unwrap();
    regs_bus.set_poll_interval(std::time::Duration::ZERO);
    let mem = UdmaBuf::open_in(&root.join("sys/u-dma-buf"), &root.join("dev"), "udmabuf0").unwrap();
    assert_eq!((mem.base(), mem.len()), (0x7000_0000, 1 << 20));
    let mut acc = Accel::new(BoardDevice { regs: regs_bus, mem }, SimBus::params());
    // An idle kernel: CTRL reads idle.
    acc.device().write32(regs::CTRL, regs::CTRL_IDLE);
    let base = 0x7000_0000u64;
    let job = MatvecJob {
        format: TensorFormat::W2 { group: 64 },
        rows: 16,
        cols: 256,
        w: base,
        xq: base + 0x1000,
        xs: base + 0x2000,
        xsum: base + 0x3000,
        y: base + 0x4000,
    };
    acc.set_timeout_polls(100);
    // Nothing behind the file answers: the driver times out.
    assert_eq!(acc.matvec(&job), Err(DriverError::Timeout { polls: 100 }));
    drop(acc);
    let bytes = std::fs::read(&node).unwrap();
    let word = |off: u32| u32::from_le_bytes(bytes[off as usize..off as usize + 4].try_into().unwrap());
    assert_eq!(word(regs::CTRL), regs::CTRL_START, "start written last");
    assert_eq!((word(regs::OP), word(regs::BITS), word(regs::GROUP)), (regs::OP_MATVEC, 2, 64));
    assert_eq!((word(regs::ROWS), word(regs::COLS)), (16, 256));
    assert_eq!((word(regs::W), word(regs::W + 4)), (0x7000_0000, 0));
    assert_eq!((word(regs::Y), word(regs::Y + 4)), (0x7000_4000, 0));
    // Host copies land in the buffer file at the physical offset.
    let mut mem = UdmaBuf::open_in(&root.join("sys/u-dma-buf"), &root.join("dev"), "udmabuf0").unwrap();
    mem.write(base + 8, &[1, 2, 3]).unwrap();
    assert!(mem.write(base + (1 << 20) - 2, &[1, 2, 3]).is_err());
    assert!(mem.write(base - 1, &[1]).is_err());
    drop(mem);
    assert_eq!(&std::fs::read(root.join("dev/udmabuf0")).unwrap()[8..11], &[1, 2, 3]);
}

#[test]
fn uio_bad_accesses_are_ignored_and_counted() {
    let root = scratch("uio-bad");
    fake_board(&root);
    let mut bus = UioBus::map(&root.join("dev/uio1"), 0x1000).unwrap();
    bus.write32(0x1000, 1);
    bus.write32(0x13, 1);
    assert_eq!(bus.read32(0x2000), 0);
    assert_eq!(bus.bad_accesses(), 3);
    bus.write32(regs::ROWS, 77);
    assert_eq!(bus.read32(regs::ROWS), 77);
    // Bad arguments never touch the board's registers either.
    let mem = UdmaBuf::open_in(&root.join("sys/u-dma-buf"), &root.join("dev"), "udmabuf0").unwrap();
    let mut acc = Accel::new(BoardDevice { regs: bus, mem }, SimBus::params());
    let job = MatvecJob {
        format: TensorFormat::W4 { group: 32 },
        rows: 4,
        cols: 64,
        w: 0x1000,
        xq: 0x7000_0000,
        xs: 0x7000_1000,
        xsum: 0x7000_2000,
        y: 0x7000_3000,
    };
    assert_eq!(
        acc.matvec(&job),
        Err(DriverError::BadArgs(ArgError::OutOfMemory { buffer: "w", addr: 0x1000, len: 4 * 2 * 20 }))
    );
    assert_eq!(acc.device().read32(regs::CTRL), 0, "never started");
}

#[test]
fn export_writes_a_complete_hls_project() {
    for board in cycles::BOARDS {
        let dir = scratch(&format!("export-{}", board.name));
        let files = eddy_fpga::export::export(&board, &board.design, &dir).unwrap();
        assert!(files.len() >= 20, "{files:?}");
        let tcl = std::fs::read_to_string(dir.join("run_hls.tcl")).unwrap();
        for needle in
            ["set_top eddy_accel", board.part, "create_clock -period", "csynth_design", "csim_design"]
        {
            assert!(tcl.contains(needle), "{needle} missing:\n{tcl}");
        }
        assert!(tcl.contains(&format!("-DEDDY_PE={}", board.design.pe)));
        assert!(tcl.contains(&format!("-DEDDY_SIMD={}", board.design.simd)));
        let conf = HostConfig::parse(&std::fs::read_to_string(dir.join("eddy-host.conf")).unwrap()).unwrap();
        assert_eq!((conf.params.pe, conf.params.simd), (board.design.pe, board.design.simd));
        assert_eq!(conf.uio_name, "eddy_accel");
        assert_eq!(dir.join("connectivity.cfg").exists(), board.name == "u280");
        // The exported sources are the tested ones, and they compile with
        // the exported flags under g++ (synthesis needs the vendor tools).
        let hls = dir.join("hls");
        assert_eq!(
            std::fs::read(hls.join("mvau.h")).unwrap(),
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("hls/mvau.h")).unwrap()
        );
        let mut golden: Vec<PathBuf> =
            std::fs::read_dir(hls.join("golden")).unwrap().map(|e| e.unwrap().path()).collect();
        golden.sort();
        let exe = dir.join("tb");
        let flags: Vec<String> = tcl
            .lines()
            .find(|l| l.starts_with("add_files hls/eddy_accel.cpp"))
            .and_then(|l| l.split('"').nth(1))
            .unwrap()
            .split_whitespace()
            .map(|s| s.replace("-Ihls", &format!("-I{}", hls.display())))
            .collect();
        let ok = std::process::Command::new("g++")
            .args(&flags)
            .args(["-O1", "-ffp-contract=off", "-Wno-unknown-pragmas", "-Wno-unused-label"])
            .arg(hls.join("eddy_accel.cpp"))
            .arg(hls.join("tb/tb_accel.cpp"))
            .arg("-o")
            .arg(&exe)
            .status()
            .unwrap();
        assert!(ok.success());
        let out = std::process::Command::new(&exe).args(&golden).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn export_refuses_designs_that_cannot_synthesize() {
    let mut d = U280.design;
    d.simd = 8; // 32/8 = 4 steps per group < 8-cycle adder
    let err = eddy_fpga::export::export(&U280, &d, &scratch("bad")).unwrap_err();
    assert!(err.to_string().contains("SIMD 8 too wide"), "{err}");
    d.simd = 3;
    assert!(eddy_fpga::export::check_design(&d).is_err());
    d = KV260.design;
    d.pe = 0;
    assert!(eddy_fpga::export::check_design(&d).is_err());
}

#[test]
fn host_config_errors_are_typed() {
    assert!(matches!(HostConfig::parse("pe = 4\nsimd"), Err(BoardError::Config(_))));
    let e = HostConfig::parse("pe = 4\n").unwrap_err();
    assert!(e.to_string().contains("missing key `simd`"), "{e}");
}

#[test]
fn prediction_table_has_both_shapes_and_boards() {
    let t = cycles::prediction_table();
    for needle in ["Mamba-130M", "Mamba-2.8B", "u280", "kv260", "AccLLM", "LightMamba"] {
        assert!(t.contains(needle), "{needle}:\n{t}");
    }
    println!("{t}");
    // A memory-bound decode cannot beat the weight stream.
    for b in cycles::BOARDS {
        let p = cycles::predict_token(&b.design, &b, &cycles::MAMBA_2_8B);
        let bw = cycles::weight_bytes_per_cycle(&b.design, &b) * b.design.clock_mhz * 1e6;
        assert!(p.kernel_tok_s <= bw / p.weight_bytes as f64 * 1.0001, "{}", b.name);
        assert!(p.tok_s < p.kernel_tok_s);
    }
}
