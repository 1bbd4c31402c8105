// Verilator testbench of gdot_wb (the open-flow accelerator) on the golden
// matvec vectors the Rust reference writes (fpga/hls/golden/mv_*.bin, format
// in fpga/src/golden.rs). The weights sit in a modelled memory that answers
// the DMA master with a pseudo-random latency; the testbench plays the
// firmware: writes the activations, starts jobs of whole rows, reads the
// {header, int32 sum} results and does the f32 group update in the CPU
// reference's order. Checks: every int32 sum equals an independent unpack
// here, every output equals the golden y bit for bit (any NaN equal to any
// NaN), argument errors and a bus error are reported in STATUS. Runs all
// cases with a memory that waits 0..2 cycles per word and with one that
// answers at once, and prints the engine's cycles per weight word for
// both. Exit code 0 only when everything passed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <string>
#include <vector>

#include "Vgdot_wb.h"
#include "verilated.h"

namespace {

Vgdot_wb* dut;
std::vector<uint32_t> mem;          // modelled memory, word addressed from kBase
const uint32_t kBase = 0x40000000u; // byte address of mem[0]
uint64_t rng_state = 0x9e3779b97f4a7c15ull;
uint64_t cycle_count = 0;
bool inject_err = false;
uint32_t max_wait = 2;              // memory wait cycles per request: 0..max_wait

uint32_t rnd() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return static_cast<uint32_t>(rng_state);
}

// Memory model state: cycles left before this request is acked.
int wait_left = -1;

// One clock: the memory model drives the master's inputs for this cycle,
// then the rising edge.
void tick() {
  dut->m_ack = 0;
  dut->m_err = 0;
  if (dut->m_cyc && dut->m_stb) {
    if (wait_left < 0) wait_left = rnd() % (max_wait + 1);  // new request
    if (wait_left == 0) {
      uint32_t byte = dut->m_adr << 2;
      uint32_t idx = (byte - kBase) >> 2;
      if (inject_err || byte < kBase || idx >= mem.size()) {
        dut->m_err = 1;
      } else {
        dut->m_ack = 1;
        dut->m_dat_r = mem[idx];
      }
      wait_left = -1;
    } else {
      --wait_left;
    }
  } else {
    wait_left = -1;
  }
  dut->clk = 0;
  dut->eval();
  dut->clk = 1;
  dut->eval();
  ++cycle_count;
}

void wb_write(uint32_t word, uint32_t v) {
  dut->s_adr = word;
  dut->s_dat_w = v;
  dut->s_we = 1;
  dut->s_sel = 0xf;
  dut->s_cyc = dut->s_stb = 1;
  do tick(); while (!dut->s_ack);
  dut->s_cyc = dut->s_stb = dut->s_we = 0;
  tick();
}

uint32_t wb_read(uint32_t word) {
  dut->s_adr = word;
  dut->s_we = 0;
  dut->s_sel = 0xf;
  dut->s_cyc = dut->s_stb = 1;
  do tick(); while (!dut->s_ack);
  uint32_t v = dut->s_dat_r;
  dut->s_cyc = dut->s_stb = 0;
  tick();
  return v;
}

enum Reg : uint32_t { CTRL = 0x400, W_ADDR, BITS, GROUP, NGROUP, RGROUP, CYCLES, PARAMS, RES = 0x800 };

// Exact f16 -> f32 (subnormals, inf, NaN payloads kept).
float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {
      int e = -1;
      do { ++e; man <<= 1; } while ((man & 0x400u) == 0);
      bits = sign | ((127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint32_t f32_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

uint32_t rd32(const std::vector<uint8_t>& b, size_t& at) {
  uint32_t v = b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (static_cast<uint32_t>(b[at + 3]) << 24);
  at += 4;
  return v;
}

int failures = 0;
#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) {                           \
      std::printf("FAIL: " __VA_ARGS__);     \
      std::printf("\n");                     \
      ++failures;                            \
    }                                        \
  } while (0)

// Runs one golden file; returns (cycles, weight words) of its jobs.
void run_case(const std::string& path, uint64_t& job_cycles, uint64_t& job_words) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) { CHECK(false, "cannot open %s", path.c_str()); return; }
  std::vector<uint8_t> b;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  if (b.size() < 20 || std::memcmp(b.data(), "EDGM", 4) != 0) { CHECK(false, "%s: not a matvec golden file", path.c_str()); return; }
  size_t at = 4;
  uint32_t bits = rd32(b, at), group = rd32(b, at), rows = rd32(b, at), cols = rd32(b, at);
  uint32_t groups = cols / group, group_bytes = 4 + group * bits / 8, row_bytes = groups * group_bytes;
  size_t need = 20 + size_t(rows) * row_bytes + cols + groups * 8 + rows * 4;
  if (b.size() != need) { CHECK(false, "%s: size %zu, expected %zu", path.c_str(), b.size(), need); return; }
  const uint8_t* w = &b[at];
  at += size_t(rows) * row_bytes;
  const int8_t* xq = reinterpret_cast<const int8_t*>(&b[at]);
  at += cols;
  std::vector<float> xs(groups);
  std::vector<int32_t> xsum(groups);
  for (uint32_t g = 0; g < groups; ++g) { uint32_t v = rd32(b, at); std::memcpy(&xs[g], &v, 4); }
  for (uint32_t g = 0; g < groups; ++g) xsum[g] = static_cast<int32_t>(rd32(b, at));
  std::vector<uint32_t> y_gold(rows);
  for (uint32_t r = 0; r < rows; ++r) y_gold[r] = rd32(b, at);

  mem.assign((size_t(rows) * row_bytes) / 4, 0);
  std::memcpy(mem.data(), w, size_t(rows) * row_bytes);
  for (uint32_t i = 0; i < cols; i += 4) {
    uint32_t v = 0;
    for (uint32_t k = 0; k < 4 && i + k < cols; ++k) v |= uint32_t(uint8_t(xq[i + k])) << (8 * k);
    wb_write(i / 4, v);
  }
  const uint32_t res_depth = wb_read(PARAMS) >> 16;
  const uint32_t rows_per_job = res_depth / groups > 0 ? res_depth / groups : 1;
  wb_write(BITS, bits);
  wb_write(GROUP, group);
  wb_write(RGROUP, groups);
  int mismatches = 0;
  for (uint32_t row0 = 0; row0 < rows; row0 += rows_per_job) {
    uint32_t nr = rows - row0 < rows_per_job ? rows - row0 : rows_per_job;
    wb_write(W_ADDR, kBase + row0 * row_bytes);
    wb_write(NGROUP, nr * groups);
    wb_write(CTRL, 1);
    uint32_t st;
    int polls = 0;
    while (((st = wb_read(CTRL)) & 2) == 0 && ++polls < 1000000) {}
    CHECK(st == 2, "%s: status 0x%x after job at row %u", path.c_str(), st, row0);
    job_cycles += wb_read(CYCLES);
    job_words += size_t(nr) * row_bytes / 4;
    for (uint32_t r = 0; r < nr; ++r) {
      const uint8_t* row = w + size_t(row0 + r) * row_bytes;
      float y = 0.0f;
      for (uint32_t g = 0; g < groups; ++g) {
        uint32_t i = r * groups + g;
        uint32_t head = wb_read(RES + 2 * i);
        int32_t acc = static_cast<int32_t>(wb_read(RES + 2 * i + 1));
        const uint8_t* gp = row + g * group_bytes;
        uint32_t head_mem = gp[0] | (gp[1] << 8) | (gp[2] << 16) | (uint32_t(gp[3]) << 24);
        int32_t ref = 0;
        for (uint32_t k = 0; k < group; ++k) {
          uint32_t per = 8 / bits;
          uint32_t code = (gp[4 + k / per] >> ((k % per) * bits)) & ((1u << bits) - 1);
          ref += int32_t(code) * xq[g * group + k];
        }
        if (head != head_mem || acc != ref) {
          if (++mismatches <= 5)
            CHECK(false, "%s row %u group %u: head 0x%08x/0x%08x sum %d/%d", path.c_str(), row0 + r, g, head,
                  head_mem, acc, ref);
        }
        const float scale = f16_to_f32(head & 0xffff), mn = f16_to_f32(head >> 16);
        y += xs[g] * (scale * static_cast<float>(acc) + mn * static_cast<float>(xsum[g]));
      }
      uint32_t yb = f32_bits(y), gb = y_gold[row0 + r];
      bool same = yb == gb || (std::isnan(y) && ((gb & 0x7f800000u) == 0x7f800000u) && (gb & 0x7fffffu));
      if (!same && ++mismatches <= 5)
        CHECK(false, "%s row %u: y 0x%08x, golden 0x%08x", path.c_str(), row0 + r, yb, gb);
    }
  }
  if (mismatches > 5) CHECK(false, "%s: %d mismatches in all", path.c_str(), mismatches);
  std::printf("%-28s W%u g%-3u %4u x %-4u %s\n", path.substr(path.rfind('/') + 1).c_str(), bits, group, rows, cols,
              mismatches ? "MISMATCH" : "ok (sums exact, y bit-identical)");
}

void run_error_cases() {
  const int before = failures;
  // Argument errors: reported, nothing started.
  struct { uint32_t bits, group, ngroup, rgroup, addr, code; } bad[] = {
      {3, 32, 1, 1, kBase, 1}, {2, 48, 1, 1, kBase, 2}, {2, 32, 0, 1, kBase, 3},
      {2, 32, 513, 1, kBase, 3}, {8, 256, 1, 17, kBase, 4}, {4, 64, 1, 1, kBase + 2, 5},
  };
  mem.assign(4096, 0);
  for (auto& c : bad) {
    wb_write(BITS, c.bits);
    wb_write(GROUP, c.group);
    wb_write(NGROUP, c.ngroup);
    wb_write(RGROUP, c.rgroup);
    wb_write(W_ADDR, c.addr);
    wb_write(CTRL, 1);
    uint32_t st = wb_read(CTRL);
    CHECK(st == (c.code << 4), "argument case %u: status 0x%x, expected 0x%x", c.code, st, c.code << 4);
  }
  // A bus error ends the job with done + bus error.
  wb_write(BITS, 2); wb_write(GROUP, 32); wb_write(NGROUP, 4); wb_write(RGROUP, 4); wb_write(W_ADDR, kBase);
  inject_err = true;
  wb_write(CTRL, 1);
  uint32_t st;
  int polls = 0;
  while (((st = wb_read(CTRL)) & 2) == 0 && ++polls < 1000) {}
  inject_err = false;
  CHECK(st == 6, "bus error: status 0x%x, expected 0x6", st);
  std::printf("argument and bus errors: %s\n", failures > before ? "FAILED" : "ok");
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
    return 2;
  }
  dut = new Vgdot_wb;
  dut->rst = 1;
  for (int i = 0; i < 4; ++i) tick();
  dut->rst = 0;
  tick();
  std::vector<std::string> files;
  if (DIR* d = opendir(argv[1])) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("mv_", 0) == 0 && n.size() > 4 && n.substr(n.size() - 4) == ".bin") files.push_back(std::string(argv[1]) + "/" + n);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 8, "only %zu golden matvec files in %s", files.size(), argv[1]);
  // Two passes: a memory with 0..2 wait cycles per word (stalls between
  // words), then one that answers at once (the engine's own rate).
  for (uint32_t wait : {2u, 0u}) {
    max_wait = wait;
    uint64_t job_cycles = 0, job_words = 0;
    for (auto& p : files) run_case(p, job_cycles, job_words);
    std::printf("memory wait 0..%u cycles: weight words: %llu, job cycles: %llu, cycles_per_word: %.3f\n", wait,
                (unsigned long long)job_words, (unsigned long long)job_cycles,
                job_words ? double(job_cycles) / double(job_words) : 0.0);
  }
  run_error_cases();
  std::printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
  delete dut;
  return failures ? 1 : 0;
}
