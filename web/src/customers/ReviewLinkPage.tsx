// The buyer's review page (issue 22), reached from the receipt's link: /review/<token>. No
// sign-in and not in the navigation — the token (signed by notifications for one order,
// expiring) is what customers checks on GetReviewInvitation and SubmitReviewWithToken. One
// form per product of the order; a product already reviewed shows the review instead. Its own
// chunk with its own public transport: nothing of the session is loaded or sent.
import { useEffect, useId, useMemo, useState } from "react";
import { useParams } from "react-router";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ReviewService, ReviewState, type GetReviewInvitationResponse, type Review } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { Loading } from "../ui/feedback";

const stateText: Record<ReviewState, string> = {
  [ReviewState.UNSPECIFIED]: "",
  [ReviewState.PENDING]: "Thank you! Your review will appear once it has been checked.",
  [ReviewState.APPROVED]: "Thank you! Your review is published.",
  [ReviewState.REJECTED]: "Thank you for your review.",
};

export function ReviewLinkPage() {
  const { token = "" } = useParams();
  const client = useMemo(() => createClient(ReviewService, createConnectTransport({ baseUrl: window.location.origin, defaultTimeoutMs: 15_000 })), []);
  const [invitation, setInvitation] = useState<GetReviewInvitationResponse>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let current = true;
    client.getReviewInvitation({ token }).then(
      (r) => current && setInvitation(r),
      (err: unknown) => current && setError(ConnectError.from(err).rawMessage),
    );
    return () => {
      current = false;
    };
  }, [client, token]);

  return (
    <main className="fullpage" id="main">
      <div className="signin-card review-card">
        <h1>Rate your purchase</h1>
        {error !== undefined ? (
          <p role="alert" className="notice notice-error notice-compact">
            This review link cannot be used: {error}
          </p>
        ) : !invitation ? (
          <Loading label="Loading your purchase…" />
        ) : (
          <>
            <p className="small">
              Order {invitation.orderId.slice(0, 8)} at kiosk {invitation.kioskId}. The link works until{" "}
              {invitation.expireTime ? new Date(Number(invitation.expireTime.seconds) * 1000).toLocaleDateString() : "it expires"}.
            </p>
            {invitation.items.map((item) => (
              <ProductReview key={item.sku} sku={item.sku} quantity={item.quantity} written={item.review} submit={(rating, text) => client.submitReviewWithToken({ token, sku: item.sku, rating, text }).then((r) => r.review!)} />
            ))}
          </>
        )}
      </div>
    </main>
  );
}

function ProductReview(props: { sku: string; quantity: bigint; written?: Review; submit(rating: number, text: string): Promise<Review> }) {
  const id = useId();
  const [review, setReview] = useState(props.written);
  const [rating, setRating] = useState(0);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  if (review)
    return (
      <section className="review-product" aria-label={props.sku}>
        <h2>{props.sku}</h2>
        <p aria-label={`${review.rating} of 5`}>
          {"★".repeat(review.rating)}
          {"☆".repeat(5 - review.rating)}
        </p>
        <p role="status">{stateText[review.state]}</p>
      </section>
    );
  return (
    <form
      className="review-product"
      aria-label={props.sku}
      onSubmit={(e) => {
        e.preventDefault();
        if (rating === 0) return setError("Choose from 1 to 5 stars.");
        setBusy(true);
        setError(undefined);
        props.submit(rating, text).then(setReview, (err: unknown) => {
          setError(ConnectError.from(err).rawMessage);
          setBusy(false);
        });
      }}
    >
      <h2>
        {props.sku} {props.quantity > 1n ? <span className="small">× {props.quantity.toString()}</span> : null}
      </h2>
      <fieldset className="stars">
        <legend>Your rating</legend>
        {[1, 2, 3, 4, 5].map((n) => (
          <label key={n}>
            <input type="radio" name={`${id}-rating`} value={n} checked={rating === n} onChange={() => setRating(n)} />
            {n} {n === 1 ? "star" : "stars"}
          </label>
        ))}
      </fieldset>
      <div className="field">
        <label htmlFor={`${id}-text`}>A few words (optional)</label>
        <textarea id={`${id}-text`} maxLength={500} rows={3} value={text} onChange={(e) => setText(e.target.value)} />
      </div>
      {error && (
        <p role="alert" className="notice notice-error notice-compact">
          {error}
        </p>
      )}
      <button type="submit" className="button button-primary" disabled={busy}>
        Send review
      </button>
    </form>
  );
}
