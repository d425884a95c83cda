// The last config a managed probe applied, kept on disk so that the probe runs it at its next
// start before (and without) any broker connection. Written whole or not at all: a temp file,
// flushed, renamed over the old one, so a probe killed mid-write keeps the previous config.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";

/** The config message as it was applied, or null when none was ever kept. */
export function readConfigFile(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

export function writeConfigFile(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}
