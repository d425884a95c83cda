#!/usr/bin/env node
// The `catprobe` bin. The CLI is TypeScript. Through tsx every start costs about 0.25 s (a
// loader thread every module passes through) and the code runs slower (tsx keeps function
// names), so the bin runs a plain-JS copy of the CLI's modules instead, one .js per .ts in
// node_modules/.cache/catprobe/js, compiled by esbuild (the compiler tsx itself uses).
// At each start every source in the copy is checked against its size and mtime (one stat
// each); when any differs, or a file is missing, the copy is brought up to date first: the
// module graph from cli/main.ts again, and each changed file compiled anew. Should that fail
// (no esbuild, a read-only node_modules), the sources run through tsx as before.
// zod, the one package `run` loads that is spread over a hundred modules (every locale among
// them), is bundled into one file beside the copy: Node 20's ESM loader pays for each module,
// and the bundle loads in half the time.

import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRY = "cli/main.ts";
const CACHE = join(ROOT, "node_modules", ".cache", "catprobe");
const JS = join(CACHE, "js");
const MANIFEST = join(CACHE, "manifest.json");
/** Where the copy's imports of "zod" resolve: Node looks in node_modules beside the importer first. */
const ZOD = join(JS, "node_modules", "zod");
const ZOD_PACKAGE = "node_modules/zod/package.json";

/** What says a source is unchanged: its size and mtime. */
const stamp = (file) => {
  const s = statSync(join(ROOT, file));
  return `${s.size}:${s.mtimeMs}`;
};
const output = (file) => join(JS, file.replace(/\.ts$/, ".js"));

function readManifest() {
  try {
    return JSON.parse(readFileSync(MANIFEST, "utf8"));
  } catch {
    return null;
  }
}

/** Every source as it was compiled, and every output there; zod's bundle of the installed zod. */
function upToDate(manifest) {
  if (!manifest?.files?.[ENTRY]) return false;
  try {
    return Object.entries(manifest.files).every(([file, was]) => stamp(file) === was && existsSync(output(file))) &&
      manifest.zod === stamp(ZOD_PACKAGE) && existsSync(join(ZOD, "index.js"));
  } catch {
    return false;
  }
}

/** Written under another name and renamed: a catprobe starting meanwhile sees all or nothing. */
function writeAtomic(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

async function update(manifest) {
  const esbuild = await import("esbuild");
  const { metafile } = await esbuild.build({
    entryPoints: [ENTRY], absWorkingDir: ROOT, bundle: true, write: false, metafile: true,
    packages: "external", platform: "node", format: "esm", logLevel: "silent",
  });
  const { compilerOptions } = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8"));
  const files = {};
  for (const file of Object.keys(metafile.inputs)) {
    if (!file.endsWith(".ts")) throw new Error(`${file}: only .ts sources are compiled`);
    const now = stamp(file); // before reading: a file changed meanwhile is compiled again next start
    if (manifest?.files?.[file] !== now || !existsSync(output(file))) {
      const path = join(ROOT, file);
      const { code } = esbuild.transformSync(readFileSync(path, "utf8"), {
        loader: "ts", format: "esm", platform: "node", target: `node${process.versions.node}`,
        tsconfigRaw: { compilerOptions }, sourcefile: path, sourcemap: "inline",
        // the copy lives elsewhere: paths relative to the module stay relative to its source
        define: {
          "import.meta.url": JSON.stringify(pathToFileURL(path).href),
          "import.meta.filename": JSON.stringify(path),
          "import.meta.dirname": JSON.stringify(dirname(path)),
        },
      });
      writeAtomic(output(file), code);
    }
    files[file] = now;
  }
  writeAtomic(join(JS, "package.json"), '{ "type": "module" }\n');
  const zod = stamp(ZOD_PACKAGE);
  if (manifest?.zod !== zod || !existsSync(join(ZOD, "index.js"))) await bundleZod(esbuild);
  writeAtomic(MANIFEST, JSON.stringify({ files, zod }));
}

async function bundleZod(esbuild) {
  const { outputFiles } = await esbuild.build({
    stdin: { contents: 'export * from "zod";', resolveDir: ROOT }, bundle: true, write: false,
    platform: "node", format: "esm", target: `node${process.versions.node}`, logLevel: "silent", outfile: "index.js",
  });
  writeAtomic(join(ZOD, "index.js"), outputFiles[0].text);
  writeAtomic(join(ZOD, "package.json"), '{ "type": "module", "main": "index.js" }\n');
}

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
