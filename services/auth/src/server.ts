// auth's RPC handlers: validate the request, call the domain, map to the contract.
// Who may call each RPC is declared in proto/ and enforced by the runtime.
import { randomBytes } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  AuditService,
  AuthService,
  DeviceService,
  KeyService,
  ServiceIdentityService,
  UserService,
} from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TokenPairSchema, UserSchema, DeviceSchema, SigningKeySchema } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import {
  cursorPatterns,
  decodePageToken,
  encodePageToken,
  inTransaction,
  invalidArgument,
  listAuditEvents,
  pageSize,
  principalOf,
  requireEmail,
  requireText,
  requestInfo,
  requireKioskId,
  requireUuid,
  Role,
  roleNames,
  roleFromName,
  type Pool,
} from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import { normalizeEnrollmentCode, type DeviceRegistry } from "./devices.js";
import type { KeyRing, SigningKeyRow } from "./keys.js";
import { hashPassword } from "./passwords.js";
import type { LoginLimiter } from "./rate-limit.js";
import type { IssuedTokens, Sessions } from "./sessions.js";
import {
  clearRefreshCookie,
  clearSsoBindingCookie,
  deliverTokens,
  presentedRefreshToken,
  setSsoBindingCookie,
  ssoBindingFromCookie,
  wantsCookie,
} from "./session-cookie.js";
import type { Sso } from "./sso.js";
import { devices as deviceRows, users, type DeviceRow, type UserRow } from "./store.js";

export const authServices = [AuthService, UserService, DeviceService, KeyService, AuditService, ServiceIdentityService];

export interface AuthDeps {
  pool: Pool;
  sessions: Sessions;
  devices: DeviceRegistry;
  keys: KeyRing;
  limiter: LoginLimiter;
  scryptLogN: number;
  sso: Sso;
  /** How long a begun single sign-on may take (the binding cookie lives as long). */
  ssoLoginTtlMs: number;
}

const passwordRule = { min: 12, max: 256 };
const displayNameRule = { max: 100 };
const opaqueTokenRule = { max: 512 };

export function authRoutes(deps: AuthDeps) {
  const { pool, sessions, devices, keys, sso } = deps;

  /** People of a domain whose passwords are switched off sign in with single sign-on only. */
  const requirePasswordAllowed = (email: string) => {
    if (!sso.passwordAllowed(email))
      throw new ConnectError(`password sign-in is switched off for ${email.slice(email.lastIndexOf("@") + 1)}; sign in with single sign-on`, Code.FailedPrecondition);
  };

  const roleOf = (field: string, role: Role) => {
    if (role === Role.UNSPECIFIED || !roleNames[role]) throw invalidArgument(field, "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN");
    return roleNames[role];
  };

  return (router: ConnectRouter) => {
    router.service(AuthService, {
      async login(req, ctx) {
        const email = requireEmail("email", req.email);
        requireText("password", req.password, { max: passwordRule.max });
        requirePasswordAllowed(email);
        const { user, tokens } = await sessions.login(ctx, email, req.password);
        return { user: toUser(user), tokens: toTokenPair(deliverTokens(ctx, tokens)) };
      },
      async refresh(req, ctx) {
        // Cookie mode (session-cookie.ts): the token may come from the cookie, and goes back in one.
        const token = presentedRefreshToken(ctx, req.refreshToken, (t) => requireText("refresh_token", t, opaqueTokenRule));
        try {
          if (!token) throw new ConnectError("no refresh token cookie; sign in again", Code.Unauthenticated);
          return { tokens: toTokenPair(deliverTokens(ctx, await sessions.refresh(ctx, token))) };
        } catch (err) {
          // A refused token is of no further use: the browser may forget it.
          if (wantsCookie(ctx) && err instanceof ConnectError && err.code === Code.Unauthenticated) clearRefreshCookie(ctx);
          throw err;
        }
      },
      async logout(req, ctx) {
        const token = presentedRefreshToken(ctx, req.refreshToken, (t) => requireText("refresh_token", t, opaqueTokenRule));
        const ended = token ? await sessions.logout(ctx, token) : undefined;
        if (wantsCookie(ctx)) clearRefreshCookie(ctx);
        return { endSessionUrl: ended ? await sso.endSessionUrl(ended) : "" };
      },
      listSsoProviders() {
        return { providers: sso.list(), passwordLoginDisabledDomains: sso.passwordDisabledDomains() };
      },
      async beginSsoLogin(req, ctx) {
        const providerId = requireText("provider_id", req.providerId, { max: 32 });
        // Each attempt is a row until it expires: strangers get the login budget per address.
        await deps.limiter.admitSsoBegin(requestInfo(ctx).peer);
        // In cookie mode the sign-in is bound to this browser (session-cookie.ts).
        const binding = wantsCookie(ctx) ? randomBytes(32).toString("base64url") : null;
        const authorizationUrl = await sso.begin(providerId, binding);
        if (binding) setSsoBindingCookie(ctx, binding, deps.ssoLoginTtlMs);
        return { authorizationUrl };
      },
      async completeSsoLogin(req, ctx) {
        const query = new URLSearchParams(requireText("callback_query", req.callbackQuery, { max: 8192 }).replace(/^\?/, ""));
        let binding: string | null = null;
        if (wantsCookie(ctx)) {
          binding = ssoBindingFromCookie(ctx);
          clearSsoBindingCookie(ctx);
          if (!binding) throw new ConnectError("this sign-in was begun in another browser (no sign-in cookie); start again", Code.Unauthenticated);
        }
        const { user, tokens } = await sso.complete(ctx, query, binding);
        return { user: toUser(user), tokens: toTokenPair(deliverTokens(ctx, tokens)) };
      },
      async whoAmI(_req, ctx) {
        const principal = principalOf(ctx);
        if (principal.kind === "device") {
          const row = await deviceRows.byId(pool, principal.deviceId);
          if (!row) throw new ConnectError("device not found", Code.NotFound);
          return { principal: { case: "device", value: toDevice(row) } };
        }
        if (principal.kind !== "user") throw new ConnectError("only people and kiosk devices have a WhoAmI answer", Code.PermissionDenied);
        const user = await users.byId(pool, principal.userId);
        if (!user) throw new ConnectError("user not found", Code.NotFound);
        return { principal: { case: "user", value: toUser(user) } };
      },
    });

    router.service(UserService, {
      async createUser(req, ctx) {
        const email = requireEmail("email", req.email);
        const displayName = requireText("display_name", req.displayName, displayNameRule);
        const role = roleOf("role", req.role);
        requireText("password", req.password, passwordRule);
        requirePasswordAllowed(email);
        const passwordHash = await hashPassword(req.password, deps.scryptLogN);
        const user = await inTransaction(pool, async (tx) => {
          if (await users.byEmail(tx, email)) throw new ConnectError(`a user with email ${email} already exists`, Code.AlreadyExists);
          const created = await users.insert(tx, { email, displayName, role, passwordHash });
          await recordAudit(tx, ctx, "user.created", created.user_id, { email, role });
          return created;
        });
        return { user: toUser(user) };
      },
      async getUser(req) {
        const user = await users.byId(pool, requireUuid("user_id", req.userId));
        if (!user) throw new ConnectError(`user ${req.userId} not found`, Code.NotFound);
        return { user: toUser(user) };
      },
      async listUsers(req) {
        const limit = pageSize("page_size", req.pageSize);
        const after = decodePageToken("page_token", req.pageToken, { email: cursorPatterns.any });
        const rows = await users.list(pool, {
          limit: limit + 1,
          after,
          query: req.query ? requireText("query", req.query, { max: 200 }) : undefined,
          role: req.role === Role.UNSPECIFIED ? undefined : roleOf("role", req.role),
        });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return { users: page.map(toUser), nextPageToken: rows.length > limit && last ? encodePageToken({ email: last.email }) : "" };
      },
      async updateUser(req, ctx) {
        const userId = requireUuid("user_id", req.userId);
        const displayName = req.displayName === undefined ? undefined : requireText("display_name", req.displayName, displayNameRule);
        const role = req.role === undefined ? undefined : roleOf("role", req.role);
        const user = await inTransaction(pool, async (tx) => {
          // Serialise admin changes so two admins cannot demote each other into no admin at all.
          await tx.query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE");
          const before = await users.byId(tx, userId);
          if (!before) throw new ConnectError(`user ${userId} not found`, Code.NotFound);
          const losesAdmin = before.role === "admin" && !before.disabled && ((role !== undefined && role !== "admin") || req.disabled === true);
          if (losesAdmin) {
            const { rows } = await tx.query<{ n: string }>("SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled");
            if (Number(rows[0]!.n) <= 1) throw new ConnectError("cannot demote or disable the last active admin", Code.FailedPrecondition);
          }
          const after = (await users.update(tx, userId, { displayName, role, disabled: req.disabled }))!;
          const roleChanged = role !== undefined && role !== before.role;
          const disabledNow = req.disabled === true && !before.disabled;
          if (roleChanged) await recordAudit(tx, ctx, "user.role_changed", userId, { from: before.role, to: role });
          if (req.disabled !== undefined && req.disabled !== before.disabled) await recordAudit(tx, ctx, req.disabled ? "user.disabled" : "user.enabled", userId);
          // Tokens carry the role: a changed role or a disabled account ends the user's sessions everywhere.
          if (roleChanged || disabledNow) await sessions.endAllForUser(tx, userId);
          if (displayName !== undefined && displayName !== before.display_name) await recordAudit(tx, ctx, "user.updated", userId, { field: "display_name" });
          return after;
        });
        return { user: toUser(user) };
      },
      async setPassword(req, ctx) {
        const userId = requireUuid("user_id", req.userId);
        requireText("password", req.password, passwordRule);
        const target = await users.byId(pool, userId);
        if (!target) throw new ConnectError(`user ${userId} not found`, Code.NotFound);
        const elsewhere = sso.check.signsInWith(target);
        if (elsewhere) throw new ConnectError(`${target.email} signs in with ${elsewhere} (single sign-on); such accounts never get a local password`, Code.FailedPrecondition);
        requirePasswordAllowed(target.email);
        const passwordHash = await hashPassword(req.password, deps.scryptLogN);
        await inTransaction(pool, async (tx) => {
          if (!(await users.update(tx, userId, { passwordHash }))) throw new ConnectError(`user ${userId} not found`, Code.NotFound);
          const ended = await sessions.endAllForUser(tx, userId);
          await recordAudit(tx, ctx, "user.password_set", userId, { endedSessions: ended });
        });
        return {};
      },
    });

    router.service(DeviceService, {
      async createEnrollmentCode(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const ttlSeconds = req.ttlSeconds === 0 ? 86_400 : req.ttlSeconds;
        if (ttlSeconds < 60 || ttlSeconds > 604_800) throw invalidArgument("ttl_seconds", "must be between 60 and 604800");
        const principal = principalOf(ctx);
        const { code, expiresAt } = await devices.createEnrollmentCode(ctx, kioskId, ttlSeconds * 1000, principal.kind === "user" ? principal.userId : null);
        return { code, kioskId, expireTime: timestampFromDate(expiresAt) };
      },
      async enrollDevice(req, ctx) {
        const code = normalizeEnrollmentCode(requireText("code", req.code, { max: 64 }));
        if (!code) throw invalidArgument("code", "must be an enrollment code like ABCD-EFGH-JKLM-NPQR-STUV");
        const facts = {
          firmwareVersion: req.firmwareVersion === "" ? "" : requireText("firmware_version", req.firmwareVersion, { max: 64 }),
          hardwareModel: req.hardwareModel === "" ? "" : requireText("hardware_model", req.hardwareModel, { max: 64 }),
        };
        await deps.limiter.admitEnrollment(requestInfo(ctx).peer);
        const { device, credential } = await devices.enroll(ctx, code, facts);
        return { device: toDevice(device), deviceCredential: credential };
      },
      async renewDeviceCredential(_req, ctx) {
        const principal = principalOf(ctx);
        if (principal.kind !== "device") throw new ConnectError("only a device can renew its credential", Code.PermissionDenied);
        const { device, credential } = await devices.renew(ctx, principal.deviceId);
        return { device: toDevice(device), deviceCredential: credential };
      },
      async listDevices(req) {
        const limit = pageSize("page_size", req.pageSize);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const rows = await deviceRows.list(pool, {
          limit: limit + 1,
          after: cursor && { enrolledAt: cursor.at, deviceId: cursor.id },
          kioskId: req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId),
          includeRevoked: req.includeRevoked,
        });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          devices: page.map(toDevice),
          nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.enrolled_at.toISOString(), id: last.device_id }) : "",
        };
      },
      async revokeDevice(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const reason = req.reason === "" ? "" : requireText("reason", req.reason, { max: 500 });
        return { revokedCount: await devices.revokeKiosk(ctx, kioskId, reason) };
      },
    });

    router.service(KeyService, {
      async listSigningKeys() {
        return { keys: (await keys.list()).map(toSigningKey) };
      },
      async rotateSigningKey(_req, ctx) {
        const key = await keys.rotate();
        await recordAudit(pool, ctx, "key.rotated", key.kid);
        return { key: toSigningKey(key) };
      },
    });

    router.service(AuditService, {
      listAuditEvents: (req) => listAuditEvents(pool, req),
    });
  };
}

function toUser(row: UserRow): MessageInitShape<typeof UserSchema> {
  return {
    userId: row.user_id,
    email: row.email,
    displayName: row.display_name,
    role: roleFromName(row.role) ?? Role.UNSPECIFIED,
    disabled: row.disabled,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
    ssoProviderId: row.sso_provider ?? "",
    ssoSubject: row.sso_subject ?? "",
  };
}

function toDevice(row: DeviceRow): MessageInitShape<typeof DeviceSchema> {
  return {
    deviceId: row.device_id,
    kioskId: row.kiosk_id,
    enrollTime: timestampFromDate(row.enrolled_at),
    revokeTime: row.revoked_at ? timestampFromDate(row.revoked_at) : undefined,
    credentialExpireTime: timestampFromDate(row.credential_expires),
  };
}

function toSigningKey(row: SigningKeyRow): MessageInitShape<typeof SigningKeySchema> {
  return {
    kid: row.kid,
    algorithm: row.algorithm,
    createTime: timestampFromDate(row.created_at),
    activateTime: row.activated_at ? timestampFromDate(row.activated_at) : undefined,
    retireTime: row.retired_at ? timestampFromDate(row.retired_at) : undefined,
    unpublishTime: row.unpublish_at ? timestampFromDate(row.unpublish_at) : undefined,
  };
}

function toTokenPair(t: IssuedTokens): MessageInitShape<typeof TokenPairSchema> {
  return {
    accessToken: t.accessToken,
    accessTokenExpireTime: timestampFromDate(t.accessExpiresAt),
    refreshToken: t.refreshToken,
    refreshTokenExpireTime: timestampFromDate(t.refreshExpiresAt),
  };
}
