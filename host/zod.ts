// The part of zod catprobe uses, by name; import it as `import * as z from "…/zod.js"`.
// `import { z } from "zod"` is zod's whole namespace, every locale with it (755 KB bundled):
// bundled from this module instead (bin/catprobe.js does, for the compiled copy), zod is
// the ~190 KB these names need, and every start of `catprobe` is ~17 ms shorter.
export { array, boolean, enum, literal, number, partialRecord, record, strictObject, string, union, unknown, NEVER } from "zod";
export type { core, output, ZodString } from "zod";
