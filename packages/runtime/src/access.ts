// The authorization interceptor every service mounts. Each RPC's rule is read from
// its (adminkiosk.common.v1.access) option in proto/, so the contract says who may
// call it; a method without a rule is refused to everyone.
import { getOption, hasOption } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { access, type AccessRule } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import type { DescMethod } from "@bufbuild/protobuf";
import { Role, roleNames, type Principal } from "./principal.js";
import { bindLogFields, requestKey } from "./request.js";
import { TokenRejected, type TokenVerifier } from "./tokens.js";

// Health and reflection are for probes and tooling: open to every caller, like the
// /healthz and /metrics routes (in a cluster, Istio's policies narrow who reaches them).
const infrastructureServices = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/** Each method's rule, read from its descriptor once (getOption decodes the option on every call). */
const rules = new WeakMap<DescMethod, AccessRule | null>();

export function accessRuleOf(method: DescMethod): AccessRule | undefined {
  let rule = rules.get(method);
  if (rule === undefined) rules.set(method, (rule = hasOption(method, access) ? getOption(method, access) : null));
  return rule ?? undefined;
}

export function accessInterceptor(verify: TokenVerifier): Interceptor {
  return (next) => async (req) => {
    const info = req.contextValues.get(requestKey);
    const principal = await authorize(req.method, req.header.get("authorization"), verify);
    if (info && principal) {
      info.principal = principal;
      if (!accessRuleOf(req.method)?.public) bindLogFields(info, principalLogFields(principal));
    }
    return next(req);
  };
}

/**
 * Who calls `method` with this authorization header, as its access rule decides: the
 * principal (undefined for health, reflection and a public RPC called without a valid
 * credential), or a ConnectError (Unauthenticated, PermissionDenied, Unavailable when
 * the credential cannot be checked). Shared by the Connect interceptor and the grpc-js
 * server (grpc.ts), so both transports enforce the same rules.
 */
export async function authorize(method: DescMethod, authorization: string | null | undefined, verify: TokenVerifier): Promise<Principal | undefined> {
  if (infrastructureServices.has(method.parent.typeName)) return undefined;
  const rule = accessRuleOf(method);
  if (!rule) throw new ConnectError(`${method.name} has no access rule`, Code.PermissionDenied);
  const token = bearerToken(authorization ?? null);
  // A public RPC still learns who calls it when a valid credential is sent.
  if (rule.public) return token ? await verify(token).catch(() => undefined) : undefined;
  if (!token) throw new ConnectError("missing credential: send authorization: Bearer <access token>", Code.Unauthenticated);
  let principal: Principal;
  try {
    principal = await verify(token);
  } catch (err) {
    if (err instanceof TokenRejected) throw new ConnectError(err.message, Code.Unauthenticated);
    throw new ConnectError("could not verify the credential", Code.Unavailable, undefined, undefined, err);
  }
  const refusal = refusalFor(rule, principal);
  if (refusal) throw new ConnectError(refusal, Code.PermissionDenied);
  return principal;
}

/** What a call's log lines say about its caller. */
export const principalLogFields = (principal: Principal) =>
  principal.kind === "user" ? { userId: principal.userId } : principal.kind === "device" ? { kioskId: principal.kioskId } : { callerService: principal.service };

export function refusalFor(rule: AccessRule, principal: Principal): string | undefined {
  if (principal.kind === "service") return rule.services.includes(principal.service) ? undefined : `the ${principal.service} service may not call this method`;
  if (principal.kind === "device") return rule.allowDevice ? undefined : "kiosk devices may not call this method";
  if (rule.minRole === Role.UNSPECIFIED) return rule.allowDevice ? "only kiosk devices may call this method" : "only the platform's services may call this method";
  if (principal.role < rule.minRole) return `this method requires the ${roleNames[rule.minRole]} role`;
  return undefined;
}

function bearerToken(header: string | null): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return m?.[1];
}
