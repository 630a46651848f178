// Page-token pagination: the services hand out opaque next_page_token values, so going
// back means remembering the tokens of the pages already seen.
import { useCallback, useState } from "react";
import { formatNumber } from "./format";

export interface PageTokens {
  token: string;
  index: number;
  next(token: string): void;
  previous(): void;
  reset(): void;
}

/**
 * Page tokens of a paged list, back to the first page whenever `resetOn` changes (the
 * filters the tokens were made for). Derived during render, so a changed filter is never
 * sent with a token of the old one.
 */
export function usePageTokens(...resetOn: unknown[]): PageTokens {
  const key = JSON.stringify(resetOn);
  const [state, setState] = useState({ key, tokens: [""] });
  const tokens = state.key === key ? state.tokens : [""];
  const index = tokens.length - 1;
  const current = (s: { key: string; tokens: string[] }) => (s.key === key ? s.tokens : [""]);
  return {
    token: tokens[index] ?? "",
    index,
    next: useCallback((token: string) => setState((s) => ({ key, tokens: [...current(s), token] })), [key]),
    previous: useCallback(() => setState((s) => ({ key, tokens: current(s).length > 1 ? current(s).slice(0, -1) : current(s) })), [key]),
    reset: useCallback(() => setState({ key, tokens: [""] }), [key]),
  };
}

export function Pager({ pages, nextToken, shown, pageSize, total, noun }: { pages: PageTokens; nextToken: string | undefined; shown: number; pageSize: number; total?: number; noun: string }) {
  const first = pages.index * pageSize + (shown > 0 ? 1 : 0);
  const last = pages.index * pageSize + shown;
  return (
    <nav className="pager" aria-label={`${noun} pages`}>
      <span className="pager-range" aria-live="polite">
        {shown === 0 ? `No ${noun}` : `${formatNumber(first)}–${formatNumber(last)}${total !== undefined ? ` of ${formatNumber(total)}` : ""} ${noun}`}
      </span>
      <button type="button" className="button button-small" disabled={pages.index === 0} onClick={pages.previous}>
        Previous
      </button>
      <button type="button" className="button button-small" disabled={!nextToken} onClick={() => nextToken && pages.next(nextToken)}>
        Next
      </button>
    </nav>
  );
}
