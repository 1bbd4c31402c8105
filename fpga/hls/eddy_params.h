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
#define EDDY_SIMD 32
#endif

/// Largest input length (columns) the on-chip activation buffer holds.
#ifndef EDDY_MAX_COLS
#define EDDY_MAX_COLS 8192
#endif

/// Largest SSM state size per channel the scan unit holds on chip.
#ifndef EDDY_MAX_DSTATE
#define EDDY_MAX_DSTATE 64
#endif

/// Smallest weight group (the format's); activation scales per group.
#define EDDY_MIN_GROUP 32
#define EDDY_MAX_GROUP 256

static_assert(EDDY_PE >= 1 && EDDY_PE <= 64, "EDDY_PE must be in 1..=64");
static_assert(EDDY_SIMD >= 1 && EDDY_SIMD <= 32 && (32 % EDDY_SIMD) == 0,
              "EDDY_SIMD must divide the smallest group (32)");
static_assert(EDDY_MAX_COLS % EDDY_MAX_GROUP == 0, "EDDY_MAX_COLS must be a multiple of 256");

#endif  // EDDY_PARAMS_H
