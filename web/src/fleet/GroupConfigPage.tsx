// A group's desired configuration: the document (admins edit it as JSON, validated as they
// type; fleet's own refusals are shown next to the field they name), who changed it last, and
// the rollout: how many of the group's kiosks run their desired configuration, re-counted
// every 2 s while some have not applied it (fleet has no stream of configuration reports
// across kiosks; WatchKiosk has one kiosk's), with the kiosks still waiting or failing.
import { useId, useState } from "react";
import { Link, useParams } from "react-router";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectQueryKey, useMutation, useQuery, useTransport } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import type { JsonObject } from "@bufbuild/protobuf";
import { ConfigService, type GroupConfig } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, Loading } from "../ui/feedback";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { groupCounts } from "./GroupsPage";

const pretty = (v: JsonObject | undefined) => JSON.stringify(v ?? {}, null, 2);
const quoted = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;

export function GroupConfigPage() {
  const { groupId = "" } = useParams();
  const id = useId();
  const config = useQuery(ConfigService.method.getGroupConfig, { groupId });
  const canSet = useCan(ConfigService.method.setGroupConfig);
  const [editing, setEditing] = useState<{ base: bigint; text: string }>();
  const [saved, setSaved] = useState<{ version: bigint; affected: number }>();
  const c = config.data?.config;
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <p className="breadcrumb">
            <Link to="/fleet/groups">Configuration groups</Link>
          </p>
          <h1>
            Group <span className="mono">{groupId}</span>
          </h1>
          <p className="page-lede">What every kiosk of the group should run; a kiosk's own document is merged over it.</p>
        </div>
      </header>
      {config.error && !c ? (
        <ErrorNotice error={config.error} onRetry={() => void config.refetch()} />
      ) : !c ? (
        <Loading label="Loading the group's configuration…" />
      ) : (
        <>
          <Rollout groupId={groupId} version={c.version} saved={saved} />
          <section className="card card-wide" aria-labelledby={`${id}-title`} data-testid="group-config">
            <div className="card-toolbar">
              <h2 id={`${id}-title`} className="card-title">
                Configuration <span data-testid="group-config-version">v{String(c.version)}</span>
              </h2>
              {canSet && !editing && (
                <button type="button" className="button button-small" onClick={() => setEditing({ base: c.version, text: pretty(c.config) })}>
                  Edit group configuration
                </button>
              )}
            </div>
            <p className="muted small">{c.version === 0n ? "No document yet: the group's kiosks run their own configuration only." : `Changed ${formatAgo(c.updateTime)} (${formatDateTime(c.updateTime)}) by ${c.updatedBy || "someone"}.`}</p>
            {editing ? (
              <GroupEditor
                groupId={groupId}
                current={c}
                base={editing.base}
                initial={editing.text}
                onSaved={(version, affected) => {
                  setSaved({ version, affected });
                  setEditing(undefined);
                }}
                onCancel={() => setEditing(undefined)}
                onRebase={(text) => setEditing({ base: c.version, text })}
              />
            ) : (
              <pre className="json" data-testid="group-config-json">
                {pretty(c.config)}
              </pre>
            )}
          </section>
        </>
      )}
    </div>
  );
}

/** How many of the group's kiosks run their desired configuration, and which do not yet. */
function Rollout({ groupId, version, saved }: { groupId: string; version: bigint; saved?: { version: bigint; affected: number } }) {
  const id = useId();
  // Keyed by the group's version: a count from before a save is never shown as this one's
  // (every kiosk of the group has a desired version at least the group's once it is saved).
  const inGroup = `group = ${quoted(groupId)}${version > 0n ? ` and config_version >= ${version}` : ""}`;
  const counts = useQuery(FleetQueryService.method.queryKiosks, { query: `${inGroup} | stats count() by group, config_in_sync`, pageSize: 1 }, { refetchInterval: (q) => (settled(q.state.data?.stats?.groups) ? 15_000 : 2_000) });
  const g = groupCounts(counts.data?.stats?.groups ?? [])[0] ?? { groupId, kiosks: 0, inSync: 0 };
  const waiting = useQuery(FleetQueryService.method.queryKiosks, { query: `${inGroup} and not config_in_sync | sort id`, pageSize: 10 }, { enabled: g.kiosks > g.inSync, refetchInterval: 2_000 });
  const percent = g.kiosks === 0 ? 0 : Math.round((100 * g.inSync) / g.kiosks);
  return (
    <section className="card card-wide" aria-labelledby={`${id}-title`} data-testid="group-rollout">
      <h2 id={`${id}-title`} className="card-title">
        Rollout
      </h2>
      {saved && (
        <p className="notice notice-info" role="status" data-testid="group-saved">
          Saved as v{String(saved.version)}: {formatNumber(saved.affected)} {saved.affected === 1 ? "kiosk" : "kiosks"} got it as their new desired configuration.
        </p>
      )}
      {counts.error && <ErrorNotice error={counts.error} onRetry={() => void counts.refetch()} compact />}
      {!counts.data ? (
        <Loading label="Counting the group's kiosks…" />
      ) : g.kiosks === 0 ? (
        <EmptyState icon="fleet" title="No kiosks in this group">
          <p>The document reaches kiosks as they join the group.</p>
        </EmptyState>
      ) : (
        <>
          <div className="progress" role="progressbar" aria-label="Kiosks running their desired configuration" aria-valuemin={0} aria-valuemax={g.kiosks} aria-valuenow={g.inSync} aria-valuetext={`${g.inSync} of ${g.kiosks} kiosks`}>
            <span className="seg-ok" style={{ width: `${percent}%` }} />
          </div>
          <p data-testid="group-rollout-count">
            <strong>
              {formatNumber(g.inSync)} of {formatNumber(g.kiosks)}
            </strong>{" "}
            kiosks run their desired configuration{version > 0n ? ` with the group's v${version} (a kiosk's own document gives it a later version)` : ""}.
          </p>
          {g.kiosks > g.inSync && (
            <>
              <h3 className="subhead">Not applied yet</h3>
              <ul className="plain-list" data-testid="group-rollout-waiting">
                {(waiting.data?.kiosks ?? []).map((k) => (
                  <li key={k.kioskId}>
                    <Link to={`/kiosks/${encodeURIComponent(k.kioskId)}`}>{k.name || k.kioskId}</Link> <span className="muted small mono">{k.kioskId}</span>
                  </li>
                ))}
              </ul>
              {(waiting.data?.totalSize ?? 0) > 10 && <p className="muted small">and {formatNumber((waiting.data?.totalSize ?? 0) - 10)} more</p>}
            </>
          )}
        </>
      )}
    </section>
  );
}

function settled(groups: { keys: string[] }[] | undefined): boolean {
  return groups !== undefined && groups.every((x) => x.keys[1] === "true");
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

function GroupEditor({ groupId, current, base, initial, onSaved, onCancel, onRebase }: { groupId: string; current: GroupConfig; base: bigint; initial: string; onSaved: (version: bigint, affected: number) => void; onCancel: () => void; onRebase: (text: string) => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const transport = useTransport();
  const [text, setText] = useState(initial);
  const parsed = parseObject(text);
  const tooBig = new TextEncoder().encode(text).length > 64 * 1024;
  const save = useMutation(ConfigService.method.setGroupConfig, {
    onSuccess: (res) => {
      // The saved document at once (the answer has it), then everything read again.
      const key = createConnectQueryKey({ schema: ConfigService.method.getGroupConfig, input: { groupId }, transport, cardinality: "finite" });
      queryClient.setQueryData(key, { $typeName: "adminkiosk.fleet.v1.GetGroupConfigResponse" as const, config: res.config });
      void queryClient.invalidateQueries();
      onSaved(res.config?.version ?? 0n, res.kiosksAffected);
    },
    onError: (err) => {
      if (ConnectError.from(err).code === Code.Aborted) void queryClient.invalidateQueries();
    },
  });
  const conflict = save.error && ConnectError.from(save.error).code === Code.Aborted;
  // What fleet said about the document itself (InvalidArgument naming `config`).
  const serverSays = save.error && !conflict ? describeError(save.error).fields["config"] : undefined;
  const problem = parsed.error ?? (tooBig ? "At most 64 KiB." : serverSays);
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault();
        if (parsed.value && !tooBig) save.mutate({ groupId, config: parsed.value, expectedVersion: base });
      }}
    >
      <div className={`field${problem ? " field-invalid" : ""}`}>
        <label htmlFor={`${id}-json`}>The group's configuration (JSON)</label>
        <textarea
          id={`${id}-json`}
          className="json-editor"
          rows={14}
          spellCheck={false}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            if (serverSays) save.reset();
          }}
          aria-invalid={Boolean(problem)}
          aria-describedby={`${id}-hint`}
          data-testid="group-config-editor"
        />
        <p id={`${id}-hint`} className={problem ? "field-error" : "field-hint"} role={problem ? "alert" : undefined} data-testid="group-config-hint">
          {problem ?? `${base === 0n ? "The group's first document: saved without a check for changes made meanwhile." : `Based on v${base}; refused if it changed meanwhile.`} It reaches every kiosk of the group at once.`}
        </p>
      </div>
      {conflict ? (
        <div className="notice notice-warn" role="alert" data-testid="group-config-conflict">
          <div className="notice-body">
            <p className="notice-title">
              Someone changed this group's configuration while you were editing (it was v{String(base)}, now v{String(current.version)}). Your change was not saved.
            </p>
          </div>
          <button type="button" className="button button-small" onClick={() => (onRebase(text), save.reset())}>
            Keep my text, base it on v{String(current.version)}
          </button>
        </div>
      ) : (
        save.error && !serverSays && <ErrorNotice error={save.error} compact />
      )}
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={save.isPending || Boolean(parsed.error) || tooBig}>
          {save.isPending ? "Saving…" : "Save and roll out"}
        </button>
        <button type="button" className="button button-quiet" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
