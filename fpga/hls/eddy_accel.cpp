// Top function of the eddy accelerator: AXI-Lite control, AXI master data.
#include "eddy_accel.h"

#include "mvau.h"
#include "scan.h"

void eddy_accel(uint32_t op, uint32_t bits, uint32_t group, uint32_t rows, uint32_t cols, const uint8_t* w,
                const int8_t* xq, const float* xs, const int32_t* xsum, float* y, const float* a, const float* chp,
                const float* bc, float* h, uint32_t* status, uint32_t* iters) {
#pragma HLS INTERFACE mode = s_axilite port = return bundle = control
#pragma HLS INTERFACE mode = s_axilite port = op bundle = control
#pragma HLS INTERFACE mode = s_axilite port = bits bundle = control
#pragma HLS INTERFACE mode = s_axilite port = group bundle = control
#pragma HLS INTERFACE mode = s_axilite port = rows bundle = control
#pragma HLS INTERFACE mode = s_axilite port = cols bundle = control
#pragma HLS INTERFACE mode = m_axi port = w offset = slave bundle = gmem_w max_read_burst_length = 256
#pragma HLS INTERFACE mode = m_axi port = xq offset = slave bundle = gmem_x
#pragma HLS INTERFACE mode = m_axi port = xs offset = slave bundle = gmem_x
#pragma HLS INTERFACE mode = m_axi port = xsum offset = slave bundle = gmem_x
#pragma HLS INTERFACE mode = m_axi port = y offset = slave bundle = gmem_y
#pragma HLS INTERFACE mode = m_axi port = a offset = slave bundle = gmem_s
#pragma HLS INTERFACE mode = m_axi port = chp offset = slave bundle = gmem_x
#pragma HLS INTERFACE mode = m_axi port = bc offset = slave bundle = gmem_x
#pragma HLS INTERFACE mode = m_axi port = h offset = slave bundle = gmem_s
#pragma HLS INTERFACE mode = s_axilite port = status bundle = control
#pragma HLS INTERFACE mode = s_axilite port = iters bundle = control
  uint32_t st = eddy_kern::kOk;
  uint64_t n = 0;
  if (op == kOpMatvec) {
    eddy_kern::MvauShape shape;
    st = eddy_kern::mvau_check(bits, group, rows, cols, &shape);
    if (st == eddy_kern::kOk) n = eddy_kern::mvau(w, xq, xs, xsum, y, shape);
  } else if (op == kOpScan) {
    st = eddy_kern::scan_check(rows, cols);
    if (st == eddy_kern::kOk) n = eddy_kern::scan(rows, cols, a, chp, bc, h, y);
  } else {
    st = eddy_kern::kBadOp;
  }
  *status = st;
  *iters = static_cast<uint32_t>(n > 0xffffffffu ? 0xffffffffu : n);
}
