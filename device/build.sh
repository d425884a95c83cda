#!/usr/bin/env bash
# Builds the catprobe core for a Cortex-M3 (QEMU mps2-an385) from build/core.wasm:
#   wasm2c -> build/device/core.{c,h}; arm-none-eabi-gcc -Os -> build/device/core.a (the core
#   alone: generated C + static runtime + catprobe_core.c) and build/device/runner.elf (the
#   differential test's device program). Prints arm-none-eabi-size of both.
# Needs: wabt (wasm2c), gcc-arm-none-eabi, libnewlib-arm-none-eabi. Run `npm run build` first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/device"
out="${CATPROBE_DEVICE_OUT:-$root/build/device}"
wasm="$root/build/core.wasm"
[ -f "$wasm" ] || { echo "device/build.sh: $wasm missing (run npm run build)" >&2; exit 1; }
mkdir -p "$out"

# WABT's own wasm2c, 1.0.32 (Debian bookworm's wabt), whose output wasm_rt_static.c implements;
# not the npm wabt package's node_modules/.bin/wasm2c (1.0.39: a different runtime ABI).
PATH="$(printf %s "$PATH" | tr : '\n' | grep -v node_modules | paste -sd: -)"
version="$(wasm2c --version 2>/dev/null || true)"
[ "$version" = 1.0.32 ] || { echo "device/build.sh: need wasm2c 1.0.32 (apt-get install wabt), found '${version:-none}'" >&2; exit 1; }

wasm2c "$wasm" -n core -o "$out/core.c"
# wasm-rt.h ships with wabt's wasm2c; the cross compiler does not search /usr/include.
rt_header="$(dirname "$(command -v wasm2c)")/../include/wasm-rt.h"
[ -f "$rt_header" ] || rt_header=/usr/share/wabt/wasm2c/wasm-rt.h
[ -f "$rt_header" ] || rt_header=/usr/src/wasm2c/wasm-rt.h
cp "$rt_header" "$out/wasm-rt.h"

CC=arm-none-eabi-gcc
CFLAGS=(-mcpu=cortex-m3 -mthumb -Os -g -DNDEBUG -ffunction-sections -fdata-sections
  -Wall -Wno-unused-function -Wno-unused-variable -Wno-unused-but-set-variable
  -I"$out" -I"$src")
for f in core:"$out/core.c" wasm_rt_static:"$src/wasm_rt_static.c" catprobe_core:"$src/catprobe_core.c" \
         startup:"$src/startup.c" runner:"$src/runner.c"; do
  extra=(); [ "${f%%:*}" = core ] && extra=(-w) # generated code: its warnings are wasm2c's
  "$CC" "${CFLAGS[@]}" "${extra[@]}" -c "${f#*:}" -o "$out/${f%%:*}.o"
done
rm -f "$out/core.a"
arm-none-eabi-ar rcs "$out/core.a" "$out/core.o" "$out/wasm_rt_static.o" "$out/catprobe_core.o"

"$CC" -mcpu=cortex-m3 -mthumb -nostartfiles --specs=nano.specs --specs=rdimon.specs \
  -T "$src/mps2-an385.ld" -Wl,--gc-sections -Wl,-Map="$out/runner.map" \
  "$out/startup.o" "$out/runner.o" "$out/core.a" -lrdimon -o "$out/runner.elf"

echo "== the core alone (wasm2c output + static runtime + catprobe_core.c)"
arm-none-eabi-size -t "$out/core.o" "$out/wasm_rt_static.o" "$out/catprobe_core.o"
echo "== the whole test image"
arm-none-eabi-size "$out/runner.elf"
