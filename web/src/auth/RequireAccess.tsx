// A page whose main call the signed-in role may not make says so instead of failing.
// (The nav already hides it; this covers a typed or bookmarked address.)
import type { ReactNode } from "react";
import { roleLabel } from "../api/roles";
import { useRole } from "../api/context";
import { meetsNeed, type PageNeed } from "../page-access";
import { EmptyState } from "../ui/feedback";

export function RequireAccess({ need, children }: { need: PageNeed; children: ReactNode }) {
  const allowed = meetsNeed(need, useRole());
  if (allowed) return children;
  const needed = roleLabel[need.minRole];
  return (
    <div className="page">
      <EmptyState icon="key" title="Not available for your role">
        <p>This page needs the {needed.toLowerCase()} role. Ask an admin if you need it.</p>
      </EmptyState>
    </div>
  );
}
