/* Bare-metal C firmware for a Cortex-M4F (QEMU mps2-an386) or Cortex-M55
 * (mps3-an547, link-m55.ld) that links the
 * eddy C API static library (no_std build) and runs a model embedded in
 * flash: prefill, greedy generation, snapshot/restore check, a truncated
 * model rejected with an error code. Output and exit status via
 * semihosting; no libc, no heap.
 *
 * Build-time inputs (-D): EDDY_MODEL_PATH (file to embed), STATE_BYTES and
 * SCRATCH_BYTES (from `eddy inspect`), PROMPT (e.g. {1,2,3}), GENERATE.
 * The last output line is the generated token ids, comma-separated.
 */
#include "eddy.h"

#define STR2(x) #x
#define STR(x) STR2(x)

/* The model in flash, 64-byte aligned, used in place. */
__asm__(".section .model,\"a\"\n.balign 64\n.global model_start\nmodel_start:\n.incbin \"" EDDY_MODEL_PATH
        "\"\n.global model_end\nmodel_end:\n.text\n");
extern const uint8_t model_start[], model_end[];

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt #0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static void put(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }
static void put_u(unsigned long v) {
    char buf[24], *p = buf + sizeof buf - 1;
    *p = 0;
    do *--p = (char)('0' + v % 10); while (v /= 10);
    put(p);
}
static void __attribute__((noreturn)) exit_with(int code) {
    unsigned block[2] = {0x20026, (unsigned)code}; /* ADP_Stopped_ApplicationExit */
    semihost(0x20, block);                         /* SYS_EXIT_EXTENDED */
    for (;;) {}
}

static eddy_model model;
static eddy_session session;
static uint8_t state[STATE_BYTES] __attribute__((aligned(8)));
static uint8_t scratch[SCRATCH_BYTES] __attribute__((aligned(8)));
static uint8_t snapshot[STATE_BYTES] __attribute__((aligned(8)));
static const uint32_t prompt[] = PROMPT;
static uint32_t first[GENERATE], again[GENERATE];

static int check(const char *what, eddy_status st) {
    if (st == EDDY_STATUS_OK) return 0;
    put("error ");
    put_u((unsigned)st);
    put(": ");
    put(what);
    put(": ");
    put(eddy_status_message(st));
    put("\n");
    return 1;
}

static uint32_t argmax(const float *l, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return (uint32_t)best;
}

/* Step the last prompt token, then generate greedily into out. */
static eddy_status run(uint32_t *out) {
    const float *logits;
    size_t n;
    size_t head = sizeof prompt / sizeof prompt[0] - 1;
    eddy_status st = eddy_session_step(&session, prompt[head], &logits, &n);
    for (int i = 0; st == EDDY_STATUS_OK && i < GENERATE; i++) {
        out[i] = argmax(logits, n);
        if (i + 1 < GENERATE) st = eddy_session_step(&session, out[i], &logits, &n);
    }
    return st;
}

int main(void) {
    size_t len = (size_t)(model_end - model_start);
    size_t head = sizeof prompt / sizeof prompt[0] - 1;
    put("eddy C firmware: model ");
    put_u(len);
    put(" bytes in flash\n");
    if (check("open", eddy_model_open(&model, model_start, len))) return 2;
    char kernels[16];
    eddy_model_kernels(&model, kernels, sizeof kernels);
    put("kernels ");
    put(kernels);
    put("\n");
    if (eddy_model_state_bytes(&model) != STATE_BYTES || eddy_model_scratch_bytes(&model) != SCRATCH_BYTES) {
        put("error: STATE_BYTES/SCRATCH_BYTES do not match the model\n");
        return 4;
    }
    if (check("session", eddy_session_init(&session, &model, state, sizeof state, scratch, sizeof scratch))) return 4;
    if (head > 0 && check("prefill", eddy_session_prefill(&session, prompt, head, 0, 0))) return 5;
    if (check("snapshot", eddy_session_snapshot(&session, snapshot, sizeof snapshot))) return 1;
    if (check("generate", run(first))) return 5;
    if (check("restore", eddy_session_restore(&session, snapshot, sizeof snapshot))) return 1;
    if (check("generate again", run(again))) return 5;
    for (int i = 0; i < GENERATE; i++)
        if (first[i] != again[i]) {
            put("error: tokens after restore differ\n");
            return 1;
        }
    put("snapshot/restore: same tokens\n");
    /* A model with a flipped byte is rejected with a code, not a fault. */
    static eddy_model bad;
    eddy_status st = eddy_model_open(&bad, model_start, len - 64);
    put("truncated model: ");
    put(eddy_status_message(st));
    put("\n");
    if (st != EDDY_STATUS_MODEL_FILE) return 1;
    for (int i = 0; i < GENERATE; i++) {
        if (i) put(",");
        put_u(first[i]);
    }
    put("\n");
    return 0;
}

/* Start-up: copy .data, zero .bss, enable the FPU, run main. */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
void __attribute__((noreturn)) reset_handler(void) {
    for (uint32_t *s = _sidata, *d = _sdata; d < _edata;) *d++ = *s++;
    for (uint32_t *d = _sbss; d < _ebss;) *d++ = 0;
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\nisb");
    exit_with(main());
}
static void __attribute__((noreturn)) fault_handler(void) {
    put("error 102: fault\n");
    exit_with(102);
}
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))_estack, reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler,
};
