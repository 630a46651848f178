// A live view's own state, beside its title: "Live" while its stream delivers,
// "Reconnecting…" while it is reopened with backoff, the refusal when it stopped.
import type { StreamState } from "../api/use-stream";
import { describeError } from "../api/errors";

const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", failed: "Not live" } as const;

export function LiveBadge({ state }: { state: StreamState }) {
  const tone = state.status === "live" ? "ok" : state.status === "failed" ? "alert" : "warn";
  return (
    <span className={`badge badge-${tone}`} role="status" aria-live="polite" data-testid="live-status" title={state.error ? describeError(state.error).title : undefined}>
      <span className="dot" aria-hidden="true" />
      {labels[state.status]}
    </span>
  );
}
