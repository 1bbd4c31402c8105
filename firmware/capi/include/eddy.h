/* eddy C API: run quantized recurrent language models in caller memory.
 *
 * Hand-written; firmware/capi/tests/header.rs checks it against the Rust
 * side (status values, storage sizes, function names and parameters).
 *
 * Memory: nothing is allocated. The caller provides the model bytes (a
 * .eddy file, 64-byte aligned, e.g. in flash), an eddy_model, an
 * eddy_session, and state/scratch buffers of eddy_model_state_bytes() /
 * eddy_model_scratch_bytes() bytes (4-byte aligned). The model bytes must
 * outlive the eddy_model; the eddy_model must outlive, and stay at the same
 * address as long as, every session made from it; state and scratch must
 * outlive their session. A session is used by one thread at a time.
 *
 * Every call returns an eddy_status; eddy_status_message() describes it.
 */
#ifndef EDDY_H
#define EDDY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every call. */
typedef enum eddy_status {
    EDDY_OK = 0,
    EDDY_ERR_NULL_POINTER = 1,      /* a required pointer argument is NULL */
    EDDY_ERR_MODEL_FILE = 2,        /* not a valid .eddy file (damaged, truncated, misaligned, checksum) */
    EDDY_ERR_MODEL = 3,             /* valid file, but not a model this runtime can run */
    EDDY_ERR_BUFFER_TOO_SMALL = 4,  /* state, scratch or snapshot buffer too small */
    EDDY_ERR_BUFFER_MISALIGNED = 5, /* state/scratch not 4-byte aligned */
    EDDY_ERR_TOKEN_OUT_OF_RANGE = 6,/* token id >= vocabulary size */
    EDDY_ERR_EMPTY_PROMPT = 7,      /* prefill with zero tokens */
    EDDY_ERR_BAD_SNAPSHOT = 8,      /* snapshot of another model, state format or length */
    EDDY_ERR_NOT_INITIALIZED = 9    /* model/session not set up by a successful open/init */
} eddy_status;

#define EDDY_MODEL_STORAGE_WORDS 64
#define EDDY_SESSION_STORAGE_WORDS 8

/** Opaque storage for a model (caller-owned, e.g. a static). */
typedef struct eddy_model {
    uint64_t opaque[EDDY_MODEL_STORAGE_WORDS];
} eddy_model;

/** Opaque storage for a session (caller-owned). */
typedef struct eddy_session {
    uint64_t opaque[EDDY_SESSION_STORAGE_WORDS];
} eddy_session;

/** Validate len bytes at bytes (64-byte aligned) as a .eddy model, checksum
 *  included, and bind them in *model. The bytes are used in place. */
eddy_status eddy_model_open(eddy_model *model, const uint8_t *bytes, size_t len);

/** Bytes of state a session needs (also a snapshot's size); 0 if not open. */
size_t eddy_model_state_bytes(const eddy_model *model);

/** Bytes of scratch a session needs; 0 if not open. */
size_t eddy_model_scratch_bytes(const eddy_model *model);

/** Vocabulary size (number of logits); 0 if not open. */
size_t eddy_model_vocab_size(const eddy_model *model);

/** Name of the kernel set running the matrix products ("scalar", "dsp",
 *  "helium", "avx2", ...), written NUL-terminated to buf (truncated to
 *  len - 1 bytes); returns the name's full length, 0 if not open. */
size_t eddy_model_kernels(const eddy_model *model, char *buf, size_t len);

/** Start a session with empty state in caller memory. */
eddy_status eddy_session_init(eddy_session *session, const eddy_model *model, uint8_t *state,
                              size_t state_len, uint8_t *scratch, size_t scratch_len);

/** Feed one token. *logits / *n_logits (each may be NULL) receive the next
 *  token's logits, valid until the next call on this session. */
eddy_status eddy_session_step(eddy_session *session, uint32_t token, const float **logits,
                              size_t *n_logits);

/** Feed a prompt; logits after its last token. On error nothing changed. */
eddy_status eddy_session_prefill(eddy_session *session, const uint32_t *tokens, size_t n_tokens,
                                 const float **logits, size_t *n_logits);

/** Forget all context. */
eddy_status eddy_session_reset(eddy_session *session);

/** Tokens consumed since init, reset or restore. */
eddy_status eddy_session_position(eddy_session *session, uint64_t *position);

/** Copy the complete state (eddy_model_state_bytes bytes) to out. */
eddy_status eddy_session_snapshot(eddy_session *session, uint8_t *out, size_t out_len);

/** Restore a snapshot of the same model; on error the session is unchanged. */
eddy_status eddy_session_restore(eddy_session *session, const uint8_t *snapshot, size_t len);

/** Static, NUL-terminated message for any status code. */
const char *eddy_status_message(int status);

#ifdef __cplusplus
}
#endif

#endif /* EDDY_H */
