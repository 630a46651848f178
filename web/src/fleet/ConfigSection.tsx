// Desired vs reported configuration (like a device twin), kept current by WatchKiosk, and
// the editor of the kiosk's own layer (admins). A change is based on the desired version
// the editor opened with; fleet refuses it (Aborted) when someone changed it meanwhile,
// and that is said in words with the current version.
import { useId, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { useMutation } from "@connectrpc/connect-query";
import type { JsonObject } from "@bufbuild/protobuf";
import { ConfigService, type KioskConfig } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { useCan } from "../api/context";
import { ErrorNotice, Loading } from "../ui/feedback";
import { formatAgo, formatDateTime } from "../ui/format";
import { useKioskConfig } from "./use-fleet";

const pretty = (v: JsonObject | undefined) => JSON.stringify(v ?? {}, null, 2);

export function ConfigSection({ kioskId }: { kioskId: string }) {
  const id = useId();
  const config = useKioskConfig(kioskId);
  const canSet = useCan(ConfigService.method.setKioskConfig);
  const [editing, setEditing] = useState<{ base: bigint; text: string }>();
  const c = config.data;
  return (
    <section className="card card-wide" aria-labelledby={`${id}-title`} data-testid="config-section">
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Configuration
        </h2>
        {c && canSet && !editing && (
          <button type="button" className="button button-small" onClick={() => setEditing({ base: c.desiredVersion, text: pretty(c.kioskLayer) })}>
            Edit kiosk configuration
          </button>
        )}
      </div>
      {config.error && !c ? (
        <ErrorNotice error={config.error} onRetry={() => void config.refetch()} compact />
      ) : !c ? (
        <Loading label="Loading the configuration…" />
      ) : (
        <>
          <SyncState config={c} />
          {editing ? (
            <ConfigEditor kioskId={kioskId} config={c} base={editing.base} initial={editing.text} onDone={() => setEditing(undefined)} onRebase={(text) => setEditing({ base: c.desiredVersion, text })} />
          ) : (
            <div className="config-columns">
              <div>
                <h3 className="subhead">Desired (v{String(c.desiredVersion)})</h3>
                <pre className="json" data-testid="config-desired">
                  {pretty(c.desired)}
                </pre>
              </div>
              <div>
                <h3 className="subhead">Layers</h3>
                <p className="small muted">Group {c.groupId ? <code>{c.groupId}</code> : "(none)"}</p>
                <pre className="json">{pretty(c.groupLayer)}</pre>
                <p className="small muted">This kiosk{c.updatedBy ? `, last changed ${formatAgo(c.updateTime)}` : ""}</p>
                <pre className="json" data-testid="config-kiosk-layer">
                  {pretty(c.kioskLayer)}
                </pre>
              </div>
            </div>
          )}
        </>
      )}
    </section>
  );
}

function SyncState({ config }: { config: KioskConfig }) {
  const reported = config.reportedVersion === 0n ? "nothing reported yet" : `v${config.reportedVersion}${config.reportedTime ? ` (${formatAgo(config.reportedTime)})` : ""}`;
  return (
    <div className={`notice ${config.inSync ? "notice-ok" : config.reportedError ? "notice-error" : "notice-warn"}`} role="status" data-testid="config-sync" data-in-sync={config.inSync}>
      <div className="notice-body">
        <p className="notice-title">{config.inSync ? "In sync: the kiosk runs the desired configuration" : config.reportedError ? "The kiosk could not apply the desired configuration" : "Waiting for the kiosk to apply the desired configuration"}</p>
        <p className="notice-detail">
          Desired <strong data-testid="config-desired-version">v{String(config.desiredVersion)}</strong> · reported <strong data-testid="config-reported-version">{reported}</strong>
          {config.reportedError && <> · it said: {config.reportedError}</>}
        </p>
        {config.reportedTime && <p className="notice-detail small">Last report {formatDateTime(config.reportedTime)}</p>}
      </div>
    </div>
  );
}

function parseObject(text: string): { value?: JsonObject; error?: string } {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return { error: "The configuration must be a JSON object: { … }." };
    return { value: value as JsonObject };
  } catch (e) {
    return { error: `Not valid JSON: ${(e as Error).message}` };
  }
}

function ConfigEditor({ kioskId, config, base, initial, onDone, onRebase }: { kioskId: string; config: KioskConfig; base: bigint; initial: string; onDone: () => void; onRebase: (text: string) => void }) {
  const id = useId();
  const [text, setText] = useState(initial);
  const parsed = parseObject(text);
  const save = useMutation(ConfigService.method.setKioskConfig, { onSuccess: onDone });
  const conflict = save.error && ConnectError.from(save.error).code === Code.Aborted;
  const tooBig = new TextEncoder().encode(text).length > 64 * 1024;
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault();
        if (parsed.value && !tooBig) save.mutate({ kioskId, config: parsed.value, expectedVersion: base });
      }}
    >
      <div className={`field${parsed.error || tooBig ? " field-invalid" : ""}`}>
        <label htmlFor={`${id}-json`}>This kiosk's own configuration (JSON), merged over its group's</label>
        <textarea id={`${id}-json`} className="json-editor" rows={12} spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} aria-invalid={Boolean(parsed.error || tooBig)} aria-describedby={`${id}-hint`} />
        <p id={`${id}-hint`} className={parsed.error || tooBig ? "field-error" : "field-hint"} role={parsed.error ? "alert" : undefined}>
          {parsed.error ??
            (tooBig
              ? "At most 64 KiB."
              : `${base === 0n ? "The first version: saved without a check for changes made meanwhile." : `Based on desired v${base}; refused if it changed meanwhile.`} Objects merge key by key over the group's; anything else replaces it.`)}
        </p>
      </div>
      {conflict ? (
        <div className="notice notice-warn" role="alert" data-testid="config-conflict">
          <div className="notice-body">
            <p className="notice-title">
              Someone changed this kiosk's configuration while you were editing (it was v{String(base)}, now v{String(config.desiredVersion)}). Your change was not saved.
            </p>
            <p className="notice-detail">Look at the current configuration above, then apply your change on top of it.</p>
          </div>
          <button type="button" className="button button-small" onClick={() => (onRebase(text), save.reset())}>
            Keep my text, base it on v{String(config.desiredVersion)}
          </button>
        </div>
      ) : (
        save.error && <ErrorNotice error={save.error} compact />
      )}
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={save.isPending || Boolean(parsed.error) || tooBig}>
          {save.isPending ? "Saving…" : "Save configuration"}
        </button>
        <button type="button" className="button button-quiet" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
