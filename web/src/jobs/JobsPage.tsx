// Bulk jobs: the list (newest first) and, for admins, the form that creates one: a command
// for a group and/or tag (or kiosk ids, or a status), at a rate, aborted past a number of
// failures. Progress is read again every 2 s: fleet has no job stream (see docs/web.md).
import { useId, useState } from "react";
import { Link, useNavigate } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { JobService, JobState } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { ActionFields, TtlField, describeAction, emptyAction, toAction, type ActionDraft } from "../fleet/CommandAction";
import { filterableStatuses, KioskStatus, statusInfo } from "../fleet/status";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatAgo, formatDateTime } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { JobProgressBar, JobStateBadge, jobFinished, jobRefreshMs } from "./job-info";

const pageSize = 25;

export function JobsPage() {
  const canCreate = useCan(JobService.method.createJob);
  const [creating, setCreating] = useState(false);
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Jobs</h1>
          <p className="page-lede">One command for many kiosks, rolled out at a rate and stopped when too many fail.</p>
        </div>
        {canCreate && !creating && (
          <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
            New job
          </button>
        )}
      </header>
      {creating && <CreateJobForm onDone={() => setCreating(false)} />}
      <JobList />
    </div>
  );
}

function JobList() {
  const id = useId();
  const [state, setState] = useState<JobState>(JobState.UNSPECIFIED);
  const pages = usePageTokens(state);
  const jobs = useQuery(JobService.method.listJobs, { pageSize, pageToken: pages.token, state }, { refetchInterval: (q) => (q.state.data?.jobs.some((j) => !jobFinished(j.state)) ? jobRefreshMs : 10_000) });
  const list = jobs.data?.jobs ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          All jobs
        </h2>
        <div className="field">
          <label htmlFor={`${id}-state`} className="visually-hidden">
            State
          </label>
          <select id={`${id}-state`} value={state} onChange={(e) => setState(Number(e.target.value) as JobState)}>
            <option value={JobState.UNSPECIFIED}>Any state</option>
            <option value={JobState.RUNNING}>Running</option>
            <option value={JobState.PAUSED}>Paused</option>
            <option value={JobState.COMPLETED}>Completed</option>
            <option value={JobState.ABORTED}>Aborted</option>
            <option value={JobState.CANCELED}>Canceled</option>
          </select>
        </div>
      </div>
      {jobs.error && <ErrorNotice error={jobs.error} onRetry={() => void jobs.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Command</th>
              <th scope="col">Target</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.isPending && <SkeletonRows rows={5} columns={6} />}
            {list.map((j) => (
              <tr key={j.jobId} data-testid="job-row">
                <td>
                  <Link to={`/jobs/${j.jobId}`} className="row-link">
                    {j.description || `Job ${j.jobId.slice(0, 8)}`}
                  </Link>
                  <div className="muted mono small">{j.jobId.slice(0, 8)}</div>
                </td>
                <td>{describeAction(j.action)}</td>
                <td className="small">{describeTarget(j.target)}</td>
                <td>
                  <JobStateBadge state={j.state} />
                </td>
                <td className="progress-cell">
                  <JobProgressBar job={j} />
                  <div className="muted small">
                    {j.progress?.succeeded ?? 0} of {j.progress?.total ?? 0} succeeded
                  </div>
                </td>
                <td className="nowrap" title={formatDateTime(j.createTime)}>
                  {formatAgo(j.createTime)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!jobs.isPending && list.length === 0 && !jobs.error && (
          <EmptyState icon="jobs" title={state ? "No job in this state" : "No jobs yet"}>
            <p>A job sends one command to every kiosk of a group or tag, at a rate you choose.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={jobs.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="jobs" />
    </section>
  );
}

export function describeTarget(t: { groupId: string; tag: string; kioskIds: string[]; status: KioskStatus; query: string } | undefined): string {
  if (!t) return "—";
  const parts = [
    t.groupId && `group ${t.groupId}`,
    t.tag && `tag ${t.tag}`,
    t.kioskIds.length > 0 && (t.kioskIds.length <= 3 ? t.kioskIds.join(", ") : `${t.kioskIds.length} kiosks`),
    t.status !== KioskStatus.UNSPECIFIED && statusInfo[t.status].label.toLowerCase(),
    t.query && `matching “${t.query}”`,
  ].filter(Boolean);
  return parts.join(" and ") || "—";
}

function CreateJobForm({ onDone }: { onDone: () => void }) {
  const id = useId();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [description, setDescription] = useState("");
  const [groupId, setGroupId] = useState("");
  const [tag, setTag] = useState("");
  const [kioskIds, setKioskIds] = useState("");
  const [status, setStatus] = useState<KioskStatus>(KioskStatus.UNSPECIFIED);
  const [action, setAction] = useState<ActionDraft>(emptyAction);
  const [rate, setRate] = useState(60);
  const [maxFailures, setMaxFailures] = useState("");
  const [ttlSeconds, setTtlSeconds] = useState(3_600);
  // One key per form: a retried submit of the same form is the same job.
  const [idempotencyKey, setKey] = useState(() => crypto.randomUUID());
  const create = useMutation(JobService.method.createJob, {
    onSuccess: async (r) => {
      await queryClient.invalidateQueries();
      setKey(crypto.randomUUID());
      onDone();
      if (r.job) void navigate(`/jobs/${r.job.jobId}`);
    },
  });
  const fields = create.error ? describeError(create.error).fields : {};
  const ids = kioskIds
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const noTarget = !groupId.trim() && !tag.trim() && ids.length === 0 && status === KioskStatus.UNSPECIFIED;
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        New job
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({
            description,
            action: toAction(action),
            target: { groupId: groupId.trim(), tag: tag.trim(), kioskIds: ids, status },
            ratePerMinute: rate,
            ...(maxFailures.trim() !== "" ? { maxFailures: Number(maxFailures) } : {}),
            commandTtl: durationFromMs(ttlSeconds * 1_000),
            idempotencyKey,
          });
        }}
      >
        <FormField id={`${id}-desc`} label="Description" hint="What the job is for, shown in the list" error={fields["description"]}>
          <input id={`${id}-desc`} value={description} onChange={(e) => setDescription(e.target.value)} placeholder="e.g. Evening message at Prague kiosks" />
        </FormField>
        <fieldset className="fieldset">
          <legend>Which kiosks (every field given must match)</legend>
          <div className="filters">
            <FormField id={`${id}-group`} label="Group" error={fields["target.group_id"]}>
              <input id={`${id}-group`} value={groupId} onChange={(e) => setGroupId(e.target.value)} placeholder="e.g. sim-cz" />
            </FormField>
            <FormField id={`${id}-tag`} label="Tag" error={fields["target.tag"]}>
              <input id={`${id}-tag`} value={tag} onChange={(e) => setTag(e.target.value)} placeholder="e.g. tickets" />
            </FormField>
            <FormField id={`${id}-status`} label="Status" error={fields["target.status"]}>
              <select id={`${id}-status`} value={status} onChange={(e) => setStatus(Number(e.target.value) as KioskStatus)}>
                <option value={KioskStatus.UNSPECIFIED}>Any status</option>
                {filterableStatuses.map((s) => (
                  <option key={s} value={s}>
                    {statusInfo[s].label}
                  </option>
                ))}
              </select>
            </FormField>
            <div className="field-grow">
              <FormField id={`${id}-ids`} label="Kiosk ids" hint="Optional, separated by commas or spaces" error={fields["target.kiosk_ids"]}>
                <input id={`${id}-ids`} value={kioskIds} onChange={(e) => setKioskIds(e.target.value)} />
              </FormField>
            </div>
          </div>
          {fields["target"] && <p className="field-error">{fields["target"]}</p>}
        </fieldset>
        <div className="filters">
          <ActionFields draft={action} onChange={setAction} fieldErrors={fields} />
        </div>
        <div className="filters">
          <FormField id={`${id}-rate`} label="Kiosks per minute" error={fields["rate_per_minute"]}>
            <input id={`${id}-rate`} type="number" min={1} max={100_000} value={rate} onChange={(e) => setRate(Number(e.target.value))} />
          </FormField>
          <FormField id={`${id}-maxfail`} label="Abort after failures" hint="Empty: never abort" error={fields["max_failures"]}>
            <input id={`${id}-maxfail`} type="number" min={0} value={maxFailures} onChange={(e) => setMaxFailures(e.target.value)} />
          </FormField>
          <TtlField value={ttlSeconds} onChange={setTtlSeconds} label="Each command gives up after" />
        </div>
        {create.error && <ErrorNotice error={create.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={create.isPending || noTarget}>
            {create.isPending ? "Creating…" : "Create job"}
          </button>
          <button type="button" className="button button-quiet" onClick={onDone}>
            Cancel
          </button>
          {noTarget && <span className="field-hint">Choose at least a group, a tag, a status or kiosk ids.</span>}
        </div>
      </form>
    </section>
  );
}
