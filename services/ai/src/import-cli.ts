// `npm run ai:import -- FILE [--format csv|jsonl]`: streams a sales-history file to ai's
// HistoryService.ImportHistory (read and sent in chunks, never held whole) and prints the
// import's summary as one JSON line, or the bad lines ai named (exit 1).
//
// Environment: AI_URL (http://127.0.0.1:7007), and an admin's credentials: AI_IMPORT_TOKEN
// (an access token), or ADMIN_EMAIL and ADMIN_PASSWORD (signed in at AUTH_URL,
// http://127.0.0.1:7001). FILE "-" reads standard input (then --format is needed).
import { createReadStream } from "node:fs";
import { basename, resolve } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { HistoryFormat, HistoryService, type ImportHistoryRequestSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/history_pb";

const chunkBytes = 256 * 1024;

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function parseArgs(argv: string[]) {
  let file: string | undefined;
  let format: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--format") format = argv[++i];
    else if (a.startsWith("--format=")) format = a.slice("--format=".length);
    else if (a === "-h" || a === "--help") fail("usage: npm run ai:import -- FILE [--format csv|jsonl]   (see docs/api.md, ai HistoryService)");
    else if (file === undefined) file = a;
    else fail(`unexpected argument ${JSON.stringify(a)}`);
  }
  if (!file) fail("usage: npm run ai:import -- FILE [--format csv|jsonl]");
  format ??= /\.csv$/i.test(file) ? "csv" : /\.(jsonl|ndjson|json)$/i.test(file) ? "jsonl" : undefined;
  if (format !== "csv" && format !== "jsonl") fail(`--format: must be csv or jsonl (cannot tell from ${JSON.stringify(file)})`);
  return { file, format: format === "csv" ? HistoryFormat.CSV : HistoryFormat.JSONL };
}

async function adminToken(authUrl: string): Promise<string> {
  const token = process.env["AI_IMPORT_TOKEN"];
  if (token) return token;
  const email = process.env["ADMIN_EMAIL"];
  const password = process.env["ADMIN_PASSWORD"];
  if (!email || !password) fail("set AI_IMPORT_TOKEN (an admin's access token), or ADMIN_EMAIL and ADMIN_PASSWORD");
  const login = await createClient(AuthService, createGrpcTransport({ baseUrl: authUrl })).login({ email, password });
  return login.tokens?.accessToken ?? fail("auth answered the login without an access token");
}

async function main() {
  const { file, format } = parseArgs(process.argv.slice(2));
  const aiUrl = process.env["AI_URL"] ?? "http://127.0.0.1:7007";
  const token = await adminToken(process.env["AUTH_URL"] ?? "http://127.0.0.1:7001");
  // npm runs scripts in the repository root; a relative FILE is relative to where npm was run.
  const path = file === "-" ? undefined : resolve(process.env["INIT_CWD"] ?? process.cwd(), file);
  const input = path ? createReadStream(path, { highWaterMark: chunkBytes }) : process.stdin;
  async function* requests(): AsyncGenerator<MessageInitShape<typeof ImportHistoryRequestSchema>> {
    yield { format, source: path ? basename(path) : "stdin" };
    for await (const chunk of input) yield { data: chunk as Buffer };
  }
  const history = createClient(HistoryService, createGrpcTransport({ baseUrl: aiUrl }));
  const result = await history.importHistory(requests(), { headers: { authorization: `Bearer ${token}` } });
  console.log(
    JSON.stringify({
      importId: result.importId,
      lines: Number(result.lines),
      saleRows: Number(result.saleRows),
      stockoutRows: Number(result.stockoutRows),
      days: Number(result.days),
      daysReplaced: Number(result.daysReplaced),
      kiosks: result.kiosks,
      skus: result.skus,
      firstDay: result.firstDay,
      lastDay: result.lastDay,
    }),
  );
}

main().catch((err: unknown) => {
  const e = err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : err instanceof Error ? err.message : String(err);
  fail(`import failed: ${e}`);
});
