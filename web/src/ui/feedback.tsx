// Designed states: errors with the request id, empty states, loading placeholders.
import { Component, useState, type ReactNode } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { describeError } from "../api/errors";
import { Icon, type IconName } from "./icons";

/** `titles` replaces the sentence for some codes where the page knows better (sign-in). */
export function ErrorNotice({ error, onRetry, compact, titles }: { error: unknown; onRetry?: () => void; compact?: boolean; titles?: Partial<Record<Code, string>> }) {
  const d = describeError(error);
  const own = titles?.[ConnectError.from(error).code];
  const fieldList = Object.entries(d.fields);
  return (
    <div className={`notice notice-error${compact ? " notice-compact" : ""}`} role="alert">
      <Icon name="alert" />
      <div className="notice-body">
        <p className="notice-title">{own ?? d.title}</p>
        {d.detail && !own && fieldList.length === 0 && <p className="notice-detail">{d.detail}</p>}
        {fieldList.length > 0 && (
          <ul className="notice-detail">
            {fieldList.map(([field, what]) => (
              <li key={field}>
                <code>{field}</code>: {what}
              </li>
            ))}
          </ul>
        )}
        {d.requestId && <RequestId id={d.requestId} />}
      </div>
      {onRetry && (
        <button type="button" className="button button-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

function RequestId({ id }: { id: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <p className="request-id">
      Request id <code>{id}</code>{" "}
      <button
        type="button"
        className="link-button"
        onClick={() => {
          void navigator.clipboard?.writeText(id).then(() => setCopied(true));
        }}
      >
        {copied ? "copied" : "copy"}
      </button>
    </p>
  );
}

export function EmptyState({ icon, title, children, action }: { icon: IconName; title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty-state">
      <div className="empty-icon">
        <Icon name={icon} size={28} />
      </div>
      <h2>{title}</h2>
      {children && <div className="empty-text">{children}</div>}
      {action}
    </div>
  );
}

/** Placeholder rows while a table loads, the shape of what is coming. */
export function SkeletonRows({ rows, columns }: { rows: number; columns: number }) {
  return (
    <>
      {Array.from({ length: rows }, (_, r) => (
        <tr key={r} className="skeleton-row" aria-hidden="true">
          {Array.from({ length: columns }, (_, c) => (
            <td key={c}>
              <span className="skeleton" style={{ width: `${45 + ((r * 7 + c * 13) % 45)}%` }} />
            </td>
          ))}
        </tr>
      ))}
    </>
  );
}

export function Loading({ label }: { label: string }) {
  return (
    <div className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

/**
 * Around the page in the layout: a page that fails to render, or whose chunk cannot be
 * loaded (the app was updated since this tab opened it), says so instead of leaving a blank
 * screen. Moving to another address (`at`) clears it.
 */
export class PageErrorBoundary extends Component<{ at: string; children: ReactNode }, { at: string; error?: unknown }> {
  override state: { at: string; error?: unknown } = { at: this.props.at };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  static getDerivedStateFromProps(props: { at: string }, state: { at: string; error?: unknown }) {
    return props.at === state.at ? null : { at: props.at, error: undefined };
  }
  override render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <div className="page">
        <ErrorNotice error={this.state.error} onRetry={() => window.location.reload()} />
      </div>
    );
  }
}
