// Selective-scan unit for Mamba-1: one token's state update and output for
// a tile of channels, in f32.
//
// Per channel c (state size ds):
//   delta = softplus(dt_c)
//   h_s   = exp(A_cs * delta) * h_s + delta * B_s * u_c
//   y_c   = (sum_s h_s * C_s + u_c * D_c) * silu(z_c)
// exp and silu use the same range reduction and polynomial as the CPU
// (kernels-simd/src/math.rs) with the same operation order, and the dot product
// uses the CPU's 8 partial sums, so those parts match the CPU bit for bit;
// log1p inside softplus is this unit's own approximation, the only source
// of difference (measured and bounded in fpga/README.md).
#ifndef EDDY_SCAN_H
#define EDDY_SCAN_H

#include "eddy_hls.h"
#include "eddy_params.h"

namespace eddy_kern {

/// e^x for f32: x = (8n + k) ln2/8 + r with |r| <= ln2/16, 2^(k/8) from an
/// 8-entry table, a degree-3 polynomial in r, 2^n added to the table
/// entry's exponent field. Same constants and order as the CPU's exp_fast
/// (kernels-simd/src/math.rs).
inline float exp_unit(float x) {
  static const uint32_t kExp2Eighths[8] = {0x3f800000u, 0x3f8b95c2u, 0x3f9837f0u, 0x3fa5fed7u,
                                           0x3fb504f3u, 0x3fc5672au, 0x3fd744fdu, 0x3feac0c7u};
  const float kLog2e8 = 11.54156f;
  const float kLn2Hi8 = 0.086639404f;
  const float kLn2Lo8 = 3.993273e-6f;
  const float kRound = 12582912.0f;  // 1.5 * 2^23
  const float kC2 = 0.5000645f;
  const float kC3 = 0.16666858f;
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float t = x * kLog2e8 + kRound;
  const float m = t - kRound;
  const float r = (x - m * kLn2Hi8) - m * kLn2Lo8;
  const float p = 1.0f + r * (1.0f + r * (kC2 + r * kC3));
  const uint32_t bits = eddy_hls::bit_cast<uint32_t>(t);
  const float scale = eddy_hls::bit_cast<float>(kExp2Eighths[bits & 7u] + ((bits << 20) & 0xff800000u));
  return p * scale;
}

/// ln(1 + v) for v >= 0: y = 1 + v rounded, corrected by (v - (y - 1)) / y;
/// ln y = k ln2 + ln m with m in [sqrt(1/2), sqrt(2)) from the exponent
/// field and ln m = 2 atanh(s), s = (m - 1)/(m + 1), odd series to s^9.
inline float log1p_unit(float v) {
  if (!(v >= 0.0f)) return v - v;  // NaN in, NaN out; negatives are not produced by exp
  if (v < 0.03125f) {
    // ln(1+v) = v - v^2/2 + v^3/3 - v^4/4; next term below 2e-7 relative.
    return v * (1.0f - v * (0.5f - v * (1.0f / 3.0f - v * 0.25f)));
  }
  const float y = 1.0f + v;
  const float corr = (v - (y - 1.0f)) / y;
  uint32_t bits = eddy_hls::bit_cast<uint32_t>(y);
  int32_t k = static_cast<int32_t>((bits >> 23) & 0xffu) - 127;
  bits = (bits & 0x007fffffu) | 0x3f800000u;  // m in [1, 2)
  float m = eddy_hls::bit_cast<float>(bits);
  if (m > 1.41421356f) {
    m *= 0.5f;
    k += 1;
  }
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  const float series = 1.0f + s2 * (1.0f / 3.0f + s2 * (1.0f / 5.0f + s2 * (1.0f / 7.0f + s2 * (1.0f / 9.0f))));
  const float ln_m = 2.0f * s * series;
  const float ln2 = 0.69314718055994530942f;
  return static_cast<float>(k) * ln2 + ln_m + corr;
}

/// softplus with PyTorch's threshold: x above 20 passes through.
inline float softplus_unit(float x) { return x > 20.0f ? x : log1p_unit(exp_unit(x)); }

/// silu(x) = x / (1 + e^-x), as the CPU computes it.
inline float silu_unit(float x) { return x / (1.0f + exp_unit(-x)); }

/// Check the scan's shape.
inline uint32_t scan_check(uint32_t channels, uint32_t d_state) {
  if (channels == 0 || channels > EDDY_MAX_CHANNELS) return 5;  // kBadRows
  if (d_state == 0 || d_state > EDDY_MAX_DSTATE) return 7;  // kBadState
  return 0;
}

/// One token of the selective scan over `channels` channels, in three
/// pipelined stages: per channel softplus (II=1 over channels); the state
/// update with EDDY_SCAN_LANES channels side by side (II=1 over states);
/// per channel output (II=1 over channels). Each channel's float
/// operations are the CPU's, in the CPU's order.
/// a: [channels * ds] f32; chp: [channels * 4] f32 (dt before softplus, u,
/// z, D); bc: [2 * ds] f32 (B then C); h: [channels * ds] f32 state, read
/// and written; y: [channels] f32. Returns the state-loop iterations
/// (ceil(channels / EDDY_SCAN_LANES) * ds).
inline uint64_t scan(uint32_t channels, uint32_t ds, const float* a, const float* chp, const float* bc, float* h,
                     float* y) {
  float bbuf[EDDY_MAX_DSTATE];
  float cbuf[EDDY_MAX_DSTATE];
  // Per-channel values between the stages (BRAM).
  float delta[EDDY_MAX_CHANNELS];
  float dot[EDDY_MAX_CHANNELS];
#pragma HLS ARRAY_PARTITION variable = delta cyclic factor = EDDY_SCAN_LANES
#pragma HLS ARRAY_PARTITION variable = dot cyclic factor = EDDY_SCAN_LANES
load_bc:
  for (uint32_t s = 0; s < ds; ++s) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 16 max = 64
    bbuf[s] = bc[s];
    cbuf[s] = bc[ds + s];
  }
deltas:
  for (uint32_t c = 0; c < channels; ++c) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 64 max = 8192
    delta[c] = softplus_unit(chp[4 * c + 0]);
  }
  uint64_t iters = 0;
tiles:
  for (uint32_t c0 = 0; c0 < channels; c0 += EDDY_SCAN_LANES) {
#pragma HLS LOOP_TRIPCOUNT min = 4 max = 512
    float lane[EDDY_SCAN_LANES][8];
#pragma HLS ARRAY_PARTITION variable = lane complete dim = 0
    float du[EDDY_SCAN_LANES];
    for (uint32_t l = 0; l < EDDY_SCAN_LANES; ++l) {
#pragma HLS UNROLL
      for (int k = 0; k < 8; ++k) lane[l][k] = 0.0f;
      du[l] = (c0 + l < channels) ? chp[4 * (c0 + l) + 1] : 0.0f;
    }
  states:
    for (uint32_t s = 0; s < ds; ++s) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 16 max = 64
      for (uint32_t l = 0; l < EDDY_SCAN_LANES; ++l) {
#pragma HLS UNROLL
        const uint32_t c = c0 + l;
        if (c < channels) {
          const uint64_t idx = static_cast<uint64_t>(c) * ds + s;
          const float d = delta[c];
          const float hv = exp_unit(a[idx] * d) * h[idx] + d * bbuf[s] * du[l];
          h[idx] = hv;
          lane[l][s % 8] += hv * cbuf[s];
        }
      }
      ++iters;
    }
    for (uint32_t l = 0; l < EDDY_SCAN_LANES; ++l) {
#pragma HLS UNROLL
      const float* p = lane[l];
      if (c0 + l < channels) dot[c0 + l] = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
    }
  }
outputs:
  for (uint32_t c = 0; c < channels; ++c) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 64 max = 8192
    const float u = chp[4 * c + 1];
    const float z = chp[4 * c + 2];
    const float d = chp[4 * c + 3];
    y[c] = (dot[c] + u * d) * silu_unit(z);
  }
  return iters;
}

}  // namespace eddy_kern

#endif  // EDDY_SCAN_H
