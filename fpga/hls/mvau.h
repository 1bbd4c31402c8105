// Matrix-vector unit for eddy's packed group formats (W2/W4/W8 weights x
// int8 activations), FINN-MVAU style: EDDY_PE rows in parallel, EDDY_SIMD
// weights per row per cycle.
//
// Weight layout (eddy_quant::block): a row is cols/group groups; a group is
// [f16 scale, f16 min, group*bits/8 bytes of codes], codes little end
// first. For row r and activation group g (scale s_g, code sum sum_g):
//   acc = sum_i code_i * q_i            (exact, int32)
//   y_r += s_g * (scale * acc + min * sum_g)   (f32, groups in order)
// The float operations and their order are exactly the CPU reference's, so
// results are bit-identical (compile without FMA contraction).
#ifndef EDDY_MVAU_H
#define EDDY_MVAU_H

#include "eddy_hls.h"
#include "eddy_params.h"

namespace eddy_kern {

/// One group's headers for the PE rows of a tile.
struct GroupHead {
  float scale[EDDY_PE];
  float min[EDDY_PE];
};

/// EDDY_SIMD unpacked codes for each of the EDDY_PE rows.
struct LaneCodes {
  uint8_t code[EDDY_PE][EDDY_SIMD];
};

/// Geometry of one matrix-vector product, checked by `mvau_check`.
struct MvauShape {
  uint32_t bits;        // 2, 4 or 8
  uint32_t group;       // 32, 64, 128 or 256
  uint32_t rows;        // >= 1
  uint32_t cols;        // multiple of group, <= EDDY_MAX_COLS
  uint32_t groups;      // cols / group
  uint32_t group_bytes; // 4 + group * bits / 8
  uint32_t row_bytes;   // groups * group_bytes
};

/// Status codes the kernel reports (REGISTERS.md, STATUS register).
enum Status : uint32_t {
  kOk = 0,
  kBadBits = 1,
  kBadGroup = 2,
  kBadCols = 3,
  kTooManyCols = 4,
  kBadRows = 5,
  kBadOp = 6,
  kBadState = 7,
  kBusError = 8,
};

/// Validate arguments; fills `shape` when they are usable.
inline uint32_t mvau_check(uint32_t bits, uint32_t group, uint32_t rows, uint32_t cols, MvauShape* shape) {
  if (bits != 2 && bits != 4 && bits != 8) return kBadBits;
  if (group != 32 && group != 64 && group != 128 && group != 256) return kBadGroup;
  if (cols == 0 || cols % group != 0) return kBadCols;
  if (cols > EDDY_MAX_COLS) return kTooManyCols;
  if (rows == 0) return kBadRows;
  shape->bits = bits;
  shape->group = group;
  shape->rows = rows;
  shape->cols = cols;
  shape->groups = cols / group;
  shape->group_bytes = 4 + group * bits / 8;
  shape->row_bytes = shape->groups * shape->group_bytes;
  return kOk;
}

/// Bytes one row can take: W8 with groups of 32 (36 bytes per 32 weights).
#define EDDY_MAX_ROW_BYTES ((EDDY_MAX_COLS / EDDY_MIN_GROUP) * (4 + EDDY_MIN_GROUP))

/// Bytes the reader moves per burst beat (a 512-bit AXI port).
#ifndef EDDY_PORT_BYTES
#define EDDY_PORT_BYTES 64
#endif

/// Reader: loads the tile's rows [row0, row0 + EDDY_PE) into on-chip
/// buffers, then streams their headers and unpacked codes group by group.
/// The rows of a tile are adjacent in eddy's row-major layout, so the load
/// is one contiguous burst of EDDY_PORT_BYTES per beat. Rows past the end
/// read as zero.
inline void mvau_read(const uint8_t* w, const MvauShape& s, uint32_t row0,
                      eddy_hls::stream<GroupHead>& heads, eddy_hls::stream<LaneCodes>& codes) {
  uint8_t tile[EDDY_PE][EDDY_MAX_ROW_BYTES];
#pragma HLS ARRAY_PARTITION variable = tile complete dim = 1
#pragma HLS BIND_STORAGE variable = tile type = ram_2p impl = uram
  const uint32_t nrows = s.rows - row0 < EDDY_PE ? s.rows - row0 : EDDY_PE;
  const uint64_t tile_bytes = static_cast<uint64_t>(nrows) * s.row_bytes;
  const uint8_t* src = w + static_cast<uint64_t>(row0) * s.row_bytes;
  uint32_t pe_at = 0, off = 0;
burst:
  for (uint64_t i = 0; i < tile_bytes; i += EDDY_PORT_BYTES) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1152
    for (uint32_t k = 0; k < EDDY_PORT_BYTES; ++k) {
#pragma HLS UNROLL
      if (i + k < tile_bytes) {
        tile[pe_at][off] = src[i + k];
        if (++off == s.row_bytes) {
          off = 0;
          ++pe_at;
        }
      }
    }
  }
  const uint32_t steps = s.group / EDDY_SIMD;
  const uint32_t per_byte = 8 / s.bits;
  const uint8_t mask = static_cast<uint8_t>((1u << s.bits) - 1u);
groups:
  for (uint32_t g = 0; g < s.groups; ++g) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
    GroupHead h;
    const uint32_t gb = g * s.group_bytes;
    for (uint32_t pe = 0; pe < EDDY_PE; ++pe) {
#pragma HLS UNROLL
      if (pe < nrows) {
        h.scale[pe] = eddy_hls::f16_to_f32(eddy_hls::load_u16(&tile[pe][gb]));
        h.min[pe] = eddy_hls::f16_to_f32(eddy_hls::load_u16(&tile[pe][gb + 2]));
      } else {
        h.scale[pe] = 0.0f;
        h.min[pe] = 0.0f;
      }
    }
    heads.write(h);
  lanes:
    for (uint32_t step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
      LaneCodes lc;
      for (uint32_t pe = 0; pe < EDDY_PE; ++pe) {
#pragma HLS UNROLL
        for (uint32_t l = 0; l < EDDY_SIMD; ++l) {
#pragma HLS UNROLL
          const uint32_t i = step * EDDY_SIMD + l;
          uint8_t v = 0;
          if (pe < nrows) {
            const uint8_t byte = tile[pe][gb + 4 + i / per_byte];
            v = static_cast<uint8_t>((byte >> ((i % per_byte) * s.bits)) & mask);
          }
          lc.code[pe][l] = v;
        }
      }
      codes.write(lc);
    }
  }
}

/// Compute: EDDY_PE x EDDY_SIMD multiply-accumulates per cycle into exact
/// int32 group sums, then one f32 update per row and group. One pipelined
/// loop over (group, step): the f32 update of a group happens in the
/// iteration of its last step, so the recurrence on `result` spans
/// group/EDDY_SIMD iterations, which eddy_params.h requires to cover the
/// f32 adder's latency in synthesis (the DEPENDENCE pragma states it).
/// Writes the tile's rows of y. Returns the MAC pipeline iterations.
inline uint64_t mvau_compute(const MvauShape& s, uint32_t row0, const int8_t xbuf[EDDY_MAX_COLS],
                             const float xscale[EDDY_MAX_COLS / EDDY_MIN_GROUP],
                             const int32_t xsum[EDDY_MAX_COLS / EDDY_MIN_GROUP],
                             eddy_hls::stream<GroupHead>& heads, eddy_hls::stream<LaneCodes>& codes, float* y) {
  const uint32_t steps = s.group / EDDY_SIMD;
  float result[EDDY_PE];
  int32_t acc[EDDY_PE];
#pragma HLS ARRAY_PARTITION variable = result complete
#pragma HLS ARRAY_PARTITION variable = acc complete
  for (uint32_t pe = 0; pe < EDDY_PE; ++pe) {
#pragma HLS UNROLL
    result[pe] = 0.0f;
    acc[pe] = 0;
  }
  GroupHead h = {};
  uint32_t g = 0, step = 0;
  const uint64_t total = static_cast<uint64_t>(s.groups) * steps;
macs:
  for (uint64_t it = 0; it < total; ++it) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
#pragma HLS DEPENDENCE variable = result inter false
    if (step == 0) h = heads.read();
    const LaneCodes lc = codes.read();
    const uint32_t base = g * s.group + step * EDDY_SIMD;
    const bool last = step + 1 == steps;
    const float sg = xscale[g];
    const float sumg = static_cast<float>(xsum[g]);
    for (uint32_t pe = 0; pe < EDDY_PE; ++pe) {
#pragma HLS UNROLL
      int32_t partial = 0;
      for (uint32_t l = 0; l < EDDY_SIMD; ++l) {
#pragma HLS UNROLL
        partial += static_cast<int32_t>(lc.code[pe][l]) * static_cast<int32_t>(xbuf[base + l]);
      }
      const int32_t a = acc[pe] + partial;
      if (last) {
        result[pe] += sg * (h.scale[pe] * static_cast<float>(a) + h.min[pe] * sumg);
        acc[pe] = 0;
      } else {
        acc[pe] = a;
      }
    }
    if (last) {
      step = 0;
      ++g;
    } else {
      ++step;
    }
  }
  for (uint32_t pe = 0; pe < EDDY_PE; ++pe) {
#pragma HLS PIPELINE II = 1
    if (row0 + pe < s.rows) y[row0 + pe] = result[pe];
  }
  return total;
}

/// y = W x for a whole matrix: activations loaded on chip once, then the
/// rows in tiles of EDDY_PE, each tile a reader -> compute dataflow.
/// Returns the MAC pipeline iterations (rows/PE * cols/SIMD).
inline uint64_t mvau(const uint8_t* w, const int8_t* xq, const float* xs, const int32_t* xsum_in, float* y,
                     const MvauShape& s) {
  // On-chip buffers (BRAM); not static, so concurrent C-simulations of
  // several kernels stay independent.
  int8_t xbuf[EDDY_MAX_COLS];
#pragma HLS ARRAY_PARTITION variable = xbuf cyclic factor = EDDY_SIMD
  float xscale[EDDY_MAX_COLS / EDDY_MIN_GROUP];
  int32_t xsum[EDDY_MAX_COLS / EDDY_MIN_GROUP];
load_x:
  for (uint32_t i = 0; i < s.cols; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 32 max = 8192
    xbuf[i] = xq[i];
  }
load_scales:
  for (uint32_t g = 0; g < s.groups; ++g) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
    xscale[g] = xs[g];
    xsum[g] = xsum_in[g];
  }
  uint64_t iters = 0;
tiles:
  for (uint32_t row0 = 0; row0 < s.rows; row0 += EDDY_PE) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 8192
#pragma HLS DATAFLOW
    eddy_hls::stream<GroupHead> heads;
    eddy_hls::stream<LaneCodes> codes;
#pragma HLS STREAM variable = codes depth = 64
    mvau_read(w, s, row0, heads, codes);
    iters += mvau_compute(s, row0, xbuf, xscale, xsum, heads, codes, y);
  }
  return iters;
}

}  // namespace eddy_kern

#endif  // EDDY_MVAU_H
