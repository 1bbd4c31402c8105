// Top function of the eddy accelerator (register map: fpga/REGISTERS.md).
#ifndef EDDY_ACCEL_H
#define EDDY_ACCEL_H

#include "eddy_hls.h"
#include "eddy_params.h"

/// Operation selected by the OP register.
enum EddyOp : uint32_t {
  kOpMatvec = 0,  // y = W x, W in W2/W4/W8 groups, x int8 per group
  kOpScan = 1,    // one token of the Mamba-1 selective scan
};

/// One call = one operation. Every argument is an AXI-Lite register; the
/// pointers are 64-bit bus addresses of AXI master ports. `status` and
/// `iters` are outputs read back after done.
void eddy_accel(uint32_t op, uint32_t bits, uint32_t group, uint32_t rows, uint32_t cols, const uint8_t* w,
                const int8_t* xq, const float* xs, const int32_t* xsum, float* y, const float* a, const float* chp,
                const float* bc, float* h, uint32_t* status, uint32_t* iters);

#endif  // EDDY_ACCEL_H
