// The page for an address the app does not know.
import { EmptyState } from "../ui/feedback";

export function NotFoundPage() {
  return (
    <div className="page">
      <EmptyState icon="search" title="There is no page here">
        <p>The address may be mistyped, or the page has moved. Use the navigation on the left.</p>
      </EmptyState>
    </div>
  );
}
