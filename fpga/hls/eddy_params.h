// Compile-time parameters of the eddy accelerator. Override with -D on the
// g++ command line or with `eddy fpga export` (which writes them into the
// Vitis HLS project's cflags).
#ifndef EDDY_PARAMS_H
#define EDDY_PARAMS_H

/// Processing elements: weight rows computed in parallel.
#ifndef EDDY_PE
#define EDDY_PE 8
#endif

/// SIMD lanes: weights per row multiplied per cycle by each PE.
#ifndef EDDY_SIMD
#define EDDY_SIMD 4
#endif

/// Largest input length (columns) the on-chip activation buffer holds.
#ifndef EDDY_MAX_COLS
#define EDDY_MAX_COLS 8192
#endif

/// Largest SSM state size per channel the scan unit holds on chip.
#ifndef EDDY_MAX_DSTATE
#define EDDY_MAX_DSTATE 64
#endif

/// Largest channel count (d_inner) the scan unit's on-chip buffers hold.
#ifndef EDDY_MAX_CHANNELS
#define EDDY_MAX_CHANNELS 8192
#endif

/// Channels the scan unit updates side by side.
#ifndef EDDY_SCAN_LANES
#define EDDY_SCAN_LANES 8
#endif

/// Smallest weight group (the format's); activation scales per group.
#define EDDY_MIN_GROUP 32
#define EDDY_MAX_GROUP 256

/// Latency in cycles of the f32 adder that accumulates a row's groups. The
/// matrix-vector loop updates a row's sum once per group/EDDY_SIMD
/// iterations and tells HLS the recurrence is that far apart, so hardware
/// needs EDDY_MIN_GROUP / EDDY_SIMD >= EDDY_FADD_LATENCY (checked when
/// synthesizing; C-simulation, being sequential, accepts any SIMD).
#ifndef EDDY_FADD_LATENCY
#define EDDY_FADD_LATENCY 8
#endif

static_assert(EDDY_PE >= 1 && EDDY_PE <= 256, "EDDY_PE must be in 1..=256");
#ifdef __SYNTHESIS__
static_assert(EDDY_MIN_GROUP / EDDY_SIMD >= EDDY_FADD_LATENCY,
              "EDDY_SIMD too wide: a group's steps must cover the f32 adder latency");
#endif
static_assert(EDDY_SIMD >= 1 && EDDY_SIMD <= 32 && (32 % EDDY_SIMD) == 0,
              "EDDY_SIMD must divide the smallest group (32)");
static_assert(EDDY_MAX_COLS % EDDY_MAX_GROUP == 0, "EDDY_MAX_COLS must be a multiple of 256");

#endif  // EDDY_PARAMS_H
