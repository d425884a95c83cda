#!/usr/bin/env node
// The `catprobe` bin: runs the TypeScript CLI through tsx.
import { tsImport } from "tsx/esm/api";

await tsImport("../cli/main.ts", import.meta.url);
