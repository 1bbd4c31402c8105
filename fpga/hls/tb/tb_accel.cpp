// C-simulation testbench: runs the eddy_accel top function on golden
// vectors written by the Rust reference (fpga/src/golden.rs) and compares.
// Matvec outputs must match bit for bit (any NaN matches any NaN); scan
// outputs must lie within the bound stored in the file.
//
//   g++ -std=c++17 -O2 -ffp-contract=off -Ihls hls/eddy_accel.cpp hls/tb/tb_accel.cpp -o tb
//   ./tb hls/golden/*.bin
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../eddy_accel.h"
#include "../mvau.h"

namespace {

struct Reader {
  std::vector<uint8_t> bytes;
  size_t pos = 0;
  bool ok = true;
  const uint8_t* take(size_t n) {
    if (!ok || bytes.size() - pos < n) {
      ok = false;
      return nullptr;
    }
    const uint8_t* p = bytes.data() + pos;
    pos += n;
    return p;
  }
  uint32_t u32() {
    const uint8_t* p = take(4);
    return p ? static_cast<uint32_t>(p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24)) : 0;
  }
  template <class T>
  std::vector<T> array(size_t n) {
    std::vector<T> v(n);
    const uint8_t* p = take(n * sizeof(T));
    if (p) std::memcpy(v.data(), p, n * sizeof(T));
    return v;
  }
};

bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

// Returns an empty string on success, else what failed.
std::string run_matvec(Reader& r) {
  const uint32_t bits = r.u32(), group = r.u32(), rows = r.u32(), cols = r.u32();
  if (!r.ok || bits == 0 || group == 0) return "truncated header";
  const size_t groups = cols / group, row_bytes = groups * (4 + group * bits / 8);
  auto w = r.array<uint8_t>(rows * row_bytes);
  auto xq = r.array<int8_t>(cols);
  auto xs = r.array<float>(groups);
  auto xsum = r.array<int32_t>(groups);
  auto want = r.array<float>(rows);
  if (!r.ok || r.pos != r.bytes.size()) return "file length does not match its header";
  std::vector<float> y(rows, -1.0f);
  uint32_t status = 99, iters = 0;
  eddy_accel(kOpMatvec, bits, group, rows, cols, w.data(), xq.data(), xs.data(), xsum.data(), y.data(), nullptr,
             nullptr, nullptr, nullptr, &status, &iters);
  if (status != 0) return "status " + std::to_string(status);
  const uint64_t expect_iters = static_cast<uint64_t>((rows + EDDY_PE - 1) / EDDY_PE) * (cols / EDDY_SIMD);
  if (iters != expect_iters)
    return "iters " + std::to_string(iters) + " != " + std::to_string(expect_iters);
  for (uint32_t i = 0; i < rows; ++i) {
    if (!same_bits(y[i], want[i])) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "row %u: got %.9g want %.9g", i, y[i], want[i]);
      return buf;
    }
  }
  return "";
}

std::string run_scan(Reader& r, double* worst) {
  const uint32_t ch = r.u32(), ds = r.u32();
  float abs_bound, rel_bound;
  const uint8_t* p = r.take(8);
  if (!r.ok || !p) return "truncated header";
  std::memcpy(&abs_bound, p, 4);
  std::memcpy(&rel_bound, p + 4, 4);
  const size_t cells = static_cast<size_t>(ch) * ds;
  auto a = r.array<float>(cells);
  auto chp = r.array<float>(ch * 4);
  auto bc = r.array<float>(2 * ds);
  auto h = r.array<float>(cells);
  auto h_want = r.array<float>(cells);
  auto y_want = r.array<float>(ch);
  auto h_mag = r.array<float>(cells);
  auto y_mag = r.array<float>(ch);
  if (!r.ok || r.pos != r.bytes.size()) return "file length does not match its header";
  std::vector<float> y(ch, -1.0f);
  uint32_t status = 99, iters = 0;
  eddy_accel(kOpScan, 0, 0, ch, ds, nullptr, nullptr, nullptr, nullptr, y.data(), a.data(), chp.data(), bc.data(),
             h.data(), &status, &iters);
  if (status != 0) return "status " + std::to_string(status);
  const uint64_t expect_iters = static_cast<uint64_t>((ch + EDDY_SCAN_LANES - 1) / EDDY_SCAN_LANES) * ds;
  if (iters != expect_iters) return "iters " + std::to_string(iters) + " != " + std::to_string(expect_iters);
  // Bound relative to the size of the terms each value is made of (the
  // update can cancel, so relative to the result no bound holds).
  auto check = [&](const char* what, const std::vector<float>& got, const std::vector<float>& want,
                   const std::vector<float>& mag) -> std::string {
    for (size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
      const double bound = abs_bound + rel_bound * static_cast<double>(mag[i]);
      if (err / bound > *worst) *worst = err / bound;
      if (!(err <= bound)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s[%zu]: got %.9g want %.9g (err %.3g > %.3g)", what, i, got[i], want[i],
                      err, bound);
        return buf;
      }
    }
    return "";
  };
  std::string e = check("h", h, h_want, h_mag);
  return e.empty() ? check("y", y, y_want, y_mag) : e;
}

// Argument checks: bad shapes are reported through status without any
// memory access (null pointers would crash otherwise).
int bad_args() {
  int failed = 0;
  struct Case {
    uint32_t op, bits, group, rows, cols, want;
  } cases[] = {
      {kOpMatvec, 3, 64, 4, 64, 1},   {kOpMatvec, 2, 48, 4, 96, 2},  {kOpMatvec, 2, 64, 4, 100, 3},
      {kOpMatvec, 2, 64, 4, 0, 3},    {kOpMatvec, 8, 256, 4, EDDY_MAX_COLS + 256, 4},
      {kOpMatvec, 4, 32, 0, 64, 5},   {7, 2, 64, 4, 64, 6},          {kOpScan, 0, 0, 16, 0, 7},
      {kOpScan, 0, 0, 16, EDDY_MAX_DSTATE + 1, 7},                   {kOpScan, 0, 0, 0, 16, 5}, {kOpScan, 0, 0, EDDY_MAX_CHANNELS + 1, 16, 5},
  };
  for (const Case& c : cases) {
    uint32_t status = 99, iters = 99;
    eddy_accel(c.op, c.bits, c.group, c.rows, c.cols, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
               nullptr, nullptr, &status, &iters);
    if (status != c.want || iters != 0) {
      std::printf("FAIL bad-args op=%u bits=%u group=%u rows=%u cols=%u: status %u (want %u) iters %u\n", c.op,
                  c.bits, c.group, c.rows, c.cols, status, c.want, iters);
      ++failed;
    }
  }
  return failed;
}

}  // namespace

int main(int argc, char** argv) {
  int passed = 0, failed = 0;
  double worst = 0.0;
  std::printf("eddy_accel C-sim: PE=%d SIMD=%d MAX_COLS=%d MAX_DSTATE=%d SCAN_LANES=%d\n", EDDY_PE, EDDY_SIMD,
              EDDY_MAX_COLS, EDDY_MAX_DSTATE, EDDY_SCAN_LANES);
  for (int i = 1; i < argc; ++i) {
    Reader r;
    std::ifstream f(argv[i], std::ios::binary);
    r.bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    std::string err;
    const uint8_t* magic = r.take(4);
    if (!f.good() && r.bytes.empty()) {
      err = "cannot read file";
    } else if (magic && std::memcmp(magic, "EDGM", 4) == 0) {
      err = run_matvec(r);
    } else if (magic && std::memcmp(magic, "EDGS", 4) == 0) {
      err = run_scan(r, &worst);
    } else {
      err = "unknown magic";
    }
    if (err.empty()) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAIL %s: %s\n", argv[i], err.c_str());
    }
  }
  const int bad = bad_args();
  if (bad == 0) ++passed; else failed += bad;
  const unsigned long under = eddy_hls::stream<eddy_kern::LaneCodes>::underflows() +
                              eddy_hls::stream<eddy_kern::GroupHead>::underflows();
  if (under != 0) {
    std::printf("FAIL stream underflows: %lu\n", under);
    ++failed;
  }
  std::printf("scan worst error / bound: %.3g\n", worst);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
