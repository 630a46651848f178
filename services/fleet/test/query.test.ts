// The fleet query language through QueryKiosks, with real auth and PostgreSQL: what it
// matches, how it sorts and totals, where it says a query is wrong, who may use it.
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { jetstream } from "@nats-io/jetstream";
import { OrderCompletedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { closeNats, connectNats, createLogger, ensureStream, ordersSubjects } from "@adminkiosk/runtime";
import { createDatabase, eventually, startTestService, type StartedService } from "@adminkiosk/devstack";
import { clientFor, failure, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

let auth: AuthFixture;
let fleet: StartedService;
let db: pg.Client;
let admin: string;
let viewer: string;
let otherViewer: string;

// A small fleet with known facts: [id, group, tags, lat, lon, app, connected, paper, cpu, never seen]
const fixture: [string, string, string[], number, number, string, boolean, number | null, number | null][] = [
  ["mad-01", "madrid-airport", ["airport", "indoor"], 40.4936, -3.5668, "2.3.1", true, 15, 20],
  ["mad-02", "madrid-airport", ["airport"], 40.4912, -3.5931, "2.3.4", true, 45, 60],
  ["mad-03", "madrid-airport", ["airport"], 40.4719, -3.5626, "2.2.9", true, 8, 90],
  ["mad-04", "madrid-airport", [], 40.4950, -3.5700, "2.3.0", false, 12, 30],
  ["mad-05", "madrid-center", ["indoor"], 40.4168, -3.7038, "2.10.0", true, 70, 10],
  ["lis-01", "lisbon", ["airport"], 38.7742, -9.1342, "2.3.1", true, 18, 40],
  ["lis-02", "lisbon", [], 38.7223, -9.1393, "2.9.5", true, 95, 50],
  ["new-01", "", [], 50.087, 14.421, "", false, null, null],
];

beforeAll(async () => {
  auth = await startAuth();
  const databaseUrl = await createDatabase(inject("infra").databaseUrl, "fleet");
  fleet = await startTestService("fleet", {
    DATABASE_URL: databaseUrl,
    REDIS_URL: auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    LINK_EVENTS_CONSUMER: `fleet-query-test-${process.pid}`,
    ORDERS_EVENTS_CONSUMER: `fleet-query-orders-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.url,
  });
  admin = await auth.adminToken();
  viewer = (await auth.userWithRole(Role.VIEWER)).accessToken;
  otherViewer = (await auth.userWithRole(Role.VIEWER)).accessToken;
  const kiosks = clientFor(KioskService, fleet.url, admin);
  for (const [kioskId, groupId, tags, latitude, longitude] of fixture) {
    await kiosks.createKiosk({ kiosk: { kioskId, name: `Kiosk ${kioskId}`, groupId, tags, location: { latitude, longitude, address: "" } } });
  }
  // What link's events would have told fleet (versions, presence, the latest sample).
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  for (const [kioskId, , , , , app, connected, paper, cpu] of fixture) {
    if (paper === null) continue;
    const state = { cpuPercent: cpu, temperatureCelsius: 30, paperLevelPercent: paper, cashLevelMinor: "1000", printerStatus: "OK", scannerStatus: "OK", errors: [] };
    await db.query(
      "UPDATE fleet.kiosks SET app_version = $2, connected = $3, last_seen_at = now() - interval '5 minutes', state = $4, state_sampled_at = now() WHERE kiosk_id = $1",
      [kioskId, app, connected, state],
    );
  }
});
afterAll(async () => {
  await db?.end();
  await fleet?.stop();
  await auth?.stop();
});

const queryAs = (token?: string) => clientFor(FleetQueryService, fleet.url, token);
const ids = async (query: string) => (await queryAs(viewer).queryKiosks({ query })).kiosks.map((k) => k.kioskId);

describe("filters", () => {
  it("matches registry fields, status, versions, tags and telemetry", async () => {
    expect(await ids("group = madrid-airport and app = 2.3 and paper < 20")).toEqual(["mad-01", "mad-04"]);
    expect(await ids("group = madrid-airport app = 2.3 paper < 20 status = online")).toEqual(["mad-01"]);
    expect(await ids("status = alerting")).toEqual(["mad-03"]); // connected, paper below 10 %
    expect(await ids("status = provisioned")).toEqual(["new-01"]);
    expect(await ids("status in (offline, provisioned)")).toEqual(["mad-04", "new-01"]);
    expect(await ids("tag = airport and not tag = indoor")).toEqual(["lis-01", "mad-02", "mad-03"]);
    expect(await ids("tag in (indoor) or group = lisbon")).toEqual(["lis-01", "lis-02", "mad-01", "mad-05"]);
    expect(await ids("app >= 2.9")).toEqual(["lis-02", "mad-05"]); // 2.10.0 is newer than 2.9
    expect(await ids("name ~ 'LIS'")).toEqual(["lis-01", "lis-02"]);
    expect(await ids("cpu >= 50 and connected")).toEqual(["lis-02", "mad-02", "mad-03"]);
    expect(await ids("last_seen_age > 1m and last_seen_age < 1h and group = lisbon")).toEqual(["lis-01", "lis-02"]);
    expect(await ids("last_seen_age < 1m")).toEqual([]);
  });

  it("by location: a radius in km and a bounding box", async () => {
    // Barajas airport: every madrid-airport kiosk is within 5 km, the city centre 15 km away is not.
    expect(await ids("near(40.4936, -3.5668, 5)")).toEqual(["mad-01", "mad-02", "mad-03", "mad-04"]);
    expect(await ids("near(40.4936, -3.5668, 20)")).toContain("mad-05");
    expect(await ids("within(38, -10, 39, -9)")).toEqual(["lis-01", "lis-02"]);
  });

  it("values travel as parameters: a quote in a value is only a value", async () => {
    expect(await ids(`name = "x'; DROP TABLE fleet.kiosks; --"`)).toEqual([]);
    expect(await ids("group = lisbon")).toHaveLength(2);
  });
});

describe("commerce facts", () => {
  it("sales in the last hour and day, from orders' completed-order events", async () => {
    const nc = await connectNats(inject("infra").natsUrl, "fleet-query-test", createLogger("test", "warn"));
    try {
      await ensureStream(nc, ordersSubjects.stream);
      const js = jetstream(nc);
      const sale = (orderId: string, kioskId: string, totalMinor: bigint) =>
        js.publish(
          ordersSubjects.order(orderId, "completed"),
          toBinary(OrderCompletedEventSchema, create(OrderCompletedEventSchema, { order: { orderId, kioskId, totalMinor, currency: "EUR", completeTime: timestampNow() }, time: timestampNow() })),
          { msgID: `fleet-query-test-${orderId}` },
        );
      const run = `${process.pid}-${Date.now()}`;
      await sale(`q-${run}-1`, "mad-02", 450n);
      await sale(`q-${run}-2`, "mad-02", 300n);
      await sale(`q-${run}-3`, "lis-01", 1200n);
      await expect.poll(() => ids("sales_1h > 0"), eventually).toEqual(["lis-01", "mad-02"]);
      expect(await ids("group = madrid-airport and sales_1h = 0")).toEqual(["mad-01", "mad-03", "mad-04"]);
      const res = await queryAs(viewer).queryKiosks({ query: "sales_24h > 0 | sort revenue_24h desc | stats sum(revenue_24h), sum(sales_24h)" });
      expect(res.kiosks.map((k) => k.kioskId)).toEqual(["lis-01", "mad-02"]);
      expect(res.stats!.groups[0]!.values.map((v) => v.value)).toEqual([1950, 3]);
    } finally {
      await closeNats(nc);
    }
  });
});

describe("sorting and aggregation", () => {
  it("sorts the kiosks and totals per group in one query", async () => {
    const res = await queryAs(viewer).queryKiosks({ query: "tag = airport | sort paper desc | stats count(), avg(paper), min(cpu), max(cpu), p50(cpu) by group" });
    expect(res.kiosks.map((k) => k.kioskId)).toEqual(["mad-02", "lis-01", "mad-01", "mad-03"]);
    expect(res.totalSize).toBe(4);
    expect(res.stats?.groupBy).toEqual(["group"]);
    expect(res.stats?.aggregates).toEqual(["count()", "avg(paper)", "min(cpu)", "max(cpu)", "p50(cpu)"]);
    const rows = res.stats!.groups.map((g) => [...g.keys, ...g.values.map((v) => v.value)]);
    expect(rows).toEqual([
      ["lisbon", 1, 18, 40, 40, 40],
      ["madrid-airport", 3, (15 + 45 + 8) / 3, 20, 90, 60],
    ]);
  });

  it("sorts groups by an aggregate, groups by several fields, percentiles", async () => {
    const res = await queryAs(viewer).queryKiosks({ query: "group != '' | stats count(), p95(cpu) by group, status | sort count() desc, group" });
    expect(res.stats!.groups.map((g) => [...g.keys, g.values[0]!.value])).toEqual([
      ["lisbon", "online", 2],
      ["madrid-airport", "online", 2],
      ["madrid-airport", "alerting", 1],
      ["madrid-airport", "offline", 1],
      ["madrid-center", "online", 1],
    ]);
    const p95 = res.stats!.groups[0]!.values[1]!.value!;
    expect(p95).toBeCloseTo(40 + 0.95 * (50 - 40)); // percentile_cont over lisbon's 40 and 50
  });

  it("a total without groups; a kiosk without the value counts in count() but not in avg()", async () => {
    const res = await queryAs(viewer).queryKiosks({ query: "| stats count(), avg(paper)" });
    expect(res.stats!.groups).toHaveLength(1);
    expect(res.stats!.groups[0]!.values.map((v) => v.value)).toEqual([8, (15 + 45 + 8 + 12 + 70 + 18 + 95) / 7]);
  });

  it("kiosks without the value sort last, ascending or descending; an age sorts oldest last", async () => {
    expect((await ids("| sort paper desc")).slice(0, 2)).toEqual(["lis-02", "mad-05"]);
    expect((await ids("| sort paper desc")).at(-1)).toBe("new-01");
    expect((await ids("| sort paper")).at(-1)).toBe("new-01");
    expect(await ids("paper >= 45 | sort paper desc")).toEqual(["lis-02", "mad-05", "mad-02"]);
    expect((await ids("| sort last_seen_age desc")).at(-1)).toBe("new-01");
  });

  it("pages through a sorted match", async () => {
    const seen: string[] = [];
    let pageToken = "";
    do {
      const res = await queryAs(viewer).queryKiosks({ query: "app != '' | sort app desc", pageSize: 3, pageToken });
      expect(res.totalSize).toBe(7);
      seen.push(...res.kiosks.map((k) => k.kioskId));
      pageToken = res.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(["mad-05", "lis-02", "mad-02", "lis-01", "mad-01", "mad-04", "mad-03"]);
    const first = await queryAs(viewer).queryKiosks({ query: "app != ''", pageSize: 3 });
    const other = await failure(queryAs(viewer).queryKiosks({ query: "app = 2.3", pageToken: first.nextPageToken }));
    expect(other.code).toBe(Code.InvalidArgument);
  });
});

describe("malformed queries", () => {
  const cases: [string, string, RegExp][] = [
    ["paper <", "line 1, column 8 (offset 7)", /expected a value for paper, found the end of the query/],
    ["paper < lots", "line 1, column 9 (offset 8)", /expected a number for paper/],
    ["colour = red", "line 1, column 1 (offset 0)", /expected a field or a condition: one of id, name/],
    ["group = madrid and (status = online", "line 1, column 36 (offset 35)", /expected "and", "or" or "\)" to close the "\(" at line 1, column 20/],
    ["group = madrid\n| sort nope", "line 2, column 8 (offset 22)", /expected a field or an aggregate to sort by/],
    ["| stats p95(name)", "line 1, column 13 (offset 12)", /expected a numeric field for p95/],
    ["| sort count() desc", "line 1, column 8 (offset 7)", /an aggregate that the stats stage computes/],
    ["status = sleeping", "line 1, column 10 (offset 9)", /expected one of online, offline, alerting, provisioned for status/],
    ["last_seen_age > soon", "line 1, column 17 (offset 16)", /expected a duration for last_seen_age such as 90s/],
    ["name = 'unclosed", "line 1, column 8 (offset 7)", /expected a closing ' for the string started here/],
    ["near(100, 0, 5)", "line 1, column 6 (offset 5)", /expected a latitude between -90 and 90/],
    ["group = a | limit 0", "line 1, column 19 (offset 18)", /expected a row limit between 1 and 1000/],
    ["stock(5) < 3", "line 1, column 7 (offset 6)", /expected a SKU for stock, such as stock\("SKU-123"\), found "5"/],
    ['stock("x") <', "line 1, column 13 (offset 12)", /expected a value for stock\("x"\), found the end of the query/],
    ["stock < 3", "line 1, column 7 (offset 6)", /expected "\(" and a SKU after stock/],
    ['paper < 5 | sort stock("x y")', "line 1, column 24 (offset 23)", /expected a SKU for stock, such as stock\("SKU-123"\) \(letters, digits/],
    ["alerts(urgent) > 0", "line 1, column 8 (offset 7)", /expected a severity or a rule kind for alerts: one of info, warning, critical, kiosk_offline, low_paper/],
    ["alert(low_paper", "line 1, column 16 (offset 15)", /expected "\)" to close alerts\(, found the end of the query/],
  ];
  it.each(cases)("%j answers InvalidArgument at %s", async (query, position, expected) => {
    const err = await failure(queryAs(viewer).queryKiosks({ query }));
    expect(err.code).toBe(Code.InvalidArgument);
    const violation = err.findDetails(BadRequestSchema)[0]?.fieldViolations[0];
    expect(violation?.field).toBe("query");
    expect(violation?.description).toContain(position);
    expect(violation?.description).toMatch(expected);
  });
});

describe("authorization and saved views", () => {
  it("needs a credential; viewers query", async () => {
    expect((await failure(queryAs().queryKiosks({ query: "" }))).code).toBe(Code.Unauthenticated);
    expect((await queryAs(viewer).queryKiosks({ query: "" })).totalSize).toBe(fixture.length);
    const lang = await queryAs(viewer).getQueryLanguage({});
    expect(lang.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["group", "paper", "status", "app"]));
  });

  it("every field the language describes filters, sorts and groups", async () => {
    const lang = await queryAs(viewer).getQueryLanguage({});
    const sample: Record<string, string> = { text: "'x'", enum: "", number: "0", version: "2.3", tags: "airport", age: "1h", bool: "true" };
    for (const f of lang.fields) {
      const value = f.type === "enum" ? f.values[0] : sample[f.type];
      const op = f.operators[0];
      // A field that takes an argument: with one (stock needs it), and alerts without one too.
      const names = f.argument ? [`${f.name}(${JSON.stringify(f.argumentValues[0] ?? "SKU-1")})`, ...(f.argumentRequired ? [] : [f.name])] : [f.name];
      for (const name of names) {
        const res = await queryAs(viewer).queryKiosks({ query: `${name} ${op} ${value}${f.type === "tags" ? "" : ` | sort ${name} desc | stats count(), max(${f.type === "number" ? name : "cpu"}) by ${name}`}` });
        expect(res.totalSize).toBeGreaterThanOrEqual(0);
      }
    }
    expect(lang.fields.find((f) => f.name === "alerts")?.argumentValues).toEqual(expect.arrayContaining(["critical", "low_paper", "kiosk_offline"]));
  });

  it("a view is its owner's unless shared; only its owner deletes it", async () => {
    const { view: mine } = await queryAs(viewer).createSavedView({ name: "Low paper", query: "paper < 20" });
    const { view: shared } = await queryAs(viewer).createSavedView({ name: "Airports", query: "tag = airport", shared: true });
    expect((await failure(queryAs(viewer).createSavedView({ name: "Low paper", query: "paper < 10" }))).code).toBe(Code.AlreadyExists);
    const bad = await failure(queryAs(viewer).createSavedView({ name: "Broken", query: "paper <" }));
    expect([bad.code, bad.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field]).toEqual([Code.InvalidArgument, "query"]);

    const theirs = (await queryAs(otherViewer).listSavedViews({})).views.map((v) => v.name);
    expect(theirs).toContain("Airports");
    expect(theirs).not.toContain("Low paper");
    expect((await failure(queryAs(otherViewer).getSavedView({ viewId: mine!.viewId }))).code).toBe(Code.NotFound);
    expect((await queryAs(otherViewer).getSavedView({ viewId: shared!.viewId })).view?.query).toBe("tag = airport");
    expect((await failure(queryAs(otherViewer).deleteSavedView({ viewId: shared!.viewId }))).code).toBe(Code.PermissionDenied);
    await queryAs(viewer).deleteSavedView({ viewId: mine!.viewId });
    expect((await queryAs(viewer).listSavedViews({})).views.map((v) => v.name)).toEqual(["Airports"]);
  });
});
