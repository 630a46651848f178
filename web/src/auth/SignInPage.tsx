// Sign in with a single sign-on provider ("Sign in with …", auth's BeginSsoLogin) or with
// email and password (auth's Login). Says why when a session ended on its own.
import { useEffect, useId, useState } from "react";
import { Code } from "@connectrpc/connect";
import type { ListSsoProvidersResponse } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Navigate, useSearchParams } from "react-router";
import { preloadProviders, useApi, useSessionState } from "../api/context";
import { ErrorNotice, Loading } from "../ui/feedback";

export function SignInPage() {
  const { session } = useApi();
  const state = useSessionState();
  const [params] = useSearchParams();
  const id = useId();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const next = params.get("next")?.startsWith("/") ? (params.get("next") ?? "/") : "/";
  // One plain call (no TanStack Query in the first load); the form is usable before it answers.
  const [sso, setSso] = useState<ListSsoProvidersResponse>();
  useEffect(() => {
    let current = true;
    session.ssoProviders().then(
      (res) => current && setSso(res),
      () => undefined, // no providers shown; password sign-in still works
    );
    return () => {
      current = false;
    };
  }, [session]);
  const providers = sso?.providers ?? [];
  const domain = email.trim().toLowerCase().split("@")[1] ?? "";
  const passwordOff = domain !== "" && (sso?.passwordLoginDisabledDomains ?? []).includes(domain);

  // A reload of this page with a session kept in the browser goes on where it was.
  useEffect(() => {
    if (state.status === "restoring") void session.restore();
  }, [session, state.status]);

  if (state.status === "signed-in") return <Navigate to={next} replace />;
  if (state.status === "restoring") {
    return (
      <main className="fullpage" id="main">
        <Loading label="Restoring your session…" />
      </main>
    );
  }
  const reason = state.status === "signed-out" ? state.reason : undefined;

  return (
    <main className="signin" id="main">
      <form
        className="signin-card"
        aria-labelledby={`${id}-title`}
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          void preloadProviders().catch(() => undefined); // the pages' providers, while the password is checked
          session
            .signIn(email.trim(), password)
            .catch((err: unknown) => setError(err))
            .finally(() => setBusy(false));
        }}
      >
        <div className="brand brand-large">
          <img src="/favicon.svg" alt="" width={36} height={36} />
          <span>Admin Kiosk</span>
        </div>
        <h1 id={`${id}-title`}>Sign in</h1>
        {reason && !error && (
          <p className="notice notice-info" role="status">
            {reason}
          </p>
        )}
        {error !== undefined && <ErrorNotice error={error} compact titles={{ [Code.Unauthenticated]: "The email or password is not right." }} />}
        {providers.length > 0 && (
          <div className="signin-sso">
            {providers.map((p) => (
              <button
                key={p.providerId}
                type="button"
                className="button button-block"
                disabled={busy}
                onClick={() => {
                  setBusy(true);
                  setError(undefined);
                  session.beginSso(p.providerId, next).catch((err: unknown) => {
                    setError(err);
                    setBusy(false);
                  });
                }}
              >
                Sign in with {p.displayName}
              </button>
            ))}
            <p className="muted signin-or">or with your email and password</p>
          </div>
        )}
        {passwordOff && (
          <p className="notice notice-info" role="status">
            People at {domain} sign in with single sign-on{providers.length > 0 ? " (above)" : ""}, not with a password.
          </p>
        )}
        <div className="field">
          <label htmlFor={`${id}-email`}>Email</label>
          <input id={`${id}-email`} type="email" autoComplete="username" required autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-password`}>Password</label>
          <input id={`${id}-password`} type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </div>
        <button type="submit" className="button button-primary button-block" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
