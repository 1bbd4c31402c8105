//! eddy demo firmware: a quantized model embedded in flash and run in place.
//!
//! The `.eddy` file is `include_bytes!`-ed into a 64-byte aligned static in
//! its own linker section (flash on the M4 board, QSPI flash on the M55
//! board, see `memory-*.x`), validated with [`eddy::Model::from_bytes`] and
//! used without copying. The session's state and scratch are static
//! buffers whose sizes `build.rs` got from the runtime itself. There is no
//! heap. The firmware prefills the prompt, generates tokens greedily, and
//! prints through semihosting: instruction counts from SysTick, the stack
//! high-water mark, and on its last line the generated token ids
//! (comma-separated, like `eddy run --ids`). A damaged model is reported
//! with an error code and message; the exit status is a [`Status`].
#![no_std]
#![no_main]

mod clock;
mod stack;
mod status;

/// Constants written by `build.rs` from the model and the environment.
mod build {
    include!(concat!(env!("OUT_DIR"), "/build_consts.rs"));
}

use build::{
    CORRUPT_AT, GENERATE, KERNELS, MODEL_LEN, MODEL_NAME, PROMPT, SCRATCH_BYTES, STATE_BYTES, VOCAB,
};
use clock::Clock;
use core::fmt::Write as _;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::hprintln;
use eddy::{Model, ModelError, Session, SessionError};
use status::{exit, Status};

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

    let status = match cortex_m::Peripherals::take() {
        Some(p) => run(Clock::start(p.SYST), &mut STATE.0, &mut SCRATCH.0),
        None => Status::NoClock,
    };
    exit(status)
}

/// Print an error with its code; returns the status.
fn fail(status: Status, what: &str, message: &dyn core::fmt::Display) -> Status {
    hprintln!("error {}: {}: {}", status as u32, what, message);
    status
}

fn model_status(e: &ModelError) -> Status {
    match e {
        ModelError::File(_) => Status::BadModelFile,
        _ => Status::BadModel,
    }
}

fn session_status(e: &SessionError) -> Status {
    match e {
        SessionError::TokenOutOfRange { .. } | SessionError::EmptyPrompt => Status::BadPrompt,
        _ => Status::BadBuffers,
    }
}

/// Index of the largest logit, the first on ties (as the host's greedy
/// sampler does).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn run(mut clock: Clock, state: &mut [u8], scratch: &mut [u8]) -> Status {
    // Through `black_box` the compiler cannot specialize the parser for the
    // bytes it sees at build time: the code validates whatever the flash
    // holds, as it would after the model is updated on its own.
    let bytes: &[u8] = core::hint::black_box(&MODEL.0);
    hprintln!(
        "eddy firmware: model {} ({} bytes at {:#010x}, in place)",
        MODEL_NAME,
        bytes.len(),
        bytes.as_ptr() as usize
    );
    if let Some(at) = CORRUPT_AT {
        hprintln!("note: byte {} of the embedded model was flipped on purpose (EDDY_FW_CORRUPT_AT)", at);
    }
    let t0 = clock.ticks();
    let mut model = match Model::from_bytes(bytes) {
        Ok(m) => m,
        Err(e) => return fail(model_status(&e), "model rejected", &e),
    };
    let t_load = clock.ticks() - t0;
    if let Some(name) = KERNELS {
        match eddy_kernels::by_name(name) {
            Some(k) => model.set_kernels(k),
            None => {
                let why = format_args!("kernel set `{name}` is not compiled in for this target");
                return fail(Status::NoSuchKernels, "EDDY_FW_KERNELS", &why);
            }
        }
    }
    hprintln!(
        "model: vocab {}, kernels {}, state {} bytes, scratch {} bytes (static)",
        VOCAB,
        model.kernels().name,
        STATE_BYTES,
        SCRATCH_BYTES
    );
    let mut session = match Session::new(&model, state, scratch) {
        Ok(s) => s,
        Err(e) => return fail(session_status(&e), "session", &e),
    };
    if clock.calibrate() == 0 {
        return fail(Status::NoClock, "clock", &"SysTick does not advance; run QEMU with -icount shift=0");
    }
    hprintln!("load + checksum: {} instructions", clock.instructions(t_load));

    let t0 = clock.ticks();
    let mut next = match session.prefill(PROMPT) {
        Ok(logits) => argmax(logits),
        Err(e) => return fail(session_status(&e), "prompt", &e),
    };
    let t_prefill = clock.instructions(clock.ticks() - t0);
    hprintln!(
        "prefill: {} tokens, {} instructions ({} per token)",
        PROMPT.len(),
        t_prefill,
        t_prefill / PROMPT.len() as u64
    );

    let mut generated: heapless::Vec<u32, GENERATE> = heapless::Vec::new();
    let t0 = clock.ticks();
    for _ in 0..GENERATE {
        // Capacity is GENERATE, so the push cannot fail.
        let _ = generated.push(next);
        if generated.is_full() {
            break;
        }
        next = match session.step(next) {
            Ok(logits) => argmax(logits),
            Err(e) => return fail(session_status(&e), "step", &e),
        };
    }
    let steps = (generated.len() - 1).max(1) as u64;
    let t_decode = clock.instructions(clock.ticks() - t0);
    hprintln!(
        "decode: {} tokens, {} instructions ({} per token, {} steps)",
        generated.len(),
        t_decode,
        t_decode / steps,
        generated.len() - 1
    );

    // The last line: generated ids, comma-separated (`eddy run --ids`).
    let mut line: heapless::String<{ GENERATE * 11 }> = heapless::String::new();
    for (i, t) in generated.iter().enumerate() {
        let _ = write!(line, "{}{}", if i == 0 { "" } else { "," }, t);
    }
    let stack = stack::high_water();
    hprintln!("stack: {} bytes used (high-water mark) of {} painted", stack.used, stack.painted);
    hprintln!("{}", line.as_str());
    Status::Ok
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("error {}: HardFault at pc {:#010x}", Status::HardFault as u32, frame.pc());
    exit(Status::HardFault)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("error {}: panic: {}", Status::Panic as u32, info);
    exit(Status::Panic)
}
