// Rollouts: the list (newest first) and, for admins, the form that creates one — a release,
// a target, waves with bake times, the maintenance window policy, the gate — with a preview
// (PreviewRollout: kiosks per wave, a sample, how many are inside their window now) before
// anything starts.
import { useId, useState } from "react";
import { Link, useNavigate } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, RolloutState, WindowPolicy, type CreateRolloutRequestSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { RolloutStateBadge, describeRolloutTarget, rolloutFinished, rolloutProgress } from "./rollout-info";

const pageSize = 25;

export function RolloutsPage() {
  const canCreate = useCan(RolloutService.method.createRollout);
  const [creating, setCreating] = useState(false);
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Rollouts</h1>
          <p className="page-lede">A release taken to kiosks in waves, inside their maintenance windows, stopped when the updated kiosks do worse than the rest.</p>
        </div>
        {canCreate && !creating && (
          <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
            New rollout
          </button>
        )}
      </header>
      {creating && <CreateRolloutForm onDone={() => setCreating(false)} />}
      <RolloutList />
    </div>
  );
}

function RolloutList() {
  const id = useId();
  const [state, setState] = useState<RolloutState>(RolloutState.UNSPECIFIED);
  const pages = usePageTokens(state);
  const rollouts = useQuery(
    RolloutService.method.listRollouts,
    { pageSize, pageToken: pages.token, state },
    { refetchInterval: (q) => (q.state.data?.rollouts.some((r) => !rolloutFinished(r.state)) ? 2_000 : 10_000) },
  );
  const list = rollouts.data?.rollouts ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          All rollouts
        </h2>
        <div className="field">
          <label htmlFor={`${id}-state`} className="visually-hidden">
            State
          </label>
          <select id={`${id}-state`} value={state} onChange={(e) => setState(Number(e.target.value) as RolloutState)}>
            <option value={RolloutState.UNSPECIFIED}>Any state</option>
            <option value={RolloutState.RUNNING}>Running</option>
            <option value={RolloutState.PAUSED}>Paused</option>
            <option value={RolloutState.COMPLETED}>Completed</option>
            <option value={RolloutState.CANCELED}>Canceled</option>
            <option value={RolloutState.ROLLED_BACK}>Rolled back</option>
          </select>
        </div>
      </div>
      {rollouts.error && <ErrorNotice error={rollouts.error} onRetry={() => void rollouts.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Rollout</th>
              <th scope="col">Version</th>
              <th scope="col">Target</th>
              <th scope="col">State</th>
              <th scope="col">Wave</th>
              <th scope="col">Installed</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {rollouts.isPending && <SkeletonRows rows={5} columns={7} />}
            {list.map((r) => {
              const p = rolloutProgress(r);
              return (
                <tr key={r.rolloutId} data-testid="rollout-row">
                  <td>
                    <Link to={`/rollouts/${r.rolloutId}`} className="row-link">
                      {r.description || `Rollout ${r.rolloutId.slice(0, 8)}`}
                    </Link>
                    {r.stopReason && <div className="muted small">{r.stopReason}</div>}
                  </td>
                  <td className="mono">{r.rollbackOf ? "previous versions" : `${r.kind.toLowerCase()} ${r.version}`}</td>
                  <td className="small">{describeRolloutTarget(r.target, r.rollbackOf)}</td>
                  <td>
                    <RolloutStateBadge state={r.state} />
                  </td>
                  <td>{Math.min(r.currentWave + 1, r.waves.length)} of {r.waves.length}</td>
                  <td>
                    {formatNumber(p.installed)} of {formatNumber(p.total)}
                  </td>
                  <td className="nowrap" title={formatDateTime(r.createTime)}>
                    {formatAgo(r.createTime)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {!rollouts.isPending && list.length === 0 && !rollouts.error && (
          <EmptyState icon="jobs" title={state ? "No rollout in this state" : "No rollouts yet"}>
            <p>A rollout installs a release on the kiosks you choose, a canary first.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={rollouts.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="rollouts" />
    </section>
  );
}

function CreateRolloutForm({ onDone }: { onDone: () => void }) {
  const id = useId();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const releases = useQuery(ReleaseService.method.listReleases, { pageSize: 100 });
  const [releaseId, setReleaseId] = useState("");
  const [description, setDescription] = useState("");
  const [groupId, setGroupId] = useState("");
  const [tags, setTags] = useState("");
  const [model, setModel] = useState("");
  const [currentVersion, setCurrentVersion] = useState("");
  const [query, setQuery] = useState("");
  const [waves, setWaves] = useState("1, 10, 50, 100");
  const [bakeMinutes, setBakeMinutes] = useState(60);
  const [maxConcurrent, setMaxConcurrent] = useState(50);
  const [policy, setPolicy] = useState<WindowPolicy>(WindowPolicy.AUTO);
  const [start, setStart] = useState(2);
  const [end, setEnd] = useState(5);
  const [minSalesRatio, setMinSalesRatio] = useState(0.8);
  const [autoRollback, setAutoRollback] = useState(true);
  const request = (): MessageInitShape<typeof CreateRolloutRequestSchema> => ({
    releaseId,
    description,
    target: {
      groupId: groupId.trim(),
      tags: tags.split(/[\s,]+/).filter(Boolean),
      hardwareModel: model.trim(),
      currentVersion: currentVersion.trim(),
      query: query.trim(),
    },
    waves: waves
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((p) => ({ percent: Number(p), bake: durationFromMs(bakeMinutes * 60_000) })),
    maxConcurrent,
    windowPolicy: policy,
    windowStartHour: start,
    windowEndHour: end,
    gate: { minSalesRatio },
    autoRollback,
  });
  const preview = useMutation(RolloutService.method.previewRollout);
  const create = useMutation(RolloutService.method.createRollout, {
    onSuccess: async (r) => {
      await queryClient.invalidateQueries();
      onDone();
      if (r.rollout) void navigate(`/rollouts/${r.rollout.rolloutId}`);
    },
  });
  const error = create.error ?? preview.error;
  const fields = error ? describeError(error).fields : {};
  const field = (name: string) => fields[name] ?? fields[`rollout.${name}`];
  const p = preview.data;
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        New rollout
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate(request());
        }}
      >
        <FormField id={`${id}-release`} label="Release" error={field("release_id")}>
          <select id={`${id}-release`} value={releaseId} onChange={(e) => setReleaseId(e.target.value)} required>
            <option value="">Choose a release</option>
            {(releases.data?.releases ?? []).map((r) => (
              <option key={r.releaseId} value={r.releaseId}>
                {r.version} {r.notes ? `— ${r.notes.slice(0, 60)}` : ""}
              </option>
            ))}
          </select>
        </FormField>
        <FormField id={`${id}-desc`} label="Description" error={field("description")}>
          <input id={`${id}-desc`} value={description} onChange={(e) => setDescription(e.target.value)} placeholder="e.g. App 7.1 to Czech kiosks" />
        </FormField>
        <fieldset className="fieldset">
          <legend>Which kiosks (every field given must match)</legend>
          <div className="filters">
            <FormField id={`${id}-group`} label="Group" error={field("target.group_id")}>
              <input id={`${id}-group`} value={groupId} onChange={(e) => setGroupId(e.target.value)} />
            </FormField>
            <FormField id={`${id}-tags`} label="Tags (all)" error={field("target.tags")}>
              <input id={`${id}-tags`} value={tags} onChange={(e) => setTags(e.target.value)} />
            </FormField>
            <FormField id={`${id}-model`} label="Hardware model" error={field("target.hardware_model")}>
              <input id={`${id}-model`} value={model} onChange={(e) => setModel(e.target.value)} />
            </FormField>
            <FormField id={`${id}-current`} label="Current version" error={field("target.current_version")}>
              <input id={`${id}-current`} value={currentVersion} onChange={(e) => setCurrentVersion(e.target.value)} />
            </FormField>
          </div>
          <FormField id={`${id}-query`} label="Fleet query" hint="The Query page's language, e.g. group = cz and model = AK-SIM-1" error={field("target.query")}>
            <input id={`${id}-query`} value={query} onChange={(e) => setQuery(e.target.value)} />
          </FormField>
        </fieldset>
        <fieldset className="fieldset">
          <legend>Waves, windows and gates</legend>
          <div className="filters">
            <FormField id={`${id}-waves`} label="Waves (cumulative %)" error={field("waves")}>
              <input id={`${id}-waves`} value={waves} onChange={(e) => setWaves(e.target.value)} />
            </FormField>
            <FormField id={`${id}-bake`} label="Bake per wave (minutes)">
              <input id={`${id}-bake`} type="number" min={0} value={bakeMinutes} onChange={(e) => setBakeMinutes(Number(e.target.value))} />
            </FormField>
            <FormField id={`${id}-conc`} label="Installs at once" error={field("max_concurrent")}>
              <input id={`${id}-conc`} type="number" min={1} value={maxConcurrent} onChange={(e) => setMaxConcurrent(Number(e.target.value))} />
            </FormField>
            <FormField id={`${id}-policy`} label="Maintenance window" error={field("window_policy")}>
              <select id={`${id}-policy`} value={policy} onChange={(e) => setPolicy(Number(e.target.value) as WindowPolicy)}>
                <option value={WindowPolicy.AUTO}>Lowest-sales hours (auto)</option>
                <option value={WindowPolicy.EXPLICIT}>These local hours</option>
                <option value={WindowPolicy.ANY}>Any time (emergency)</option>
              </select>
            </FormField>
            {policy === WindowPolicy.EXPLICIT && (
              <>
                <FormField id={`${id}-start`} label="From (local hour)" error={field("window_start_hour")}>
                  <input id={`${id}-start`} type="number" min={0} max={23} value={start} onChange={(e) => setStart(Number(e.target.value))} />
                </FormField>
                <FormField id={`${id}-end`} label="To (local hour)" error={field("window_end_hour")}>
                  <input id={`${id}-end`} type="number" min={0} max={23} value={end} onChange={(e) => setEnd(Number(e.target.value))} />
                </FormField>
              </>
            )}
            <FormField id={`${id}-sales`} label="Sales at least (share of control)" error={field("gate.min_sales_ratio")}>
              <input id={`${id}-sales`} type="number" step={0.05} min={0.05} max={1} value={minSalesRatio} onChange={(e) => setMinSalesRatio(Number(e.target.value))} />
            </FormField>
          </div>
          <label className="checkbox">
            <input type="checkbox" checked={autoRollback} onChange={(e) => setAutoRollback(e.target.checked)} /> Roll back by itself when a gate fails
          </label>
        </fieldset>
        {p && (
          <div className="notice notice-info" role="status" data-testid="rollout-preview">
            <div className="notice-body">
              <p className="notice-title">
                {formatNumber(p.total)} kiosks in {p.waveSizes.length} waves ({p.waveSizes.map((n) => formatNumber(n)).join(" / ")}); {formatNumber(p.inWindowNow)} inside their window now
              </p>
              <p className="small">{p.windowNote}</p>
              <p className="small">
                First kiosks: {p.sample.slice(0, 8).map((k) => `${k.kioskId} (wave ${k.wave + 1}, ${k.timezone})`).join(", ")}
              </p>
            </div>
          </div>
        )}
        {error && <ErrorNotice error={error} compact />}
        <div className="form-actions">
          <button type="button" className="button" disabled={!releaseId || preview.isPending} onClick={() => preview.mutate({ rollout: request() })}>
            Preview
          </button>
          <button type="submit" className="button button-primary" disabled={!releaseId || create.isPending}>
            Start rollout
          </button>
          <button type="button" className="button" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
