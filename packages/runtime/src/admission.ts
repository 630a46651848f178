// Admission control for calls that are expensive to open and arrive in storms (link:
// 100,000 kiosks reconnecting after a replica died). At most `concurrency` calls are
// opening at once and at most `queue` wait for a turn, in order; past that a call is
// refused at once, before its credential is even checked, with UNAVAILABLE and
// `grpc-retry-pushback-ms` (when the caller's turn will be, at the rate calls are opening now:
// after the queue has drained and the callers refused before it have had theirs; 0.5–30 s) and
// `retry-after`; clients come back then (gRPC's retry design: the pushback is the delay; the
// kiosk SDK adds at most a tenth). A storm thus degrades into waiting, in the queue or at the
// client, instead of timeouts, errors or memory growth.
import { Code, ConnectError } from "@connectrpc/connect";
import { Counter, Gauge, type Registry } from "prom-client";

export interface AdmissionOptions {
  /** Calls opening at once. */
  concurrency: number;
  /** Calls waiting for a turn; past this they are refused with a pushback. */
  queue: number;
  /**
   * Calls assumed to open per second until the rate is measured (default twice the concurrency).
   * A herd is refused in its first second, before anything is measured: its turns are spread at
   * this rate (1.5 times it), so a guess below what the replica manages leaves it idle while the
   * refused wait; one above sends them back early, into the queue (or to be refused again, with a
   * measured turn).
   */
  rate?: number;
}

export interface Admission {
  /**
   * A turn: resolves with its release when the call may open, or is a ConnectError
   * (UNAVAILABLE with grpc-retry-pushback-ms) when the queue is full. The release is
   * idempotent; call it once the call is open or over.
   */
  enter(): Promise<() => void> | ConnectError;
  /** Opening and waiting now. */
  readonly opening: number;
  readonly waiting: number;
  registerMetrics(registry: Registry): void;
}

export function createAdmission(o: AdmissionOptions): Admission {
  let opening = 0;
  const waiters: (() => void)[] = [];
  // Calls opened per second, smoothed (what the pushback divides the queue by).
  let rate = 0;
  let counted = 0;
  let since = Date.now();
  // The latest turn handed to a refused caller (ms since the epoch).
  let appointment = 0;
  const refused = new Counter({ name: "grpc_admission_refused_total", help: "Calls refused with UNAVAILABLE and a retry pushback because the accept queue was full.", registers: [] });
  const gauges = [
    new Gauge({ name: "grpc_admission_opening", help: "Calls opening now (at most the admission concurrency).", registers: [], collect() { this.set(opening); } }),
    new Gauge({ name: "grpc_admission_waiting", help: "Calls waiting in the accept queue for a turn to open.", registers: [], collect() { this.set(waiters.length); } }),
  ];

  const measure = () => {
    const now = Date.now();
    const seconds = (now - since) / 1000;
    if (seconds >= 0.5) {
      if (counted > 0) rate = rate === 0 ? counted / seconds : 0.7 * rate + (0.3 * counted) / seconds;
      counted = 0;
      since = now;
    }
  };

  const turn = (): (() => void) => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      counted++;
      measure();
      const next = waiters.shift();
      if (next) next();
      else opening--;
    };
  };

  return {
    enter() {
      // The rate is measured from when work begins: a replica idle until a storm hits it must
      // not count the idle time (it would send its first refused callers away for far too long).
      if (opening === 0 && waiters.length === 0 && counted === 0) since = Date.now();
      if (opening < o.concurrency) {
        opening++;
        return Promise.resolve(turn());
      }
      if (waiters.length >= o.queue) {
        measure();
        refused.inc();
        // The rate calls open now; before anything is measured (the herd's first second) `rate`
        // (default twice the concurrency: a turn under 500 ms); once measured, at least 50 a second.
        const perSecond = rate > 0 ? Math.max(rate, 50) : (o.rate ?? o.concurrency * 2);
        // Each caller refused gets a turn of its own after the queue's drain time, 1/rate after
        // the one refused before it: a herd refused together (100,000 kiosks of a dead replica)
        // is sent back spread over as long as opening it takes, and comes back about as fast as
        // calls open, instead of all at once after the drain time, to be refused again in waves
        // (a refusal costs CPU too: 500,000 of them in a 100k storm). The pushback is the turn:
        // the client comes back then (the SDK adds at most a tenth; the turns are the spread).
        const now = Date.now();
        // Turns are handed out 1.5 times as fast as calls open: a replica measuring a cold start
        // underestimates its rate, and should rather refuse a few callers twice than wait idle
        // for callers told to come back later (the 50k storm at load 11 paced at the measured
        // rate took 111 s with 0.9 pushbacks per kiosk).
        appointment = Math.max(appointment, now + (waiters.length / perSecond) * 1000) + 1000 / (1.5 * perSecond);
        const ms = Math.round(Math.min(30_000, Math.max(500, appointment - now)));
        return new ConnectError(`too many connections opening at once (${opening} opening, ${waiters.length} waiting); retry in ${ms} ms`, Code.Unavailable, {
          "grpc-retry-pushback-ms": String(ms),
          "retry-after": String(Math.ceil(ms / 1000)),
        });
      }
      // The slot passes straight from the call that releases it to the next in line.
      return new Promise<() => void>((resolve) => waiters.push(() => resolve(turn())));
    },
    get opening() {
      return opening;
    },
    get waiting() {
      return waiters.length;
    },
    registerMetrics(registry) {
      registry.registerMetric(refused);
      gauges.forEach((g) => registry.registerMetric(g));
    },
  };
}
