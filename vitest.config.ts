import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    // Tests start real servers and processes; two files at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 90_000,
    // expect.poll without options waits 1 s by default: too short for a slow CI machine. A
    // poll returns as soon as it passes, so only a failing test waits this long (the same
    // numbers as devstack's `eventually`, which tests pass explicitly).
    expect: { poll: { timeout: 20_000, interval: 100 } },
  },
});
