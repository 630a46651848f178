// Kiosk enrollment and revocation, seen from the kiosk and from other services.
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, AuthService, DeviceService, UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { createTokenVerifier, redisRevocationCheck, remoteKeys, TokenRejected } from "@adminkiosk/runtime";
import { Redis } from "ioredis";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import { DeviceRevokedEventSchema } from "@adminkiosk/proto/adminkiosk/auth/v1/events_pb";
import { freePort, startNats, waitFor } from "@adminkiosk/devstack";
import { failure, startAuth, type AuthFixture } from "../../../test/support/auth.js";


let auth: AuthFixture;
let admin: string;
beforeAll(async () => {
  auth = await startAuth();
  admin = await auth.adminToken();
});
afterAll(() => auth?.stop());

const enroll = async (kioskId: string) => {
  const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId });
  return auth.client(DeviceService).enrollDevice({ code, firmwareVersion: "1.4.2", hardwareModel: "KX-200" });
};

describe("enrollment", () => {
  it("an enrollment code is exchanged once for a device credential", async () => {
    const asked = Date.now();
    const { code, expireTime } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "kiosk-0001", ttlSeconds: 600 });
    const answered = Date.now();
    expect(code).toMatch(/^[A-Z2-9]{4}(-[A-Z2-9]{4}){4}$/);
    // Ten minutes from when auth made it, which was between asking and the answer (whole seconds).
    expect(Number(expireTime!.seconds)).toBeGreaterThanOrEqual(Math.floor((asked + 600_000) / 1000));
    expect(Number(expireTime!.seconds) * 1000).toBeLessThanOrEqual(answered + 600_000);
    // Typed by hand at the kiosk: lower case, no dashes.
    const { device, deviceCredential } = await auth.client(DeviceService).enrollDevice({ code: code.replaceAll("-", "").toLowerCase() });
    expect(device?.kioskId).toBe("kiosk-0001");
    const me = await auth.client(AuthService, deviceCredential).whoAmI({});
    expect(me.principal.case === "device" && me.principal.value.kioskId).toBe("kiosk-0001");

    const again = await failure(auth.client(DeviceService).enrollDevice({ code }));
    expect(again.code).toBe(Code.Unauthenticated);
    expect(again.rawMessage).toMatch(/already used/);
  });

  it("an expired enrollment code is refused", async () => {
    const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "kiosk-0002", ttlSeconds: 60 });
    // Let the code's minute pass, by moving its expiry into the past.
    const db = new pg.Client({ connectionString: auth.databaseUrl });
    await db.connect();
    await db.query("UPDATE auth.enrollment_codes SET expires_at = now() - interval '1 second' WHERE kiosk_id = 'kiosk-0002'");
    await db.end();
    const err = await failure(auth.client(DeviceService).enrollDevice({ code }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/expired/);
  });

  it("a made-up code is refused and audited", async () => {
    const err = await failure(auth.client(DeviceService).enrollDevice({ code: "AAAA-BBBB-CCCC-DDDD-EEEE" }));
    expect(err.code).toBe(Code.Unauthenticated);
    const { events } = await auth.client(AuditService, admin).listAuditEvents({ type: "device.enrollment_failed" });
    expect(events.length).toBeGreaterThan(0);
  });

  it("only admins create codes; a device cannot call admin RPCs", async () => {
    const { deviceCredential } = await enroll("kiosk-0003");
    expect((await failure(auth.client(DeviceService, deviceCredential).createEnrollmentCode({ kioskId: "x" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(auth.client(UserService, deviceCredential).listUsers({}))).code).toBe(Code.PermissionDenied);
  });

  it("a device renews its credential", async () => {
    const { deviceCredential } = await enroll("kiosk-0004");
    const renewed = await auth.client(DeviceService, deviceCredential).renewDeviceCredential({});
    expect(renewed.deviceCredential).not.toBe(deviceCredential);
    await auth.client(AuthService, renewed.deviceCredential).whoAmI({});
  });

  it("a device credential is not a user's access token", async () => {
    const { deviceCredential } = await enroll("kiosk-0005");
    // Same signature, but the header claims it is an access token: the typ is part of what was signed.
    const [, payload, signature] = deviceCredential.split(".");
    const header = Buffer.from(JSON.stringify({ alg: "EdDSA", typ: "at+jwt" })).toString("base64url");
    expect((await failure(auth.client(AuthService, `${header}.${payload}.${signature}`).whoAmI({}))).code).toBe(Code.Unauthenticated);
  });
});

describe("revocation", () => {
  it("a revoked device is refused by auth and by any service verifying through the JWKS", async () => {
    const { deviceCredential, device } = await enroll("kiosk-0100");
    const redis = new Redis(auth.redisUrl);
    // What every other service runs: keys from auth's JWKS, revocations from Redis.
    const verify = createTokenVerifier({
      keys: remoteKeys(`${auth.service.url}/.well-known/jwks.json`),
      isRevoked: redisRevocationCheck(redis),
    });
    try {
      expect(await verify(deviceCredential)).toMatchObject({ kind: "device", kioskId: "kiosk-0100", deviceId: device!.deviceId });
      const { revokedCount } = await auth.client(DeviceService, admin).revokeDevice({ kioskId: "kiosk-0100", reason: "stolen" });
      expect(revokedCount).toBe(1);
      const err = await failure(auth.client(AuthService, deviceCredential).whoAmI({}));
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.rawMessage).toMatch(/revoked/);
      await expect(verify(deviceCredential)).rejects.toBeInstanceOf(TokenRejected);
      // It cannot renew its way back in.
      expect((await failure(auth.client(DeviceService, deviceCredential).renewDeviceCredential({}))).code).toBe(Code.Unauthenticated);
      const { devices } = await auth.client(DeviceService, admin).listDevices({ kioskId: "kiosk-0100", includeRevoked: true });
      expect(devices[0]?.revokeTime).toBeDefined();
      const { events } = await auth.client(AuditService, admin).listAuditEvents({ type: "device.revoked", subject: "kiosk-0100" });
      expect(JSON.parse(events[0]!.detailsJson)).toMatchObject({ reason: "stolen" });
    } finally {
      redis.disconnect();
    }
  });

  it("re-enrolling a revoked kiosk gives a new, working credential", async () => {
    await enroll("kiosk-0101");
    await auth.client(DeviceService, admin).revokeDevice({ kioskId: "kiosk-0101" });
    const { deviceCredential } = await enroll("kiosk-0101");
    await auth.client(AuthService, deviceCredential).whoAmI({});
  });
});

describe("revocation is total", () => {
  it("revoking a kiosk voids the enrollment codes made before it", async () => {
    const { code: unused } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "kiosk-0110" });
    const { code: neverEnrolled } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "kiosk-0111" });
    await enroll("kiosk-0110");
    expect((await auth.client(DeviceService, admin).revokeDevice({ kioskId: "kiosk-0110", reason: "stolen" })).revokedCount).toBe(1);
    // A kiosk without devices yet is revoked too: its codes are voided.
    expect((await auth.client(DeviceService, admin).revokeDevice({ kioskId: "kiosk-0111" })).revokedCount).toBe(0);
    for (const [code, kioskId] of [[unused, "kiosk-0110"], [neverEnrolled, "kiosk-0111"]] as const) {
      const err = await failure(auth.client(DeviceService).enrollDevice({ code }));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toBe(`enrollment code was voided when kiosk ${kioskId} was revoked; an admin must create a new one`);
    }
    const { events } = await auth.client(AuditService, admin).listAuditEvents({ type: "device.revoked", subject: "kiosk-0110" });
    expect(JSON.parse(events[0]!.detailsJson)).toMatchObject({ reason: "stolen", voidedCodes: 1 });
    // A code made after the revocation enrolls the kiosk again.
    const { deviceCredential } = await enroll("kiosk-0110");
    await auth.client(AuthService, deviceCredential).whoAmI({});
  });

  it("enrolling a kiosk again revokes its earlier credential everywhere, and says so on NATS", async () => {
    const old = await enroll("kiosk-0120");
    const redis = new Redis(auth.redisUrl);
    const verify = createTokenVerifier({ keys: remoteKeys(`${auth.service.url}/.well-known/jwks.json`), isRevoked: redisRevocationCheck(redis) });
    const nc = await connect({ servers: inject("infra").natsUrl });
    try {
      await verify(old.deviceCredential);
      const fresh = await enroll("kiosk-0120");
      // The new credential works; the old one is refused by auth, by any verifier, and cannot renew.
      await auth.client(AuthService, fresh.deviceCredential).whoAmI({});
      const err = await failure(auth.client(AuthService, old.deviceCredential).whoAmI({}));
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.rawMessage).toMatch(/revoked/);
      await expect(verify(old.deviceCredential)).rejects.toBeInstanceOf(TokenRejected);
      expect((await failure(auth.client(DeviceService, old.deviceCredential).renewDeviceCredential({}))).code).toBe(Code.Unauthenticated);
      // link ends the old device's stream on this event (only that device's: the ids say which).
      const event = await nextEvent(nc, "auth.device.kiosk-0120.revoked");
      expect(event).toMatchObject({ kioskId: "kiosk-0120", deviceIds: [old.device!.deviceId], reason: "re-enrolled" });
      const { devices } = await auth.client(DeviceService, admin).listDevices({ kioskId: "kiosk-0120" });
      expect(devices.map((d) => d.deviceId)).toEqual([fresh.device!.deviceId]);
    } finally {
      redis.disconnect();
      await nc.close();
    }
  });
});

describe("revocation events", () => {
  it("a revocation is published on NATS (auth.device.<kiosk>.revoked) for link to end the stream", async () => {
    const { device } = await enroll("kiosk-0200");
    const nc = await connect({ servers: inject("infra").natsUrl });
    try {
      await auth.client(DeviceService, admin).revokeDevice({ kioskId: "kiosk-0200", reason: "lost" });
      const event = await nextEvent(nc, "auth.device.kiosk-0200.revoked");
      expect(event).toMatchObject({ kioskId: "kiosk-0200", deviceIds: [device!.deviceId], reason: "lost" });
    } finally {
      await nc.close();
    }
  });

  it("revocations made while NATS is down are published once it is back", async () => {
    const dir = join(inject("infra").tmpDir, `nats-outbox-${process.pid}`);
    const port = await freePort();
    let nats = await startNats(dir, port);
    const own = await startAuth({ NATS_URL: nats.url });
    try {
      const token = await own.adminToken();
      const { code } = await own.client(DeviceService, token).createEnrollmentCode({ kioskId: "kiosk-0300" });
      await own.client(DeviceService).enrollDevice({ code });
      await nats.stop();
      const { revokedCount } = await own.client(DeviceService, token).revokeDevice({ kioskId: "kiosk-0300" });
      expect(revokedCount).toBe(1); // the revocation itself does not wait for NATS
      nats = await startNats(dir, port);
      const nc = await connect({ servers: nats.url });
      try {
        const event = await nextEvent(nc, "auth.device.kiosk-0300.revoked");
        expect(event.kioskId).toBe("kiosk-0300");
      } finally {
        await nc.close();
      }
    } finally {
      await own.stop();
      await nats.stop();
    }
  }, 60_000);
});

/** The first event on `subject` in the AUTH stream (waits for the stream to exist). */
function nextEvent(nc: NatsConnection, subject: string) {
  return waitFor(
    `an event on ${subject}`,
    async () => {
      // An ephemeral consumer with a single filter subject (nats-server 2.9 has no filter_subjects).
      const jsm = await jetstreamManager(nc);
      const info = await jsm.consumers.add("AUTH", { filter_subject: subject, ack_policy: AckPolicy.None, inactive_threshold: 30_000_000_000 });
      const msg = await (await jetstream(nc).consumers.get("AUTH", info.name)).next({ expires: 2_000 });
      return msg ? fromBinary(DeviceRevokedEventSchema, msg.data) : undefined;
    },
    { interval: 200, retry: () => true }, // the AUTH stream may not exist yet
  );
}
