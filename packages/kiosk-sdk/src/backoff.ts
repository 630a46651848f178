export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/**
 * The wait before reconnect attempt `attempt` (0 for the first retry): exponential with
 * "equal jitter", i.e. a uniformly random point in the upper half of min(maxMs, initialMs·2^attempt).
 * Kiosks dropped together by one link replica thus spread out instead of returning in a herd,
 * while each wait still grows and never exceeds maxMs.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
