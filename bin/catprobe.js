#!/usr/bin/env node
// The `catprobe` bin. The CLI is TypeScript. Through tsx every start costs about 0.25 s (a
// loader thread every module passes through) and the code runs slower (tsx keeps function
// names), so the bin runs a plain-JS copy of the CLI's modules instead, one .js per .ts in
// node_modules/.cache/catprobe/js, compiled by esbuild (the compiler tsx itself uses) and
// kept current by bin/compiled-copy.js. Should that fail (no esbuild, a read-only
// node_modules), the sources run through tsx as before.

import { pathToFileURL } from "node:url";
import { ENTRY, output, readManifest, update, upToDate } from "./compiled-copy.js";

let compiled = upToDate(readManifest());
if (!compiled) {
  try {
    await update(readManifest());
    compiled = true;
  } catch {
    // run the sources through tsx: it reports a syntax error the way it always has
  }
}
if (compiled) {
  await import(pathToFileURL(output(ENTRY)).href);
} else {
  const { tsImport } = await import("tsx/esm/api");
  await tsImport("../cli/main.ts", import.meta.url);
}
