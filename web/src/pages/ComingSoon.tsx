// The designed empty state of a page whose service does not exist yet. No sample data:
// it says what will be here and what it waits for.
import { EmptyState } from "../ui/feedback";
import type { IconName } from "../ui/icons";

export function ComingSoon({ title, icon, what, waitsFor }: { title: string; icon: IconName; what: string; waitsFor: string }) {
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>{title}</h1>
        </div>
      </header>
      <section className="card card-muted">
        <EmptyState icon={icon} title="Coming soon">
          <p>{what}</p>
          <p className="muted">{waitsFor}</p>
        </EmptyState>
      </section>
    </div>
  );
}

export function NotFoundPage() {
  return (
    <div className="page">
      <EmptyState icon="search" title="There is no page here">
        <p>The address may be mistyped, or the page has moved. Use the navigation on the left.</p>
      </EmptyState>
    </div>
  );
}
