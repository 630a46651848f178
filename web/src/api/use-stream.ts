// A server stream kept open for as long as a page shows it: opened in an effect, aborted on
// unmount, reopened with jittered backoff after it drops (a network error, a service
// restart, a stream the server ended), which also picks up a fresh access token (the
// session interceptor adds one to each opening but does not retry streams). Each message
// and each failure feeds the top bar's connection indicator.
import { useEffect, useRef, useState } from "react";
import { create, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectQueryKey, useTransport } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { connection } from "./connection";
import { isNetworkError } from "./errors";

export type StreamStatus = "connecting" | "live" | "reconnecting" | "failed";

export interface StreamState {
  status: StreamStatus;
  /** Why it is reconnecting, or why it stopped (a refusal: asking again gets the same answer). */
  error?: ConnectError;
}

/** Backoff after the n-th failure in a row: 0.5 s, 1 s, 2 s … up to 15 s, ±50 % jitter. */
export function reconnectDelayMs(failures: number): number {
  const base = Math.min(500 * 2 ** Math.max(0, failures - 1), 15_000);
  return base * (0.5 + Math.random());
}

/** Codes a reopened stream may not get again: anything but these stops the stream. */
const retriable = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.DeadlineExceeded, Code.Unauthenticated, Code.Aborted, Code.ResourceExhausted, Code.Canceled]);

/**
 * Keeps `open(signal)` running while `key` is defined, handing every message to `onMessage`
 * (the latest one given; changing it does not reopen). A new `key` reopens the stream.
 */
export function useServerStream<T>(key: string | undefined, open: (signal: AbortSignal) => AsyncIterable<T>, onMessage: (message: T, first: boolean) => void): StreamState {
  const [state, setState] = useState<StreamState>({ status: "connecting" });
  const latest = useRef({ open, onMessage });
  latest.current = { open, onMessage };

  useEffect(() => {
    if (key === undefined) return;
    const abort = new AbortController();
    const { signal } = abort;
    // One controller per attempt: the browser going offline ends the attempt at once (a
    // stream can otherwise sit silent on a dead connection), and coming back online ends
    // the wait before the next one.
    let attempt: AbortController | undefined;
    let wake: (() => void) | undefined;
    const onOffline = () => attempt?.abort();
    const onOnline = () => wake?.();
    window.addEventListener("offline", onOffline);
    window.addEventListener("online", onOnline);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => (clearTimeout(timer), resolve());
        signal.addEventListener("abort", wake, { once: true });
      });
    void (async () => {
      let failures = 0;
      setState({ status: "connecting" });
      while (!signal.aborted) {
        attempt = new AbortController();
        const attemptSignal = AbortSignal.any([signal, attempt.signal]);
        try {
          let first = true;
          for await (const message of latest.current.open(attemptSignal)) {
            if (first) setState({ status: "live" });
            connection.reachable();
            failures = 0;
            latest.current.onMessage(message, first);
            first = false;
          }
          // The server ended the stream (a deploy, a replica going away): open it again.
          if (signal.aborted) return;
          failures++;
          setState({ status: "reconnecting" });
        } catch (e) {
          if (signal.aborted) return;
          const err = ConnectError.from(e);
          if (isNetworkError(err) || attempt.signal.aborted) connection.unreachable();
          else connection.reachable();
          if (!retriable.has(err.code) && !isNetworkError(err)) {
            setState({ status: "failed", error: err });
            return;
          }
          failures++;
          setState({ status: "reconnecting", error: err });
        }
        // Offline, there is nothing to try until the browser says it is back.
        await sleep(navigator.onLine ? reconnectDelayMs(failures) : 3_600_000);
      }
    })();
    return () => {
      abort.abort();
      window.removeEventListener("offline", onOffline);
      window.removeEventListener("online", onOnline);
    };
  }, [key]);

  return state;
}

/**
 * Keeps a Get's cached answer current from a Watch stream while `key` is defined: each message
 * that carries `field` (a job, a rollout) puts it into the answer the page shows, so the page
 * redraws as the server reports, without asking again.
 */
export function useWatchInto<I extends DescMessage, O extends DescMessage, F extends keyof MessageShape<O> & string>(
  get: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
  field: F,
  key: string | undefined,
  open: (signal: AbortSignal) => AsyncIterable<Partial<Record<F, MessageShape<O>[F]>>>,
): StreamState {
  const transport = useTransport();
  const queryClient = useQueryClient();
  return useServerStream(key, open, (message) => {
    const value = message[field];
    if (value === undefined) return;
    const queryKey = createConnectQueryKey({ schema: get, input, transport, cardinality: "finite" });
    queryClient.setQueryData(queryKey, (old: MessageShape<O> | undefined) => ({ ...(old ?? create(get.output)), [field]: value }) as MessageShape<O>);
  });
}
