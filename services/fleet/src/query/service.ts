// FleetQueryService: QueryKiosks, the language's description for completion, saved views.
import { createHash, randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { cursorPatterns, decodePageToken, describePrincipal, encodePageToken, invalidArgument, pageSize, principalOf, requireText, requireUuid, type Pool } from "@adminkiosk/runtime";
import { knownSkus } from "../stock.js";
import type { KioskRow } from "../store.js";
import { toKiosk } from "../watch.js";
import { aggregateFunctions, fields, maxGroups, requireQuery } from "./index.js";

const operatorsOf: Record<string, string[]> = {
  text: ["=", "!=", "~", "in"],
  enum: ["=", "!=", "in"],
  number: ["=", "!=", "<", "<=", ">", ">=", "in"],
  version: ["=", "!=", "<", "<=", ">", ">=", "in"],
  tags: ["=", "!=", "in"],
  age: ["<", "<=", ">", ">="],
  bool: ["=", "!="],
};

interface ViewRow {
  view_id: string;
  owner: string;
  name: string;
  query: string;
  shared: boolean;
  created_at: Date;
}

const toView = (r: ViewRow) => ({ viewId: r.view_id, name: r.name, query: r.query, shared: r.shared, owner: r.owner, createTime: timestampFromDate(r.created_at) });

export function queryRoutes(pool: Pool) {
  const notFound = (id: string) => new ConnectError(`saved view ${id} not found`, Code.NotFound);
  return (router: ConnectRouter) =>
    router.service(FleetQueryService, {
      async queryKiosks(req) {
        const { parsed, compiled } = requireQuery("query", req.query);
        const limit = req.pageSize === 0 && parsed.limit ? parsed.limit : pageSize("page_size", req.pageSize, 100, 1000);
        const queryHash = createHash("sha256").update(req.query).digest("base64url").slice(0, 16);
        const cursor = decodePageToken("page_token", req.pageToken, { o: cursorPatterns.integer, q: cursorPatterns.any });
        if (cursor && cursor.q !== queryHash) throw invalidArgument("page_token", "was made for another query");
        const offset = cursor ? Number(cursor.o) : 0;
        // With a stats stage the total comes with the groups, and the page is a top-N sort.
        const page = compiled.page(limit + 1, offset, !compiled.stats);
        const [kioskRows, statRows] = await Promise.all([
          pool.query<KioskRow & { total?: string }>(page.sql, page.params),
          compiled.stats ? pool.query<Record<string, string | number | null>>(compiled.stats.sql, compiled.stats.params) : undefined,
        ]);
        let total = statRows ? Number(statRows.rows[0]?.total ?? 0) : kioskRows.rows[0] ? Number(kioskRows.rows[0].total) : undefined;
        if (total === undefined) {
          const c = compiled.count();
          total = offset === 0 ? 0 : Number((await pool.query<{ n: string }>(c.sql, c.params)).rows[0]!.n);
        }
        const rows = kioskRows.rows.slice(0, limit);
        let stats;
        if (compiled.stats && statRows) {
          const s = compiled.stats;
          const groups = statRows.rows.slice(0, maxGroups).map((r) => ({
            keys: s.keys.map((_, i) => String(r[`g${i}`] ?? "")),
            values: s.aggregates.map((_, i) => {
              const v = r[`a${i}`];
              return v === null || v === undefined ? {} : { value: Number(v) };
            }),
          }));
          stats = { groupBy: s.keys, aggregates: s.aggregates, groups, truncated: statRows.rows.length > maxGroups };
        }
        return {
          kiosks: rows.map(toKiosk),
          totalSize: total,
          nextPageToken: kioskRows.rows.length > limit ? encodePageToken({ o: String(offset + limit), q: queryHash }) : "",
          stats,
        };
      },

      async getQueryLanguage() {
        const skus = await knownSkus(pool);
        return {
          fields: [...fields.values()].map((f) => ({
            name: f.name,
            type: f.type,
            operators: operatorsOf[f.type] ?? [],
            values: [...(f.values ?? [])],
            description: f.doc,
            argument: f.fn?.argument ?? "",
            argumentRequired: f.fn?.required ?? false,
            argumentValues: f.fn ? [...(f.fn.values ?? (f.name === "stock" ? skus : []))] : [],
          })),
          aggregates: [...aggregateFunctions],
          stages: ["sort", "stats", "limit"],
          functions: ["near(latitude, longitude, km)", "within(south, west, north, east)", "alert(severity or rule kind)"],
        };
      },

      async createSavedView(req, ctx) {
        const owner = describePrincipal(principalOf(ctx));
        const name = requireText("name", req.name.trim(), { max: 100 });
        requireQuery("query", req.query);
        const { rows } = await pool.query<ViewRow>(
          "INSERT INTO saved_views (view_id, owner, name, query, shared) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, name) DO NOTHING RETURNING *",
          [randomUUID(), owner, name, req.query, req.shared],
        );
        if (!rows[0]) throw new ConnectError(`you already have a view named "${name}"`, Code.AlreadyExists);
        return { view: toView(rows[0]) };
      },

      async listSavedViews(_req, ctx) {
        const owner = describePrincipal(principalOf(ctx));
        const { rows } = await pool.query<ViewRow>("SELECT * FROM saved_views WHERE owner = $1 OR shared ORDER BY lower(name), view_id LIMIT 500", [owner]);
        return { views: rows.map(toView) };
      },

      async getSavedView(req, ctx) {
        const viewId = requireUuid("view_id", req.viewId);
        const owner = describePrincipal(principalOf(ctx));
        const { rows } = await pool.query<ViewRow>("SELECT * FROM saved_views WHERE view_id = $1 AND (owner = $2 OR shared)", [viewId, owner]);
        if (!rows[0]) throw notFound(viewId);
        return { view: toView(rows[0]) };
      },

      async deleteSavedView(req, ctx) {
        const viewId = requireUuid("view_id", req.viewId);
        const owner = describePrincipal(principalOf(ctx));
        const { rows } = await pool.query<ViewRow>("SELECT * FROM saved_views WHERE view_id = $1 AND (owner = $2 OR shared)", [viewId, owner]);
        if (!rows[0]) throw notFound(viewId);
        if (rows[0].owner !== owner) throw new ConnectError("only its owner can delete a saved view", Code.PermissionDenied);
        await pool.query("DELETE FROM saved_views WHERE view_id = $1", [viewId]);
        return {};
      },
    });
}
