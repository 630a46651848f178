// The token verifier's cache of verified tokens: a token seen again skips the signature
// check (the key set is not asked), revocation is still asked every time, and a cached token
// stops being accepted at its expiry. Real EdDSA keys and jose; the clock is the verifier's `now`.
import { generateKeyPair, SignJWT, type JWTVerifyGetKey } from "jose";
import { describe, expect, it } from "vitest";
import { createTokenVerifier, deviceTokenType, serviceTokenType, TokenRejected, tokenAudience, tokenIssuer, type RevocableCredential } from "../src/tokens.js";

const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
const t0 = new Date("2026-12-07T10:00:00Z");

async function sign(typ: string, sub: string, claims: Record<string, unknown>, expiresInS: number) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", typ, kid: "k1" })
    .setIssuer(tokenIssuer)
    .setAudience(tokenAudience)
    .setSubject(sub)
    .setIssuedAt(Math.floor(t0.getTime() / 1000))
    .setExpirationTime(Math.floor(t0.getTime() / 1000) + expiresInS)
    .sign(privateKey);
}

function setup(cacheSize?: number) {
  let now = t0;
  let keyLookups = 0;
  const revoked = new Set<string>();
  const revocationChecks: RevocableCredential[] = [];
  const store = { down: false };
  const keys: JWTVerifyGetKey = async () => {
    keyLookups++;
    return publicKey;
  };
  const verify = createTokenVerifier({
    keys,
    isRevoked: async (c) => {
      revocationChecks.push(c);
      if (store.down) throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
      return revoked.has(c.kind === "device" ? c.deviceId : c.sessionId);
    },
    now: () => now,
    cacheSize,
  });
  return {
    verify,
    revoked,
    store,
    revocationChecks,
    keyLookups: () => keyLookups,
    advance: (ms: number) => {
      now = new Date(now.getTime() + ms);
    },
  };
}

describe("verified tokens are kept", () => {
  it("a device credential seen again is not verified again, but its revocation is asked each time", async () => {
    const s = setup();
    const token = await sign(deviceTokenType, "dev-1", { kiosk_id: "kiosk-1" }, 3600);
    expect(await s.verify(token)).toMatchObject({ kind: "device", deviceId: "dev-1", kioskId: "kiosk-1" });
    expect(await s.verify(token)).toMatchObject({ kind: "device", deviceId: "dev-1" });
    expect(s.keyLookups()).toBe(1);
    expect(s.revocationChecks).toHaveLength(2);
    s.revoked.add("dev-1");
    await expect(s.verify(token)).rejects.toThrow(/revoked/);
  });

  it("a kept token is refused once it expires", async () => {
    const s = setup();
    const token = await sign(serviceTokenType, "orders", {}, 60);
    expect(await s.verify(token)).toEqual({ kind: "service", service: "orders" });
    s.advance(59_000);
    await s.verify(token);
    expect(s.keyLookups()).toBe(1);
    s.advance(2_000);
    await expect(s.verify(token)).rejects.toBeInstanceOf(TokenRejected);
  });

  it("a long-lived token is verified again after VERIFIED_TOKEN_TTL_MS; a refused one is never kept", async () => {
    const s = setup();
    const token = await sign(deviceTokenType, "dev-2", { kiosk_id: "kiosk-2" }, 30 * 86_400);
    await s.verify(token);
    s.advance(10 * 60_000 + 1);
    await s.verify(token);
    expect(s.keyLookups()).toBe(2);
    const forged = `${token.slice(0, -4)}AAAA`;
    await expect(s.verify(forged)).rejects.toBeInstanceOf(TokenRejected);
    await expect(s.verify(forged)).rejects.toBeInstanceOf(TokenRejected);
    expect(s.keyLookups()).toBe(4);
  });

  it("keeps at most cacheSize tokens, dropping the least recently used", async () => {
    const s = setup(2);
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((k) => sign(deviceTokenType, `dev-${k}`, { kiosk_id: `kiosk-${k}` }, 3600)));
    await s.verify(a!);
    await s.verify(b!);
    await s.verify(a!); // a is now the most recently used
    await s.verify(c!); // drops b
    expect(s.keyLookups()).toBe(3);
    await s.verify(a!);
    await s.verify(c!);
    expect(s.keyLookups()).toBe(3);
    await s.verify(b!);
    expect(s.keyLookups()).toBe(4);
  });
});

describe("when the revocation store cannot answer (Redis down)", () => {
  it("a credential found not revoked within the last 30 s stands; one never checked, or checked longer ago, is refused", async () => {
    const s = setup();
    const [seen, unseen] = await Promise.all(["seen", "unseen"].map((k) => sign(deviceTokenType, `dev-${k}`, { kiosk_id: `kiosk-${k}` }, 3600)));
    expect(await s.verify(seen!)).toMatchObject({ deviceId: "dev-seen" });
    s.store.down = true;
    s.advance(20_000);
    expect(await s.verify(seen!)).toMatchObject({ deviceId: "dev-seen" });
    // Never asked about: fail closed (not a TokenRejected: the caller gets Unavailable, not Unauthenticated).
    const refused = await s.verify(unseen!).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(TokenRejected);
    // The grace counts from the last answer, not from the outage's start.
    s.advance(11_000);
    await expect(s.verify(seen!)).rejects.toThrow(/enableOfflineQueue/);
    // Back: asked again, and a revocation it reports is refused at once.
    s.store.down = false;
    s.revoked.add("dev-seen");
    await expect(s.verify(seen!)).rejects.toThrow(/revoked/);
    s.store.down = true;
    await expect(s.verify(seen!)).rejects.toThrow(/enableOfflineQueue/);
  });
});

describe("what a token must be (the signature checked by node's crypto.verify, the claims as jose checks them)", () => {
  const claims = (c: Record<string, unknown>) =>
    new SignJWT(c).setProtectedHeader({ alg: "EdDSA", typ: deviceTokenType, kid: "k1" }).sign(privateKey);
  const at = Math.floor(t0.getTime() / 1000);
  const good = { iss: tokenIssuer, aud: tokenAudience, sub: "dev-1", kiosk_id: "kiosk-1", iat: at, exp: at + 60 };

  it("a valid device credential verifies; one with its payload or signature changed does not", async () => {
    const s = setup();
    const token = await claims(good);
    expect(await s.verify(token)).toMatchObject({ kind: "device", deviceId: "dev-1", kioskId: "kiosk-1" });
    const [h, p, sig] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...good, kiosk_id: "kiosk-2" })).toString("base64url");
    await expect(setup().verify(`${h}.${forged}.${sig}`)).rejects.toThrow("the token's signature is invalid");
    const flipped = Buffer.from(sig!, "base64url");
    flipped[0]! ^= 1;
    await expect(setup().verify(`${h}.${p}.${flipped.toString("base64url")}`)).rejects.toThrow("the token's signature is invalid");
    // Signed by another key.
    const other = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const foreign = await new SignJWT(good).setProtectedHeader({ alg: "EdDSA", typ: deviceTokenType, kid: "k1" }).sign(other.privateKey);
    await expect(setup().verify(foreign)).rejects.toThrow("the token's signature is invalid");
  });

  it("names the claim that is wrong: issuer, audience, a missing iat, a future nbf; and an expired token", async () => {
    await expect(setup().verify(await claims({ ...good, iss: "someone-else" }))).rejects.toThrow("the token's iss claim is invalid");
    await expect(setup().verify(await claims({ ...good, aud: ["other"] }))).rejects.toThrow("the token's aud claim is invalid");
    expect(await setup().verify(await claims({ ...good, aud: ["other", tokenAudience] }))).toMatchObject({ deviceId: "dev-1" });
    await expect(setup().verify(await claims({ ...good, iat: undefined }))).rejects.toThrow("the token's iat claim is invalid");
    await expect(setup().verify(await claims({ ...good, exp: "tomorrow" }))).rejects.toThrow("the token's exp claim is invalid");
    await expect(setup().verify(await claims({ ...good, nbf: at + 10 }))).rejects.toThrow("the token's nbf claim is invalid");
    // jose's boundary: valid while now < exp.
    const s = setup();
    const token = await claims({ ...good, exp: at + 1 });
    expect(await s.verify(token)).toMatchObject({ deviceId: "dev-1" });
    await expect(setup().verify(await claims({ ...good, exp: at }))).rejects.toThrow("the token has expired");
  });

  it("a header with more than alg, typ and kid (crit) goes to jose, which refuses what it does not understand", async () => {
    const token = await new SignJWT(good).setProtectedHeader({ alg: "EdDSA", typ: deviceTokenType, crit: ["x-unknown"], "x-unknown": 1 } as never).sign(privateKey).catch(() => undefined);
    if (token) await expect(setup().verify(token)).rejects.toThrow(TokenRejected);
  });
});
