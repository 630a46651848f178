// Fails when the code in packages/proto/src/gen is not what `buf generate` makes
// from proto/ (someone edited generated code, or forgot to regenerate).
import { execFileSync } from "node:child_process";

const run = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
run("npx", ["--no-install", "buf", "generate"]);
let changed;
try {
  changed = run("git", ["status", "--porcelain", "--", "packages/proto/src/gen"]).trim();
} catch {
  console.log("check-generated: not a git checkout; regenerated without comparing");
  process.exit(0);
}
if (changed) {
  console.error(`check-generated: packages/proto/src/gen differs from \`buf generate\` output:\n${changed}\nRun \`npm run generate\` and commit the result.`);
  process.exit(1);
}
console.log("check-generated: generated code is up to date");
