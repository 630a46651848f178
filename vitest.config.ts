import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";

/**
 * The slowest files' durations in seconds (a green CI run on the 2-core machine, rounded). On a fresh
 * clone vitest knows no durations and runs files in order of size, so a long file could start
 * last and keep one worker busy while the other sits idle; started first, the long files overlap
 * the many short ones. Only the order changes: refresh the numbers when the slow files change.
 */
const slowFiles: Record<string, number> = {
  "services/fleet/test/rollouts-sales.test.ts": 122,
  "test/scenarios/chaos.test.ts": 66,
  "test/e2e/web.test.ts": 59,
  "test/e2e/admin-pages.test.ts": 59,
  "test/scenarios/authorization-matrix.test.ts": 58,
  "test/scenarios/degradation.test.ts": 56,
  "test/scenarios/restore-drill.test.ts": 52,
  "services/link/test/link.test.ts": 49,
  "services/payments/test/provider.test.ts": 48,
  "services/notifications/test/policy.test.ts": 46,
  "services/orders/test/abandoned.test.ts": 42,
  "services/orders/test/expiry.test.ts": 39,
  "services/notifications/test/group-interval.test.ts": 35,
  "services/auth/test/service.test.ts": 31,
  "services/notifications/test/commerce.test.ts": 30,
  "packages/kiosk-sdk/test/selling.test.ts": 30,
  "services/notifications/test/notifications.test.ts": 29,
  "services/notifications/test/storm.test.ts": 29,
  "services/notifications/test/service-health.test.ts": 28,
  "services/auth/test/client-addresses.test.ts": 28,
  "test/scenarios/fleet-operations.test.ts": 28,
  "test/e2e/releases.test.ts": 27,
  "services/orders/test/orders.test.ts": 27,
  "test/e2e/fleet-query.test.ts": 27,
  "services/fleet/test/rollouts.test.ts": 26,
  "services/auth/test/sessions.test.ts": 26,
  "test/deploy/metrics-exist.test.ts": 26,
  "test/scenarios/commands.test.ts": 25,
};

/**
 * Longest first: vitest's own durations from an earlier run on this machine when it has them,
 * else the list above; files known to neither follow in vitest's default order.
 */
class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    const seconds = (spec: TestSpecification): number | undefined => {
      const path = relative(this.ctx.config.root, spec.moduleId).replaceAll("\\", "/");
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${path}`);
      return cached ? cached.duration / 1000 : slowFiles[path];
    };
    const known = base.filter((spec) => seconds(spec) !== undefined).sort((a, b) => seconds(b)! - seconds(a)!);
    return [...known, ...base.filter((spec) => seconds(spec) === undefined)];
  }
}

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    // Tests start real servers and processes; two files at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    sequence: { sequencer: SlowFirstSequencer },
    testTimeout: 30_000,
    hookTimeout: 90_000,
    // expect.poll without options waits 1 s by default: too short for a slow CI machine. A
    // poll returns as soon as it passes, so only a failing test waits this long (the same
    // numbers as devstack's `eventually`, which tests pass explicitly).
    expect: { poll: { timeout: 20_000, interval: 100 } },
  },
});
