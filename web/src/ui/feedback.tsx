// Designed states: errors with the request id, empty states, loading placeholders.
import { Component, useEffect, useState, type ComponentType, type ReactNode } from "react";
import type { Code } from "@connectrpc/connect";
import { Icon, type IconName } from "./icons";

/**
 * An error in words, with its field violations and request id (error-notice.tsx). Part of the
 * first load, so the words come with the platform chunk: every call's error arrives after it
 * has loaded; until then (or when it cannot load) the error's own message is shown.
 * `titles` replaces the sentence for some codes where the page knows better (sign-in).
 */
let fullNotice: { C: ComponentType<ErrorNoticeProps> } | undefined;

export function ErrorNotice(props: ErrorNoticeProps) {
  const [Full, setFull] = useState(fullNotice);
  useEffect(() => {
    if (Full) return;
    let current = true;
    void import("./error-notice").then(
      (m) => {
        fullNotice = { C: m.FullErrorNotice };
        if (current) setFull(fullNotice);
      },
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [Full]);
  if (Full) return <Full.C {...props} />;
  const { error, onRetry, compact } = props;
  return (
    <div className={`notice notice-error${compact ? " notice-compact" : ""}`} role="alert">
      <Icon name="alert" />
      <div className="notice-body">
        <p className="notice-title">{error instanceof Error ? error.message : String(error)}</p>
      </div>
      {onRetry && (
        <button type="button" className="button button-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export interface ErrorNoticeProps {
  error: unknown;
  onRetry?: () => void;
  compact?: boolean;
  titles?: Partial<Record<Code, string>>;
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
