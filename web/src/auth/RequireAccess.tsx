// A page whose main call the signed-in role may not make says so instead of failing.
// (The nav already hides it; this covers a typed or bookmarked address.)
import type { ReactNode } from "react";
import type { DescMethod } from "@bufbuild/protobuf";
import { getOption } from "@bufbuild/protobuf";
import { access } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { roleLabel } from "../api/access";
import { useCan } from "../api/context";
import { EmptyState } from "../ui/feedback";

export function RequireAccess({ method, children }: { method: DescMethod; children: ReactNode }) {
  const allowed = useCan(method);
  if (allowed) return children;
  const needed = roleLabel[getOption(method, access).minRole];
  return (
    <div className="page">
      <EmptyState icon="key" title="Not available for your role">
        <p>This page needs the {needed.toLowerCase()} role. Ask an admin if you need it.</p>
      </EmptyState>
    </div>
  );
}
