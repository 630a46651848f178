// "My notifications": the signed-in person's own subscription — which severities, groups and
// tags reach them on which channels, and quiet hours in their time zone (critical alerts still
// come through). The form writes one route per chosen channel with the same filters. Below it,
// the on-call tiers (OnCallTiers.tsx).
import { useEffect, useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { Channel, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { SubscriptionService, type Subscription } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { useSessionState } from "../api/context";
import { describeError } from "../api/errors";
import { ErrorNotice } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatDateTime } from "../ui/format";
import { OnCallTiers } from "./OnCallTiers";

/** The channels a person can choose here (more come as the service offers them). */
const channels = [
  { channel: Channel.EMAIL, label: "Email" },
  { channel: Channel.SMS, label: "SMS" },
  { channel: Channel.WEB_PUSH, label: "Web Push (browsers where push is on)" },
  { channel: Channel.WEBHOOK, label: "Webhook" },
];
const severities = [
  { severity: Severity.CRITICAL, label: "Critical" },
  { severity: Severity.WARNING, label: "Warning" },
  { severity: Severity.INFO, label: "Info" },
];

const splitList = (v: string) =>
  v
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** The first error among fields starting with one of `prefixes`. */
function fieldError(fields: Record<string, string>, ...prefixes: string[]): string | undefined {
  const key = Object.keys(fields).find((k) => prefixes.some((p) => k === p || k.startsWith(`${p}.`) || k.startsWith(`${p}[`)));
  return key ? fields[key] : undefined;
}

/** The first error of any route's `name` field (subscription.routes[i].name…). */
function routeError(fields: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(fields).find((k) => /^subscription\.routes\[\d+\]\./.test(k) && k.split("].")[1]!.startsWith(name));
  return key ? fields[key] : undefined;
}

const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

export function MySubscription() {
  const get = useQuery(SubscriptionService.method.getMySubscription, {});
  if (get.error) return <ErrorNotice error={get.error} onRetry={() => void get.refetch()} />;
  if (!get.data) return <p className="muted">Loading…</p>;
  // Not keyed by the saved version: saving keeps the form (and its "Saved.") as it is.
  return (
    <>
      <SubscriptionForm saved={get.data.subscription} />
      <OnCallTiers />
    </>
  );
}

function SubscriptionForm({ saved }: { saved: Subscription | undefined }) {
  const id = useId();
  const queryClient = useQueryClient();
  const session = useSessionState();
  const signedInEmail = session.status === "signed-in" ? session.user.email : "";
  const first = saved?.routes[0];
  const [email, setEmail] = useState(saved?.email || signedInEmail);
  const [phone, setPhone] = useState(saved?.phoneNumber ?? "");
  const [webhookUrl, setWebhookUrl] = useState(saved?.webhook?.url ?? "");
  const [webhookSecret, setWebhookSecret] = useState(saved?.webhook?.secretName ?? "");
  const [chosen, setChosen] = useState<Channel[]>(saved ? [...new Set(saved.routes.map((r) => r.channel))] : [Channel.EMAIL]);
  const [levels, setLevels] = useState<Severity[]>(first?.severities.length ? first.severities : [Severity.CRITICAL, Severity.WARNING]);
  const [groups, setGroups] = useState(first?.groupIds.join(", ") ?? "");
  const [tags, setTags] = useState(first?.tags.join(", ") ?? "");
  const [quiet, setQuiet] = useState(!!saved?.quietHours);
  const [quietStart, setQuietStart] = useState(saved?.quietHours?.start ?? "22:00");
  const [quietEnd, setQuietEnd] = useState(saved?.quietHours?.end ?? "07:00");
  const [zone, setZone] = useState(saved?.quietHours?.timeZone ?? localZone());
  const [done, setDone] = useState(false);
  useEffect(() => setDone(false), [email, phone, webhookUrl, webhookSecret, chosen, levels, groups, tags, quiet, quietStart, quietEnd, zone]);
  const save = useMutation(SubscriptionService.method.setMySubscription, {
    onSuccess: async () => {
      await queryClient.invalidateQueries();
      setDone(true);
    },
  });
  const fields = save.error ? describeError(save.error).fields : {};
  const toggle = <T,>(list: T[], v: T, on: boolean) => (on ? [...new Set([...list, v])] : list.filter((x) => x !== v));
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        My notifications
      </h2>
      <p className="muted small">
        Besides each rule&apos;s own receivers, alerts matching what you choose here reach you. In your quiet hours only critical alerts do (and on-call paging, when you are on a tier).
      </p>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          const filters = { severities: levels, groupIds: splitList(groups), tags: splitList(tags) };
          save.mutate({
            subscription: {
              email,
              phoneNumber: phone,
              webhook: webhookUrl || webhookSecret ? { url: webhookUrl, secretName: webhookSecret } : undefined,
              routes: chosen.map((channel) => ({ channel, ...filters })),
              quietHours: quiet ? { start: quietStart, end: quietEnd, timeZone: zone } : undefined,
            },
          });
        }}
      >
        <div className="filters">
          <fieldset className="fieldset">
            <legend>Channels</legend>
            {channels.map((c) => (
              <label key={c.channel} className="checkbox">
                <input type="checkbox" checked={chosen.includes(c.channel)} onChange={(e) => setChosen(toggle(chosen, c.channel, e.target.checked))} /> {c.label}
              </label>
            ))}
            {(routeError(fields, "channel") ?? fields["subscription.routes"]) && (
              <p className="field-error" role="alert">
                {routeError(fields, "channel") ?? fields["subscription.routes"]}
              </p>
            )}
          </fieldset>
          <fieldset className="fieldset">
            <legend>Severities</legend>
            {severities.map((s) => (
              <label key={s.severity} className="checkbox">
                <input type="checkbox" checked={levels.includes(s.severity)} onChange={(e) => setLevels(toggle(levels, s.severity, e.target.checked))} /> {s.label}
              </label>
            ))}
          </fieldset>
        </div>
        <div className="filters">
          <FormField id={`${id}-email`} label="Email address" error={fieldError(fields, "subscription.email")}>
            <input id={`${id}-email`} type="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="you@example.com" />
          </FormField>
          {(chosen.includes(Channel.SMS) || phone) && (
            <FormField id={`${id}-phone`} label="Phone number" hint="E.164, e.g. +420 601 234 567" error={fieldError(fields, "subscription.phone_number")}>
              <input id={`${id}-phone`} type="tel" value={phone} onChange={(e) => setPhone(e.target.value)} placeholder="+420601234567" />
            </FormField>
          )}
          {chosen.includes(Channel.WEBHOOK) && (
            <>
              <div className="field-grow">
                <FormField id={`${id}-hook`} label="Webhook URL" error={fieldError(fields, "subscription.webhook.url", "subscription.webhook")}>
                  <input id={`${id}-hook`} value={webhookUrl} onChange={(e) => setWebhookUrl(e.target.value)} placeholder="https://hooks.example.com/me" />
                </FormField>
              </div>
              <FormField id={`${id}-secret`} label="Signing secret name" error={fieldError(fields, "subscription.webhook.secret_name")}>
                <input id={`${id}-secret`} value={webhookSecret} onChange={(e) => setWebhookSecret(e.target.value)} placeholder="e.g. ops" />
              </FormField>
            </>
          )}
        </div>
        <div className="filters">
          <FormField id={`${id}-groups`} label="Groups" hint="Empty: every group" error={routeError(fields, "group_ids")}>
            <input id={`${id}-groups`} value={groups} onChange={(e) => setGroups(e.target.value)} placeholder="e.g. sim-cz" />
          </FormField>
          <FormField id={`${id}-tags`} label="Tags (any)" hint="Empty: any tags" error={routeError(fields, "tags")}>
            <input id={`${id}-tags`} value={tags} onChange={(e) => setTags(e.target.value)} placeholder="e.g. tickets" />
          </FormField>
        </div>
        <div className="filters">
          <label className="checkbox">
            <input type="checkbox" checked={quiet} onChange={(e) => setQuiet(e.target.checked)} /> Quiet hours
          </label>
          {quiet && (
            <>
              <FormField id={`${id}-from`} label="From" error={fieldError(fields, "subscription.quiet_hours.start")}>
                <input id={`${id}-from`} type="time" value={quietStart} onChange={(e) => setQuietStart(e.target.value)} />
              </FormField>
              <FormField id={`${id}-to`} label="To" error={fieldError(fields, "subscription.quiet_hours.end")}>
                <input id={`${id}-to`} type="time" value={quietEnd} onChange={(e) => setQuietEnd(e.target.value)} />
              </FormField>
              <FormField id={`${id}-zone`} label="Time zone" hint="IANA, e.g. Europe/Prague" error={fieldError(fields, "subscription.quiet_hours.time_zone")}>
                <input id={`${id}-zone`} value={zone} onChange={(e) => setZone(e.target.value)} />
              </FormField>
            </>
          )}
        </div>
        {save.error && <ErrorNotice error={save.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={save.isPending}>
            {save.isPending ? "Saving…" : "Save"}
          </button>
          {done && <span className="muted small">Saved.</span>}
          {!done && saved?.updateTime && <span className="muted small">Last saved {formatDateTime(saved.updateTime)}</span>}
        </div>
      </form>
    </section>
  );
}
