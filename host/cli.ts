// The entry DESIGN.md names (`npx tsx host/cli.ts <command>`). The command layer sits above
// host/ and simulator/, in cli/; this file only loads it.
import "../cli/main.js";
