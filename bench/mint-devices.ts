// Device credentials for many kiosks, fast and through auth's own code: the device
// rows go into auth's `devices` table (one multi-row INSERT per few thousand) and each
// credential is signed by auth's KeyRing (services/auth/src/keys.ts) with auth's
// active Ed25519 key, exactly as DeviceService.EnrollDevice signs it. What is skipped
// is only the one-time enrollment code and its audit rows (~3 ms per kiosk through
// the API). link verifies these credentials the normal way (JWKS from auth, typ,
// issuer, audience, expiry, revocation set in Redis): nothing in link is relaxed.
import { createLogger, createPool, deviceTokenType } from "@adminkiosk/runtime";
import { createKeyRing } from "../services/auth/src/keys.js";

const ttlMs = 90 * 86_400_000;

export async function mintDevices(databaseUrl: string, keyEncryptionKey: string, kioskIds: string[]): Promise<string[]> {
  const log = createLogger("bench-mint", "warn");
  const pool = createPool(databaseUrl, "auth", log, 4);
  try {
    const keys = createKeyRing(pool, Buffer.from(keyEncryptionKey, "base64"), ttlMs);
    const out: string[] = new Array(kioskIds.length);
    for (let i = 0; i < kioskIds.length; i += 5_000) {
      const chunk = kioskIds.slice(i, i + 5_000);
      const { rows } = await pool.query<{ device_id: string; kiosk_id: string; credential_expires: Date }>(
        `INSERT INTO devices (kiosk_id, credential_expires, firmware_version, hardware_model)
         SELECT k, now() + make_interval(secs => $2::float8 / 1000), 'bench', 'bench' FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n
         RETURNING device_id, kiosk_id, credential_expires`,
        [chunk, ttlMs],
      );
      const index = new Map(chunk.map((id, j) => [id, i + j]));
      const sign = async (r: (typeof rows)[number]) => {
        const { token } = await keys.sign(deviceTokenType, { kiosk_id: r.kiosk_id }, r.device_id, r.credential_expires.getTime() - Date.now());
        out[index.get(r.kiosk_id)!] = token;
      };
      // The first one alone: the key ring (re)loads its keys then, not once per call.
      await sign(rows[0]!);
      await Promise.all(rows.slice(1).map(sign));
    }
    return out;
  } finally {
    await pool.end();
  }
}
