// Cookie mode for the admin web app: the refresh token travels in an HttpOnly cookie that
// script in the page cannot read, instead of the response body. A caller asks for it with
// the header `x-adminkiosk-session: cookie` on Login, Refresh and Logout. A cross-site form
// cannot send such a header, and another origin's script can only after a CORS preflight,
// which neither the services nor the edge allow for it; SameSite=Strict keeps the cookie off
// cross-site requests as well. The cookie's Path is AuthService's RPC prefix, so it is sent
// to auth's Login, Refresh, Logout and WhoAmI only, never to another service. Callers that do
// not ask (the kiosk SDK, grpcurl, services) use the body's refresh_token as before.
import type { HandlerContext } from "@connectrpc/connect";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";

export const sessionModeHeader = "x-adminkiosk-session";
/** `__Secure-`: browsers accept it only with Secure, set from a secure origin (https, localhost). */
export const refreshCookieName = "__Secure-adminkiosk-refresh";
export const refreshCookiePath = `/${AuthService.typeName}/`;

/**
 * Single sign-on: binds a begun sign-in to the browser that began it (BeginSsoLogin sets it,
 * CompleteSsoLogin requires it and clears it), so a link to the callback with someone
 * else's code and state cannot sign a victim in as the attacker (login CSRF).
 */
export const ssoBindingCookieName = "__Secure-adminkiosk-sso";

/** Refresh tokens are base64url; anything else in the cookie is treated as no cookie. */
const tokenPattern = /^[A-Za-z0-9_-]{1,512}$/;

/** Whether the caller asked for the refresh token in a cookie rather than in the body. */
export function wantsCookie(ctx: HandlerContext): boolean {
  return ctx.requestHeader.get(sessionModeHeader)?.trim().toLowerCase() === "cookie";
}

/** The refresh token from the request's cookie, or "" when there is none (or it is malformed). */
export function refreshTokenFromCookie(ctx: HandlerContext): string {
  return cookieValue(ctx, refreshCookieName);
}

/** The single sign-on binding cookie's value, or "" when there is none. */
export function ssoBindingFromCookie(ctx: HandlerContext): string {
  return cookieValue(ctx, ssoBindingCookieName);
}

function cookieValue(ctx: HandlerContext, name: string): string {
  const header = ctx.requestHeader.get("cookie") ?? "";
  // HTTP/2 may deliver several cookie fields, which Headers joins with ", ".
  for (const pair of header.split(/[;,]/)) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    return tokenPattern.test(value) ? value : "";
  }
  return "";
}

const attributes = `Path=${refreshCookiePath}; HttpOnly; Secure; SameSite=Strict`;

/** Sets the cookie to `token`, living as long as the token does. */
export function setRefreshCookie(ctx: HandlerContext, token: string, expiresAt: Date) {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
  ctx.responseHeader.append("set-cookie", `${refreshCookieName}=${token}; Max-Age=${maxAge}; ${attributes}`);
}

/** Sets the single sign-on binding cookie for as long as the sign-in may take. */
export function setSsoBindingCookie(ctx: HandlerContext, value: string, ttlMs: number) {
  ctx.responseHeader.append("set-cookie", `${ssoBindingCookieName}=${value}; Max-Age=${Math.ceil(ttlMs / 1000)}; ${attributes}`);
}

export function clearSsoBindingCookie(ctx: HandlerContext) {
  ctx.responseHeader.append("set-cookie", `${ssoBindingCookieName}=; Max-Age=0; ${attributes}`);
}

/** Tells the browser to drop the cookie. */
export function clearRefreshCookie(ctx: HandlerContext) {
  ctx.responseHeader.append("set-cookie", `${refreshCookieName}=; Max-Age=0; ${attributes}`);
}

/**
 * The refresh token a Refresh or Logout presents: the body's field, or in cookie mode the
 * cookie's when the field is empty ("" when there is no usable cookie).
 */
export function presentedRefreshToken(ctx: HandlerContext, bodyToken: string, requireBody: (token: string) => string): string {
  return bodyToken === "" && wantsCookie(ctx) ? refreshTokenFromCookie(ctx) : requireBody(bodyToken);
}

/** In cookie mode, puts the refresh token in the cookie and takes it out of the answer. */
export function deliverTokens<T extends { refreshToken: string; refreshExpiresAt: Date }>(ctx: HandlerContext, tokens: T): T {
  if (!wantsCookie(ctx)) return tokens;
  setRefreshCookie(ctx, tokens.refreshToken, tokens.refreshExpiresAt);
  return { ...tokens, refreshToken: "" };
}
