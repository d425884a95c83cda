// The plain-JS copy of the CLI that the `catprobe` bin runs (bin/catprobe.js says why): where it
// is, whether it is current, and how it is brought up to date. Also read by the run-command
// benchmark, which must measure the copy and not the sources through tsx.
// At each start every source in the copy is checked against its size and mtime (one stat
// each); when any differs, or a file is missing, the copy is brought up to date first: the
// module graph from cli/main.ts again, and each changed file compiled anew.
// host/zod.ts, which names the part of zod catprobe uses, is compiled together with zod into
// one file: zod is spread over a hundred modules (Node 20's ESM loader pays for each), and the
// bundle carries only what those names need (~190 KB of zod's 755 KB).

import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const ENTRY = "cli/main.ts";
const CACHE = join(ROOT, "node_modules", ".cache", "catprobe");
const JS = join(CACHE, "js");
const MANIFEST = join(CACHE, "manifest.json");
/** Sources compiled with the packages they import, and what else says such a copy is current. */
const BUNDLED = { "host/zod.ts": "node_modules/zod/package.json" };

/** What says a source is unchanged: its size and mtime (and its packages' for a bundled one). */
const stamp = (file) => {
  const s = statSync(ROOT + file); // ROOT ends in "/"; join() for each of 120 files costs ~2 ms at start
  return file in BUNDLED ? `${s.size}:${s.mtimeMs} ${stamp(BUNDLED[file])}` : `${s.size}:${s.mtimeMs}`;
};
export const output = (file) => `${JS}/${file.slice(0, -3)}.js`;

export function readManifest() {
  try {
    return JSON.parse(readFileSync(MANIFEST, "utf8"));
  } catch {
    return null;
  }
}

/** Every source as it was compiled, and every output there. */
export function upToDate(manifest) {
  if (!manifest?.files?.[ENTRY]) return false;
  try {
    return Object.entries(manifest.files).every(([file, was]) => stamp(file) === was && existsSync(output(file)));
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

export async function update(manifest) {
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
      const options = {
        format: "esm", platform: "node", target: `node${process.versions.node}`,
        tsconfigRaw: { compilerOptions }, sourcemap: "inline",
        // the copy lives elsewhere: paths relative to the module stay relative to its source
        define: {
          "import.meta.url": JSON.stringify(pathToFileURL(path).href),
          "import.meta.filename": JSON.stringify(path),
          "import.meta.dirname": JSON.stringify(dirname(path)),
        },
      };
      const code = file in BUNDLED
        ? (await esbuild.build({ ...options, entryPoints: [path], bundle: true, write: false, logLevel: "silent",
          outfile: "out.js", sourcemap: false })) // a map of zod's sources: big, and of no use here
          .outputFiles[0].text
        : esbuild.transformSync(readFileSync(path, "utf8"), { ...options, loader: "ts", sourcefile: path }).code;
      writeAtomic(output(file), code);
    }
    files[file] = now;
  }
  writeAtomic(join(JS, "package.json"), '{ "type": "module" }\n');
  writeAtomic(MANIFEST, JSON.stringify({ files }));
}
