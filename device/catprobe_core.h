/* The catprobe core's ABI for C, on top of the wasm2c output of build/core.wasm (module name
 * "core": core.h, core.c) and the static runtime (wasm_rt_static.c). See README "ABI".
 *
 *   if (catprobe_init() != 0 || catprobe_self_test() != 0) fail();
 *   uint8_t *win = catprobe_window();           // CATPROBE_WINDOW_SIZE bytes
 *   memcpy(win, keyword, n); int ctx = catprobe_verifier_open(CATPROBE_MODE_PARTIAL, n);
 *   memcpy(win, chunk, len); int v = catprobe_verifier_push(ctx, len);   // 0 pending, 1 pass, 2 fail
 *
 * Every call returns the core's answer, or CATPROBE_TRAPPED - trap (a wasm_rt_trap_t) when the
 * core trapped: the call is abandoned and the instance should be re-initialised. The core is
 * one instance, not reentrant: call it from one thread (or with a lock). */
#ifndef CATPROBE_CORE_H
#define CATPROBE_CORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CATPROBE_ABI_VERSION 2
#define CATPROBE_WINDOW_SIZE 16384
#define CATPROBE_WINDOW_HALF 8192 /* full and prefix: expected bytes at window + 8192 */
#define CATPROBE_CONTEXTS 24
#define CATPROBE_MAX_KEYWORD 4096

/* Negative results (assembly/contexts.ts ERR_*). */
#define CATPROBE_ERR_BUSY (-1)       /* no free context */
#define CATPROBE_ERR_EMPTY (-2)
#define CATPROBE_ERR_TOO_LONG (-3)
#define CATPROBE_ERR_MODE (-4)       /* unknown verify mode */
#define CATPROBE_ERR_WINDOW (-5)     /* length outside the window */
#define CATPROBE_ERR_CONTEXT (-6)    /* not an open context */
#define CATPROBE_TRAPPED (-100)      /* -100 - wasm_rt_trap_t: the core trapped */

/* verifierOpen modes and verdicts. */
#define CATPROBE_MODE_NONE 1
#define CATPROBE_MODE_FULL 2    /* len = expected length; the whole reply must equal it */
#define CATPROBE_MODE_PARTIAL 3 /* keyword in window[0, len) */
#define CATPROBE_MODE_MD5 4     /* digest in window[0, 16) */
#define CATPROBE_MODE_PREFIX 5  /* len = expected length; the reply must start with it */
#define CATPROBE_PENDING 0
#define CATPROBE_PASS 1
#define CATPROBE_FAIL 2

/* hexErrorKind() */
#define CATPROBE_HEX_EMPTY 1
#define CATPROBE_HEX_ODD 2
#define CATPROBE_HEX_CHAR 3
#define CATPROBE_HEX_SPLIT 4

/* Boot: the runtime, the module, the instance (its start function fills the hex table).
 * 0, or CATPROBE_TRAPPED - trap. Call again to re-initialise after a trap. */
int32_t catprobe_init(void);
/* The linear memory (64 KiB) and the I/O window in it. */
uint8_t *catprobe_memory(void);
uint8_t *catprobe_window(void);
/* The last trap (wasm_rt_trap_t), 0 if none. */
int catprobe_last_trap(void);

int32_t catprobe_abi_version(void);
int32_t catprobe_window_ptr(void);
int32_t catprobe_window_size(void);
int32_t catprobe_window_half(void);
int32_t catprobe_context_count(void);
int32_t catprobe_context_capacity(int32_t ctx);
int32_t catprobe_contexts_free(void);
int32_t catprobe_context_release(int32_t ctx);
int32_t catprobe_max_keyword(void);
int32_t catprobe_heap_base(void);

void catprobe_hex_reset(void);
int32_t catprobe_hex_decode(int32_t len);   /* bytes written at the window start, or -1 */
int32_t catprobe_hex_decode_end(void);      /* 0, or -1 */
int32_t catprobe_hex_error_kind(void);      /* CATPROBE_HEX_* */
int32_t catprobe_hex_error_offset(void);
int32_t catprobe_hex_encode(int32_t len);   /* len <= 8192 */

int32_t catprobe_md5_open(void);
int32_t catprobe_md5_push(int32_t ctx, int32_t len);
int32_t catprobe_md5_digest(int32_t ctx);   /* address of 16 bytes in catprobe_memory() */

int32_t catprobe_verifier_open(int32_t mode, int32_t len);
int32_t catprobe_verifier_push(int32_t ctx, int32_t len);
int32_t catprobe_verifier_end(int32_t ctx);
int32_t catprobe_verifier_decided_at(int32_t ctx);
int32_t catprobe_verifier_digest(int32_t ctx);

int32_t catprobe_self_test(void); /* 0 when every known answer matches */

#ifdef __cplusplus
}
#endif

#endif /* CATPROBE_CORE_H */
