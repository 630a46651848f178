// The faults a chaos run injects, drawn from a seeded PRNG: every kind of fault once in a
// shuffled order, each time at the next of its targets (shuffled too), round after round
// until the time is up (so a short run still meets many kinds). One fault at a time: injected, held, ended, then the run
// waits for the platform to be whole again (every process ready, every kiosk connected)
// and records how long that took, and pauses before the next.
import type { ChaosPlatform, Instance } from "./platform.js";
import type { Rng } from "./prng.js";

export interface FaultRecord {
  kind: string;
  target: string;
  detail: string;
  /** ms since the run's start */
  at: number;
  /** How long the fault itself lasted (until it was ended, or the process was started again). */
  heldMs: number;
  /** From the fault's end until every process was ready and every kiosk connected; undefined: not within the bound. */
  recoveredMs: number | undefined;
  error?: string;
}

interface Fault {
  kind: string;
  target: string;
  /** Injects, holds and ends the fault; returns what was done. */
  run(r: Rng): Promise<string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function catalogue(platform: ChaosPlatform): Fault[] {
  const faults: Fault[] = [];
  const kill = (instance: Instance): Fault => ({
    kind: "sigkill",
    target: instance.name,
    run: async (r) => {
      await instance.kill();
      const down = r.int(200, 3_000);
      await sleep(down);
      await platform.restart(instance);
      return `SIGKILL, started again after ${down} ms`;
    },
  });
  for (const instance of platform.instances()) faults.push(kill(instance));
  faults.push(
    {
      kind: "restart",
      target: "postgres",
      run: async (r) => {
        const down = r.int(500, 3_000);
        await platform.restartPostgres(down);
        return `stopped, started after ${down} ms`;
      },
    },
    {
      kind: "restart",
      target: "nats",
      run: async (r) => {
        const down = r.int(500, 3_000);
        await platform.restartNats(down);
        return `stopped, started after ${down} ms (JetStream store kept)`;
      },
    },
    {
      kind: "restart",
      target: "redis",
      run: async (r) => {
        const down = r.int(500, 3_000);
        await platform.restartRedis(down);
        return `stopped, started after ${down} ms`;
      },
    },
    {
      kind: "flushall",
      target: "redis",
      run: async () => {
        const { Redis } = await import("ioredis");
        const redis = new Redis(platform.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await redis.connect();
          await redis.flushall();
        } finally {
          redis.disconnect();
        }
        return "FLUSHALL: presence, revocations, rate limits gone";
      },
    },
  );
  const provider = (kind: string, path: string, body: (r: Rng) => Record<string, unknown>): Fault => ({
    kind,
    target: "provider",
    run: async (r) => {
      const b = body(r);
      await platform.providerControl(path, b);
      return JSON.stringify(b);
    },
  });
  faults.push(
    provider("api-500", "/control/api-faults", (r) => ({ mode: "error_500", count: r.int(3, 10) })),
    provider("api-timeout", "/control/api-faults", (r) => ({ mode: "hang", count: r.int(1, 3) })),
    // Late: some within PAYMENT_CONFIRM_TIMEOUT, some after it (a late capture, refunded).
    provider("webhook-late", "/control/next-charges", (r) => ({ behavior: "delay_webhook", count: r.int(2, 5), delay_ms: r.int(2_000, 15_000) })),
    provider("webhook-twice", "/control/next-charges", (r) => ({ behavior: "duplicate_webhooks", count: r.int(2, 6) })),
    provider("webhook-out-of-order", "/control/next-charges", (r) => ({ behavior: "out_of_order", count: r.int(3, 6) })),
    provider("charge-never-confirmed", "/control/next-charges", (r) => ({ behavior: "timeout", count: r.int(1, 3) })),
  );
  for (const proxy of platform.proxies.values()) {
    faults.push(
      {
        kind: "latency",
        target: `→${proxy.name}`,
        run: async (r) => {
          const ms = r.int(100, 1_500);
          const hold = r.int(2_000, 8_000);
          proxy.setMode({ kind: "latency", ms });
          await sleep(hold);
          proxy.setMode({ kind: "pass" });
          return `${ms} ms each way for ${hold} ms`;
        },
      },
      {
        kind: "reset",
        target: `→${proxy.name}`,
        run: async (r) => {
          const hold = r.int(200, 2_000);
          proxy.setMode({ kind: "reset" });
          await sleep(hold);
          proxy.setMode({ kind: "pass" });
          return `open connections reset, new ones reset for ${hold} ms`;
        },
      },
      {
        kind: "blackhole",
        target: `→${proxy.name}`,
        run: async (r) => {
          const hold = r.int(1_000, 6_000);
          proxy.setMode({ kind: "blackhole" });
          await sleep(hold);
          proxy.setMode({ kind: "pass" });
          return `nothing through for ${hold} ms`;
        },
      },
    );
  }
  return faults;
}

export interface FaultLoopOptions {
  until: number;
  startedAt: number;
  /** Pause between one fault's recovery and the next fault. */
  gapMs: [number, number];
  /** How long to wait for the platform to be whole again after a fault. */
  recoveryBoundMs: number;
  whole: () => Promise<boolean>;
  log: (line: string) => void;
  /** Only these kinds (all when empty). */
  kinds?: string[];
}

export async function runFaults(platform: ChaosPlatform, r: Rng, options: FaultLoopOptions): Promise<FaultRecord[]> {
  const all = catalogue(platform).filter((f) => !options.kinds?.length || options.kinds.includes(f.kind));
  const records: FaultRecord[] = [];
  // Rounds of kinds in a shuffled order, each kind taking the next of its own shuffled
  // targets: a short run meets as many kinds as it has time for, a long one every target.
  const targets = new Map<string, Fault[]>();
  for (const f of all) targets.set(f.kind, [...(targets.get(f.kind) ?? []), f]);
  const queues = new Map<string, Fault[]>();
  let round: string[] = [];
  while (Date.now() < options.until) {
    if (round.length === 0) round = r.shuffle([...targets.keys()]);
    const kind = round.shift()!;
    let queue = queues.get(kind);
    if (!queue?.length) queues.set(kind, (queue = r.shuffle(targets.get(kind)!)));
    const fault = queue.shift()!;
    const at = Date.now();
    const record: FaultRecord = { kind: fault.kind, target: fault.target, detail: "", at: at - options.startedAt, heldMs: 0, recoveredMs: undefined };
    options.log(`fault: ${fault.kind} ${fault.target}`);
    try {
      record.detail = await fault.run(r);
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
      options.log(`fault ${fault.kind} ${fault.target} failed to run: ${record.error}`);
    }
    const ended = Date.now();
    record.heldMs = ended - at;
    for (;;) {
      if (await options.whole().catch(() => false)) {
        record.recoveredMs = Date.now() - ended;
        break;
      }
      if (Date.now() - ended > options.recoveryBoundMs) break;
      await sleep(250);
    }
    options.log(`  ${record.detail}; whole again ${record.recoveredMs === undefined ? `NOT within ${options.recoveryBoundMs} ms` : `after ${record.recoveredMs} ms`}`);
    records.push(record);
    if (Date.now() >= options.until) break;
    await sleep(r.int(options.gapMs[0], options.gapMs[1]));
  }
  return records;
}
