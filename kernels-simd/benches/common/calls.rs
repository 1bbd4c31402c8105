//! The command-line frame of the call-counting examples (`matvec_calls`,
//! `vector_calls`, `kv_attention`): they run a kernel CALLS times for
//! instruction counting under QEMU and print a checksum of the output.

use eddy_kernels::{compiled, Kernels};
use std::process::ExitCode;

/// Runs `run` on the command line's arguments: prints `checksum {sum}`,
/// or the error and `usage` (exit status 2).
pub fn checksum_main(
    name: &str,
    usage: &str,
    run: impl FnOnce(&[String]) -> Result<f64, String>,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(sum) => {
            println!("checksum {sum}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("{name}: {msg}");
            eprintln!("usage: {name} {usage}");
            ExitCode::from(2)
        }
    }
}

/// The compiled kernel set `name` that `usable` accepts, or an error
/// listing the compiled sets (`what`: why a compiled set is refused).
pub fn kernel_set(
    name: &str,
    what: &str,
    usable: impl Fn(&Kernels) -> bool,
) -> Result<&'static Kernels, String> {
    compiled().iter().copied().find(|k| k.name == name && usable(k)).ok_or_else(|| {
        let names: Vec<&str> = compiled().iter().map(|k| k.name).collect();
        format!("kernel set `{name}` is not {what} (compiled: {})", names.join(", "))
    })
}
