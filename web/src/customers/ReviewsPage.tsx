// Ratings and short reviews buyers leave at kiosks (issue 22): pending ones to moderate
// (operators approve or reject), and a product's approved rating.
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { ModerationDecision, ReviewService, ReviewState, type Review } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { useCan } from "../api/context";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const pageSize = 25;
const states: Record<ReviewState, string> = {
  [ReviewState.UNSPECIFIED]: "All",
  [ReviewState.PENDING]: "Pending",
  [ReviewState.APPROVED]: "Approved",
  [ReviewState.REJECTED]: "Rejected",
};

export function ReviewsPage() {
  const id = useId();
  const [sku, setSku] = useState("");
  const [state, setState] = useState(ReviewState.PENDING);
  const product = useDebounced(sku.trim());
  const pages = usePageTokens(product, state);
  const reviews = useQuery(ReviewService.method.listReviews, { sku: product, state, pageSize, pageToken: pages.token }, { refetchInterval: 15_000 });
  const list = reviews.data?.reviews ?? [];
  const summary = reviews.data?.summary;
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Reviews</h1>
          <p className="page-lede">Ratings buyers left at kiosks after a purchase. They are shown once an operator approves them.</p>
        </div>
        <div className="filters">
          <div className="field">
            <label htmlFor={`${id}-sku`} className="visually-hidden">
              Product
            </label>
            <input id={`${id}-sku`} value={sku} onChange={(e) => setSku(e.target.value)} placeholder="Product SKU (all products)" />
          </div>
          <div className="field">
            <label htmlFor={`${id}-state`} className="visually-hidden">
              State
            </label>
            <select id={`${id}-state`} value={state} onChange={(e) => setState(Number(e.target.value) as ReviewState)}>
              {[ReviewState.PENDING, ReviewState.APPROVED, ReviewState.REJECTED, ReviewState.UNSPECIFIED].map((s) => (
                <option key={s} value={s}>
                  {states[s]}
                </option>
              ))}
            </select>
          </div>
        </div>
      </header>
      <section className="card">
        {summary && (
          <p className="small" data-testid="rating-summary">
            {summary.sku}: {summary.approvedCount > 0n ? `${summary.averageRating.toFixed(1)} / 5 from ${String(summary.approvedCount)} approved reviews` : "no approved reviews yet"}
          </p>
        )}
        {reviews.error && <ErrorNotice error={reviews.error} onRetry={() => void reviews.refetch()} compact />}
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Rating</th>
                <th scope="col">Review</th>
                <th scope="col">Kiosk</th>
                <th scope="col">Written</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {reviews.isPending && <SkeletonRows rows={4} columns={6} />}
              {list.map((r) => (
                <tr key={r.reviewId} data-testid="review-row">
                  <td className="mono">{r.sku}</td>
                  <td className="nowrap" aria-label={`${r.rating} of 5`}>
                    {"★".repeat(r.rating)}
                    {"☆".repeat(5 - r.rating)}
                  </td>
                  <td>{r.text || <span className="small">—</span>}</td>
                  <td className="mono">{r.kioskId}</td>
                  <td className="nowrap" title={formatDateTime(r.createTime)}>
                    {formatAgo(r.createTime)}
                  </td>
                  <td>{r.state === ReviewState.PENDING ? <Moderate review={r} /> : <span className="small">{`${states[r.state]} by ${r.moderatedBy}`}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {!reviews.isPending && list.length === 0 && !reviews.error && (
            <EmptyState icon="catalog" title="No reviews">
              <p>Reviews written at kiosks appear here.</p>
            </EmptyState>
          )}
        </div>
        <Pager pages={pages} nextToken={reviews.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="reviews" />
      </section>
    </div>
  );
}

function Moderate({ review }: { review: Review }) {
  const queryClient = useQueryClient();
  const can = useCan(ReviewService.method.moderateReview);
  const moderate = useMutation(ReviewService.method.moderateReview, { onSuccess: () => queryClient.invalidateQueries() });
  if (!can) return <span className="small">Pending</span>;
  return (
    <div className="inline-form">
      <button type="button" className="button" disabled={moderate.isPending} onClick={() => moderate.mutate({ reviewId: review.reviewId, decision: ModerationDecision.APPROVE })}>
        Approve
      </button>
      <button type="button" className="button danger" disabled={moderate.isPending} onClick={() => moderate.mutate({ reviewId: review.reviewId, decision: ModerationDecision.REJECT })}>
        Reject
      </button>
      {moderate.error && <ErrorNotice error={moderate.error} compact />}
    </div>
  );
}
