// C-simulation of the eddy accelerator as a board sees it: the AXI-Lite
// register file of REGISTERS.md in front of the HLS top function, and a
// flat device memory the AXI master ports address. Not synthesizable; the
// Rust SimBus drives it through the C functions at the bottom.
//
// Timing: a start runs the HLS function at once (C-simulation), then the
// kernel stays busy for as many simulated cycles as its pipelines iterate
// (plus a fixed start-up latency). Simulated time advances only through
// eddy_sim_tick, so a driver that polls without waiting long enough sees
// the kernel busy, and one that gives up reports a timeout.
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "../hls/eddy_accel.h"

namespace {

// Register offsets (REGISTERS.md).
constexpr uint32_t kCtrl = 0x00, kGie = 0x04, kIer = 0x08, kIsr = 0x0c;
constexpr uint32_t kArgFirst = 0x10, kArgLast = 0x68;  // RW argument words
constexpr uint32_t kStatus = 0x70, kIters = 0x78;
constexpr uint32_t kOp = 0x10, kBits = 0x14, kGroup = 0x18, kRows = 0x1c, kCols = 0x20;
constexpr uint32_t kW = 0x24, kXq = 0x2c, kXs = 0x34, kXsum = 0x3c, kY = 0x44, kA = 0x4c, kChp = 0x54, kBc = 0x5c,
                   kH = 0x64;
constexpr uint64_t kStartLatency = 32;  // cycles from start to first pipeline iteration
constexpr uint32_t kBusError = 8;

struct Sim {
  std::vector<uint8_t> mem;
  uint64_t base = 0;
  uint32_t args[(kArgLast - kArgFirst) / 4 + 1] = {};
  bool busy = false, done_latched = false, ready_latched = false, hang = false;
  uint32_t gie = 0, ier = 0, isr = 0, status = 0, iters = 0;
  uint64_t now = 0, finish_at = 0, starts = 0, bad_accesses = 0;

  uint32_t arg(uint32_t off) const { return args[(off - kArgFirst) / 4]; }
  uint64_t addr(uint32_t off) const { return static_cast<uint64_t>(arg(off)) | (static_cast<uint64_t>(arg(off + 4)) << 32); }

  // Host pointer for [a, a + len) if it lies in device memory and is aligned.
  uint8_t* ptr(uint64_t a, uint64_t len, uint64_t align, bool* ok) {
    if (a < base || a % align != 0 || a - base > mem.size() || len > mem.size() - (a - base)) {
      *ok = false;
      return nullptr;
    }
    return mem.data() + (a - base);
  }

  void update() {
    if (busy && now >= finish_at) {
      busy = false;
      done_latched = true;
      ready_latched = true;
      isr |= ier & 3u;
    }
  }

  void start() {
    ++starts;
    const uint32_t op = arg(kOp), bits = arg(kBits), group = arg(kGroup), rows = arg(kRows), cols = arg(kCols);
    uint32_t st = 0, n = 0;
    bool ok = true;
    // The buffers an operation touches, sized from its arguments; a
    // shape the kernel rejects touches none (it reports the status).
    if (op == kOpMatvec && bits != 0 && group != 0 && (bits == 2 || bits == 4 || bits == 8) && cols % group == 0) {
      const uint64_t groups = cols / group, row_bytes = groups * (4 + group * bits / 8);
      uint8_t* w = ptr(addr(kW), static_cast<uint64_t>(rows) * row_bytes, 1, &ok);
      uint8_t* xq = ptr(addr(kXq), cols, 1, &ok);
      uint8_t* xs = ptr(addr(kXs), groups * 4, 4, &ok);
      uint8_t* xsum = ptr(addr(kXsum), groups * 4, 4, &ok);
      uint8_t* y = ptr(addr(kY), static_cast<uint64_t>(rows) * 4, 4, &ok);
      if (ok) {
        eddy_accel(op, bits, group, rows, cols, w, reinterpret_cast<int8_t*>(xq), reinterpret_cast<float*>(xs),
                   reinterpret_cast<int32_t*>(xsum), reinterpret_cast<float*>(y), nullptr, nullptr, nullptr, nullptr,
                   &st, &n);
      }
    } else if (op == kOpScan && rows != 0 && rows <= EDDY_MAX_CHANNELS && cols != 0 && cols <= EDDY_MAX_DSTATE) {
      const uint64_t cells = static_cast<uint64_t>(rows) * cols;
      uint8_t* a = ptr(addr(kA), cells * 4, 4, &ok);
      uint8_t* chp = ptr(addr(kChp), static_cast<uint64_t>(rows) * 16, 4, &ok);
      uint8_t* bc = ptr(addr(kBc), static_cast<uint64_t>(cols) * 8, 4, &ok);
      uint8_t* h = ptr(addr(kH), cells * 4, 4, &ok);
      uint8_t* y = ptr(addr(kY), static_cast<uint64_t>(rows) * 4, 4, &ok);
      if (ok) {
        eddy_accel(op, 0, 0, rows, cols, nullptr, nullptr, nullptr, nullptr, reinterpret_cast<float*>(y),
                   reinterpret_cast<float*>(a), reinterpret_cast<float*>(chp), reinterpret_cast<float*>(bc),
                   reinterpret_cast<float*>(h), &st, &n);
      }
    } else {
      // Invalid shape or op: the kernel checks and reports without touching memory.
      eddy_accel(op, bits, group, rows, cols, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                 nullptr, &st, &n);
    }
    if (!ok) {
      st = kBusError;
      n = 0;
    }
    status = st;
    iters = n;
    busy = true;
    finish_at = hang ? UINT64_MAX : now + kStartLatency + n;
  }

  uint32_t read(uint32_t off) {
    update();
    switch (off) {
      case kCtrl: {
        const uint32_t v = (busy ? 1u : 0u) | (done_latched ? 2u : 0u) | (busy ? 0u : 4u) | (ready_latched ? 8u : 0u);
        done_latched = false;  // clear on read
        ready_latched = false;
        return v;
      }
      case kGie: return gie;
      case kIer: return ier;
      case kIsr: return isr;
      case kStatus: return status;
      case kIters: return iters;
      default:
        if (off >= kArgFirst && off <= kArgLast && off % 4 == 0) return arg(off);
        ++bad_accesses;
        return 0;
    }
  }

  void write(uint32_t off, uint32_t v) {
    update();
    switch (off) {
      case kCtrl:
        if ((v & 1u) && !busy) start();
        return;  // other bits are read-only; auto-restart is not implemented
      case kGie: gie = v & 1u; return;
      case kIer: ier = v & 3u; return;
      case kIsr: isr ^= v & 3u; return;  // toggle on write
      default:
        if (off >= kArgFirst && off <= kArgLast && off % 4 == 0) {
          args[(off - kArgFirst) / 4] = v;
          return;
        }
        ++bad_accesses;  // read-only or unmapped
    }
  }
};

}  // namespace

extern "C" {

/// Compile-time parameters of this build, in order: PE, SIMD, MAX_COLS,
/// MAX_DSTATE, MAX_CHANNELS, SCAN_LANES.
void eddy_sim_params(uint32_t out[6]) {
  out[0] = EDDY_PE;
  out[1] = EDDY_SIMD;
  out[2] = EDDY_MAX_COLS;
  out[3] = EDDY_MAX_DSTATE;
  out[4] = EDDY_MAX_CHANNELS;
  out[5] = EDDY_SCAN_LANES;
}

/// A simulator with `mem_bytes` of zeroed device memory at bus address `base`; NULL if it cannot be allocated.
void* eddy_sim_new(uint64_t mem_bytes, uint64_t base) {
  Sim* s = new (std::nothrow) Sim();
  if (!s) return nullptr;
  try {
    s->mem.assign(mem_bytes, 0);
  } catch (...) {
    delete s;
    return nullptr;
  }
  s->base = base;
  return s;
}

void eddy_sim_free(void* s) { delete static_cast<Sim*>(s); }
uint32_t eddy_sim_read32(void* s, uint32_t off) { return static_cast<Sim*>(s)->read(off); }
void eddy_sim_write32(void* s, uint32_t off, uint32_t v) { static_cast<Sim*>(s)->write(off, v); }
uint8_t* eddy_sim_mem(void* s) { return static_cast<Sim*>(s)->mem.data(); }
uint64_t eddy_sim_mem_len(void* s) { return static_cast<Sim*>(s)->mem.size(); }
void eddy_sim_tick(void* s, uint64_t cycles) {
  Sim* sim = static_cast<Sim*>(s);
  sim->now = (UINT64_MAX - sim->now < cycles) ? UINT64_MAX - 1 : sim->now + cycles;
}
uint64_t eddy_sim_now(void* s) { return static_cast<Sim*>(s)->now; }
void eddy_sim_set_hang(void* s, int hang) { static_cast<Sim*>(s)->hang = hang != 0; }
uint64_t eddy_sim_starts(void* s) { return static_cast<Sim*>(s)->starts; }
uint64_t eddy_sim_bad_accesses(void* s) { return static_cast<Sim*>(s)->bad_accesses; }
/// Interrupt line: GIE and an enabled, pending ISR bit.
int eddy_sim_irq(void* s) {
  Sim* sim = static_cast<Sim*>(s);
  sim->update();
  return (sim->gie & 1u) && (sim->isr & sim->ier) ? 1 : 0;
}
}
