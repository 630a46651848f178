// TanStack Query, tuned for an app left open all day: calls that failed because nothing
// answered are retried with backoff (the connection indicator shows it meanwhile); calls a
// service refused are not retried, since asking again gets the same answer.
import { QueryClient } from "@tanstack/react-query";
import { ConnectError } from "@connectrpc/connect";
import { isNetworkError } from "./errors";

export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 2_000,
        retry: (failures, error) => isNetworkError(ConnectError.from(error)) && failures < 1_000,
        retryDelay: (attempt) => Math.min(1_000 * 2 ** attempt, 15_000),
      },
      mutations: { retry: false },
    },
  });
}
