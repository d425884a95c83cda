/* A static wasm2c runtime for the catprobe core (WABT wasm2c 1.0.32 output) on a device:
 * one 64 KiB linear memory in .bss, no malloc, memory.grow always fails, and a trap returns
 * to the caller's catprobe_* call as an error code (setjmp/longjmp) instead of aborting.
 * It implements exactly what the generated core.c calls; nothing else of wasm-rt-impl.c. */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "wasm-rt.h"
#include "catprobe_core.h"

#define PAGE 65536u

/* The one linear memory: the release core declares 1 page, initial = maximum. */
static uint8_t linear_memory[PAGE] __attribute__((aligned(8)));
static bool memory_taken;
static bool initialized;

#if WASM_RT_USE_STACK_DEPTH_COUNT
uint32_t wasm_rt_call_stack_depth;
#endif

/* Where a trap goes: set by each catprobe_* call for the time it runs the core. */
jmp_buf *catprobe_trap_target;
static wasm_rt_trap_t last_trap;

void wasm_rt_init(void) { initialized = true; }
bool wasm_rt_is_initialized(void) { return initialized; }
void wasm_rt_free(void) { initialized = false; }

void wasm_rt_trap(wasm_rt_trap_t code) {
  last_trap = code;
#if WASM_RT_USE_STACK_DEPTH_COUNT
  wasm_rt_call_stack_depth = 0; /* the unwound frames never run their epilogues */
#endif
  if (catprobe_trap_target) longjmp(*catprobe_trap_target, (int)code + 1);
  for (;;) {} /* a trap outside any catprobe_* call: nowhere to report it */
}

int catprobe_last_trap(void) { return (int)last_trap; }

/* The core's 8 function types; there is no table, so the ids only need to be distinct. */
uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  static uint32_t next;
  (void)params;
  (void)results;
  return next++;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
  /* Static storage for exactly one memory of one page; anything else is refused. */
  if (memory_taken || initial_pages != 1 || max_pages != 1) wasm_rt_trap(WASM_RT_TRAP_OOB);
  memory_taken = true;
  for (uint32_t i = 0; i < PAGE; i++) linear_memory[i] = 0;
  memory->data = linear_memory;
  memory->pages = 1;
  memory->max_pages = 1;
  memory->size = PAGE;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
  (void)memory;
  (void)delta;
  return UINT32_MAX; /* memory.grow fails: the memory is fixed */
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
  memory->data = 0;
  memory->pages = memory->size = 0;
  memory_taken = false;
}
