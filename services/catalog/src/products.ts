// Products and product search (schema "catalog"): full text with English stemming over
// name, category and description, plus pg_trgm word similarity so typos still match.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ProductSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { inTransaction, type Pool, type PoolClient } from "@adminkiosk/runtime";

type Db = Pool | PoolClient;

export interface ProductRow {
  sku: string;
  name: string;
  description: string;
  category: string;
  price_minor: string;
  currency: string;
  tax_rate_basis_points: number;
  image_urls: string[];
  active: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface ProductFields {
  name: string;
  description: string;
  category: string;
  priceMinor: bigint;
  currency: string;
  taxRateBasisPoints: number;
  imageUrls: string[];
  active: boolean;
}

export interface ProductFilter {
  query?: string;
  category?: string;
  includeInactive: boolean;
  minPriceMinor?: bigint;
  maxPriceMinor?: bigint;
}

export function toProduct(row: ProductRow): MessageInitShape<typeof ProductSchema> {
  return {
    sku: row.sku,
    name: row.name,
    description: row.description,
    category: row.category,
    priceMinor: BigInt(row.price_minor),
    currency: row.currency,
    taxRateBasisPoints: row.tax_rate_basis_points,
    imageUrls: row.image_urls,
    active: row.active,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  };
}

const columns = "sku, name, description, category, price_minor, currency, tax_rate_basis_points, image_urls, active, created_at, updated_at";

/** The WHERE clause of a listing; `params` collects its values. `$1` is the query text when searching. */
function where(f: ProductFilter, params: unknown[]): string {
  const clauses: string[] = [];
  const add = (value: unknown) => `$${params.push(value)}`;
  if (f.query !== undefined) {
    const q = add(f.query);
    // Matches on words (stemmed: "roses" finds "Rose") or, for typos, on trigrams.
    clauses.push(`(search @@ websearch_to_tsquery('english', ${q}) OR lower(${q}) <% search_text)`);
  }
  if (!f.includeInactive) clauses.push("active");
  if (f.category) clauses.push(`lower(category) = lower(${add(f.category)})`);
  if (f.minPriceMinor !== undefined) clauses.push(`price_minor >= ${add(f.minPriceMinor.toString())}`);
  if (f.maxPriceMinor !== undefined) clauses.push(`price_minor <= ${add(f.maxPriceMinor.toString())}`);
  return clauses.length === 0 ? "true" : clauses.join(" AND ");
}

export const products = {
  async insert(db: Db, sku: string, p: ProductFields) {
    const { rows } = await db.query<ProductRow>(
      `INSERT INTO products (sku, name, description, category, price_minor, currency, tax_rate_basis_points, image_urls, active)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (sku) DO NOTHING RETURNING ${columns}`,
      [sku, p.name, p.description, p.category, p.priceMinor.toString(), p.currency, p.taxRateBasisPoints, p.imageUrls, p.active],
    );
    return rows[0];
  },
  async bySku(db: Db, sku: string, options: { forUpdate?: boolean } = {}) {
    const { rows } = await db.query<ProductRow>(`SELECT ${columns} FROM products WHERE sku = $1 ${options.forUpdate ? "FOR UPDATE" : ""}`, [sku]);
    return rows[0];
  },
  async bySkus(db: Db, skus: string[]) {
    const { rows } = await db.query<ProductRow>(`SELECT ${columns} FROM products WHERE sku = ANY($1)`, [skus]);
    return new Map(rows.map((r) => [r.sku, r]));
  },
  async update(db: Db, sku: string, p: ProductFields) {
    const { rows } = await db.query<ProductRow>(
      `UPDATE products SET name = $2, description = $3, category = $4, price_minor = $5, currency = $6,
         tax_rate_basis_points = $7, image_urls = $8, active = $9, updated_at = now()
       WHERE sku = $1 RETURNING ${columns}`,
      [sku, p.name, p.description, p.category, p.priceMinor.toString(), p.currency, p.taxRateBasisPoints, p.imageUrls, p.active],
    );
    return rows[0];
  },
  /** Browsing: by SKU, after a cursor. */
  async browse(db: Db, filter: ProductFilter, page: { limit: number; afterSku?: string }) {
    const params: unknown[] = [];
    const condition = where(filter, params);
    const after = page.afterSku === undefined ? "" : ` AND sku > $${params.push(page.afterSku)}`;
    const { rows } = await db.query<ProductRow>(
      `SELECT ${columns} FROM products WHERE ${condition}${after} ORDER BY sku LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },
  /** Searching: most relevant first (full-text rank, then trigram similarity), by offset. */
  async search(pool: Pool, filter: ProductFilter & { query: string }, page: { limit: number; offset: number }) {
    const params: unknown[] = [];
    const condition = where(filter, params);
    return withTypoTolerance(pool, async (tx) => {
      const { rows } = await tx.query<ProductRow>(
        `SELECT ${columns} FROM products WHERE ${condition}
         ORDER BY ts_rank(search, websearch_to_tsquery('english', $1)) + word_similarity(lower($1), search_text) DESC, sku
         LIMIT $${params.push(page.limit)} OFFSET $${params.push(page.offset)}`,
        params,
      );
      return rows;
    });
  },
  async count(pool: Pool, filter: ProductFilter) {
    const params: unknown[] = [];
    const condition = where(filter, params);
    return withTypoTolerance(pool, async (tx) => {
      const { rows } = await tx.query<{ n: string }>(`SELECT count(*) AS n FROM products WHERE ${condition}`, params);
      return Number(rows[0]!.n);
    });
  },
};

/**
 * pg_trgm's default word-similarity threshold (0.6) misses one dropped letter in a short
 * word ("bouqet"); 0.5 still keeps unrelated words out. SET LOCAL lasts one transaction.
 */
function withTypoTolerance<T>(pool: Pool, work: (tx: PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (tx) => {
    await tx.query("SET LOCAL pg_trgm.word_similarity_threshold = 0.5");
    return work(tx);
  });
}
