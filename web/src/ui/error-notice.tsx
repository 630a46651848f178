// ErrorNotice's words (feedback.tsx): describeError reads Connect's error and its details,
// so this is loaded with the platform chunk, not in the first load.
import { useState } from "react";
import { ConnectError } from "@connectrpc/connect";
import { describeError } from "../api/errors";
import type { ErrorNoticeProps } from "./feedback";
import { Icon } from "./icons";

/** `titles` replaces the sentence for some codes where the page knows better (sign-in). */
export function FullErrorNotice({ error, onRetry, compact, titles }: ErrorNoticeProps) {
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

