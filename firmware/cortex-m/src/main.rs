//! eddy demo firmware: a quantized model embedded in flash and run in place.
//!
//! The `.eddy` file is `include_bytes!`-ed into a 64-byte aligned static in
//! its own linker section (flash on the M4 board, QSPI flash on the M55
//! board, see `memory-*.x`), validated with [`eddy::Model::from_bytes`] and
//! used without copying. The session's state and scratch are static
//! buffers whose sizes `build.rs` got from the runtime itself. There is no
//! heap. The firmware prefills the prompt, generates tokens greedily, and
//! logs instruction counts, the stack high-water mark and, on its last
//! line, the generated token ids (`demo.rs`). A damaged model is reported
//! with an error code and message; the exit status is a [`Status`].
//!
//! The demo reaches the board only through traits (`hal.rs`): an
//! `embedded_io::Write` serial and a [`hal::Counter`]; `qemu.rs` is the
//! QEMU board. The log (`log.rs`) is text on that serial, or defmt frames
//! with the `defmt` feature.
#![no_std]
#![no_main]

mod demo;
mod hal;
mod log;
mod qemu;
mod stack;
mod status;

/// Constants written by `build.rs` from the model and the environment.
mod build {
    include!(concat!(env!("OUT_DIR"), "/build_consts.rs"));
}

#[cfg(feature = "defmt")]
use defmt_semihosting as _;

use build::{MODEL_LEN, SCRATCH_BYTES, STATE_BYTES};
use cortex_m_rt::entry;

/// 64-byte aligned storage, as `.eddy` tensors are used in place.
#[repr(C, align(64))]
struct Aligned64<T>(T);

/// The model file, in flash.
#[link_section = ".model"]
static MODEL: Aligned64<[u8; MODEL_LEN]> =
    Aligned64(*include_bytes!(concat!(env!("OUT_DIR"), "/model.eddy")));

/// Word-aligned static buffer for the session (it is used as `f32`s).
#[repr(C, align(8))]
struct Buffer<const N: usize>([u8; N]);

#[entry]
fn main() -> ! {
    // cortex-m-rt turns these into `&'static mut` used only here: the
    // session's memory, sized at build time from the model.
    static mut STATE: Buffer<STATE_BYTES> = Buffer([0; STATE_BYTES]);
    static mut SCRATCH: Buffer<SCRATCH_BYTES> = Buffer([0; SCRATCH_BYTES]);

    let mut board = match qemu::Board::take() {
        Ok(board) => board,
        Err(status) => qemu::exit(status),
    };
    // Through `black_box` the compiler cannot specialize the parser for the
    // bytes it sees at build time: the code validates whatever the flash
    // holds, as it would after the model is updated on its own.
    let bytes: &[u8] = core::hint::black_box(&MODEL.0);
    let status = demo::run(&mut board.serial, &mut board.counter, bytes, &mut STATE.0, &mut SCRATCH.0);
    qemu::exit(status)
}
