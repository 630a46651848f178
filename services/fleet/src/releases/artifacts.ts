// Where release artifacts live: content-addressed (the key is the lowercase hex SHA-256 of
// the bytes), behind one interface with two drivers — the filesystem (default; a directory
// from FLEET_ARTIFACT_DIR) and an S3-compatible bucket (s3.ts). Uploads are streamed and
// hashed as they arrive; nothing is visible under its address until every byte is stored.
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface ArtifactStat {
  sha256: string;
  size: number;
}

/** An upload went past `maxBytes`: nothing was kept. */
export class ArtifactTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super(`the artifact is larger than ${maxBytes} bytes`);
  }
}

export interface ArtifactStore {
  /** Streams `body` in, hashing it; stored under its SHA-256 (a second upload of the same bytes keeps one copy). */
  put(body: Readable, maxBytes: number): Promise<ArtifactStat>;
  stat(sha256: string): Promise<ArtifactStat | undefined>;
  exists(sha256: string): Promise<boolean>;
  /** Bytes start..end (inclusive) of a stored artifact, streamed. */
  read(sha256: string, range: { start: number; end: number }): Promise<Readable>;
}

export const isSha256 = (s: string) => /^[0-9a-f]{64}$/.test(s);

/** Counts and hashes what goes through, failing past maxBytes. */
export function hashingCounter(maxBytes: number) {
  const hash = createHash("sha256");
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) return done(new ArtifactTooLarge(maxBytes));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ sha256: hash.digest("hex"), size }) };
}

/** Files under `dir`: objects/<ab>/<sha256>, uploads in progress under tmp/ (removed when they fail). */
export function fileArtifactStore(dir: string): ArtifactStore {
  const pathOf = (sha256: string) => join(dir, "objects", sha256.slice(0, 2), sha256);
  const ready = Promise.all([mkdir(join(dir, "objects"), { recursive: true }), mkdir(join(dir, "tmp"), { recursive: true })]);
  const statOf = async (sha256: string): Promise<ArtifactStat | undefined> => {
    if (!isSha256(sha256)) return undefined;
    try {
      const s = await stat(pathOf(sha256));
      return { sha256, size: s.size };
    } catch {
      return undefined;
    }
  };
  return {
    async put(body, maxBytes) {
      await ready;
      const tmp = join(dir, "tmp", randomUUID());
      const counter = hashingCounter(maxBytes);
      try {
        await pipeline(body, counter.stream, createWriteStream(tmp, { flags: "wx" }));
        const result = counter.result();
        await mkdir(join(dir, "objects", result.sha256.slice(0, 2)), { recursive: true });
        await rename(tmp, pathOf(result.sha256));
        return result;
      } finally {
        await rm(tmp, { force: true });
      }
    },
    stat: statOf,
    exists: async (sha256) => (await statOf(sha256)) !== undefined,
    async read(sha256, range) {
      if (!isSha256(sha256)) throw new Error("not a sha256");
      return createReadStream(pathOf(sha256), { start: range.start, end: range.end, highWaterMark: 256 * 1024 });
    },
  };
}
