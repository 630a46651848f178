// Bringing a kiosk into the fleet (admins): register it at fleet, hand it a one-time
// enrollment code from auth, and see or revoke the device credentials kiosks hold.
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { DeviceService, type CreateEnrollmentCodeResponse, type Device } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatDateTime } from "../ui/format";
import { Icon } from "../ui/icons";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const validities = [
  { seconds: 3_600, label: "1 hour" },
  { seconds: 86_400, label: "24 hours" },
  { seconds: 604_800, label: "7 days" },
];

export function EnrollmentPage() {
  const [kioskId, setKioskId] = useState("");
  const canRegister = useCan(KioskService.method.createKiosk);
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Enrollment</h1>
          <p className="page-lede">Register a kiosk, give it a one-time code to type in, and it receives its own credential.</p>
        </div>
      </header>
      <div className="detail-grid">
        {canRegister && <RegisterKioskForm onRegistered={setKioskId} />}
        <EnrollmentCodeForm kioskId={kioskId} setKioskId={setKioskId} />
      </div>
      <DeviceList />
    </div>
  );
}

function RegisterKioskForm({ onRegistered }: { onRegistered: (kioskId: string) => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [form, setForm] = useState({ kioskId: "", name: "", address: "", latitude: "", longitude: "", timezone: "", groupId: "", tags: "" });
  const set = (name: keyof typeof form) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [name]: e.target.value }));
  const create = useMutation(KioskService.method.createKiosk, {
    onSuccess: async (res) => {
      onRegistered(res.kiosk?.kioskId ?? form.kioskId);
      setForm({ kioskId: "", name: "", address: "", latitude: "", longitude: "", timezone: "", groupId: "", tags: "" });
      await queryClient.invalidateQueries();
    },
  });
  const fields = create.error ? describeError(create.error).fields : {};
  const located = form.latitude !== "" || form.longitude !== "";
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        1. Register a kiosk
      </h2>
      {create.isSuccess && (
        <p className="notice notice-ok" role="status">
          Registered <strong className="mono">{create.data.kiosk?.kioskId}</strong>. Now create its enrollment code.
        </p>
      )}
      <form
        className="form form-columns"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({
            kiosk: {
              kioskId: form.kioskId.trim(),
              name: form.name.trim(),
              timezone: form.timezone.trim(),
              groupId: form.groupId.trim(),
              tags: form.tags
                .split(",")
                .map((t) => t.trim())
                .filter(Boolean),
              ...(located ? { location: { latitude: Number(form.latitude), longitude: Number(form.longitude), address: form.address.trim() } } : {}),
            },
          });
        }}
      >
        <FormField id={`${id}-kiosk`} label="Kiosk id" hint="Letters, digits, - and _" error={fields["kiosk.kiosk_id"]}>
          <input id={`${id}-kiosk`} required value={form.kioskId} onChange={set("kioskId")} pattern="[A-Za-z0-9_\-]{1,64}" />
        </FormField>
        <FormField id={`${id}-name`} label="Name" error={fields["kiosk.name"]}>
          <input id={`${id}-name`} required value={form.name} onChange={set("name")} />
        </FormField>
        <FormField id={`${id}-lat`} label="Latitude" error={fields["kiosk.location.latitude"]}>
          <input id={`${id}-lat`} inputMode="decimal" value={form.latitude} onChange={set("latitude")} required={located} />
        </FormField>
        <FormField id={`${id}-lon`} label="Longitude" error={fields["kiosk.location.longitude"]}>
          <input id={`${id}-lon`} inputMode="decimal" value={form.longitude} onChange={set("longitude")} required={located} />
        </FormField>
        <FormField id={`${id}-address`} label="Address" error={fields["kiosk.location.address"]}>
          <input id={`${id}-address`} value={form.address} onChange={set("address")} disabled={!located} placeholder={located ? "" : "Give coordinates first"} />
        </FormField>
        <FormField id={`${id}-tz`} label="Time zone" hint="e.g. Europe/Prague" error={fields["kiosk.timezone"]}>
          <input id={`${id}-tz`} value={form.timezone} onChange={set("timezone")} />
        </FormField>
        <FormField id={`${id}-group`} label="Group" error={fields["kiosk.group_id"]}>
          <input id={`${id}-group`} value={form.groupId} onChange={set("groupId")} />
        </FormField>
        <FormField id={`${id}-tags`} label="Tags" hint="Separated by commas" error={fields["kiosk.tags"]}>
          <input id={`${id}-tags`} value={form.tags} onChange={set("tags")} />
        </FormField>
        {create.error && <ErrorNotice error={create.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={create.isPending}>
            {create.isPending ? "Registering…" : "Register kiosk"}
          </button>
        </div>
      </form>
    </section>
  );
}

function EnrollmentCodeForm({ kioskId, setKioskId }: { kioskId: string; setKioskId: (id: string) => void }) {
  const id = useId();
  const [ttlSeconds, setTtl] = useState(86_400);
  const [issued, setIssued] = useState<CreateEnrollmentCodeResponse>();
  const create = useMutation(DeviceService.method.createEnrollmentCode, { onSuccess: setIssued });
  const fields = create.error ? describeError(create.error).fields : {};
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        2. Create an enrollment code
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          setIssued(undefined);
          create.mutate({ kioskId: kioskId.trim(), ttlSeconds });
        }}
      >
        <FormField id={`${id}-kiosk`} label="Kiosk id" error={fields["kiosk_id"]}>
          <input id={`${id}-kiosk`} required value={kioskId} onChange={(e) => setKioskId(e.target.value)} />
        </FormField>
        <FormField id={`${id}-ttl`} label="Valid for" error={fields["ttl_seconds"]}>
          <select id={`${id}-ttl`} value={ttlSeconds} onChange={(e) => setTtl(Number(e.target.value))}>
            {validities.map((v) => (
              <option key={v.seconds} value={v.seconds}>
                {v.label}
              </option>
            ))}
          </select>
        </FormField>
        {create.error && <ErrorNotice error={create.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create code"}
          </button>
        </div>
      </form>
      {issued && <IssuedCode issued={issued} />}
    </section>
  );
}

function IssuedCode({ issued }: { issued: CreateEnrollmentCodeResponse }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="issued-code" role="status">
      <p>
        Code for <strong className="mono">{issued.kioskId}</strong>, shown only now. Type it into the kiosk before {formatDateTime(issued.expireTime)}; it works once.
      </p>
      <div className="code-row">
        <code className="code-display" data-testid="enrollment-code">
          {issued.code}
        </code>
        <button type="button" className="button button-small" onClick={() => void navigator.clipboard?.writeText(issued.code).then(() => setCopied(true))}>
          <Icon name="copy" size={14} /> {copied ? "Copied" : "Copy"}
        </button>
      </div>
    </div>
  );
}

const devicePageSize = 25;

function DeviceList() {
  const id = useId();
  const [kioskFilter, setKioskFilter] = useState("");
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const kioskId = useDebounced(kioskFilter.trim());
  const pages = usePageTokens(kioskId, includeRevoked);
  const devices = useQuery(DeviceService.method.listDevices, { kioskId, includeRevoked, pageSize: devicePageSize, pageToken: pages.token });
  const list = devices.data?.devices ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Enrolled devices
      </h2>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div className="field field-grow">
          <label htmlFor={`${id}-kiosk`}>Kiosk id</label>
          <input id={`${id}-kiosk`} value={kioskFilter} onChange={(e) => setKioskFilter(e.target.value)} placeholder="Exact kiosk id" />
        </div>
        <label className="checkbox">
          <input type="checkbox" checked={includeRevoked} onChange={(e) => setIncludeRevoked(e.target.checked)} /> Show revoked
        </label>
      </form>
      {devices.error && <ErrorNotice error={devices.error} onRetry={() => void devices.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">Device</th>
              <th scope="col">Enrolled</th>
              <th scope="col">Credential expires</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {devices.isPending && <SkeletonRows rows={4} columns={5} />}
            {list.map((d) => (
              <DeviceRow key={d.deviceId} device={d} />
            ))}
          </tbody>
        </table>
        {!devices.isPending && list.length === 0 && !devices.error && (
          <EmptyState icon="key" title="No enrolled devices">
            <p>A kiosk shows up here once it has exchanged its code for a credential.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={devices.data?.nextPageToken} shown={list.length} pageSize={devicePageSize} noun="devices" />
    </section>
  );
}

function DeviceRow({ device }: { device: Device }) {
  const queryClient = useQueryClient();
  const revoke = useMutation(DeviceService.method.revokeDevice, { onSuccess: () => queryClient.invalidateQueries() });
  return (
    <tr>
      <td className="mono">{device.kioskId}</td>
      <td className="mono muted">{device.deviceId.slice(0, 8)}</td>
      <td>{formatDateTime(device.enrollTime)}</td>
      <td>{device.revokeTime ? <span className="badge badge-off">Revoked {formatDateTime(device.revokeTime)}</span> : formatDateTime(device.credentialExpireTime)}</td>
      <td className="actions">
        {!device.revokeTime && (
          <button
            type="button"
            className="button button-small button-danger"
            disabled={revoke.isPending}
            onClick={() => {
              const reason = window.prompt(`Revoke every credential of kiosk ${device.kioskId}? It is disconnected within seconds and must be enrolled again. Reason (for the audit log):`);
              if (reason !== null) revoke.mutate({ kioskId: device.kioskId, reason: reason.trim() || "revoked from the admin web" });
            }}
          >
            Revoke
          </button>
        )}
        {revoke.error && <p className="field-error">{describeError(revoke.error).title}</p>}
      </td>
    </tr>
  );
}
