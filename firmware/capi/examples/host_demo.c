/* Host example of the eddy C API: greedy generation, snapshot/restore,
 * model options (state bits, KV cache), and the error codes for bad input.
 *
 *   host_demo MODEL.eddy PROMPT_IDS N [HYBRID.eddy]
 *       e.g. host_demo m.eddy 1,2,3 16 lfm2.eddy
 *
 * HYBRID.eddy (optional) is a model with attention layers (e.g. LFM2) on
 * which the KV-cache options are checked.
 *
 * Prints what it checks; the last line is the N generated token ids,
 * comma-separated (like `eddy run --ids`). Exits 0 only if every check
 * passed. Built and run by scripts/test-firmware.sh.
 */
#include "eddy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

static void expect(const char *what, eddy_status got, eddy_status want) {
    if (got != want) {
        printf("FAIL %s: status %d (%s), expected %d\n", what, (int)got, eddy_status_message(got), (int)want);
        failures++;
    } else {
        printf("ok   %s: %d (%s)\n", what, (int)got, eddy_status_message(got));
    }
}

static uint32_t argmax(const float *logits, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return (uint32_t)best;
}

/* Greedy: out[0] is the argmax of logits, each next one after a step. */
static eddy_status generate(eddy_session *s, const float *logits, size_t n_logits, uint32_t *out,
                            size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = argmax(logits, n_logits);
        if (i + 1 == n) break;
        eddy_status st = eddy_session_step(s, out[i], &logits, &n_logits);
        if (st != EDDY_STATUS_OK) return st;
    }
    return EDDY_STATUS_OK;
}

static void check(const char *what, int ok) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

/* One prefill and a step with a model opened in `model` (sizes as it says
 * now): the options must leave it runnable. */
static void run_briefly(const char *what, eddy_model *model, const uint32_t *prompt, size_t n_prompt) {
    size_t state_len = eddy_model_state_bytes(model), scratch_len = eddy_model_scratch_bytes(model);
    uint8_t *state = aligned_alloc(16, (state_len + 15) / 16 * 16);
    uint8_t *scratch = aligned_alloc(16, (scratch_len + 15) / 16 * 16);
    if (!state || !scratch) exit(2);
    static eddy_session s;
    const float *logits = NULL;
    size_t n_logits = 0;
    printf("%s: state %zu bytes, scratch %zu bytes\n", what, state_len, scratch_len);
    expect(what, eddy_session_init(&s, model, state, state_len, scratch, scratch_len), EDDY_STATUS_OK);
    expect(what, eddy_session_prefill(&s, prompt, n_prompt, &logits, &n_logits), EDDY_STATUS_OK);
    expect(what, eddy_session_step(&s, argmax(logits, n_logits), &logits, &n_logits), EDDY_STATUS_OK);
    free(state);
    free(scratch);
}

/* eddy_model_set_state_bits / eddy_model_set_kv_cache on a fresh model:
 * bad values are refused and change nothing; good ones change the sizes
 * and the model still runs. `hybrid` says the model has attention layers
 * (so a KV window changes its state size). */
static void check_options(const uint8_t *bytes, size_t len, const uint32_t *prompt, size_t n_prompt, int hybrid) {
    static eddy_model m, unopened;
    expect("options: open", eddy_model_open(&m, bytes, len), EDDY_STATUS_OK);
    size_t f32_state = eddy_model_state_bytes(&m);
    expect("options: 5 state bits", eddy_model_set_state_bits(&m, 5), EDDY_STATUS_BAD_OPTION);
    expect("options: KV format 9", eddy_model_set_kv_cache(&m, 9, 4, 60), EDDY_STATUS_BAD_OPTION);
    expect("options: NULL model", eddy_model_set_state_bits(NULL, 8), EDDY_STATUS_NULL_POINTER);
    expect("options: unopened model", eddy_model_set_kv_cache(&unopened, EDDY_KV_FORMAT_Q4, 4, 60),
           EDDY_STATUS_NOT_INITIALIZED);
    check("options: refused options leave the state size", eddy_model_state_bytes(&m) == f32_state);
    if (hybrid) {
        expect("options: KV window 0", eddy_model_set_kv_cache(&m, EDDY_KV_FORMAT_Q4, 4, 0), EDDY_STATUS_BAD_OPTION);
        check("options: KV window 0 leaves the state size", eddy_model_state_bytes(&m) == f32_state);
        expect("options: f16 KV, 4 + 4092", eddy_model_set_kv_cache(&m, EDDY_KV_FORMAT_F16, 4, 4092), EDDY_STATUS_OK);
        size_t f16_state = eddy_model_state_bytes(&m);
        check("options: f16 KV needs more state than the q4 default", f16_state > f32_state);
        expect("options: q4 KV, 4 + 60", eddy_model_set_kv_cache(&m, EDDY_KV_FORMAT_Q4, 4, 60), EDDY_STATUS_OK);
        check("options: a 64-token q4 KV window needs less state", eddy_model_state_bytes(&m) < f32_state);
        run_briefly("options: session with q4 KV 4 + 60", &m, prompt, n_prompt);
    } else {
        expect("options: KV options on a model without attention", eddy_model_set_kv_cache(&m, EDDY_KV_FORMAT_Q8, 4, 60),
               EDDY_STATUS_OK);
        check("options: ... change nothing", eddy_model_state_bytes(&m) == f32_state);
        expect("options: 8 state bits", eddy_model_set_state_bits(&m, 8), EDDY_STATUS_OK);
        size_t q8_state = eddy_model_state_bytes(&m);
        check("options: 8-bit state is smaller", q8_state < f32_state);
        run_briefly("options: session with 8-bit state", &m, prompt, n_prompt);
        expect("options: 4 state bits", eddy_model_set_state_bits(&m, 4), EDDY_STATUS_OK);
        check("options: 4-bit state is smaller still", eddy_model_state_bytes(&m) < q8_state);
        expect("options: back to 32 bits", eddy_model_set_state_bits(&m, 32), EDDY_STATUS_OK);
        check("options: 32 bits restores the size", eddy_model_state_bytes(&m) == f32_state);
    }
}

static uint8_t *read_aligned(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* +64: room to test a misaligned start. */
    uint8_t *buf = aligned_alloc(64, ((size_t)size + 64 + 63) / 64 * 64);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL.eddy PROMPT_IDS N [HYBRID.eddy]\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    uint8_t *bytes = read_aligned(argv[1], &len);
    if (!bytes) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    uint32_t prompt[4096];
    size_t n_prompt = 0;
    for (char *t = strtok(argv[2], ","); t && n_prompt < 4096; t = strtok(NULL, ","))
        prompt[n_prompt++] = (uint32_t)strtoul(t, NULL, 10);
    size_t n = strtoul(argv[3], NULL, 10);
    if (n == 0 || n_prompt == 0) {
        fprintf(stderr, "need a prompt and N >= 1\n");
        return 2;
    }

    static eddy_model model;
    expect("open model", eddy_model_open(&model, bytes, len), EDDY_STATUS_OK);
    if (failures) return 1;
    size_t state_len = eddy_model_state_bytes(&model), scratch_len = eddy_model_scratch_bytes(&model);
    size_t vocab = eddy_model_vocab_size(&model);
    char kernels[4];
    size_t name_len = eddy_model_kernels(&model, kernels, sizeof kernels);
    printf("state %zu bytes, scratch %zu bytes, vocab %zu, kernels %s (%zu bytes, truncated to 3)\n", state_len,
           scratch_len, vocab, kernels, name_len);
    if (name_len < 3 || strlen(kernels) != 3) {
        printf("FAIL eddy_model_kernels: length %zu, truncated name \"%s\"\n", name_len, kernels);
        failures++;
    }
    uint8_t *state = aligned_alloc(16, (state_len + 15) / 16 * 16);
    uint8_t *scratch = aligned_alloc(16, (scratch_len + 15) / 16 * 16);
    uint8_t *snapshot = malloc(state_len);
    uint32_t *first = malloc(n * sizeof *first), *again = malloc(n * sizeof *again);
    if (!state || !scratch || !snapshot || !first || !again) return 2;

    static eddy_session session;
    expect("session init", eddy_session_init(&session, &model, state, state_len, scratch, scratch_len), EDDY_STATUS_OK);
    /* Prompt = prefill of all but the last token, a snapshot, then a step
     * with the last token (the same logits as one prefill of it all). */
    const float *logits = NULL;
    size_t n_logits = 0, head = n_prompt - 1;
    if (head > 0) expect("prefill", eddy_session_prefill(&session, prompt, head, NULL, NULL), EDDY_STATUS_OK);
    expect("snapshot", eddy_session_snapshot(&session, snapshot, state_len), EDDY_STATUS_OK);
    expect("step last prompt token", eddy_session_step(&session, prompt[head], &logits, &n_logits), EDDY_STATUS_OK);
    if (failures) return 1;
    expect("generate", generate(&session, logits, n_logits, first, n), EDDY_STATUS_OK);
    uint64_t pos = 0;
    expect("position", eddy_session_position(&session, &pos), EDDY_STATUS_OK);
    if (pos != n_prompt + n - 1) {
        printf("FAIL position %llu, expected %zu\n", (unsigned long long)pos, n_prompt + n - 1);
        failures++;
    }

    /* Resume from the snapshot: the same tokens again. */
    expect("restore", eddy_session_restore(&session, snapshot, state_len), EDDY_STATUS_OK);
    expect("position after restore", eddy_session_position(&session, &pos), EDDY_STATUS_OK);
    if (pos != head) {
        printf("FAIL position after restore %llu, expected %zu\n", (unsigned long long)pos, head);
        failures++;
    }
    expect("step last prompt token again", eddy_session_step(&session, prompt[head], &logits, &n_logits), EDDY_STATUS_OK);
    expect("generate again", generate(&session, logits, n_logits, again, n), EDDY_STATUS_OK);
    if (memcmp(first, again, n * sizeof *first) != 0) {
        printf("FAIL tokens after restore differ\n");
        failures++;
    } else {
        printf("ok   tokens after restore are the same\n");
    }
    expect("reset", eddy_session_reset(&session), EDDY_STATUS_OK);

    /* Model options, on fresh models. */
    check_options(bytes, len, prompt, n_prompt, 0);
    if (argc == 5) {
        size_t hybrid_len = 0;
        uint8_t *hybrid = read_aligned(argv[4], &hybrid_len);
        if (!hybrid) {
            fprintf(stderr, "cannot read %s\n", argv[4]);
            return 2;
        }
        check_options(hybrid, hybrid_len, prompt, n_prompt, 1);
        free(hybrid);
    }

    /* Bad input gives error codes, never a crash. */
    expect("NULL model", eddy_model_open(NULL, bytes, len), EDDY_STATUS_NULL_POINTER);
    expect("token >= vocab", eddy_session_step(&session, (uint32_t)vocab, NULL, NULL), EDDY_STATUS_TOKEN_OUT_OF_RANGE);
    expect("empty prompt", eddy_session_prefill(&session, prompt, 0, NULL, NULL), EDDY_STATUS_EMPTY_PROMPT);
    expect("short snapshot", eddy_session_restore(&session, snapshot, state_len - 4), EDDY_STATUS_BAD_SNAPSHOT);
    expect("snapshot buffer too small", eddy_session_snapshot(&session, snapshot, 8), EDDY_STATUS_BUFFER_TOO_SMALL);
    static eddy_session small;
    expect("state too small", eddy_session_init(&small, &model, state, state_len - 4, scratch, scratch_len),
           EDDY_STATUS_BUFFER_TOO_SMALL);
    expect("use of failed session", eddy_session_step(&small, 0, NULL, NULL), EDDY_STATUS_NOT_INITIALIZED);
    static eddy_model unopened;
    expect("unopened model", eddy_session_init(&small, &unopened, state, state_len, scratch, scratch_len),
           EDDY_STATUS_NOT_INITIALIZED);
    static eddy_model bad;
    memmove(bytes + 1, bytes, len);
    expect("misaligned model bytes", eddy_model_open(&bad, bytes + 1, len), EDDY_STATUS_MODEL_FILE);
    memmove(bytes, bytes + 1, len);
    bytes[len / 2] ^= 0xff;
    expect("flipped model byte", eddy_model_open(&bad, bytes, len), EDDY_STATUS_MODEL_FILE);
    expect("truncated model", eddy_model_open(&bad, bytes, 100), EDDY_STATUS_MODEL_FILE);
    printf("unknown code: %s\n", eddy_status_message(1234));

    printf("%s\n", failures ? "host_demo: FAILED" : "host_demo: all checks passed");
    for (size_t i = 0; i < n; i++) printf("%s%u", i ? "," : "", first[i]);
    printf("\n");
    return failures ? 1 : 0;
}
