// Releases (issue 17): the list (newest first), for admins the form that uploads an artifact
// (PUT /v1/artifacts, with a progress bar) and describes it as a release (CreateRelease: fleet
// signs its manifest), and a release's per-kiosk install states (ListKioskUpdates), read
// again every 3 s while any kiosk is still on its way. Rollouts (waves, gates) are on the
// Rollouts page; here a release is made and watched.
import { useId, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { ReleaseKind, ReleaseService, type Release } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { useApi, useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";

const pageSize = 25;

export const kindLabel = (kind: ReleaseKind) => (kind === ReleaseKind.APP ? "App" : kind === ReleaseKind.FIRMWARE ? "Firmware" : "—");

export function formatBytes(n: number | bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1024 ** 2) return `${(v / 1024).toFixed(1)} KiB`;
  if (v < 1024 ** 3) return `${(v / 1024 ** 2).toFixed(1)} MiB`;
  return `${(v / 1024 ** 3).toFixed(2)} GiB`;
}

export function ReleasesPage() {
  const canCreate = useCan(ReleaseService.method.createRelease);
  const [creating, setCreating] = useState(false);
  const [params, setParams] = useSearchParams();
  const selected = params.get("release") ?? "";
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Releases</h1>
          <p className="page-lede">Kiosk app and firmware versions, signed by fleet; kiosks verify them before they install.</p>
        </div>
        {canCreate && !creating && (
          <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
            New release
          </button>
        )}
      </header>
      {creating && (
        <CreateReleaseForm
          onDone={(releaseId) => {
            setCreating(false);
            if (releaseId) setParams({ release: releaseId });
          }}
        />
      )}
      <ReleaseList selected={selected} onSelect={(releaseId) => setParams(releaseId ? { release: releaseId } : {})} />
      {selected && <KioskUpdates releaseId={selected} />}
    </div>
  );
}

function ReleaseList({ selected, onSelect }: { selected: string; onSelect: (releaseId: string) => void }) {
  const id = useId();
  const pages = usePageTokens();
  const releases = useQuery(ReleaseService.method.listReleases, { pageSize, pageToken: pages.token });
  const list = releases.data?.releases ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          All releases
        </h2>
      </div>
      {releases.error && <ErrorNotice error={releases.error} onRetry={() => void releases.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Kind</th>
              <th scope="col">Hardware</th>
              <th scope="col">Size</th>
              <th scope="col">Artifact</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {releases.isPending && <SkeletonRows rows={4} columns={6} />}
            {list.map((r) => (
              <tr key={r.releaseId} data-testid="release-row" aria-selected={r.releaseId === selected}>
                <td>
                  <button type="button" className="link-button row-link" onClick={() => onSelect(r.releaseId === selected ? "" : r.releaseId)}>
                    {r.version}
                  </button>
                  {r.minVersion && <div className="muted small">from {r.minVersion}</div>}
                  {r.notes && <div className="muted small">{r.notes.slice(0, 120)}</div>}
                </td>
                <td>{kindLabel(r.kind)}</td>
                <td className="small">{r.hardwareModels.length ? r.hardwareModels.join(", ") : "any"}</td>
                <td className="nowrap">{formatBytes(r.sizeBytes)}</td>
                <td className="mono small" title={r.artifactSha256}>
                  {r.artifactSha256.slice(0, 12)}…<div className="muted">key {r.keyId.slice(0, 8)}</div>
                </td>
                <td className="nowrap" title={formatDateTime(r.createTime)}>
                  {formatAgo(r.createTime)}
                  <div className="muted small">{r.createdBy}</div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!releases.isPending && list.length === 0 && !releases.error && (
          <EmptyState icon="box" title="No releases yet">
            <p>Upload a kiosk app or firmware image and describe it as a release; then send it to kiosks, or roll it out in waves.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={releases.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="releases" />
    </section>
  );
}

const stateInfo: Record<string, { label: string; tone: string }> = {
  downloading: { label: "Downloading", tone: "new" },
  verifying: { label: "Verifying", tone: "new" },
  installing: { label: "Installing", tone: "new" },
  installed: { label: "Installed", tone: "ok" },
  failed: { label: "Failed", tone: "alert" },
  rejected: { label: "Rejected", tone: "alert" },
  reverted: { label: "Reverted", tone: "warn" },
};
const inProgress = new Set(["downloading", "verifying", "installing"]);

function KioskUpdates({ releaseId }: { releaseId: string }) {
  const id = useId();
  const [state, setState] = useState("");
  const pages = usePageTokens(releaseId, state);
  const release = useQuery(ReleaseService.method.getRelease, { releaseId });
  const updates = useQuery(
    ReleaseService.method.listKioskUpdates,
    { releaseId, state, pageSize: 50, pageToken: pages.token },
    { refetchInterval: (q) => (Object.keys(q.state.data?.stateCounts ?? {}).some((s) => inProgress.has(s)) ? 3_000 : 15_000) },
  );
  const counts = updates.data?.stateCounts ?? {};
  const list = updates.data?.updates ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`} data-testid="kiosk-updates">
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Kiosks installing {release.data?.release ? `${kindLabel(release.data.release.kind).toLowerCase()} ${release.data.release.version}` : "this release"}
        </h2>
        <div className="field">
          <label htmlFor={`${id}-state`} className="visually-hidden">
            State
          </label>
          <select id={`${id}-state`} value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">Any state</option>
            {Object.entries(stateInfo).map(([value, info]) => (
              <option key={value} value={value}>
                {info.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ul className="legend" data-testid="update-counts">
        {Object.entries(stateInfo)
          .filter(([s]) => counts[s])
          .map(([s, info]) => (
            <li key={s}>
              <span className={`badge badge-${info.tone}`}>{info.label}</span> <strong>{formatNumber(counts[s] ?? 0)}</strong>
            </li>
          ))}
      </ul>
      {(updates.error ?? release.error) && <ErrorNotice error={updates.error ?? release.error} onRetry={() => void updates.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">From</th>
              <th scope="col">Reason</th>
              <th scope="col">Reported</th>
            </tr>
          </thead>
          <tbody>
            {updates.isPending && <SkeletonRows rows={3} columns={6} />}
            {list.map((u) => {
              const info = stateInfo[u.state] ?? { label: u.state, tone: "neutral" };
              const total = Number(u.bytesTotal);
              return (
                <tr key={u.kioskId} data-testid="kiosk-update-row">
                  <td className="mono">{u.kioskId}</td>
                  <td>
                    <span className={`badge badge-${info.tone}`}>{info.label}</span>
                  </td>
                  <td className="progress-cell">
                    {total > 0 && (
                      <div className="progress" role="progressbar" aria-label={`Download by ${u.kioskId}`} aria-valuemin={0} aria-valuemax={total} aria-valuenow={Number(u.bytesDone)}>
                        <span className="seg-ok" style={{ width: `${Math.min(100, (Number(u.bytesDone) / total) * 100)}%` }} />
                      </div>
                    )}
                    <div className="muted small">
                      {formatBytes(u.bytesDone)} of {formatBytes(u.bytesTotal)}
                    </div>
                  </td>
                  <td className="mono small">{u.fromVersion}</td>
                  <td className="small">{u.errorMessage}</td>
                  <td className="nowrap" title={formatDateTime(u.updateTime)}>
                    {formatAgo(u.updateTime)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {!updates.isPending && list.length === 0 && !updates.error && (
          <EmptyState icon="box" title="No kiosk has reported this release yet">
            <p>Roll it out on the Rollouts page, or send it to one kiosk with SendCommand (install_release).</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={updates.data?.nextPageToken} shown={list.length} pageSize={50} noun="kiosks" />
    </section>
  );
}

/** PUT /v1/artifacts with the session's token, reporting the bytes sent (XMLHttpRequest: fetch has no upload progress). */
function uploadArtifact(file: File, token: string, onProgress: (sent: number) => void): Promise<{ sha256: string; size: number }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", "/v1/artifacts");
    xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      let body: { sha256?: string; size?: number; message?: string } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // not JSON: reported below
      }
      if (xhr.status >= 200 && xhr.status < 300 && body.sha256) resolve({ sha256: body.sha256, size: body.size ?? file.size });
      else reject(new Error(body.message ?? `the upload failed (HTTP ${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error("the upload failed: fleet could not be reached"));
    xhr.send(file);
  });
}

function CreateReleaseForm({ onDone }: { onDone: (releaseId?: string) => void }) {
  const id = useId();
  const api = useApi();
  const queryClient = useQueryClient();
  const fileInput = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File>();
  const [sent, setSent] = useState(0);
  const [uploaded, setUploaded] = useState<{ sha256: string; size: number }>();
  const [uploading, setUploading] = useState(false);
  const [uploadError, setUploadError] = useState("");
  const [kind, setKind] = useState(ReleaseKind.APP);
  const [version, setVersion] = useState("");
  const [minVersion, setMinVersion] = useState("");
  const [models, setModels] = useState("");
  const [notes, setNotes] = useState("");
  const create = useMutation(ReleaseService.method.createRelease, {
    onSuccess: async (r: { release?: Release }) => {
      await queryClient.invalidateQueries();
      onDone(r.release?.releaseId);
    },
  });
  const fields = create.error ? describeError(create.error).fields : {};

  const upload = async (f: File) => {
    setFile(f);
    setUploaded(undefined);
    setUploadError("");
    setSent(0);
    setUploading(true);
    try {
      setUploaded(await uploadArtifact(f, await api.session.accessToken(), setSent));
    } catch (err) {
      setUploadError(err instanceof Error ? err.message : String(err));
    } finally {
      setUploading(false);
    }
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        New release
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!uploaded) return;
          create.mutate({
            kind,
            version: version.trim(),
            minVersion: minVersion.trim(),
            notes,
            hardwareModels: models
              .split(/[\s,]+/)
              .map((m) => m.trim())
              .filter(Boolean),
            artifactSha256: uploaded.sha256,
          });
        }}
      >
        <FormField id={`${id}-file`} label="Artifact" hint="The app package or firmware image; uploaded at once, stored by its SHA-256" error={uploadError || fields["artifact_sha256"]}>
          <input id={`${id}-file`} ref={fileInput} type="file" onChange={(e) => e.target.files?.[0] && void upload(e.target.files[0])} />
        </FormField>
        {file && (
          <div data-testid="upload-progress">
            <div className="progress" role="progressbar" aria-label="Upload" aria-valuemin={0} aria-valuemax={file.size} aria-valuenow={uploaded ? file.size : sent}>
              <span className="seg-ok" style={{ width: `${file.size ? ((uploaded ? file.size : sent) / file.size) * 100 : 100}%` }} />
            </div>
            <p className="muted small">
              {uploaded ? (
                <>
                  Uploaded {formatBytes(uploaded.size)} · sha256 <span className="mono" data-testid="artifact-sha256">{uploaded.sha256}</span>
                </>
              ) : uploading ? (
                `Uploading ${formatBytes(sent)} of ${formatBytes(file.size)}…`
              ) : (
                ""
              )}
            </p>
          </div>
        )}
        <div className="filters">
          <FormField id={`${id}-kind`} label="Kind" error={fields["kind"]}>
            <select id={`${id}-kind`} value={kind} onChange={(e) => setKind(Number(e.target.value) as ReleaseKind)}>
              <option value={ReleaseKind.APP}>Kiosk app</option>
              <option value={ReleaseKind.FIRMWARE}>Firmware</option>
            </select>
          </FormField>
          <FormField id={`${id}-version`} label="Version" hint='e.g. "2.4.1" or "2.5.0-rc.1"' error={fields["version"]}>
            <input id={`${id}-version`} value={version} onChange={(e) => setVersion(e.target.value)} required />
          </FormField>
          <FormField id={`${id}-min`} label="Installs over at least" hint="Empty: any version" error={fields["min_version"]}>
            <input id={`${id}-min`} value={minVersion} onChange={(e) => setMinVersion(e.target.value)} />
          </FormField>
          <FormField id={`${id}-models`} label="Hardware models" hint="Separated by commas; empty: any" error={fields["hardware_models"]}>
            <input id={`${id}-models`} value={models} onChange={(e) => setModels(e.target.value)} placeholder="e.g. AK-SIM-1" />
          </FormField>
        </div>
        <FormField id={`${id}-notes`} label="Release notes" error={fields["notes"]}>
          <textarea id={`${id}-notes`} value={notes} onChange={(e) => setNotes(e.target.value)} rows={3} />
        </FormField>
        {create.error && <ErrorNotice error={create.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={!uploaded || create.isPending || version.trim() === ""}>
            {create.isPending ? "Creating…" : "Create release"}
          </button>
          <button type="button" className="button button-quiet" onClick={() => onDone()}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
