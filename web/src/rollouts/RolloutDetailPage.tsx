// One rollout, live: GetRollout once, then RolloutService.WatchRollout's stream while it is
// not over — kiosks per state in each wave, each wave's gate (updated kiosks against the
// control cohort, metric by metric), why it stopped; pause, resume, cancel, roll back.
import { useId, type ReactNode } from "react";
import { Link, useParams } from "react-router";
import { useMutation, useQuery, useTransport } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { useQueryClient } from "@tanstack/react-query";
import { RolloutService, RolloutState, type Rollout, type WaveStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { useWatchInto } from "../api/use-stream";
import { useCan } from "../api/context";
import { ErrorNotice, Loading } from "../ui/feedback";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { Icon } from "../ui/icons";
import { RolloutStateBadge, describeRolloutTarget, formatMetric, metricLabels, metricVerdict, rolloutFinished } from "./rollout-info";

export function RolloutDetailPage() {
  const { rolloutId = "" } = useParams();
  const transport = useTransport();
  const rollout = useQuery(RolloutService.method.getRollout, { rolloutId }, { select: (r) => r.rollout });
  const over = rollout.data ? rolloutFinished(rollout.data.state) : false;
  useWatchInto(RolloutService.method.getRollout, { rolloutId }, "rollout", rolloutId && !over ? `watch-rollout:${rolloutId}` : undefined, (signal) =>
    createClient(RolloutService, transport).watchRollout({ rolloutId }, { signal, timeoutMs: 0 }),
  );
  return (
    <div className="page">
      <p className="breadcrumb">
        <Link to="/rollouts">
          <Icon name="back" size={14} /> Rollouts
        </Link>
      </p>
      {rollout.error && !rollout.data ? (
        <ErrorNotice error={rollout.error} onRetry={() => void rollout.refetch()} />
      ) : !rollout.data ? (
        <Loading label="Loading the rollout…" />
      ) : (
        <RolloutDetail rollout={rollout.data} />
      )}
    </div>
  );
}

function RolloutDetail({ rollout: r }: { rollout: Rollout }) {
  const id = useId();
  const stopped = r.state === RolloutState.PAUSED || r.state === RolloutState.ROLLED_BACK || r.state === RolloutState.CANCELED;
  return (
    <>
      <header className="page-header">
        <div>
          <h1>{r.description || `Rollout ${r.rolloutId.slice(0, 8)}`}</h1>
          <p className="page-lede">
            {r.rollbackOf ? "Back to each kiosk's previous version" : `${r.kind.toLowerCase()} ${r.version}`} · <RolloutStateBadge state={r.state} />
            {!rolloutFinished(r.state) && <span className="muted small"> · live</span>}
          </p>
        </div>
        <RolloutControls rollout={r} />
      </header>
      {r.stopReason && (
        <div className={`notice ${stopped && r.stopReason.startsWith("gate failed") ? "notice-error" : "notice-info"}`} role="status" data-testid="rollout-stop-reason">
          <div className="notice-body">
            <p className="notice-title">{r.stopReason}</p>
            {r.rollbackRolloutId && (
              <p className="small">
                Rollback: <Link to={`/rollouts/${r.rollbackRolloutId}`}>{r.rollbackRolloutId.slice(0, 8)}</Link>
              </p>
            )}
          </div>
        </div>
      )}
      <section className="card" aria-labelledby={`${id}-waves`}>
        <h2 id={`${id}-waves`} className="card-title">
          Waves
        </h2>
        <div className="table-wrap">
          <table className="table table-dense" data-testid="rollout-waves">
            <thead>
              <tr>
                <th scope="col">Wave</th>
                <th scope="col">State</th>
                <th scope="col">Kiosks</th>
                <th scope="col">Installed</th>
                <th scope="col">Installing</th>
                <th scope="col">Waiting</th>
                <th scope="col">Outside window</th>
                <th scope="col">Failed</th>
                <th scope="col">Reverted</th>
                <th scope="col">Skipped</th>
              </tr>
            </thead>
            <tbody>
              {r.waveStatus.map((w) => (
                <tr key={w.index} data-testid="wave-row" data-state={w.state} aria-current={w.index === r.currentWave ? "step" : undefined}>
                  <td>
                    {w.index + 1} ({w.percent} %){w.index === 0 ? " canary" : ""}
                  </td>
                  <td>{w.state.replace("_", " ")}</td>
                  <td>{formatNumber(w.kiosks)}</td>
                  <td>{formatNumber(w.installed)}</td>
                  <td>{formatNumber(w.installing)}</td>
                  <td>{formatNumber(w.pending)}</td>
                  <td>{formatNumber(w.waitingForWindow)}</td>
                  <td>{formatNumber(w.failed)}</td>
                  <td>{formatNumber(w.reverted)}</td>
                  <td>{formatNumber(w.skipped)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      {r.waveStatus
        .filter((w) => w.gateMetrics.length > 0)
        .map((w) => (
          <GateCard key={w.index} wave={w} />
        ))}
      <section className="card" aria-labelledby={`${id}-facts`}>
        <h2 id={`${id}-facts`} className="card-title">
          Settings
        </h2>
        <dl className="facts">
          <Fact term="Target" value={describeRolloutTarget(r.target, r.rollbackOf)} />
          <Fact term="Kiosks" value={formatNumber(r.total)} />
          <Fact term="Maintenance window" value={r.windowNote} />
          <Fact term="Installs at once" value={formatNumber(r.maxConcurrent)} />
          <Fact term="Rolls back by itself" value={r.autoRollback ? "yes, when a gate fails" : "no, a failed gate only pauses"} />
          <Fact term="Created" value={`${formatDateTime(r.createTime)} (${formatAgo(r.createTime)}) by ${r.createdBy}`} />
          <Fact term="Finished" value={formatDateTime(r.finishTime)} />
          <Fact term="Rollout id" value={<span className="mono small">{r.rolloutId}</span>} />
        </dl>
      </section>
    </>
  );
}

function GateCard({ wave: w }: { wave: WaveStatus }) {
  const id = useId();
  return (
    <section className="card" aria-labelledby={`${id}-gate`} data-testid="gate-card">
      <h2 id={`${id}-gate`} className="card-title">
        Gate of wave {w.index + 1}: {w.state === "gate_failed" ? "failed" : "passed"} — {formatNumber(w.updatedKiosks)} updated vs {formatNumber(w.controlKiosks)} control kiosks
      </h2>
      <table className="table table-dense">
        <thead>
          <tr>
            <th scope="col">Metric</th>
            <th scope="col">Updated</th>
            <th scope="col">Control</th>
            <th scope="col">Limit</th>
            <th scope="col">Events (updated / control)</th>
            <th scope="col">Verdict</th>
          </tr>
        </thead>
        <tbody>
          {w.gateMetrics.map((m) => (
            <tr key={m.name} data-testid="gate-metric" data-verdict={metricVerdict(m)}>
              <td>
                {metricLabels[m.name] ?? m.name} <span className="muted small">({m.signal})</span>
              </td>
              <td>{formatMetric(m.updated)}</td>
              <td>{m.name === "install_failure_share" ? "—" : formatMetric(m.control)}</td>
              <td>{formatMetric(m.threshold)}</td>
              <td>
                {formatNumber(m.updatedSamples)} / {formatNumber(m.controlSamples)}
              </td>
              <td>{metricVerdict(m)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function RolloutControls({ rollout: r }: { rollout: Rollout }) {
  const queryClient = useQueryClient();
  const onSuccess = () => void queryClient.invalidateQueries();
  const canManage = useCan(RolloutService.method.pauseRollout);
  const pause = useMutation(RolloutService.method.pauseRollout, { onSuccess });
  const resume = useMutation(RolloutService.method.resumeRollout, { onSuccess });
  const cancel = useMutation(RolloutService.method.cancelRollout, { onSuccess });
  const rollback = useMutation(RolloutService.method.rollbackRollout, { onSuccess });
  if (!canManage) return null;
  const busy = pause.isPending || resume.isPending || cancel.isPending || rollback.isPending;
  const error = pause.error ?? resume.error ?? cancel.error ?? rollback.error;
  const open = r.state === RolloutState.RUNNING || r.state === RolloutState.PAUSED;
  return (
    <div className="header-actions">
      {r.state === RolloutState.RUNNING && (
        <button type="button" className="button" disabled={busy} onClick={() => pause.mutate({ rolloutId: r.rolloutId })}>
          Pause
        </button>
      )}
      {r.state === RolloutState.PAUSED && (
        <button type="button" className="button" disabled={busy} onClick={() => resume.mutate({ rolloutId: r.rolloutId })}>
          Resume
        </button>
      )}
      {open && (
        <button type="button" className="button button-danger" disabled={busy} onClick={() => cancel.mutate({ rolloutId: r.rolloutId })}>
          Cancel rollout
        </button>
      )}
      {!r.rollbackOf && (open || r.state === RolloutState.COMPLETED) && (
        <button type="button" className="button button-danger" disabled={busy} onClick={() => rollback.mutate({ rolloutId: r.rolloutId })}>
          Roll back
        </button>
      )}
      {error && <ErrorNotice error={error} compact />}
    </div>
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
