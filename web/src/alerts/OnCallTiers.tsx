// On-call tiers: who an escalating rule's unacknowledged alert reaches, tier by tier. Everyone
// reads them; admins set a tier (people, chosen among the users, and/or addresses) or delete it.
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { SubscriptionService, type OnCallTier } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";

const splitList = (v: string) =>
  v
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

export function OnCallTiers() {
  const id = useId();
  const queryClient = useQueryClient();
  const canEdit = useCan(SubscriptionService.method.setOnCallTier);
  const list = useQuery(SubscriptionService.method.listOnCallTiers, {});
  // Admins see people by their email (the tiers hold user ids).
  const users = useQuery(UserService.method.listUsers, { pageSize: 500 }, { enabled: canEdit });
  const emailOf = new Map((users.data?.users ?? []).map((u) => [u.userId, u.email]));
  const [editing, setEditing] = useState<OnCallTier | "new" | undefined>();
  const remove = useMutation(SubscriptionService.method.deleteOnCallTier, { onSuccess: () => queryClient.invalidateQueries() });
  const tiers = list.data?.tiers ?? [];
  return (
    <>
      {editing && (
        <TierForm
          key={editing === "new" ? "new" : editing.level}
          tier={editing === "new" ? undefined : editing}
          nextLevel={Math.min(10, Math.max(0, ...tiers.map((t) => t.level)) + 1)}
          people={users.data?.users.map((u) => ({ userId: u.userId, email: u.email })) ?? []}
          onDone={() => setEditing(undefined)}
        />
      )}
      <section className="card" aria-labelledby={`${id}-title`}>
        <div className="card-toolbar">
          <h2 id={`${id}-title`} className="card-title">
            On-call tiers
          </h2>
          {canEdit && !editing && (
            <button type="button" className="button button-primary" onClick={() => setEditing("new")}>
              New tier
            </button>
          )}
        </div>
        <p className="muted small">
          A rule that escalates pages tier 1 with its first notification and the next tier each time its alert stays unacknowledged for the rule&apos;s delay. People are reached at the addresses they saved above; quiet hours do not apply.
        </p>
        {(list.error ?? remove.error) && <ErrorNotice error={(list.error ?? remove.error)!} compact />}
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Tier</th>
                <th scope="col">People</th>
                <th scope="col">Addresses</th>
                {canEdit && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.isPending && <SkeletonRows rows={2} columns={canEdit ? 4 : 3} />}
              {tiers.map((t) => (
                <tr key={t.level} data-testid="tier-row">
                  <td>Tier {t.level}</td>
                  <td className="small">{t.userIds.map((u) => emailOf.get(u) ?? u).join(", ") || <span className="muted">—</span>}</td>
                  <td className="small">{[...(t.receivers?.emails ?? []), ...(t.receivers?.webhooks ?? []).map((w) => w.url)].join(", ") || <span className="muted">—</span>}</td>
                  {canEdit && (
                    <td className="nowrap">
                      <button type="button" className="button button-small button-quiet" onClick={() => setEditing(t)}>
                        Edit
                      </button>{" "}
                      <button type="button" className="button button-small button-quiet" disabled={remove.isPending} onClick={() => remove.mutate({ level: t.level })}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {!list.isPending && tiers.length === 0 && !list.error && (
            <EmptyState icon="users" title="No on-call tiers">
              <p>Without tiers, rules that escalate notify only their own receivers and subscribers.</p>
            </EmptyState>
          )}
        </div>
      </section>
    </>
  );
}

function TierForm({ tier, nextLevel, people, onDone }: { tier?: OnCallTier; nextLevel: number; people: { userId: string; email: string }[]; onDone: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [level, setLevel] = useState(String(tier?.level ?? nextLevel));
  const [chosen, setChosen] = useState<string[]>(tier?.userIds ?? []);
  const [emails, setEmails] = useState(tier?.receivers?.emails.join(", ") ?? "");
  const save = useMutation(SubscriptionService.method.setOnCallTier, {
    onSuccess: async () => {
      await queryClient.invalidateQueries();
      onDone();
    },
  });
  const fields = save.error ? describeError(save.error).fields : {};
  const emailsError = Object.entries(fields).find(([k]) => k.startsWith("tier.receivers"))?.[1];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        {tier ? `Tier ${tier.level}` : "New on-call tier"}
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          // Webhooks are kept as they are (this form edits people and email addresses).
          save.mutate({ tier: { level: Number(level), userIds: chosen, receivers: { emails: splitList(emails), webhooks: tier?.receivers?.webhooks ?? [] } } });
        }}
      >
        <div className="filters">
          <FormField id={`${id}-level`} label="Tier" error={fields["tier.level"]}>
            <input id={`${id}-level`} type="number" min={1} max={10} value={level} disabled={!!tier} onChange={(e) => setLevel(e.target.value)} />
          </FormField>
          <FormField id={`${id}-people`} label="People" hint="Ctrl/⌘-click to choose several" error={fields["tier.user_ids"] ?? fields["tier"]}>
            <select id={`${id}-people`} multiple value={chosen} onChange={(e) => setChosen([...e.target.selectedOptions].map((o) => o.value))}>
              {people.map((p) => (
                <option key={p.userId} value={p.userId}>
                  {p.email}
                </option>
              ))}
            </select>
          </FormField>
          <div className="field-grow">
            <FormField id={`${id}-emails`} label="Email addresses" hint="Separated by commas" error={emailsError}>
              <input id={`${id}-emails`} value={emails} onChange={(e) => setEmails(e.target.value)} placeholder="oncall@example.com" />
            </FormField>
          </div>
        </div>
        {save.error && <ErrorNotice error={save.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={save.isPending}>
            {save.isPending ? "Saving…" : "Save tier"}
          </button>
          <button type="button" className="button button-quiet" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
