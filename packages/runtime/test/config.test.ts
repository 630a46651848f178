// loadConfig: one line naming every bad variable, secrets and URL credentials never shown,
// empty strings as unset; the port, url and duration helpers.
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { baseConfigShape, ConfigError, duration, loadConfig, port, url } from "../src/index.js";

const shape = {
  ...baseConfigShape,
  DEMO_PORT: port(7000),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  SESSION_TTL: duration("15m"),
  SERVICE_SECRET: z.string().min(16),
};
const valid = { DATABASE_URL: "postgres://db/x", SERVICE_SECRET: "s".repeat(16) };

const errorOf = (env: Record<string, string | undefined>): ConfigError => {
  try {
    loadConfig(shape, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
};

describe("loadConfig", () => {
  it("applies the defaults and parses what is set", () => {
    const config = loadConfig(shape, { ...valid, DEMO_PORT: "7100", SESSION_TTL: "90d", LOG_LEVEL: "debug" });
    expect(config).toMatchObject({ HOST: "127.0.0.1", DEMO_PORT: 7100, SESSION_TTL: 90 * 86_400_000, LOG_LEVEL: "debug", SHUTDOWN_GRACE_MS: 10_000 });
    expect(loadConfig(shape, valid)).toMatchObject({ DEMO_PORT: 7000, SESSION_TTL: 15 * 60_000 });
  });

  it("names every bad variable in one line", () => {
    const err = errorOf({ DEMO_PORT: "abc", SESSION_TTL: "soon", LOG_LEVEL: "loud" });
    expect(err.name).toBe("ConfigError");
    expect(err.message).not.toContain("\n");
    expect(err.message).toMatch(/^invalid environment: /);
    for (const name of ["DEMO_PORT", "SESSION_TTL", "LOG_LEVEL", "DATABASE_URL", "SERVICE_SECRET"]) expect(err.message).toContain(`${name}:`);
    // Not a number at all: loadConfig's own wording (zod's "expected number, received NaN" says little).
    expect(err.message).toContain('DEMO_PORT: must be a number (got "abc")');
    expect(err.message).toContain('SESSION_TTL: must be a duration such as "500ms", "30s", "15m", "12h" or "90d" (got "soon")');
    expect(err.message).toContain("DATABASE_URL: is required (unset)");
  });

  it("counts empty strings as unset", () => {
    expect(errorOf({ ...valid, DATABASE_URL: "" }).message).toBe("invalid environment: DATABASE_URL: is required (unset)");
    expect(loadConfig(shape, { ...valid, DEMO_PORT: "" }).DEMO_PORT).toBe(7000);
  });

  it("says 'must be a number' for a number it cannot read", () => {
    expect(errorOf({ ...valid, SHUTDOWN_GRACE_MS: "ten" }).message).toBe('invalid environment: SHUTDOWN_GRACE_MS: must be a number (got "ten")');
  });

  it("refuses a port out of range and a URL of another protocol", () => {
    expect(errorOf({ ...valid, DEMO_PORT: "70000" }).message).toContain("DEMO_PORT: must be a port number");
    expect(errorOf({ ...valid, DATABASE_URL: "mysql://db/x" }).message).toContain("DATABASE_URL: must be a URL (postgres: or postgresql:)");
    expect(errorOf({ ...valid, DATABASE_URL: "not a url" }).message).toContain("DATABASE_URL: must be a URL");
  });

  it("never shows a secret's value, nor a URL's credentials", () => {
    const err = errorOf({ SERVICE_SECRET: "short-secret", DATABASE_URL: "mysql://user:hunter2@db/x" });
    expect(err.message).toContain("SERVICE_SECRET: ");
    expect(err.message).toContain('(got "<redacted>")');
    expect(err.message).not.toContain("short-secret");
    expect(err.message).not.toContain("hunter2");
    expect(err.message).toContain("mysql://<credentials>@db/x");
  });

  it("shortens a long value", () => {
    const err = errorOf({ ...valid, LOG_LEVEL: "x".repeat(200) });
    expect(err.message).toContain(`"${"x".repeat(77)}..."`);
  });
});

describe("duration", () => {
  const parse = (v: string) => z.object({ D: duration("1s") }).safeParse({ D: v });
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["15m", 900_000],
    ["12h", 43_200_000],
    ["90d", 7_776_000_000],
    [" 2s ", 2_000],
    ["0s", 0],
  ])("%s is %i ms", (text, ms) => {
    expect(parse(text)).toMatchObject({ success: true, data: { D: ms } });
  });

  it.each(["", "5", "1.5s", "-1s", "5 minutes", "1w", "s"])("refuses %j", (text) => {
    expect(parse(text).success).toBe(false);
  });

  it("the default is parsed too", () => {
    expect(z.object({ D: duration("2m") }).parse({})).toEqual({ D: 120_000 });
  });
});
