// Bulk actions from a fleet query, with real auth and PostgreSQL: the dry run, the frozen
// set of kiosks, a second admin for the dangerous ones, and the audit trail.
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { BulkActionService, BulkActionState } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { ConfigService } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { createDatabase, eventually, startTestService, type StartedService } from "@adminkiosk/devstack";
import { clientFor, failure, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

let auth: AuthFixture;
let fleet: StartedService;
let admin: string;
let secondAdmin: string;
let secondAdminId: string;
let viewer: string;
let databaseUrl: string;

beforeAll(async () => {
  auth = await startAuth();
  fleet = await startTestService("fleet", {
    DATABASE_URL: (databaseUrl = await createDatabase(inject("infra").databaseUrl, "fleet")),
    REDIS_URL: auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    LINK_EVENTS_CONSUMER: `fleet-bulk-test-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.url,
    BULK_APPROVAL_OVER: "3",
  });
  admin = await auth.adminToken();
  const second = await auth.userWithRole(Role.ADMIN);
  secondAdmin = second.accessToken;
  secondAdminId = second.userId;
  viewer = (await auth.userWithRole(Role.VIEWER)).accessToken;
});
afterAll(async () => {
  await fleet?.stop();
  await auth?.stop();
});

const bulkAs = (token: string) => clientFor(BulkActionService, fleet.url, token);
const kiosks = () => clientFor(KioskService, fleet.url, admin);
const matching = async (query: string) => (await clientFor(FleetQueryService, fleet.url, viewer).queryKiosks({ query, pageSize: 1000 })).kiosks.map((k) => k.kioskId);
const createKiosks = async (prefix: string, n: number, extra: { groupId?: string; tags?: string[] } = {}) => {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
  for (const kioskId of ids) await kiosks().createKiosk({ kiosk: { kioskId, name: `Kiosk ${kioskId}`, groupId: extra.groupId ?? prefix, tags: extra.tags ?? [] } });
  return ids;
};

describe("dry run, then run", () => {
  it("a tag change: the dry run counts and samples, changes nothing; the run touches exactly that many", async () => {
    const ids = await createKiosks("tagged", 5, { tags: ["old"] });
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({ query: "group = tagged", change: { change: { case: "tags", value: { add: ["new"], remove: ["old"] } } } });
    expect(plan).toMatchObject({ state: BulkActionState.PLANNED, dangerous: false, kioskCount: 5 });
    expect(plan!.sample.map((s) => s.kioskId)).toEqual(ids);
    expect(plan!.sample[0]!.change).toBe("tags: old → new");
    expect(await matching("group = tagged and tag = new")).toEqual([]); // nothing changed yet

    const { bulkAction: ran } = await bulkAs(admin).runBulkAction({ bulkActionId: plan!.bulkActionId });
    expect(ran).toMatchObject({ state: BulkActionState.DONE, touched: plan!.kioskCount, skipped: 0 });
    expect(await matching("group = tagged and tag = new and not tag = old")).toEqual(ids);
    // Once only.
    expect((await failure(bulkAs(admin).runBulkAction({ bulkActionId: plan!.bulkActionId }))).code).toBe(Code.FailedPrecondition);

    const events = (await clientFor(AuditService, fleet.url, admin).listAuditEvents({ subject: plan!.bulkActionId })).events.map((e) => e.type);
    expect(events).toEqual(["bulk.ran", "bulk.planned"]);
  });

  it("the set is frozen at the dry run: a kiosk added later is not touched, one deleted since is skipped", async () => {
    await createKiosks("frozen", 3); // not more than BULK_APPROVAL_OVER: no approval needed
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({ query: "group = frozen", change: { change: { case: "group", value: { groupId: "thawed" } } } });
    expect([plan!.kioskCount, plan!.dangerous]).toEqual([3, false]);
    await kiosks().createKiosk({ kiosk: { kioskId: "frozen-late", name: "Late", groupId: "frozen" } });
    await kiosks().deleteKiosk({ kioskId: "frozen-00" });
    const { bulkAction: ran } = await bulkAs(admin).runBulkAction({ bulkActionId: plan!.bulkActionId });
    expect([ran!.touched, ran!.skipped, ran!.touched + ran!.skipped]).toEqual([2, 1, plan!.kioskCount]);
    expect(await matching("group = thawed")).toEqual(["frozen-01", "frozen-02"]);
    expect(await matching("group = frozen")).toEqual(["frozen-late"]);
  });

  it("a configuration patch on few kiosks runs without approval and merges into each kiosk's own document", async () => {
    const ids = await createKiosks("cfg-small", 2);
    await clientFor(ConfigService, fleet.url, admin).setKioskConfig({ kioskId: ids[0]!, config: { volume: 3, banner: "old" } });
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({ query: "group = cfg-small", change: { change: { case: "configPatch", value: { brightness: 80, banner: null } } } });
    expect([plan!.dangerous, plan!.state]).toEqual([false, BulkActionState.PLANNED]);
    const { bulkAction: ran } = await bulkAs(admin).runBulkAction({ bulkActionId: plan!.bulkActionId });
    expect(ran!.touched).toBe(2);
    const { config } = await clientFor(ConfigService, fleet.url, admin).getKioskConfig({ kioskId: ids[0]! });
    expect(config?.kioskLayer).toEqual({ volume: 3, brightness: 80 });
    expect((await clientFor(ConfigService, fleet.url, admin).getKioskConfig({ kioskId: ids[1]! })).config?.kioskLayer).toEqual({ brightness: 80 });
  });

  it("a plan not run within 24 hours expires: it no longer runs or waits in the queue", async () => {
    await createKiosks("stale", 1);
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({ query: "group = stale", change: { change: { case: "command", value: { kind: { case: "reboot", value: {} } } } } });
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      // As if planned a day ago.
      await db.query("UPDATE fleet.bulk_actions SET expire_at = now() - interval '1 second' WHERE bulk_action_id = $1", [plan!.bulkActionId]);
    } finally {
      await db.end();
    }
    expect((await bulkAs(admin).getBulkAction({ bulkActionId: plan!.bulkActionId })).bulkAction?.state).toBe(BulkActionState.EXPIRED);
    const late = await failure(bulkAs(secondAdmin).approveBulkAction({ bulkActionId: plan!.bulkActionId }));
    expect([late.code, late.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringContaining("expired")]);
    expect((await bulkAs(secondAdmin).listBulkActions({ state: BulkActionState.AWAITING_APPROVAL })).bulkActions.map((b) => b.bulkActionId)).not.toContain(plan!.bulkActionId);
    expect((await bulkAs(secondAdmin).listBulkActions({ state: BulkActionState.EXPIRED })).bulkActions.map((b) => b.bulkActionId)).toContain(plan!.bulkActionId);
  });

  it("bad input: InvalidArgument naming the field or the query's position; a viewer may not plan", async () => {
    const noChange = await failure(bulkAs(admin).planBulkAction({ query: "group = x" }));
    expect([noChange.code, noChange.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("change")]);
    const badQuery = await failure(bulkAs(admin).planBulkAction({ query: "group = ", change: { change: { case: "group", value: { groupId: "y" } } } }));
    expect([badQuery.code, badQuery.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("query: line 1, column 9")]);
    const none = await failure(bulkAs(admin).planBulkAction({ query: "group = nobody-here", change: { change: { case: "group", value: { groupId: "y" } } } }));
    expect(none.code).toBe(Code.FailedPrecondition);
    expect((await failure(bulkAs(viewer).planBulkAction({ query: "", change: { change: { case: "group", value: { groupId: "y" } } } }))).code).toBe(Code.PermissionDenied);
  });
});

describe("dangerous actions need a second admin", () => {
  it("a reboot waits; its planner can neither run nor approve it; another admin's approval runs it on the dry run's kiosks", async () => {
    const ids = await createKiosks("reboot", 3);
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({
      query: "group = reboot",
      change: { change: { case: "command", value: { kind: { case: "reboot", value: {} } } } },
      description: "night reboot",
    });
    expect(plan).toMatchObject({ state: BulkActionState.AWAITING_APPROVAL, dangerous: true, kioskCount: 3, dangerReason: "a reboot of 3 kiosks" });
    const queue = (await bulkAs(secondAdmin).listBulkActions({ state: BulkActionState.AWAITING_APPROVAL })).bulkActions.map((b) => b.bulkActionId);
    expect(queue).toContain(plan!.bulkActionId);

    const early = await failure(bulkAs(admin).runBulkAction({ bulkActionId: plan!.bulkActionId }));
    expect([early.code, early.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringContaining("waits for a second admin's approval")]);
    const own = await failure(bulkAs(admin).approveBulkAction({ bulkActionId: plan!.bulkActionId }));
    expect([own.code, own.rawMessage]).toEqual([Code.PermissionDenied, expect.stringContaining("second admin")]);
    expect((await bulkAs(admin).getBulkAction({ bulkActionId: plan!.bulkActionId })).bulkAction?.state).toBe(BulkActionState.AWAITING_APPROVAL);

    const { bulkAction: ran } = await bulkAs(secondAdmin).approveBulkAction({ bulkActionId: plan!.bulkActionId });
    expect(ran).toMatchObject({ state: BulkActionState.DONE, approvedBy: secondAdminId, touched: 3, skipped: 0 });
    const { job } = await clientFor(JobService, fleet.url, admin).getJob({ jobId: ran!.jobId });
    expect(job?.progress?.total).toBe(plan!.kioskCount);
    expect(job?.action?.kind.case).toBe("reboot");
    // Its progress on a stream: the rollout creates a command for each of the 3 kiosks.
    const watching = new AbortController();
    const deadline = setTimeout(() => watching.abort(), eventually.timeout);
    let dispatched = 0;
    try {
      for await (const m of clientFor(JobService, fleet.url, viewer).watchJob({ jobId: ran!.jobId }, { signal: watching.signal })) {
        expect(m.job?.progress?.total).toBe(3);
        dispatched = m.job?.progress?.dispatched ?? 0;
        if (dispatched === 3) break;
      }
    } finally {
      clearTimeout(deadline);
    }
    expect(dispatched).toBe(3);
    void ids;
    const audit = (await clientFor(AuditService, fleet.url, admin).listAuditEvents({ subject: plan!.bulkActionId })).events;
    expect(audit.map((e) => [e.type, e.actor])).toEqual([
      ["bulk.ran", secondAdminId],
      ["bulk.approved", secondAdminId],
      ["bulk.planned", expect.not.stringMatching(secondAdminId)],
    ]);
  });

  it("a configuration change on more than BULK_APPROVAL_OVER kiosks waits; a rejected one never runs", async () => {
    await createKiosks("cfg-big", 4);
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({ query: "group = cfg-big", change: { change: { case: "configPatch", value: { volume: 1 } } } });
    expect([plan!.dangerous, plan!.dangerReason]).toEqual([true, "a configuration change on 4 kiosks, more than 3"]);
    const { bulkAction: rejected } = await bulkAs(secondAdmin).rejectBulkAction({ bulkActionId: plan!.bulkActionId, reason: "not tonight" });
    expect(rejected?.state).toBe(BulkActionState.REJECTED);
    expect((await failure(bulkAs(secondAdmin).approveBulkAction({ bulkActionId: plan!.bulkActionId }))).code).toBe(Code.FailedPrecondition);
    expect((await clientFor(ConfigService, fleet.url, admin).getKioskConfig({ kioskId: "cfg-big-00" })).config?.kioskLayer).toEqual({});
  });

  it("a revocation waits for a second admin, then deletes exactly the planned kiosks", async () => {
    await createKiosks("revoke", 2);
    await createKiosks("keep", 1, { groupId: "revoke-not" });
    const { bulkAction: plan } = await bulkAs(admin).planBulkAction({ query: "group = revoke", change: { change: { case: "revoke", value: { reason: "stolen" } } } });
    expect([plan!.state, plan!.kioskCount]).toEqual([BulkActionState.AWAITING_APPROVAL, 2]);
    const { bulkAction: ran } = await bulkAs(secondAdmin).approveBulkAction({ bulkActionId: plan!.bulkActionId });
    expect([ran!.state, ran!.touched, ran!.skipped]).toEqual([BulkActionState.DONE, 2, 0]);
    expect(await matching("group = revoke")).toEqual([]);
    expect(await matching("group = revoke-not")).toEqual(["keep-00"]);
    expect((await failure(kiosks().getKiosk({ kioskId: "revoke-00" }))).code).toBe(Code.NotFound);
  });
});
