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

export function usePageTokens(): PageTokens {
  const [tokens, setTokens] = useState<string[]>([""]);
  const index = tokens.length - 1;
  return {
    token: tokens[index] ?? "",
    index,
    next: useCallback((token: string) => setTokens((t) => [...t, token]), []),
    previous: useCallback(() => setTokens((t) => (t.length > 1 ? t.slice(0, -1) : t)), []),
    reset: useCallback(() => setTokens([""]), []),
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
