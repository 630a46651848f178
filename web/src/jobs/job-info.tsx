// How a job's state and progress read.
import { JobState, type Job } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { formatNumber } from "../ui/format";

export const jobStateInfo: Record<JobState, { label: string; tone: string; param: string }> = {
  [JobState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", param: "unknown" },
  [JobState.RUNNING]: { label: "Running", tone: "new", param: "running" },
  [JobState.PAUSED]: { label: "Paused", tone: "warn", param: "paused" },
  [JobState.COMPLETED]: { label: "Completed", tone: "ok", param: "completed" },
  [JobState.ABORTED]: { label: "Aborted", tone: "alert", param: "aborted" },
  [JobState.CANCELED]: { label: "Canceled", tone: "off", param: "canceled" },
};

/** How often a running job is read again (fleet has no job stream). */
export const jobRefreshMs = 2_000;

export const jobFinished = (s: JobState) => s === JobState.COMPLETED || s === JobState.ABORTED || s === JobState.CANCELED;

export function JobStateBadge({ state }: { state: JobState }) {
  const info = jobStateInfo[state];
  return (
    <span className={`badge badge-${info.tone}`} data-testid="job-state" data-state={info.param}>
      <span className="dot" aria-hidden="true" />
      {info.label}
    </span>
  );
}

/** A bar of succeeded / failed / in flight / canceled out of the kiosks targeted. */
export function JobProgressBar({ job, legend }: { job: Job; legend?: boolean }) {
  const p = job.progress;
  const total = Math.max(p?.total ?? 0, 1);
  const parts = [
    { key: "succeeded", label: "succeeded", value: p?.succeeded ?? 0, tone: "ok" },
    { key: "failed", label: "failed or expired", value: p?.failed ?? 0, tone: "alert" },
    { key: "in-flight", label: "in flight", value: p?.inFlight ?? 0, tone: "new" },
    { key: "canceled", label: "canceled", value: p?.canceled ?? 0, tone: "off" },
  ];
  const done = (p?.succeeded ?? 0) + (p?.failed ?? 0) + (p?.canceled ?? 0);
  return (
    <div>
      <div className="progress" role="progressbar" aria-label="Job progress" aria-valuemin={0} aria-valuemax={p?.total ?? 0} aria-valuenow={done} aria-valuetext={`${done} of ${p?.total ?? 0} kiosks finished`}>
        {parts.map((part) => part.value > 0 && <span key={part.key} className={`seg-${part.tone}`} style={{ width: `${(part.value / total) * 100}%` }} />)}
      </div>
      {legend && (
        <ul className="legend" data-testid="job-progress">
          <li>
            <strong data-testid="job-total">{formatNumber(p?.total ?? 0)}</strong> targeted
          </li>
          <li>
            <strong data-testid="job-dispatched">{formatNumber(p?.dispatched ?? 0)}</strong> dispatched
          </li>
          {parts.map((part) => (
            <li key={part.key}>
              <span className={`legend-dot tone-${part.tone}`} aria-hidden="true" /> <strong data-testid={`job-${part.key}`}>{formatNumber(part.value)}</strong> {part.label}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
