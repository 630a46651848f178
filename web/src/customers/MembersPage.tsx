// Loyalty members (issue 22): find a member by card number, email, phone or id; their
// consents, points ledger and purchases; export everything kept about them (a JSON file) and
// erase their personal data (admins). Reviews have their own page (ReviewsPage).
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { ConsentPurpose, LedgerEntryKind, MemberService, type Member } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { useCan } from "../api/context";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime, formatMoney } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const pageSize = 25;
const purposes: Record<ConsentPurpose, string> = {
  [ConsentPurpose.UNSPECIFIED]: "—",
  [ConsentPurpose.LOYALTY]: "Loyalty terms",
  [ConsentPurpose.MARKETING_EMAIL]: "Offers by email",
  [ConsentPurpose.MARKETING_SMS]: "Offers by SMS",
};

export function MembersPage() {
  const id = useId();
  const [query, setQuery] = useState("");
  const q = useDebounced(query.trim());
  const [selected, setSelected] = useState<string>();
  const pages = usePageTokens(q);
  const members = useQuery(MemberService.method.searchMembers, { query: q, pageSize, pageToken: pages.token });
  const list = members.data?.members ?? [];
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Members</h1>
          <p className="page-lede">Loyalty members: points earned per completed order and redeemed at kiosks. Export what is kept about a person, or erase it on request.</p>
        </div>
        <div className="filters">
          <div className="field">
            <label htmlFor={`${id}-q`} className="visually-hidden">
              Search members
            </label>
            <input id={`${id}-q`} value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Card number, email, phone or member id" />
          </div>
        </div>
      </header>
      <section className="card">
        {members.error && <ErrorNotice error={members.error} onRetry={() => void members.refetch()} compact />}
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Card</th>
                <th scope="col">Email</th>
                <th scope="col">Phone</th>
                <th scope="col">Points</th>
                <th scope="col">Last activity</th>
              </tr>
            </thead>
            <tbody>
              {members.isPending && <SkeletonRows rows={4} columns={6} />}
              {list.map((m) => (
                <tr key={m.memberId} data-testid="member-row" aria-selected={m.memberId === selected}>
                  <td>
                    <button type="button" className="row-link mono" onClick={() => setSelected(m.memberId)}>
                      {m.memberId.slice(0, 8)}
                    </button>
                    {m.eraseTime && <span className="small"> (erased)</span>}
                  </td>
                  <td className="mono">{m.cardNumber || "—"}</td>
                  <td>{m.email || "—"}</td>
                  <td className="mono">{m.phone || "—"}</td>
                  <td className="nowrap">{String(m.pointsBalance)}</td>
                  <td className="nowrap" title={formatDateTime(m.lastActivityTime)}>
                    {formatAgo(m.lastActivityTime)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {!members.isPending && list.length === 0 && !members.error && (
            <EmptyState icon="users" title="No members">
              <p>Members enrol at a kiosk; search by card number, email, phone or id.</p>
            </EmptyState>
          )}
        </div>
        <Pager pages={pages} nextToken={members.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="members" />
      </section>
      {selected && <MemberDetail memberId={selected} />}
    </div>
  );
}

function MemberDetail({ memberId }: { memberId: string }) {
  const id = useId();
  const detail = useQuery(MemberService.method.getMember, { memberId });
  if (detail.error) return <ErrorNotice error={detail.error} onRetry={() => void detail.refetch()} />;
  if (!detail.data?.member) return <section className="card"><SkeletonRows rows={3} columns={3} /></section>;
  const { member, consents, ledger, purchases } = detail.data;
  return (
    <section className="card" aria-labelledby={`${id}-title`} data-testid="member-detail">
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Member <span className="mono">{member.memberId}</span>
        </h2>
        <PrivacyActions member={member} />
      </div>
      <p className="small">
        {String(member.pointsBalance)} points · enrolled {formatDateTime(member.createTime)}
        {member.enrolledKioskId ? ` at ${member.enrolledKioskId}` : ""}
        {member.eraseTime ? ` · personal data erased ${formatDateTime(member.eraseTime)}` : ""}
      </p>
      <h3>Consents</h3>
      <ul className="small">
        {consents.length === 0 && <li>None recorded.</li>}
        {consents.map((c, i) => (
          <li key={i}>
            {purposes[c.purpose]}: {c.granted ? "given" : "withdrawn"} {formatDateTime(c.recordTime)} {c.recordedBy ? `(${c.recordedBy})` : ""}
          </li>
        ))}
      </ul>
      <h3>Points ledger</h3>
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What</th>
              <th scope="col">Points</th>
              <th scope="col">Balance</th>
              <th scope="col">Kiosk</th>
              <th scope="col">Order</th>
            </tr>
          </thead>
          <tbody>
            {ledger.map((e) => (
              <tr key={String(e.entryId)}>
                <td className="nowrap">{formatDateTime(e.createTime)}</td>
                <td>{e.kind === LedgerEntryKind.EARN ? "Earned" : "Redeemed"}</td>
                <td className="nowrap">{String(e.points)}</td>
                <td className="nowrap">{String(e.balanceAfter)}</td>
                <td className="mono">{e.kioskId}</td>
                <td className="mono small">{e.orderId.slice(0, 8)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Purchases</h3>
      <ul className="small">
        {purchases.length === 0 && <li>None yet.</li>}
        {purchases.map((p) => (
          <li key={p.orderId}>
            <span className="mono">{p.orderId.slice(0, 8)}</span> at <span className="mono">{p.kioskId}</span>:{" "}
            {p.completeTime ? `${formatMoney(p.totalMinor, p.currency)} — ${p.lines.map((l) => `${String(l.quantity)} × ${l.sku}`).join(", ")}` : "not completed yet"}
          </li>
        ))}
      </ul>
    </section>
  );
}

function PrivacyActions({ member }: { member: Member }) {
  const queryClient = useQueryClient();
  const canExport = useCan(MemberService.method.exportMember);
  const canErase = useCan(MemberService.method.eraseMember);
  const exporter = useMutation(MemberService.method.exportMember, {
    onSuccess: (res) => {
      const url = URL.createObjectURL(new Blob([res.json], { type: "application/json" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `member-${member.memberId}.json`;
      a.click();
      URL.revokeObjectURL(url);
    },
  });
  const eraser = useMutation(MemberService.method.eraseMember, { onSuccess: () => queryClient.invalidateQueries() });
  if (!canExport && !canErase) return null;
  return (
    <div className="inline-form">
      {canExport && (
        <button type="button" className="button" disabled={exporter.isPending} onClick={() => exporter.mutate({ memberId: member.memberId })}>
          Export (JSON)
        </button>
      )}
      {canErase && !member.eraseTime && (
        <button
          type="button"
          className="button danger"
          disabled={eraser.isPending}
          onClick={() => {
            if (window.confirm("Erase this member's personal data? Their points ledger and orders stay, anonymous. This cannot be undone.")) eraser.mutate({ memberId: member.memberId });
          }}
        >
          Erase personal data
        </button>
      )}
      {(exporter.error || eraser.error) && <ErrorNotice error={exporter.error ?? eraser.error} compact />}
    </div>
  );
}
