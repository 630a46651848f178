// Service identities: the platform's own services sign in as themselves. Each calling
// service holds a client secret (its SERVICE_SECRET); auth knows every service's
// (SERVICE_SECRETS) and exchanges name + secret for a short-lived service token (typ
// service+jwt, sub = the service's name). Access rules in proto/ name the services an
// RPC accepts (`services: "orders"`), so orders reserves stock as orders, never with a
// kiosk's credential it was handed and kept.
import { createHash, timingSafeEqual } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { ServiceIdentityService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { requestInfo, requireText, serviceNamePattern, serviceTokenType } from "@adminkiosk/runtime";
import { z } from "zod";
import type { KeyRing } from "./keys.js";

/** The shortest client secret auth accepts in SERVICE_SECRETS. */
export const minServiceSecretLength = 32;

/**
 * SERVICE_SECRETS: `name=secret` pairs separated by commas, e.g.
 * `orders=3q2+7w…,fleet=…`. Empty: no service may sign in (every service-only RPC is
 * then refused). Refused at start when a name or secret is malformed.
 */
export const serviceSecrets = () =>
  z
    .string()
    .default("")
    .transform((value, ctx) => {
      const secrets = new Map<string, Buffer>();
      for (const pair of value.split(",").map((p) => p.trim()).filter(Boolean)) {
        const at = pair.indexOf("=");
        const name = at > 0 ? pair.slice(0, at) : "";
        const secret = at > 0 ? pair.slice(at + 1) : "";
        if (!serviceNamePattern.test(name)) ctx.addIssue({ code: "custom", message: `"${name || pair.slice(0, 20)}" is not a service name (lower-case letters, digits, '-')` });
        else if (secret.length < minServiceSecretLength) ctx.addIssue({ code: "custom", message: `the secret for ${name} must be at least ${minServiceSecretLength} characters` });
        else if (secrets.has(name)) ctx.addIssue({ code: "custom", message: `${name} is listed twice` });
        else secrets.set(name, digest(secret));
      }
      return secrets;
    });

const digest = (secret: string) => createHash("sha256").update(secret).digest();

export interface ServiceTokenDeps {
  keys: KeyRing;
  /** Service name → SHA-256 of its secret. */
  secrets: Map<string, Buffer>;
  ttlMs: number;
}

export function serviceIdentityRoutes(deps: ServiceTokenDeps) {
  return (router: ConnectRouter) => {
    router.service(ServiceIdentityService, {
      async issueServiceToken(req, ctx) {
        const service = requireText("service", req.service, { max: 31 });
        const secret = requireText("secret", req.secret, { max: 512 });
        const expected = deps.secrets.get(service);
        // Compare digests of equal length, so the time taken says nothing about the secret.
        if (!expected || !timingSafeEqual(expected, digest(secret))) {
          requestInfo(ctx).log.warn({ service }, "a service token was refused: unknown service or wrong secret");
          throw new ConnectError("unknown service or wrong secret", Code.Unauthenticated);
        }
        const { token, expiresAt } = await deps.keys.sign(serviceTokenType, {}, service, deps.ttlMs);
        return { accessToken: token, expireTime: timestampFromDate(expiresAt) };
      },
    });
  };
}
