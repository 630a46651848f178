// Handlers of HistoryService (sales-history import, admins) and RecommendationService
// (bought-together recommendations and product search; kiosk devices get their own kiosk's).
// Who may call each RPC is declared in proto/ and enforced by the runtime.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { HistoryService } from "@adminkiosk/proto/adminkiosk/ai/v1/history_pb";
import { RecommendationReason, RecommendationService } from "@adminkiosk/proto/adminkiosk/ai/v1/recommendations_pb";
import { describePrincipal, failedPrecondition, invalid, kioskScope, principalOf, requireText, type Logger, type Pool } from "@adminkiosk/runtime";
import { importHistory } from "./import.js";
import { recommend } from "./recommend.js";
import type { ProductIndexKeeper } from "./search.js";

export const recommendationServices = [HistoryService, RecommendationService];

const skuPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const maxCart = 50;

const reasons = {
  here: RecommendationReason.BOUGHT_TOGETHER_HERE,
  fleet: RecommendationReason.BOUGHT_TOGETHER_FLEET,
  popular: RecommendationReason.POPULAR,
} as const;

/** The SKUs with stock at the kiosk as ai last read catalog's stock; undefined when it knows none there. */
async function onSaleAt(pool: Pool, kioskId: string): Promise<Set<string> | undefined> {
  const { rows } = await pool.query<{ sku: string; available: string }>("SELECT sku, available FROM stock_levels WHERE kiosk_id = $1", [kioskId]);
  if (rows.length === 0) return undefined;
  return new Set(rows.filter((r) => Number(r.available) > 0).map((r) => r.sku));
}

function limitOf(field: string, value: number, fallback: number, max: number) {
  if (value === 0) return fallback;
  if (value < 1 || value > max) throw invalid(field, `must be 1..${max} (0: the default ${fallback})`);
  return value;
}

export function recommendationRoutes(deps: { pool: Pool; log: Logger; products?: ProductIndexKeeper }) {
  const { pool } = deps;
  /** What may be offered at the kiosk: in stock there (when known) and active at catalog (when read). */
  async function offerable(kioskId: string | undefined): Promise<((sku: string) => boolean) | undefined> {
    const stock = kioskId ? await onSaleAt(pool, kioskId) : undefined;
    const index = deps.products?.current();
    if (!stock && !index) return undefined;
    return (sku) => (!stock || stock.has(sku)) && (!index || index.products.has(sku));
  }
  return (router: ConnectRouter) => {
    router.service(HistoryService, {
      async importHistory(requests, ctx) {
        return importHistory(deps, requests, describePrincipal(principalOf(ctx)));
      },
    });
    router.service(RecommendationService, {
      async getRecommendations(req, ctx) {
        // A device asking for another kiosk is refused before anything else is looked at.
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        if (req.cartSkus.length > maxCart) throw invalid("cart_skus", `must list at most ${maxCart} SKUs`);
        const cart = req.cartSkus.map((sku, i) => {
          requireText(`cart_skus[${i}]`, sku, { max: 64, pattern: skuPattern, patternHint: "may contain only letters, digits, '.', '_' and '-' (starting with a letter or digit)" });
          if (req.cartSkus.indexOf(sku) !== i) throw invalid(`cart_skus[${i}]`, `${sku} is listed twice`);
          return sku;
        });
        const limit = limitOf("limit", req.limit, 5, 20);
        const allowed = await offerable(kioskId);
        const result = await recommend(pool, { kioskId, cart, limit, ...(allowed ? { allowed } : {}) });
        const index = deps.products?.current();
        return {
          kioskId,
          recommendations: result.items.map((r) => ({ sku: r.sku, name: index?.products.get(r.sku)?.name ?? "", score: r.score, reason: reasons[r.reason], lift: r.lift })),
          kioskBaskets: BigInt(result.kioskBaskets),
          fleetBaskets: BigInt(result.fleetBaskets),
        };
      },
      async searchProducts(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId, true);
        const query = req.query.trim();
        if (query === "") throw invalid("query", "must not be empty");
        requireText("query", query, { max: 200 });
        const limit = limitOf("limit", req.limit, 10, 50);
        if (!deps.products) throw failedPrecondition("ai has no catalog connection (CATALOG_URL, AUTH_URL, SERVICE_SECRET): it knows no products to search");
        const index = deps.products.current();
        if (!index) throw new ConnectError("the product index is not loaded yet (ai reads catalog's products at start): retry shortly", Code.Unavailable);
        const stock = kioskId ? await onSaleAt(pool, kioskId) : undefined;
        const matches = index.search(query, limit, stock ? (sku) => stock.has(sku) : undefined);
        return {
          products: matches.map((m) => ({ ...m.product, score: m.score })),
          indexedProducts: index.size,
          indexTime: timestampFromDate(index.loadedAt),
        };
      },
    });
  };
}
