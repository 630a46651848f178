// Release versions: dotted numbers (1 to 4 parts) with an optional pre-release suffix,
// "2.4.1", "2.5.0-rc.1". Ordered by the numbers (missing parts are 0), then a version
// with a suffix before the same one without it, then suffixes as text.
import { invalidArgument } from "@adminkiosk/runtime";

const pattern = /^(\d{1,9})(?:\.(\d{1,9})){0,3}(?:-([0-9A-Za-z][0-9A-Za-z.-]{0,31}))?$/;

export function isVersion(value: string): boolean {
  return value.length <= 64 && pattern.test(value);
}

/** InvalidArgument naming `field` unless `value` is a version. */
export function requireVersion(field: string, value: string): string {
  if (!isVersion(value)) throw invalidArgument(field, 'must be a version: 1 to 4 dot-separated numbers with an optional "-suffix", e.g. "2.4.1" or "2.5.0-rc.1"');
  return value;
}

function parts(v: string): { nums: number[]; pre: string } {
  const dash = v.indexOf("-");
  const core = dash < 0 ? v : v.slice(0, dash);
  const nums = core.split(".").map((n) => Number.parseInt(n, 10) || 0);
  while (nums.length < 4) nums.push(0);
  return { nums, pre: dash < 0 ? "" : v.slice(dash + 1) };
}

/** <0, 0 or >0 as a is older than, the same as or newer than b. Text that is not a version sorts first. */
export function compareVersions(a: string, b: string): number {
  const va = isVersion(a), vb = isVersion(b);
  if (!va || !vb) return va === vb ? (a < b ? -1 : a > b ? 1 : 0) : va ? 1 : -1;
  const pa = parts(a), pb = parts(b);
  for (let i = 0; i < 4; i++) if (pa.nums[i] !== pb.nums[i]) return pa.nums[i]! - pb.nums[i]!;
  if (pa.pre === pb.pre) return 0;
  if (pa.pre === "") return 1;
  if (pb.pre === "") return -1;
  return pa.pre < pb.pre ? -1 : 1;
}
