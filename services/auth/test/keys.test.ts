// Signing-key rotation: new tokens use the new key; tokens signed by the old one
// keep working until they expire; verifiers elsewhere never see an unknown key.
import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AuthService, KeyService, UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { createTokenVerifier, remoteKeys } from "@adminkiosk/runtime";
import { waitFor } from "@adminkiosk/devstack";
import { adminEmail, adminPassword, startAuth, type AuthFixture } from "../../../test/support/auth.js";

let auth: AuthFixture;
beforeAll(async () => {
  auth = await startAuth();
});
afterAll(() => auth?.stop());

it("rotation keeps old tokens valid and publishes both keys", async () => {
  const jwksUrl = `${auth.service.url}/.well-known/jwks.json`;
  const verify = createTokenVerifier({ keys: remoteKeys(jwksUrl), isRevoked: async () => false });
  const before = await auth.login(adminEmail, adminPassword);
  const oldKid = decodeProtectedHeader(before.accessToken).kid;
  await verify(before.accessToken); // the remote verifier has now cached the JWKS

  const { key } = await auth.client(KeyService, before.accessToken).rotateSigningKey({});
  expect(key?.kid).not.toBe(oldKid);

  const after = await auth.login(adminEmail, adminPassword);
  expect(decodeProtectedHeader(after.accessToken).kid).toBe(key?.kid);
  // The old token still works, at auth and at a service holding a cached JWKS...
  await auth.client(UserService, before.accessToken).listUsers({});
  await expect(verify(before.accessToken)).resolves.toMatchObject({ kind: "user" });
  // ...and the new token is accepted at once by that service: the new key was in the JWKS it cached.
  await expect(verify(after.accessToken)).resolves.toMatchObject({ kind: "user" });

  const jwks = (await (await fetch(jwksUrl)).json()) as { keys: { kid: string; kty: string; crv: string; d?: string }[] };
  // Old (retired), current (active) and the next key, published ahead of use.
  expect(jwks.keys).toHaveLength(3);
  expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, key?.kid]));
  expect(jwks.keys.every((k) => k.kty === "OKP" && k.crv === "Ed25519" && k.d === undefined)).toBe(true);

  const { keys } = await auth.client(KeyService, after.accessToken).listSigningKeys({});
  const old = keys.find((k) => k.kid === oldKid);
  expect(old?.retireTime).toBeDefined();
  expect(old?.unpublishTime).toBeDefined();
});

it("a retired key leaves the JWKS once its tokens have expired", async () => {
  const shortLived = await startAuth({ ACCESS_TOKEN_TTL: "3s", DEVICE_CREDENTIAL_TTL: "3s", SERVICE_TOKEN_TTL: "3s" });
  try {
    const token = (await shortLived.login(adminEmail, adminPassword)).accessToken;
    const oldKid = decodeProtectedHeader(token).kid;
    const expiresAt = decodeJwt(token).exp! * 1000;
    await shortLived.client(KeyService, token).rotateSigningKey({});
    // Reads the JWKS until the old key is gone rather than sleeping past the token's life.
    // Every read that came back before the token expired must still have had the key
    // (auth answered it earlier still); a slow machine may get fewer of those, none wrong.
    const reads: { at: number; kids: string[] }[] = [];
    const jwks = await waitFor("the retired key to leave the JWKS", async () => {
      const read = (await (await fetch(`${shortLived.service.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      reads.push({ at: Date.now(), kids: read.keys.map((k) => k.kid) });
      return read.keys.some((k) => k.kid === oldKid) ? undefined : read;
    });
    expect(reads.filter((r) => r.at < expiresAt && !r.kids.includes(oldKid!))).toEqual([]);
    expect(jwks.keys).toHaveLength(2); // active and next
    const fresh = await shortLived.login(adminEmail, adminPassword);
    await shortLived.client(AuthService, fresh.accessToken).whoAmI({});
  } finally {
    await shortLived.stop();
  }
}, 60_000);
