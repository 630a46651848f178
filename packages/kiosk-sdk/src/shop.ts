// What the kiosk screen asks ai: products to offer with the cart ("bought together") and
// product search. Each is one unary call with the kiosk's own device credential; ai answers
// for the kiosk the credential names (a kiosk never names another).
import {
  GetRecommendationsRequestSchema,
  GetRecommendationsResponseSchema,
  SearchProductsRequestSchema,
  SearchProductsResponseSchema,
  type ProductMatch,
  type Recommendation,
} from "@adminkiosk/proto/adminkiosk/ai/v1/recommendations_pb";
import { unary } from "./grpc.js";

const recommendationsPath = "/adminkiosk.ai.v1.RecommendationService/GetRecommendations";
const searchPath = "/adminkiosk.ai.v1.RecommendationService/SearchProducts";

export interface AiOptions {
  /** ai's address: "host:port" or "http://host:port". */
  aiAddress: string;
  /** The kiosk's device credential. */
  credential: string;
  /** How many to return: recommendations 1..20 (default 5), search results 1..50 (default 10). */
  limit?: number;
  /** Per call; default 10 s. */
  timeoutMs?: number;
}

/**
 * Products to offer beside the cart (its SKUs), best first: bought together with what is in
 * it at this kiosk or across the fleet, then best sellers. Never a product already in the
 * cart. An empty cart gets the kiosk's best sellers.
 */
export async function recommendations(cart: string[], options: AiOptions): Promise<Recommendation[]> {
  const res = await unary(
    options.aiAddress,
    recommendationsPath,
    GetRecommendationsRequestSchema,
    GetRecommendationsResponseSchema,
    { cartSkus: cart, limit: options.limit ?? 0 },
    { credential: options.credential, timeoutMs: options.timeoutMs ?? 10_000 },
  );
  return res.recommendations;
}

/**
 * Products on sale at this kiosk whose name, category or description match the query
 * (Spanish or English; accents and plural/singular do not matter), best first.
 */
export async function searchProducts(query: string, options: AiOptions): Promise<ProductMatch[]> {
  const res = await unary(
    options.aiAddress,
    searchPath,
    SearchProductsRequestSchema,
    SearchProductsResponseSchema,
    { query, limit: options.limit ?? 0 },
    { credential: options.credential, timeoutMs: options.timeoutMs ?? 10_000 },
  );
  return res.products;
}
