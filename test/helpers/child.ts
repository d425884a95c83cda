// Runs a snippet of ESM code in a child Node process under tsx, for checks that a piece of code
// leaves nothing open: a process whose handles are all released exits on its own.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** stdout, and exitedMs: from the child's last output to its exit (Infinity if killed at guardMs). */
export function runChild(code: string, args: string[], guardMs: number): Promise<{ stdout: string; exitedMs: number }> {
  return new Promise((resolve) => {
    const argv = ["--import", "tsx", "--input-type=module", "-e", code, ...args];
    // stderr is inherited so that a failing child explains itself in the test output.
    const child = spawn(process.execPath, argv, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    let lastOutput = Date.now();
    const guard = setTimeout(() => child.kill("SIGKILL"), guardMs);
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      lastOutput = Date.now();
    });
    child.on("exit", (status) => {
      clearTimeout(guard);
      resolve({ stdout, exitedMs: status === 0 ? Date.now() - lastOutput : Infinity });
    });
  });
}

/** Sends `signal` to a server process the tests started and resolves once it has exited. */
export async function endProcess(child: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill(signal);
  await exited;
}
