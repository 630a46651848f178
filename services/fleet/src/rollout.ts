// A job's rollout rate: a token bucket of kiosks that may get their command now, kept in
// the job's row (allowance, allowance_at) so any fleet replica carries on where another
// stopped. Pure: the runner reads the row and the time since allowance_at, asks here how
// many commands to create, and stores what is left.

/**
 * At most this many commands per job and tick (one INSERT, one commit): a tick that reaches it
 * runs again at once, so a broadcast's commands go to the dispatcher a slice at a time while
 * the next slice is inserted, instead of all after one long INSERT.
 */
export const maxCommandsPerTick = 10_000;

/**
 * The bucket after `elapsedSeconds` at `ratePerMinute`: it refills at rate/60 a second
 * and holds at most one second's worth, and at least one (so a job of 1 a minute is not
 * stuck below one token).
 */
export function allowanceNow(allowance: number, elapsedSeconds: number, ratePerMinute: number): number {
  const perSecond = ratePerMinute / 60;
  return Math.min(Math.max(1, perSecond), allowance + Math.max(0, elapsedSeconds) * perSecond);
}

/** How many commands to create now (whole tokens, no more than are left to dispatch) and the allowance kept. */
export function takeFromBucket(available: number, remaining: number, max = maxCommandsPerTick): { take: number; left: number } {
  const take = Math.max(0, Math.min(Math.floor(available), remaining, max));
  return { take, left: available - take };
}
