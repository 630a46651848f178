// Release manifests and their Ed25519 signatures. The manifest is a ReleaseManifest in
// protobuf binary encoding; fleet signs those exact bytes and stores them with the
// release, so a kiosk verifies the bytes it was given and only then decodes them (nothing
// is re-encoded on either side). The signing key is FLEET_RELEASE_SIGNING_KEY (an Ed25519
// private JWK); its id is the RFC 7638 thumbprint of its public JWK. Rotation: the new key
// becomes FLEET_RELEASE_SIGNING_KEY, the old one's public JWK goes into
// FLEET_RELEASE_PREVIOUS_KEYS, so GetReleaseKeys keeps publishing it and manifests signed
// with it still verify on kiosks that pinned both (docs/security.md).
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ReleaseKeySchema, ReleaseManifestSchema, type ReleaseKey } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { kindNames, type ReleaseKindName } from "./store.js";

interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  kid?: string;
}

/** RFC 7638 thumbprint of an Ed25519 public JWK (base64url SHA-256 of its required members in order). */
export const jwkThumbprint = (x: string) => createHash("sha256").update(JSON.stringify({ crv: "Ed25519", kty: "OKP", x })).digest("base64url");

export interface ReleaseKeys {
  /** Every published key: the current one first, then the previous ones. */
  keys: ReleaseKey[];
  /** Undefined without FLEET_RELEASE_SIGNING_KEY (fleet then cannot create releases). */
  signer?: { keyId: string; sign(manifest: Uint8Array): Uint8Array };
}

function publicKeyOf(jwk: PublicJwk, what: string): { keyId: string; raw: Uint8Array } {
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new Error(`${what} must be Ed25519 JWKs (kty OKP, crv Ed25519, x)`);
  const raw = Buffer.from(jwk.x, "base64url");
  if (raw.length !== 32) throw new Error(`${what}: x must be a 32-byte key`);
  createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
  return { keyId: jwk.kid || jwkThumbprint(jwk.x), raw: new Uint8Array(raw) };
}

/**
 * `privateJwk`: FLEET_RELEASE_SIGNING_KEY (empty: fleet cannot create releases);
 * `previous`: FLEET_RELEASE_PREVIOUS_KEYS, a JSON array of public JWKs still published.
 * Throws (at start) when either is not what it must be.
 */
export function createReleaseKeys(privateJwk: string, previous: string): ReleaseKeys {
  let older: PublicJwk[];
  try {
    older = JSON.parse(previous || "[]") as PublicJwk[];
  } catch {
    throw new Error("FLEET_RELEASE_PREVIOUS_KEYS must be a JSON array of Ed25519 public JWKs");
  }
  if (!Array.isArray(older)) throw new Error("FLEET_RELEASE_PREVIOUS_KEYS must be a JSON array of Ed25519 public JWKs");
  const previousKeys = older.map((k) => publicKeyOf(k, "FLEET_RELEASE_PREVIOUS_KEYS"));
  if (privateJwk === "") return { keys: previousKeys.map((k) => create(ReleaseKeySchema, { keyId: k.keyId, publicKey: k.raw, current: false })) };
  let jwk: PublicJwk & { d?: string };
  try {
    jwk = JSON.parse(privateJwk) as PublicJwk & { d?: string };
  } catch {
    throw new Error("FLEET_RELEASE_SIGNING_KEY must be an Ed25519 private JWK (JSON)");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.x) throw new Error("FLEET_RELEASE_SIGNING_KEY must be an Ed25519 private JWK (kty OKP, crv Ed25519, d, x)");
  const key: KeyObject = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: jwk.d, x: jwk.x }, format: "jwk" });
  const current = { keyId: jwkThumbprint(jwk.x), raw: new Uint8Array(Buffer.from(jwk.x, "base64url")) };
  const keys = [
    create(ReleaseKeySchema, { keyId: current.keyId, publicKey: current.raw, current: true }),
    ...previousKeys.filter((k) => k.keyId !== current.keyId).map((k) => create(ReleaseKeySchema, { keyId: k.keyId, publicKey: k.raw, current: false })),
  ];
  return { keys, signer: { keyId: current.keyId, sign: (manifest) => new Uint8Array(sign(null, manifest, key)) } };
}

export interface ManifestFields {
  releaseId: string;
  kind: ReleaseKindName;
  version: string;
  minVersion: string;
  sha256: string;
  sizeBytes: bigint;
  hardwareModels: string[];
  createTime: Date;
}

export const manifestBytes = (m: ManifestFields): Uint8Array =>
  toBinary(
    ReleaseManifestSchema,
    create(ReleaseManifestSchema, {
      releaseId: m.releaseId,
      kind: kindNames[m.kind],
      version: m.version,
      minVersion: m.minVersion,
      sha256: m.sha256,
      sizeBytes: m.sizeBytes,
      hardwareModels: m.hardwareModels,
      createTime: timestampFromDate(m.createTime),
    }),
  );

/** Whether `signature` is `key`'s (raw 32-byte Ed25519 public key) over `manifest`. */
export function verifyManifest(manifest: Uint8Array, signature: Uint8Array, key: Uint8Array): boolean {
  try {
    const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(key).toString("base64url") }, format: "jwk" });
    return verify(null, manifest, publicKey, signature);
  } catch {
    return false;
  }
}
