// One job: its progress (GetJob once, then JobService.WatchJob's stream while the job has
// anything left to do), pause/resume/cancel for admins, and its commands.
import { useEffect, useId, useRef, type ReactNode } from "react";
import { Link, useParams } from "react-router";
import { useMutation, useQuery, useTransport } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { useWatchInto } from "../api/use-stream";
import { useQueryClient } from "@tanstack/react-query";
import { JobService, JobState, type Job } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { CommandService } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { useCan } from "../api/context";
import { CommandStateBadge, describeAction } from "../fleet/CommandAction";
import { EmptyState, ErrorNotice, Loading, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { Icon } from "../ui/icons";
import { Pager, usePageTokens } from "../ui/pager";
import { JobProgressBar, JobStateBadge, jobFinished } from "./job-info";
import { describeTarget } from "./JobsPage";

export function JobDetailPage() {
  const { jobId = "" } = useParams();
  const transport = useTransport();
  const job = useQuery(JobService.method.getJob, { jobId }, { select: (r) => r.job });
  // Live until the job is over and none of its commands is still under way.
  const over = job.data ? jobFinished(job.data.state) && (job.data.progress?.inFlight ?? 0) === 0 : false;
  useWatchInto(JobService.method.getJob, { jobId }, "job", jobId && !over ? `watch-job:${jobId}` : undefined, (signal) =>
    createClient(JobService, transport).watchJob({ jobId }, { signal, timeoutMs: 0 }),
  );
  return (
    <div className="page">
      <p className="breadcrumb">
        <Link to="/jobs">
          <Icon name="back" size={14} /> Jobs
        </Link>
      </p>
      {job.error && !job.data ? <ErrorNotice error={job.error} onRetry={() => void job.refetch()} /> : !job.data ? <Loading label="Loading the job…" /> : <JobDetail job={job.data} />}
    </div>
  );
}

function JobDetail({ job }: { job: Job }) {
  const id = useId();
  return (
    <>
      <header className="page-header">
        <div>
          <h1>{job.description || `Job ${job.jobId.slice(0, 8)}`}</h1>
          <p className="page-lede">
            {describeAction(job.action)} · <JobStateBadge state={job.state} />
            {!jobFinished(job.state) && <span className="muted small"> · live</span>}
          </p>
        </div>
        <JobControls job={job} />
      </header>
      <section className="card" aria-labelledby={`${id}-progress`}>
        <h2 id={`${id}-progress`} className="card-title">
          Progress
        </h2>
        <JobProgressBar job={job} legend />
        {job.endReason && (
          <div className={`notice ${job.state === JobState.ABORTED ? "notice-error" : "notice-info"}`} role="status">
            <div className="notice-body">
              <p className="notice-title">{job.endReason}</p>
            </div>
          </div>
        )}
        <dl className="facts">
          <Fact term="Target" value={describeTarget(job.target)} />
          <Fact term="Rate" value={`${formatNumber(job.ratePerMinute)} kiosks a minute`} />
          <Fact term="Abort after" value={job.maxFailures === undefined ? "never" : `${formatNumber(job.maxFailures)} failures (one more aborts)`} />
          <Fact term="Each command gives up after" value={job.commandTtl ? `${formatNumber(Number(job.commandTtl.seconds))} s` : "—"} />
          <Fact term="Created" value={`${formatDateTime(job.createTime)} (${formatAgo(job.createTime)})`} />
          <Fact term="Finished" value={formatDateTime(job.finishTime)} />
          <Fact term="Created by" value={<span className="mono small">{job.createdBy}</span>} />
          <Fact term="Job id" value={<span className="mono small">{job.jobId}</span>} />
        </dl>
      </section>
      <JobCommands job={job} />
    </>
  );
}

function JobControls({ job }: { job: Job }) {
  const queryClient = useQueryClient();
  const onSuccess = () => void queryClient.invalidateQueries();
  const canManage = useCan(JobService.method.pauseJob);
  const pause = useMutation(JobService.method.pauseJob, { onSuccess });
  const resume = useMutation(JobService.method.resumeJob, { onSuccess });
  const cancel = useMutation(JobService.method.cancelJob, { onSuccess });
  if (!canManage || jobFinished(job.state)) return null;
  const busy = pause.isPending || resume.isPending || cancel.isPending;
  const error = pause.error ?? resume.error ?? cancel.error;
  return (
    <div className="header-actions">
      {job.state === JobState.RUNNING && (
        <button type="button" className="button" disabled={busy} onClick={() => pause.mutate({ jobId: job.jobId })}>
          Pause
        </button>
      )}
      {job.state === JobState.PAUSED && (
        <button type="button" className="button" disabled={busy} onClick={() => resume.mutate({ jobId: job.jobId })}>
          Resume
        </button>
      )}
      <button type="button" className="button button-danger" disabled={busy} onClick={() => cancel.mutate({ jobId: job.jobId })}>
        Cancel job
      </button>
      {error && <ErrorNotice error={error} compact />}
    </div>
  );
}

function JobCommands({ job }: { job: Job }) {
  const id = useId();
  const pages = usePageTokens();
  const pageSize = 50;
  // Read again when WatchJob brings a change of the job's progress or state (at most about once
  // a second), not on a timer: the stream is what says a command moved.
  const p = job.progress;
  const moved = `${job.state}:${p?.dispatched}:${p?.succeeded}:${p?.failed}:${p?.canceled}:${p?.inFlight}`;
  const commands = useQuery(CommandService.method.listCommands, { jobId: job.jobId, pageSize, pageToken: pages.token });
  const seen = useRef(moved);
  const { refetch } = commands;
  useEffect(() => {
    if (seen.current === moved) return;
    seen.current = moved;
    void refetch();
  }, [moved, refetch]);
  const list = commands.data?.commands ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Commands
      </h2>
      {commands.error && <ErrorNotice error={commands.error} onRetry={() => void commands.refetch()} compact />}
      <div className="table-wrap">
        <table className="table table-dense">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {commands.isPending && <SkeletonRows rows={4} columns={4} />}
            {list.map((c) => (
              <tr key={c.commandId} data-testid="job-command-row">
                <td>
                  <Link to={`/kiosks/${encodeURIComponent(c.kioskId)}`}>{c.kioskId}</Link>
                </td>
                <td>
                  <CommandStateBadge state={c.state} outcome={c.outcome} />
                </td>
                <td className="nowrap">{formatAgo(c.createTime)}</td>
                <td className="small">{c.errorMessage || <span className="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!commands.isPending && list.length === 0 && !commands.error && (
          <EmptyState icon="jobs" title="No commands yet">
            <p>Commands appear as the rollout reaches each kiosk.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={commands.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="commands" />
    </section>
  );
}

function Fact({ term, value }: { term: string; value: ReactNode }) {
  return (
    <div className="fact">
      <dt>{term}</dt>
      <dd>{value}</dd>
    </div>
  );
}
