// Kiosks as principals. An admin creates a one-time enrollment code for a kiosk id;
// the kiosk spends it, once and before it expires, for a device credential (a JWT
// of typ device+jwt). Revocation is recorded in PostgreSQL and mirrored into a Redis
// set that every service's token verifier consults, so it takes effect everywhere.
// A kiosk has one credential at a time: revoking the kiosk revokes all its devices and voids
// the enrollment codes it had not used yet, and enrolling it again revokes the device it had.
// Each revocation is published on NATS (auth.device.<kiosk>.revoked) for link to end the
// revoked device's stream.
import { randomBytes } from "node:crypto";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { DeviceRevokedEventSchema } from "@adminkiosk/proto/adminkiosk/auth/v1/events_pb";
import { authSubjects, deviceTokenType, enqueueEvent, inTransaction, revokedDevicesKey, type Pool, type PoolClient, type Redis } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import type { KeyRing } from "./keys.js";
import { devices, enrollmentCodes, type DeviceRow } from "./store.js";


// 20 characters from 32 unambiguous ones (100 bits), shown as XXXX-XXXX-XXXX-XXXX-XXXX.
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

function newEnrollmentCode(): string {
  const chars = [...randomBytes(20)].map((b) => codeAlphabet[b % 32]).join("");
  return [0, 4, 8, 12, 16].map((i) => chars.slice(i, i + 4)).join("-");
}

/** Accepts the code as typed (any case, with or without dashes or spaces). */
export function normalizeEnrollmentCode(typed: string): string | undefined {
  const chars = typed.toUpperCase().replace(/[\s-]/g, "");
  if (chars.length !== 20 || [...chars].some((c) => !codeAlphabet.includes(c))) return undefined;
  return [0, 4, 8, 12, 16].map((i) => chars.slice(i, i + 4)).join("-");
}

export function createDeviceRegistry(pool: Pool, redis: Redis, keys: KeyRing, credentialTtlMs: number) {
  const credentialFor = (device: DeviceRow) =>
    keys.sign(deviceTokenType, { kiosk_id: device.kiosk_id }, device.device_id, device.credential_expires.getTime() - Date.now());

  /** Revokes the kiosk's active devices (all but `except`) inside `tx`: Redis, the event, the audit. */
  async function revokeDevices(tx: PoolClient, ctx: HandlerContext, kioskId: string, reason: string, except?: string) {
    const rows = await devices.revokeKiosk(tx, kioskId, except);
    // Redis first: if it is down the transaction rolls back and the caller retries.
    const deviceIds = rows.map((r) => r.device_id);
    if (rows.length > 0) {
      await redis.sadd(revokedDevicesKey, ...deviceIds);
      await enqueueEvent(tx, authSubjects.deviceRevoked(kioskId), DeviceRevokedEventSchema,
        create(DeviceRevokedEventSchema, { kioskId, deviceIds, reason, revokeTime: timestampNow() }));
    }
    return deviceIds;
  }

  return {
    async createEnrollmentCode(ctx: HandlerContext, kioskId: string, ttlMs: number, createdBy: string | null) {
      const code = newEnrollmentCode();
      const expiresAt = new Date(Date.now() + ttlMs);
      await inTransaction(pool, async (tx) => {
        await enrollmentCodes.insert(tx, { code, kioskId, createdBy, expiresAt });
        await recordAudit(tx, ctx, "device.enrollment_code_created", kioskId, { expiresAt: expiresAt.toISOString() });
      });
      return { code, expiresAt };
    },

    async enroll(ctx: HandlerContext, code: string, facts: { firmwareVersion: string; hardwareModel: string }) {
      const outcome = await inTransaction(pool, async (tx) => {
        const found = await enrollmentCodes.redeem(tx, code);
        if (found?.voided) {
          await recordAudit(tx, ctx, "device.enrollment_failed", found.kiosk_id, { reason: "was voided" });
          return {
            error: new ConnectError(
              `enrollment code was voided when kiosk ${found.kiosk_id} was revoked; an admin must create a new one`,
              Code.FailedPrecondition,
            ),
          };
        }
        const refusal = !found ? "is not valid" : found.used ? "was already used" : found.expired ? "has expired" : undefined;
        if (refusal || !found) {
          await recordAudit(tx, ctx, "device.enrollment_failed", found?.kiosk_id ?? "", { reason: refusal });
          return { error: new ConnectError(`enrollment code ${refusal}`, Code.Unauthenticated) };
        }
        const device = await devices.insert(tx, {
          kioskId: found.kiosk_id,
          credentialExpires: new Date(Date.now() + credentialTtlMs),
          ...facts,
        });
        // The kiosk's earlier credential(s) end here: whoever still holds one is not this kiosk.
        const replaced = await revokeDevices(tx, ctx, found.kiosk_id, "re-enrolled", device.device_id);
        await recordAudit(tx, ctx, "device.enrolled", found.kiosk_id, { deviceId: device.device_id, ...facts }, `device:${found.kiosk_id}`);
        if (replaced.length > 0) {
          await recordAudit(tx, ctx, "device.revoked", found.kiosk_id, { reason: "re-enrolled", devices: replaced, replacedBy: device.device_id }, `device:${found.kiosk_id}`);
        }
        return { device };
      });
      if (outcome.error) throw outcome.error;
      return { device: outcome.device, credential: (await credentialFor(outcome.device)).token };
    },

    async renew(ctx: HandlerContext, deviceId: string) {
      const device = await inTransaction(pool, async (tx) => {
        const renewed = await devices.extend(tx, deviceId, new Date(Date.now() + credentialTtlMs));
        if (renewed) await recordAudit(tx, ctx, "device.credential_renewed", renewed.kiosk_id, { deviceId });
        return renewed;
      });
      if (!device) throw new ConnectError("the device credential was revoked", Code.Unauthenticated);
      return { device, credential: (await credentialFor(device)).token };
    },

    /** Revokes every device of the kiosk and voids its unused enrollment codes. */
    async revokeKiosk(ctx: HandlerContext, kioskId: string, reason: string) {
      const revoked = await inTransaction(pool, async (tx) => {
        const deviceIds = await revokeDevices(tx, ctx, kioskId, reason);
        const voidedCodes = await enrollmentCodes.voidForKiosk(tx, kioskId);
        await recordAudit(tx, ctx, "device.revoked", kioskId, { reason, devices: deviceIds, voidedCodes });
        return deviceIds;
      });
      return revoked.length;
    },

    /** Rebuilds the Redis mirror of revocations from PostgreSQL (at start). */
    async syncRevocations() {
      const ids = await devices.revokedIds(pool);
      if (ids.length > 0) await redis.sadd(revokedDevicesKey, ...ids);
    },

  };
}

export type DeviceRegistry = ReturnType<typeof createDeviceRegistry>;
