// The frame around every signed-in page: navigation (only what the role may use), the
// connection indicator, who is signed in, and sign out.
import { useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { roleLabel } from "../api/roles";
import { useApi, useSessionState } from "../api/context";
import { useConnection } from "../api/connection";
import { meetsNeed } from "../page-access";
import { pages } from "../routes";
import { PageErrorBoundary } from "./feedback";
import { Icon } from "./icons";

const sections = ["Fleet", "Commerce", "Admin"] as const;

export function Layout() {
  const { session } = useApi();
  const state = useSessionState();
  const navigate = useNavigate();
  const { pathname } = useLocation();
  const [signingOut, setSigningOut] = useState(false);
  const user = state.status === "signed-in" ? state.user : undefined;
  const visible = pages.filter((p) => !p.needs || meetsNeed(p.needs, user?.role));

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>Admin Kiosk</span>
        </div>
        <nav aria-label="Main">
          {sections.map((section) => {
            const items = visible.filter((p) => p.section === section);
            if (items.length === 0) return null;
            return (
              <div key={section} className="nav-section">
                <h2 className="nav-heading">{section}</h2>
                <ul>
                  {items.map((p) => (
                    <li key={p.path}>
                      <NavLink to={p.path} end={p.path === "/"} className="nav-link">
                        <Icon name={p.icon} />
                        <span className="nav-label">{p.label}</span>
                        {p.comingSoon && <span className="nav-soon">soon</span>}
                        {p.badge && <p.badge />}
                      </NavLink>
                    </li>
                  ))}
                </ul>
              </div>
            );
          })}
        </nav>
      </aside>
      <div className="main-column">
        <header className="topbar">
          <ConnectionIndicator />
          <div className="topbar-user">
            {user && (
              <>
                <span className="user-name">{user.displayName || user.email}</span>
                <span className="role-chip" data-testid="role">
                  {roleLabel[user.role]}
                </span>
              </>
            )}
            <button
              type="button"
              className="button button-quiet button-small"
              disabled={signingOut}
              onClick={() => {
                setSigningOut(true);
                void session.signOut().then((endSessionUrl) => (endSessionUrl ? window.location.assign(endSessionUrl) : navigate("/signin", { replace: true })));
              }}
            >
              <Icon name="signOut" size={16} /> Sign out
            </button>
          </div>
        </header>
        <main id="main" tabIndex={-1}>
          <PageErrorBoundary at={pathname}>
            <Outlet />
          </PageErrorBoundary>
        </main>
      </div>
    </div>
  );
}

function ConnectionIndicator() {
  const state = useConnection();
  const text = { live: "Live", reconnecting: "Reconnecting…", offline: "Offline — waiting for the network" }[state];
  return (
    <div className={`connection connection-${state}`} role="status" aria-live="polite" data-testid="connection">
      <span className="dot" aria-hidden="true" />
      {text}
    </div>
  );
}
