// `npm run chaos -- --minutes M --seed S`: the platform under live load and random faults,
// then its invariants (docs/operations.md, "Chaos run"). Exits 0 when every invariant passed.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { repoRoot } from "../testing.js";
import { runChaos } from "./run.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    seed: { type: "string" },
    kiosks: { type: "string", default: "20" },
    sellers: { type: "string", default: "3" },
    replicas: { type: "string", default: "2" },
    links: { type: "string", default: "3" },
    faults: { type: "string" },
    report: { type: "string" },
  },
});

function int(name: string, raw: string | undefined, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`chaos: --${name} must be an integer from ${min} to ${max} (got ${raw})`);
    process.exit(2);
  }
  return v;
}

const minutes = Number(values.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) {
  console.error(`chaos: --minutes must be a positive number of minutes (got ${values.minutes})`);
  process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int("seed", values.seed, 0, 2 ** 32 - 1);
const result = await runChaos({
  minutes,
  seed,
  kiosks: int("kiosks", values.kiosks, 1, 2000),
  sellers: int("sellers", values.sellers, 0, 50),
  replicas: int("replicas", values.replicas, 1, 4),
  links: int("links", values.links, 1, 8),
  ...(values.faults ? { kinds: values.faults.split(",").map((k) => k.trim()) } : {}),
  reportFile: values.report ?? join(repoRoot, ".data", "chaos", `report-${seed}.md`),
});
console.log("");
console.log(result.report);
process.exit(result.pass ? 0 : 1);
