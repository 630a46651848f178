// Where a single sign-on provider sends the browser back (SSO_REDIRECT_URI, /sso/callback):
// completes the sign-in with what the redirect carried, then goes on to where the person was.
import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router";
import { useApi } from "../api/context";
import { ErrorNotice, Loading } from "../ui/feedback";

/** A callback's query is spent once (auth refuses its state the second time), even if React runs the effect twice. */
const completing = new Map<string, Promise<string>>();

export function SsoCallbackPage() {
  const { session } = useApi();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const query = window.location.search;
    let pending = completing.get(query);
    if (!pending) completing.set(query, (pending = session.completeSso(query)));
    let current = true;
    pending.then(
      (next) => current && navigate(next, { replace: true }),
      (err: unknown) => current && setError(err),
    );
    return () => {
      current = false;
    };
  }, [session, navigate]);

  return (
    <main className="fullpage" id="main">
      {error === undefined ? (
        <Loading label="Signing you in…" />
      ) : (
        <div className="signin-card">
          <h1>Sign-in did not complete</h1>
          <ErrorNotice error={error} compact />
          <p>
            <Link to="/signin" replace>
              Back to sign in
            </Link>
          </p>
        </div>
      )}
    </main>
  );
}
