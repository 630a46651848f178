// Alerts: the open alerts live over WatchAlerts (acknowledge, silence and resolve for operators
// and up), the alert rules (read-only for viewers; admins create and edit them), the delivery
// log (every notification sent or tried, dead letters highlighted), the silences and the
// person's own notification settings.
import { useId, useState } from "react";
import { useSearchParams } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import {
  AlertService,
  AlertState,
  Channel,
  DeliveryService,
  DeliveryState,
  RuleService,
  Severity,
  type Alert,
  type Rule,
  type RuleDefinition,
} from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RuleDefinitionSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatAgo, formatDateTime } from "../ui/format";
import { LiveBadge } from "../ui/LiveBadge";
import { Pager, usePageTokens } from "../ui/pager";
import { alertChanged, useAlertFeed } from "./alert-feed";
import { PushToggle } from "./PushToggle";
import {
  ChannelReceiverInputs,
  MoreKindInputs,
  describeMoreCondition,
  hasForDuration,
  initialMoreKindState,
  isMoreKind,
  moreKindFields,
  moreKindLabels,
  moreKindValue,
  splitPhones,
} from "./RuleKindFields";
import { MySubscription } from "./MySubscription";
import { SilenceForm, SilenceList } from "./SilencesPanel";
import { SilenceService } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { DevMailbox } from "../notifications/DevMailbox";
import { DryRunPanel } from "../notifications/DryRunPanel";

const tabs = ["alerts", "rules", "deliveries", "silences", "mine", "mailbox"] as const;
const tabLabels = { alerts: "Alerts", rules: "Rules", deliveries: "Delivery log", silences: "Silences", mine: "My notifications", mailbox: "Dev mailbox" };
type Tab = (typeof tabs)[number];

export function AlertsPage() {
  // The tab is in the address (?tab=rules), so each view can be linked to and survives a reload.
  const [params, setParams] = useSearchParams();
  const canReadMail = useCan(DeliveryService.method.listDevMail);
  const shown = tabs.filter((t) => t !== "mailbox" || canReadMail);
  const asked = params.get("tab") as Tab | null;
  const tab: Tab = asked && shown.includes(asked) ? asked : "alerts";
  const setTab = (t: Tab) => setParams(t === "alerts" ? {} : { tab: t }, { replace: true });
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Alerts</h1>
          <p className="page-lede">Kiosks that need attention, the rules that find them and every notification sent about them.</p>
        </div>
        <PushToggle />
      </header>
      <div className="tabs" role="tablist" aria-label="Alerts views">
        {shown.map((t) => (
          <button key={t} type="button" role="tab" aria-selected={tab === t} className={`tab${tab === t ? " tab-active" : ""}`} onClick={() => setTab(t)}>
            {tabLabels[t]}
          </button>
        ))}
      </div>
      {tab === "alerts" && <AlertList />}
      {tab === "rules" && <RuleList />}
      {tab === "deliveries" && <DeliveryLog />}
      {tab === "silences" && <SilenceList />}
      {tab === "mine" && <MySubscription />}
      {tab === "mailbox" && <DevMailbox />}
    </div>
  );
}

const severityInfo: Record<Severity, { label: string; tone: string }> = {
  [Severity.UNSPECIFIED]: { label: "—", tone: "neutral" },
  [Severity.INFO]: { label: "Info", tone: "new" },
  [Severity.WARNING]: { label: "Warning", tone: "warn" },
  [Severity.CRITICAL]: { label: "Critical", tone: "alert" },
};
const stateInfo: Record<AlertState, { label: string; tone: string }> = {
  [AlertState.UNSPECIFIED]: { label: "Pending", tone: "neutral" },
  [AlertState.FIRING]: { label: "Firing", tone: "alert" },
  [AlertState.ACKNOWLEDGED]: { label: "Acknowledged", tone: "warn" },
  [AlertState.RESOLVED]: { label: "Resolved", tone: "ok" },
};

function Tone({ info }: { info: { label: string; tone: string } }) {
  return (
    <span className={`badge badge-${info.tone}`}>
      <span className="dot" aria-hidden="true" />
      {info.label}
    </span>
  );
}

function AlertList() {
  const id = useId();
  const { alerts, stream } = useAlertFeed();
  const canAct = useCan(AlertService.method.acknowledgeAlert);
  const canResolve = useCan(AlertService.method.resolveAlert);
  const canSilence = useCan(SilenceService.method.createSilence);
  const [silencing, setSilencing] = useState<Alert | undefined>();
  const acknowledge = useMutation(AlertService.method.acknowledgeAlert, { onSuccess: (r) => r.alert && alertChanged(r.alert) });
  const resolve = useMutation(AlertService.method.resolveAlert, { onSuccess: (r) => r.alert && alertChanged(r.alert) });
  const error = acknowledge.error ?? resolve.error;
  return (
    <>
      {silencing && <SilenceForm key={silencing.alertId} alert={silencing} onDone={() => setSilencing(undefined)} />}
      <section className="card" aria-labelledby={`${id}-title`}>
        <div className="card-toolbar">
          <h2 id={`${id}-title`} className="card-title">
            Open alerts
          </h2>
          <LiveBadge state={stream} />
        </div>
        {stream.status === "failed" && <ErrorNotice error={stream.error} compact />}
        {error && <ErrorNotice error={error} compact />}
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Severity</th>
                <th scope="col">Rule</th>
                <th scope="col">Kiosk</th>
                <th scope="col">Group</th>
                <th scope="col">Since</th>
                {(canAct || canResolve) && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {stream.status === "connecting" && alerts.length === 0 && <SkeletonRows rows={3} columns={canAct ? 7 : 6} />}
              {alerts.map((a) => (
                <AlertRow
                  key={a.alertId}
                  alert={a}
                  canAck={canAct}
                  canResolve={canResolve}
                  busy={acknowledge.isPending || resolve.isPending}
                  onAck={() => acknowledge.mutate({ alertId: a.alertId })}
                  onResolve={() => resolve.mutate({ alertId: a.alertId })}
                  onSilence={canSilence ? () => setSilencing(a) : undefined}
                />
              ))}
            </tbody>
          </table>
          {stream.status !== "connecting" && alerts.length === 0 && (
            <EmptyState icon="alert" title="No open alerts">
              <p>When a rule&apos;s condition holds for a kiosk longer than its duration, the alert shows here at once.</p>
            </EmptyState>
          )}
        </div>
      </section>
    </>
  );
}

function AlertRow({
  alert: a,
  canAck,
  canResolve,
  busy,
  onAck,
  onResolve,
  onSilence,
}: {
  alert: Alert;
  canAck: boolean;
  canResolve: boolean;
  busy: boolean;
  onAck: () => void;
  onResolve: () => void;
  onSilence?: () => void;
}) {
  return (
    <tr data-testid="alert-row" data-kiosk={a.kioskId} data-state={stateInfo[a.state].label.toLowerCase()}>
      <td>
        <Tone info={stateInfo[a.state]} />
        {a.state === AlertState.ACKNOWLEDGED && a.acknowledgedBy && <div className="muted small">by {a.acknowledgedBy}</div>}
        {a.silencedBy.length > 0 && a.state !== AlertState.RESOLVED && (
          <div className="muted small" data-testid="alert-silenced">
            Silenced
          </div>
        )}
        {a.inhibitedBy && a.state !== AlertState.RESOLVED && <div className="muted small">Inhibited</div>}
        {a.escalationTier > 0 && a.state !== AlertState.RESOLVED && <div className="muted small">On-call tier {a.escalationTier}</div>}
      </td>
      <td>
        <Tone info={severityInfo[a.severity]} />
      </td>
      <td>
        <strong>{a.ruleName}</strong>
        <div className="muted small">{a.summary}</div>
      </td>
      <td className="mono">{a.kioskId}</td>
      <td>{a.groupId || <span className="muted">—</span>}</td>
      <td className="nowrap" title={formatDateTime(a.fireTime)}>
        {formatAgo(a.fireTime)}
      </td>
      {(canAck || canResolve) && (
        <td className="nowrap">
          {onSilence && a.state !== AlertState.RESOLVED && a.silencedBy.length === 0 && (
            <button type="button" className="button button-small button-quiet" onClick={onSilence}>
              Silence
            </button>
          )}{" "}
          {canAck && a.state === AlertState.FIRING && (
            <button type="button" className="button button-small" disabled={busy} onClick={onAck}>
              Acknowledge
            </button>
          )}{" "}
          {canResolve && a.state !== AlertState.RESOLVED && (
            <button type="button" className="button button-small button-quiet" disabled={busy} onClick={onResolve}>
              Resolve
            </button>
          )}
        </td>
      )}
    </tr>
  );
}

const deliveryPageSize = 25;
const deliveryStates: Record<DeliveryState, { label: string; tone: string }> = {
  [DeliveryState.UNSPECIFIED]: { label: "—", tone: "neutral" },
  [DeliveryState.PENDING]: { label: "Retrying", tone: "warn" },
  [DeliveryState.DELIVERED]: { label: "Delivered", tone: "ok" },
  [DeliveryState.DEAD_LETTERED]: { label: "Dead-lettered", tone: "alert" },
  // A person's quiet hours kept it (last_result says so).
  [DeliveryState.SUPPRESSED]: { label: "Suppressed", tone: "neutral" },
};
const channelLabels: Record<Channel, string> = {
  [Channel.UNSPECIFIED]: "—",
  [Channel.EMAIL]: "Email",
  [Channel.WEBHOOK]: "Webhook",
  [Channel.SMS]: "SMS",
  [Channel.WEB_PUSH]: "Web Push",
};

function DeliveryLog() {
  const id = useId();
  // Everything, or the dead-letter list (given up after the configured attempts); one channel or all.
  const [deadOnly, setDeadOnly] = useState(false);
  const [channel, setChannel] = useState<Channel>(Channel.UNSPECIFIED);
  const pages = usePageTokens(deadOnly, channel);
  const list = useQuery(
    DeliveryService.method.listDeliveries,
    { pageSize: deliveryPageSize, pageToken: pages.token, states: deadOnly ? [DeliveryState.DEAD_LETTERED] : [], channel },
    { refetchInterval: 5_000 },
  );
  const rows = list.data?.deliveries ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Delivery log
        </h2>
        <div className="filters">
          <div className="segmented" role="group" aria-label="Which deliveries">
            <button type="button" aria-pressed={!deadOnly} onClick={() => setDeadOnly(false)}>
              All
            </button>
            <button type="button" aria-pressed={deadOnly} onClick={() => setDeadOnly(true)}>
              Dead letters
            </button>
          </div>
          <select aria-label="Channel" value={channel} onChange={(e) => setChannel(Number(e.target.value) as Channel)}>
            {(Object.keys(channelLabels).map(Number) as Channel[]).map((c) => (
              <option key={c} value={c}>
                {c === Channel.UNSPECIFIED ? "Every channel" : channelLabels[c]}
              </option>
            ))}
          </select>
        </div>
      </div>
      {list.error && <ErrorNotice error={list.error} onRetry={() => void list.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Sent</th>
              <th scope="col">Notification</th>
              <th scope="col">Channel</th>
              <th scope="col">Target</th>
              <th scope="col">Result</th>
              <th scope="col">Attempts</th>
            </tr>
          </thead>
          <tbody>
            {list.isPending && <SkeletonRows rows={5} columns={6} />}
            {rows.map((d) => (
              <tr key={d.deliveryId} data-testid="delivery-row" className={d.state === DeliveryState.DEAD_LETTERED ? "row-dead" : undefined}>
                <td className="nowrap" title={formatDateTime(d.createTime)}>
                  {formatAgo(d.createTime)}
                </td>
                <td>{d.subject}</td>
                <td>{channelLabels[d.channel]}</td>
                <td className="mono small">{d.target}</td>
                <td>
                  <Tone info={deliveryStates[d.state]} />
                  {d.lastResult && <div className="muted small">{d.lastResult}</div>}
                </td>
                <td>{d.attempts}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!list.isPending && rows.length === 0 && !list.error && (
          <EmptyState icon="audit" title={deadOnly ? "No dead letters" : "Nothing sent yet"}>
            <p>
              {deadOnly
                ? "A delivery lands here when every attempt failed (the service's DELIVERY_MAX_ATTEMPTS)."
                : "Every email and webhook a rule sends, with each attempt's result, is listed here."}
            </p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={list.data?.nextPageToken} shown={rows.length} pageSize={deliveryPageSize} noun="deliveries" />
    </section>
  );
}

const rulePageSize = 50;
const kindLabels = { kioskOffline: "Kiosk offline", lowPaper: "Low paper", printerFault: "Printer fault", ...moreKindLabels } as const;
type KindCase = keyof typeof kindLabels;
const kindFields: Record<KindCase, string> = { kioskOffline: "kiosk_offline", lowPaper: "low_paper", printerFault: "printer_fault", ...moreKindFields };

function describeCondition(d: RuleDefinition | undefined): string {
  if (!d || !d.kind.case) return "—";
  const more = describeMoreCondition(d);
  if (more) return more;
  if (d.kind.case === "paymentFailureRate" || d.kind.case === "helpRequested") return "—";
  const secs = d.kind.value.forDuration ? Math.round(durationMs(d.kind.value.forDuration) / 1000) : 0;
  if (d.kind.case === "stockoutPredicted") return `Stock-out predicted${d.kind.value.sku ? ` for ${d.kind.value.sku}` : ""}${secs ? ` for ${secs} s` : ""}`;
  const base = d.kind.case === "lowPaper" ? `Paper below ${d.kind.value.belowPercent} %` : kindLabels[d.kind.case];
  return `${base} for ${secs} s`;
}

function RuleList() {
  const id = useId();
  const canEdit = useCan(RuleService.method.createRule);
  const [editing, setEditing] = useState<Rule | "new" | undefined>();
  const queryClient = useQueryClient();
  const remove = useMutation(RuleService.method.deleteRule, { onSuccess: () => queryClient.invalidateQueries() });
  const pages = usePageTokens();
  const list = useQuery(RuleService.method.listRules, { pageSize: rulePageSize, pageToken: pages.token });
  const rows = list.data?.rules ?? [];
  return (
    <>
      {editing && <RuleForm key={editing === "new" ? "new" : editing.ruleId} rule={editing === "new" ? undefined : editing} onDone={() => setEditing(undefined)} />}
      <section className="card" aria-labelledby={`${id}-title`}>
        <div className="card-toolbar">
          <h2 id={`${id}-title`} className="card-title">
            Rules
          </h2>
          {canEdit && !editing && (
            <button type="button" className="button button-primary" onClick={() => setEditing("new")}>
              New rule
            </button>
          )}
        </div>
        {list.error && <ErrorNotice error={list.error} onRetry={() => void list.refetch()} compact />}
        {remove.error && <ErrorNotice error={remove.error} compact />}
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Severity</th>
                <th scope="col">Condition</th>
                <th scope="col">Kiosks</th>
                <th scope="col">Receivers</th>
                {canEdit && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.isPending && <SkeletonRows rows={3} columns={canEdit ? 6 : 5} />}
              {rows.map((r) => {
                const d = r.definition;
                const m = d?.matcher;
                const selectors = [m?.groupIds.length ? `group ${m.groupIds.join(", ")}` : "", m?.tags.length ? `tags ${m.tags.join(", ")}` : ""].filter(Boolean);
                const receivers = [
                  ...(d?.receivers?.emails ?? []),
                  ...(d?.receivers?.webhooks ?? []).map((w) => w.url),
                  ...(d?.receivers?.phoneNumbers ?? []).map((p) => `SMS ${p}`),
                  ...(d?.receivers?.webPush ? ["Web Push"] : []),
                ];
                return (
                  <tr key={r.ruleId} data-testid="rule-row">
                    <td>
                      <strong>{d?.name}</strong>
                      <div className="muted small">version {r.version.toString()}</div>
                    </td>
                    <td>
                      <Tone info={severityInfo[d?.severity ?? Severity.UNSPECIFIED]} />
                    </td>
                    <td>{describeCondition(d)}</td>
                    <td>{selectors.join(" and ") || "All kiosks"}</td>
                    <td className="small">{receivers.join(", ") || <span className="muted">In-app only</span>}</td>
                    {canEdit && (
                      <td>
                        <button type="button" className="button button-small button-quiet" onClick={() => setEditing(r)}>
                          Edit
                        </button>{" "}
                        <button
                          type="button"
                          className="button button-small button-quiet button-danger"
                          disabled={remove.isPending}
                          onClick={() => {
                            if (window.confirm(`Delete the rule “${d?.name}”? Its open alerts are resolved and it stops alerting.`)) {
                              if (editing !== "new" && editing?.ruleId === r.ruleId) setEditing(undefined);
                              remove.mutate({ ruleId: r.ruleId });
                            }
                          }}
                        >
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
          {!list.isPending && rows.length === 0 && !list.error && (
            <EmptyState icon="alert" title="No rules yet">
              <p>A rule says which condition, held for how long, makes an alert, and who hears of it.</p>
            </EmptyState>
          )}
        </div>
        <Pager pages={pages} nextToken={list.data?.nextPageToken} shown={rows.length} pageSize={rulePageSize} noun="rules" />
      </section>
    </>
  );
}

const splitList = (v: string) =>
  v
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** The first error among fields named `prefix` or `prefix[i]…`. */
function fieldError(fields: Record<string, string>, prefix: string): string | undefined {
  const key = Object.keys(fields).find((k) => k === prefix || k.startsWith(`${prefix}[`) || k.startsWith(`${prefix}.`));
  return key ? (key === prefix ? fields[key] : `${key.slice(prefix.length)}: ${fields[key]}`.replace(/^\[(\d+)\][.:]?/, (_, i: string) => `item ${Number(i) + 1}`)) : undefined;
}

function RuleForm({ rule, onDone }: { rule?: Rule; onDone: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const d = rule?.definition;
  const [name, setName] = useState(d?.name ?? "");
  const [severity, setSeverity] = useState<Severity>(d?.severity || Severity.WARNING);
  const [kind, setKind] = useState<KindCase>((d?.kind.case as KindCase | undefined) ?? "kioskOffline");
  const [forSeconds, setForSeconds] = useState(
    d?.kind.case && d.kind.case !== "paymentFailureRate" && d.kind.case !== "helpRequested" && d.kind.value.forDuration ? String(Math.round(durationMs(d.kind.value.forDuration) / 1000)) : "300",
  );
  const [below, setBelow] = useState(d?.kind.case === "lowPaper" ? String(d.kind.value.belowPercent) : "10");
  const [groups, setGroups] = useState(d?.matcher?.groupIds.join(", ") ?? "");
  const [tags, setTags] = useState(d?.matcher?.tags.join(", ") ?? "");
  const [emails, setEmails] = useState(d?.receivers?.emails.join(", ") ?? "");
  const [more, setMore] = useState(() => initialMoreKindState(d));
  const [phones, setPhones] = useState(d?.receivers?.phoneNumbers.join(", ") ?? "");
  const [webPush, setWebPush] = useState(d?.receivers?.webPush ?? false);
  const done = async () => {
    await queryClient.invalidateQueries();
    onDone();
  };
  const create = useMutation(RuleService.method.createRule, { onSuccess: done });
  const update = useMutation(RuleService.method.updateRule, { onSuccess: done });
  // The dry run: what the rule as it stands in the form would have fired over the last hour;
  // it refuses a bad field as saving would, so its errors mark the fields too.
  const dry = useMutation(RuleService.method.dryRunRule);
  const [dryKey, setDryKey] = useState("");
  const saveError = rule ? update.error : create.error;
  const error = saveError ?? dry.error;
  const pending = create.isPending || update.isPending;
  const fields = error ? describeError(error).fields : {};
  const f = (name: string) => fieldError(fields, `definition.${name}`);
  const forMs = Number(forSeconds) * 1000;
  const forDuration = durationFromMs(Number.isFinite(forMs) ? forMs : 0);
  const kindValue = isMoreKind(kind)
    ? moreKindValue(kind, more, forMs)
    : kind === "lowPaper" ? { case: "lowPaper" as const, value: { belowPercent: Number(below), forDuration } } : kind === "printerFault" ? { case: "printerFault" as const, value: { forDuration } } : { case: "kioskOffline" as const, value: { forDuration } };
  const definition: MessageInitShape<typeof RuleDefinitionSchema> = {
    name,
    severity,
    kind: kindValue,
    matcher: { groupIds: splitList(groups), tags: splitList(tags) },
    // Webhooks are kept as they are (this form edits email receivers only).
    receivers: { emails: splitList(emails), webhooks: d?.receivers?.webhooks ?? [], phoneNumbers: splitPhones(phones), webPush },
  };
  const definitionKey = JSON.stringify(definition, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  const runDry = () => {
    create.reset();
    update.reset();
    setDryKey(definitionKey);
    dry.mutate({ definition });
  };
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        {rule ? `Edit rule “${d?.name}”` : "New rule"}
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          dry.reset();
          if (rule) update.mutate({ ruleId: rule.ruleId, expectedVersion: rule.version, definition });
          else create.mutate({ definition });
        }}
      >
        <div className="filters">
          <FormField id={`${id}-name`} label="Name" error={f("name")}>
            <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Kiosk offline" />
          </FormField>
          <FormField id={`${id}-severity`} label="Severity" error={f("severity")}>
            <select id={`${id}-severity`} value={severity} onChange={(e) => setSeverity(Number(e.target.value) as Severity)}>
              <option value={Severity.INFO}>Info</option>
              <option value={Severity.WARNING}>Warning</option>
              <option value={Severity.CRITICAL}>Critical</option>
            </select>
          </FormField>
          <FormField id={`${id}-kind`} label="Condition" error={f("kind")}>
            <select id={`${id}-kind`} value={kind} onChange={(e) => setKind(e.target.value as KindCase)}>
              {(Object.keys(kindLabels) as KindCase[]).map((k) => (
                <option key={k} value={k}>
                  {kindLabels[k]}
                </option>
              ))}
            </select>
          </FormField>
          {kind === "lowPaper" && (
            <FormField id={`${id}-below`} label="Paper below (%)" error={f("low_paper.below_percent")}>
              <input id={`${id}-below`} type="number" step="any" value={below} onChange={(e) => setBelow(e.target.value)} />
            </FormField>
          )}
          {isMoreKind(kind) && <MoreKindInputs id={id} kind={kind} state={more} onChange={setMore} error={f} />}
          {hasForDuration(kind) && (
            <FormField id={`${id}-for`} label="For at least (seconds)" error={f(`${kindFields[kind]}.for_duration`)}>
              <input id={`${id}-for`} type="number" value={forSeconds} onChange={(e) => setForSeconds(e.target.value)} />
            </FormField>
          )}
        </div>
        <div className="filters">
          <FormField id={`${id}-groups`} label="Groups" hint="Empty: every group" error={f("matcher.group_ids")}>
            <input id={`${id}-groups`} value={groups} onChange={(e) => setGroups(e.target.value)} placeholder="e.g. sim-cz" />
          </FormField>
          <FormField id={`${id}-tags`} label="Tags (all must match)" hint="Empty: any tags" error={f("matcher.tags")}>
            <input id={`${id}-tags`} value={tags} onChange={(e) => setTags(e.target.value)} placeholder="e.g. tickets" />
          </FormField>
          <div className="field-grow">
            <FormField id={`${id}-emails`} label="Email to" hint="Separated by commas; empty: in-app only" error={f("receivers.emails") ?? f("receivers")}>
              <input id={`${id}-emails`} value={emails} onChange={(e) => setEmails(e.target.value)} placeholder="oncall@example.com" />
            </FormField>
          </div>
          <ChannelReceiverInputs id={id} phones={phones} onPhones={setPhones} webPush={webPush} onWebPush={setWebPush} error={f} />
        </div>
        {error && <ErrorNotice error={error} compact />}
        {dry.data && !dry.error && <DryRunPanel result={dry.data} stale={dryKey !== definitionKey} />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={pending}>
            {pending ? "Saving…" : rule ? "Save rule" : "Create rule"}
          </button>
          <button type="button" className="button" disabled={dry.isPending} onClick={runDry}>
            {dry.isPending ? "Trying…" : "Dry run (last hour)"}
          </button>
          <button type="button" className="button button-quiet" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
