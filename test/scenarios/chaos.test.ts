// The chaos run, short and seeded (npm run chaos is the long one, docs/operations.md
// "Chaos run"): the platform on its own PostgreSQL, NATS and Redis (the run restarts them),
// a few kiosks selling, streaming telemetry and executing commands, faults drawn from the
// seed for 45 s — kinds first, so a short run still meets kills, restarts, provider faults
// and network faults — then every invariant must pass. Bounds come from the run's settings
// (settleBoundMs, onlineBoundMs), not from this machine's speed.
import { describe, expect, it } from "vitest";
import { onlineBoundMs, runChaos, settleBoundMs } from "../../packages/devstack/src/chaos/run.js";

const minutes = 0.75;
/** Starting ~10 processes on a busy machine, the faults, the settling, stopping: a ceiling, not a measurement. */
const timeout = 240_000 + minutes * 60_000 + settleBoundMs + onlineBoundMs;

describe("chaos run (seeded, short)", () => {
  it(
    "every invariant holds after faults under live load",
    async () => {
      const result = await runChaos({ minutes, seed: 3, kiosks: 4, sellers: 2, replicas: 1, links: 2, log: (line) => console.log(line) });
      expect(result.faults.length).toBeGreaterThan(0);
      for (const f of result.faults) expect(f.error, `${f.kind} ${f.target} ran`).toBeUndefined();
      for (const i of result.invariants) expect(i.pass, `${i.name}: ${i.detail}`).toBe(true);
      expect(result.invariants.map((i) => i.name)).toEqual([
        "no seat sold twice",
        "no unit sold twice",
        "stock reconciles with orders",
        "seats reconcile with orders",
        "ledger sums to zero per currency",
        "every captured payment: one completed order, or refunded",
        "every order reached a terminal state",
        "no order completed without its payment",
        "every command executed at most once per kiosk",
        "every non-expired command reached a final state",
        "telemetry acknowledged = stored",
        "every kiosk back ONLINE",
        "no consumer stuck",
      ]);
    },
    timeout,
  );
});
