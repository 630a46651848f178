// One kiosk, live from WatchKiosk: its registry entry and latest reported state, telemetry
// history over a chosen range, desired vs reported configuration (edited by admins), the
// command console (operators and admins), the command history and the orders sold here.
import { lazy, Suspense, useEffect, useId, useState, type ReactNode } from "react";
import { Link, useParams } from "react-router";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { KioskService, KioskStatus, type Kiosk } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { CommandService } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import type { StreamState } from "../api/use-stream";
import { LiveBadge } from "../ui/LiveBadge";
import { CommandConsole, CommandHistory } from "./CommandConsole";
import { ConfigSection } from "./ConfigSection";
import { OrderService } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { OrderTable } from "../orders/OrdersPage";

// uPlot and the chart load with the first kiosk page, not with the app.
const TelemetrySection = lazy(() => import("./TelemetryChart").then((m) => ({ default: m.TelemetrySection })));
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, Loading } from "../ui/feedback";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { FormField } from "../ui/form";
import { Icon } from "../ui/icons";
import { StatusBadge } from "./StatusBadge";
import { useKiosk, useKioskLive, useKioskThresholds } from "./use-fleet";

export function KioskDetailPage() {
  const { kioskId = "" } = useParams();
  const kiosk = useKiosk(kioskId);
  const live = useKioskLive(kioskId);
  // Re-render once a second so "last seen 12 s ago" stays true between refreshes.
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, []);

  return (
    <div className="page">
      <p className="breadcrumb">
        <Link to="/">
          <Icon name="back" size={14} /> Fleet
        </Link>
      </p>
      {kiosk.error && !kiosk.data ? (
        <ErrorNotice error={kiosk.error} onRetry={() => void kiosk.refetch()} />
      ) : !kiosk.data ? (
        <Loading label="Loading the kiosk…" />
      ) : (
        <KioskDetail kiosk={kiosk.data} now={now} live={live} />
      )}
    </div>
  );
}

function KioskDetail({ kiosk, now, live }: { kiosk: Kiosk; now: number; live: StreamState }) {
  const canEdit = useCan(KioskService.method.updateKiosk);
  const canCommand = useCan(CommandService.method.sendCommand);
  const canSeeOrders = useCan(OrderService.method.listOrders);
  const [editing, setEditing] = useState(false);
  const thresholds = useKioskThresholds();
  const state = kiosk.state;
  return (
    <>
      <header className="page-header">
        <div>
          <h1>{kiosk.name || kiosk.kioskId}</h1>
          <p className="page-lede">
            <span className="mono">{kiosk.kioskId}</span> · <StatusBadge status={kiosk.status} /> · last seen {formatAgo(kiosk.lastSeenTime, now)}
          </p>
        </div>
        <div className="header-actions">
          <LiveBadge state={live} />
          {canEdit && !editing && (
            <button type="button" className="button" onClick={() => setEditing(true)}>
              Edit details
            </button>
          )}
        </div>
      </header>

      <div className="detail-grid">
        <section className="card" aria-labelledby="state-heading">
          <h2 id="state-heading" className="card-title">
            Latest state
          </h2>
          {state?.sampleTime ? (
            <>
              <div className="gauges">
                <Gauge label="Paper" value={state.paperLevelPercent} unit="%" warnBelow={thresholds?.lowPaperPercent} />
                <Gauge label="CPU" value={state.cpuPercent} unit="%" warnAbove={85} />
                <Gauge label="Temperature" value={state.temperatureCelsius} unit="°C" max={80} warnAbove={60} />
              </div>
              <dl className="facts">
                <Fact term="Printer" value={<DeviceState value={state.printerStatus} />} />
                <Fact term="Scanner" value={<DeviceState value={state.scannerStatus} />} />
                <Fact term="Cash level" value={`${formatNumber(state.cashLevelMinor)} minor units`} />
                <Fact term="Reported" value={`${formatDateTime(state.sampleTime)} (${formatAgo(state.sampleTime, now)})`} />
              </dl>
              {state.errors.length > 0 && (
                <div className="notice notice-warn" role="status">
                  <Icon name="alert" />
                  <div className="notice-body">
                    <p className="notice-title">The kiosk reports {state.errors.length === 1 ? "a problem" : `${state.errors.length} problems`}</p>
                    <ul className="notice-detail">
                      {state.errors.map((e) => (
                        <li key={e}>{e}</li>
                      ))}
                    </ul>
                  </div>
                </div>
              )}
            </>
          ) : (
            <EmptyState icon="kiosk" title="No telemetry yet">
              <p>The kiosk has not reported its state since it was registered. It will appear here within seconds of its first report.</p>
            </EmptyState>
          )}
        </section>

        <section className="card" aria-labelledby="registry-heading">
          <h2 id="registry-heading" className="card-title">
            Registry
          </h2>
          {editing ? (
            <KioskEditForm kiosk={kiosk} onDone={() => setEditing(false)} />
          ) : (
            <dl className="facts">
              <Fact term="Address" value={kiosk.location?.address || "—"} />
              <Fact term="Coordinates" value={kiosk.location ? `${kiosk.location.latitude.toFixed(4)}, ${kiosk.location.longitude.toFixed(4)}` : "—"} />
              <Fact term="Time zone" value={kiosk.timezone || "—"} />
              <Fact term="Group" value={kiosk.groupId || "—"} />
              <Fact
                term="Tags"
                value={
                  kiosk.tags.length ? (
                    <span className="tags">
                      {kiosk.tags.map((t) => (
                        <span key={t} className="tag">
                          {t}
                        </span>
                      ))}
                    </span>
                  ) : (
                    "—"
                  )
                }
              />
              <Fact term="Hardware" value={kiosk.hardwareModel || "—"} />
              <Fact term="Firmware" value={kiosk.firmwareVersion || "—"} />
              <Fact term="App version" value={kiosk.appVersion || "—"} />
              <Fact term="Registered" value={formatDateTime(kiosk.createTime)} />
              <Fact term="Updated" value={formatDateTime(kiosk.updateTime)} />
            </dl>
          )}
        </section>
      </div>

      <div className="detail-grid">
        <Suspense fallback={<Loading label="Loading the chart…" />}>
          <TelemetrySection kioskId={kiosk.kioskId} />
        </Suspense>
        {canCommand && <CommandConsole kioskId={kiosk.kioskId} online={kiosk.status === KioskStatus.ONLINE || kiosk.status === KioskStatus.ALERTING} />}
        <div className={canCommand ? "" : "card-wide"}>
          <CommandHistory kioskId={kiosk.kioskId} />
        </div>
        <ConfigSection kioskId={kiosk.kioskId} />
        {canSeeOrders && (
          <section className="card card-wide" aria-label="Orders sold here">
            <h2 className="card-title">
              Orders sold here <Link to={`/orders?kiosk=${encodeURIComponent(kiosk.kioskId)}`} className="small">all orders and sales</Link>
            </h2>
            <OrderTable kioskId={kiosk.kioskId} size={10} hideKiosk />
          </section>
        )}
      </div>
    </>
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

function DeviceState({ value }: { value: string }) {
  const tone = value === "OK" ? "ok" : value === "WARNING" ? "warn" : value === "FAULT" ? "alert" : "neutral";
  return <span className={`badge badge-${tone}`}>{value ? value.charAt(0) + value.slice(1).toLowerCase() : "Unknown"}</span>;
}

function Gauge({ label, value, unit, max = 100, warnBelow, warnAbove }: { label: string; value: number; unit: string; max?: number; warnBelow?: number; warnAbove?: number }) {
  const warn = (warnBelow !== undefined && value < warnBelow) || (warnAbove !== undefined && value > warnAbove);
  const share = Math.max(0, Math.min(1, value / max));
  return (
    <div className={`gauge${warn ? " gauge-warn" : ""}`}>
      <div className="gauge-label">{label}</div>
      <div className="gauge-value">
        {Math.round(value * 10) / 10}
        <span className="gauge-unit">{unit}</span>
      </div>
      <div className="gauge-bar" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={max} aria-valuenow={value}>
        <span style={{ width: `${share * 100}%` }} />
      </div>
    </div>
  );
}

function KioskEditForm({ kiosk, onDone }: { kiosk: Kiosk; onDone: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [name, setName] = useState(kiosk.name);
  const [groupId, setGroupId] = useState(kiosk.groupId);
  const [tags, setTags] = useState(kiosk.tags.join(", "));
  const [timezone, setTimezone] = useState(kiosk.timezone);
  const [address, setAddress] = useState(kiosk.location?.address ?? "");
  const update = useMutation(KioskService.method.updateKiosk, {
    onSuccess: async () => {
      await queryClient.invalidateQueries();
      onDone();
    },
  });
  const fields = update.error ? describeError(update.error).fields : {};
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault();
        update.mutate({
          kioskId: kiosk.kioskId,
          name,
          groupId,
          timezone,
          updateTags: true,
          tags: tags
            .split(",")
            .map((t) => t.trim())
            .filter(Boolean),
          // A kiosk registered without coordinates keeps none (the address goes with them).
          ...(kiosk.location ? { location: { latitude: kiosk.location.latitude, longitude: kiosk.location.longitude, address } } : {}),
        });
      }}
    >
      <FormField id={`${id}-name`} label="Name" error={fields["name"]}>
        <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} required />
      </FormField>
      {kiosk.location && (
        <FormField id={`${id}-address`} label="Address" error={fields["location.address"]}>
          <input id={`${id}-address`} value={address} onChange={(e) => setAddress(e.target.value)} />
        </FormField>
      )}
      <FormField id={`${id}-group`} label="Group" error={fields["group_id"]}>
        <input id={`${id}-group`} value={groupId} onChange={(e) => setGroupId(e.target.value)} />
      </FormField>
      <FormField id={`${id}-tags`} label="Tags" hint="Separated by commas" error={fields["tags"]}>
        <input id={`${id}-tags`} value={tags} onChange={(e) => setTags(e.target.value)} />
      </FormField>
      <FormField id={`${id}-tz`} label="Time zone" hint="IANA name, e.g. Europe/Prague" error={fields["timezone"]}>
        <input id={`${id}-tz`} value={timezone} onChange={(e) => setTimezone(e.target.value)} />
      </FormField>
      {update.error && <ErrorNotice error={update.error} compact />}
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={update.isPending}>
          {update.isPending ? "Saving…" : "Save"}
        </button>
        <button type="button" className="button button-quiet" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
