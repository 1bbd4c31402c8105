// eddy FPGA accelerator: the small set of HLS building blocks the kernels use.
//
// Written for eddy (no vendor code). Under Vitis HLS synthesis
// (__SYNTHESIS__ defined) the stream type maps to the tool's own stream;
// everywhere else (g++ C-simulation, Vitis csim) it is a plain FIFO.
// `#pragma HLS ...` lines are ignored by g++ (-Wno-unknown-pragmas).
#ifndef EDDY_HLS_H
#define EDDY_HLS_H

#include <cstddef>
#include <cstdint>
#include <cstring>

#ifdef __SYNTHESIS__
#include <hls_stream.h>
namespace eddy_hls {
template <class T>
using stream = hls::stream<T>;
}
#else
#include <atomic>
#include <deque>
namespace eddy_hls {

/// Unbounded FIFO with the read/write/empty interface of an HLS stream.
/// C-simulation runs dataflow processes one after another, so the FIFO
/// holds a whole tile between producer and consumer. Reading an empty
/// stream is a design error: it returns a zero value and counts the
/// underflow so testbenches can fail on it (no abort inside a library).
template <class T>
class stream {
 public:
  void write(const T& v) { q_.push_back(v); }
  T read() {
    if (q_.empty()) {
      underflows()++;
      return T{};
    }
    T v = q_.front();
    q_.pop_front();
    return v;
  }
  bool empty() const { return q_.empty(); }
  std::size_t size() const { return q_.size(); }
  /// Underflows seen by any stream of this element type since start.
  static std::atomic<unsigned long>& underflows() {
    static std::atomic<unsigned long> n{0};
    return n;
  }

 private:
  std::deque<T> q_;
};

}  // namespace eddy_hls
#endif

namespace eddy_hls {

/// Bit-cast between same-sized types (synthesizes to wires).
template <class To, class From>
inline To bit_cast(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}

/// IEEE binary16 -> binary32, exact for every input (integer logic only).
/// NaNs come out quiet with the payload shifted up, as a hardware
/// conversion gives.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal: value = mant * 2^-24; normalize (at most 10 shifts).
      uint32_t e = 0;
      for (int i = 0; i < 10 && (mant & 0x400u) == 0; ++i) {
#pragma HLS UNROLL
        mant <<= 1;
        ++e;
      }
      bits = sign | ((113u - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant ? (0x400000u | (mant << 13)) : 0u);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return bit_cast<float>(bits);
}

/// Little-endian loads from a byte-addressed AXI master port.
inline uint16_t load_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}

}  // namespace eddy_hls

#endif  // EDDY_HLS_H
