//! Write the C-simulation golden vectors (`fpga/hls/golden/*.bin`) from the
//! Rust reference: `cargo run -p eddy-fpga --bin eddy-fpga-golden [DIR]`.

fn main() -> std::process::ExitCode {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hls/golden"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return std::process::ExitCode::FAILURE;
    }
    for (name, bytes) in eddy_fpga::golden::all_files() {
        let path = dir.join(&name);
        if let Err(e) = std::fs::write(&path, &bytes) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    std::process::ExitCode::SUCCESS
}
