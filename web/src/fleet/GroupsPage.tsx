// Configuration groups: every group the fleet's kiosks are in, with how many kiosks run their
// desired configuration (one FleetQueryService call: `| stats count() by group, config_in_sync`),
// and a way to open any group by id (a group's document can be written before it has kiosks).
import { useId, useState } from "react";
import { Link, useNavigate } from "react-router";
import { useQuery } from "@connectrpc/connect-query";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatNumber } from "../ui/format";

/** Kiosks per group, and of those how many run their desired configuration. */
export interface GroupCount {
  groupId: string;
  kiosks: number;
  inSync: number;
}

export function groupCounts(groups: { keys: string[]; values: { value?: number }[] }[]): GroupCount[] {
  const by = new Map<string, GroupCount>();
  for (const g of groups) {
    const [groupId = "", inSync = ""] = g.keys;
    const n = g.values[0]?.value ?? 0;
    const c = by.get(groupId) ?? { groupId, kiosks: 0, inSync: 0 };
    c.kiosks += n;
    if (inSync === "true") c.inSync += n;
    by.set(groupId, c);
  }
  return [...by.values()];
}

export function GroupsPage() {
  const id = useId();
  const navigate = useNavigate();
  const [open, setOpen] = useState("");
  const res = useQuery(FleetQueryService.method.queryKiosks, { query: "| stats count() by group, config_in_sync", pageSize: 1 }, { refetchInterval: 15_000 });
  const groups = groupCounts(res.data?.stats?.groups ?? []);
  const named = groups.filter((g) => g.groupId !== "");
  const ungrouped = groups.find((g) => g.groupId === "");
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Configuration groups</h1>
          <p className="page-lede">Each group's configuration document reaches every kiosk in it; a kiosk's own document is merged over it (on the kiosk's page).</p>
        </div>
      </header>
      <section className="card" aria-labelledby={`${id}-title`}>
        <div className="card-toolbar">
          <h2 id={`${id}-title`} className="card-title">
            Groups
          </h2>
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              if (open.trim()) void navigate(`/fleet/groups/${encodeURIComponent(open.trim())}`);
            }}
          >
            <label htmlFor={`${id}-open`} className="visually-hidden">
              Group id
            </label>
            <input id={`${id}-open`} value={open} onChange={(e) => setOpen(e.target.value)} placeholder="Group id" />
            <button type="submit" className="button button-small" disabled={!open.trim()}>
              Open group
            </button>
          </form>
        </div>
        {res.error && <ErrorNotice error={res.error} onRetry={() => void res.refetch()} compact />}
        {res.data && named.length === 0 ? (
          <EmptyState icon="fleet" title="No kiosk is in a group yet">
            <p>Put kiosks in a group on their page (or with a bulk action), or open a group by id to write its configuration first.</p>
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Group</th>
                  <th scope="col">Kiosks</th>
                  <th scope="col">Run their desired configuration</th>
                </tr>
              </thead>
              <tbody>
                {res.isPending && <SkeletonRows rows={4} columns={3} />}
                {named.map((g) => (
                  <tr key={g.groupId} data-testid="group-row">
                    <td>
                      <Link to={`/fleet/groups/${encodeURIComponent(g.groupId)}`} className="mono">
                        {g.groupId}
                      </Link>
                    </td>
                    <td>{formatNumber(g.kiosks)}</td>
                    <td>
                      {formatNumber(g.inSync)} of {formatNumber(g.kiosks)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {ungrouped && <p className="muted small">{formatNumber(ungrouped.kiosks)} kiosks are in no group.</p>}
      </section>
    </div>
  );
}
