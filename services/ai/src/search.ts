// Semantic product search: TF-IDF vectors over catalog's active products (name, category,
// description), cosine-ranked against the query's vector. Text is folded (lower case, accents
// removed: "Frías" = "frias"), split into words, stop words dropped, and each word stands for
// its Spanish and its English Snowball stem (no language detection needed: "bebidas" and
// "bebida" meet at "beb", "drinks" and "drink" at "drink"). A query word that is no indexed
// term matches the terms it begins (typing "sandw" finds "sándwich"), at a lower weight.
//
// The index lives in memory, rebuilt from catalog's ProductService.ListProducts (read as ai,
// its service token) every AI_CATALOG_REFRESH_MS: catalog publishes no product events.
import type { Client } from "@connectrpc/connect";
import snowball from "snowball-stemmers";
import type { Product, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { backoffDelay, callOptions, type Logger } from "@adminkiosk/runtime";

const spanish = snowball.newStemmer("spanish");
const english = snowball.newStemmer("english");

const stopWords = new Set(
  (
    "a an and are as at be by for from in is it of on or the to with " +
    "al de del el en la las lo los o para por que se su un una unas unos y con"
  ).split(" "),
);

export const fold = (text: string) => text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

/** The words of a text, folded, without stop words. */
export function words(text: string): string[] {
  return fold(text)
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== "" && !stopWords.has(w));
}

const stems = new Map<string, string[]>();

/** A word's terms: its Spanish and English stems (one when they agree). Remembered: a catalog repeats its words. */
export function termsOf(word: string): string[] {
  let terms = stems.get(word);
  if (!terms) {
    const es = spanish.stem(word);
    const en = english.stem(word);
    terms = es === en ? [es] : [es, en];
    if (stems.size >= 200_000) stems.clear();
    stems.set(word, terms);
  }
  return terms;
}

const fieldWeights = { name: 3, category: 2, description: 1 } as const;
/** A query word matching indexed terms only as their beginning counts this much. */
const prefixWeight = 0.7;

export interface IndexedProduct {
  sku: string;
  name: string;
  description: string;
  category: string;
  priceMinor: bigint;
  currency: string;
}

export interface Match {
  product: IndexedProduct;
  score: number;
}

export class ProductIndex {
  readonly products = new Map<string, IndexedProduct>();
  private readonly idf = new Map<string, number>();
  /** Per product: term → weight, L2-normalised. */
  private readonly vectors: { product: IndexedProduct; weights: Map<string, number> }[] = [];

  constructor(
    products: IndexedProduct[],
    readonly loadedAt: Date = new Date(),
  ) {
    const tfs = products.map((p) => {
      const tf = new Map<string, number>();
      for (const field of ["name", "category", "description"] as const)
        for (const w of words(p[field])) for (const t of termsOf(w)) tf.set(t, (tf.get(t) ?? 0) + fieldWeights[field]);
      return tf;
    });
    const df = new Map<string, number>();
    for (const tf of tfs) for (const t of tf.keys()) df.set(t, (df.get(t) ?? 0) + 1);
    const n = products.length;
    for (const [t, d] of df) this.idf.set(t, Math.log((n + 1) / (d + 1)) + 1);
    products.forEach((p, i) => {
      this.products.set(p.sku, p);
      const weights = new Map<string, number>();
      for (const [t, f] of tfs[i]!) weights.set(t, (1 + Math.log(f)) * this.idf.get(t)!);
      this.vectors.push({ product: p, weights: normalise(weights) });
    });
  }

  get size() {
    return this.products.size;
  }

  /** The query's vector: its known terms, and for an unknown word the terms it begins. */
  queryVector(query: string): Map<string, number> {
    const tf = new Map<string, number>();
    for (const w of words(query)) {
      const terms = termsOf(w).filter((t) => this.idf.has(t));
      if (terms.length > 0) {
        for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
        continue;
      }
      if (w.length < 3) continue;
      for (const t of this.idf.keys()) if (t.startsWith(w)) tf.set(t, (tf.get(t) ?? 0) + prefixWeight);
    }
    const weights = new Map<string, number>();
    for (const [t, f] of tf) weights.set(t, (f >= 1 ? 1 + Math.log(f) : f) * this.idf.get(t)!);
    return normalise(weights);
  }

  search(query: string, limit: number, allowed?: (sku: string) => boolean): Match[] {
    const q = this.queryVector(query);
    if (q.size === 0) return [];
    const matches: Match[] = [];
    for (const { product, weights } of this.vectors) {
      if (allowed && !allowed(product.sku)) continue;
      let score = 0;
      for (const [t, w] of q) score += w * (weights.get(t) ?? 0);
      if (score > 1e-9) matches.push({ product, score: Math.min(1, score) });
    }
    matches.sort((a, b) => b.score - a.score || a.product.name.localeCompare(b.product.name) || a.product.sku.localeCompare(b.product.sku));
    return matches.slice(0, limit);
  }
}

function normalise(v: Map<string, number>): Map<string, number> {
  let sum = 0;
  for (const w of v.values()) sum += w * w;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (const [t, w] of v) v.set(t, w / norm);
  return v;
}

const toIndexed = (p: Product): IndexedProduct => ({
  sku: p.sku,
  name: p.name,
  description: p.description,
  category: p.category,
  priceMinor: p.priceMinor,
  currency: p.currency,
});

export interface ProductIndexKeeper {
  /** The index, undefined until catalog was first read. */
  current(): ProductIndex | undefined;
  /** Reads catalog now and swaps the index in. */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** Keeps a ProductIndex of catalog's active products, re-read every `intervalMs` (sooner after a failure, with backoff). */
export function keepProductIndex(o: { catalog: Client<typeof ProductService>; log: Logger; intervalMs: number }): ProductIndexKeeper {
  let index: ProductIndex | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let failures = 0;

  async function read(): Promise<void> {
    const products: IndexedProduct[] = [];
    let pageToken = "";
    do {
      // As ai, catalog lists active products only.
      const page = await o.catalog.listProducts({ pageSize: 500, pageToken }, callOptions(undefined, { timeoutMs: 10_000 }));
      products.push(...page.products.filter((p) => p.active).map(toIndexed));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    const before = index?.size;
    index = new ProductIndex(products);
    if (before !== index.size) o.log.info({ products: index.size }, "product index rebuilt from catalog");
  }

  const refresh = () => (running = running.then(read, read));

  function schedule(delay: number) {
    if (stopped) return;
    timer = setTimeout(() => {
      refresh().then(
        () => {
          failures = 0;
          schedule(o.intervalMs);
        },
        (err: unknown) => {
          if (failures++ === 0) o.log.warn({ err }, "reading catalog's products failed; product search keeps the last index and retries");
          schedule(Math.min(o.intervalMs, backoffDelay(failures, { initialMs: 500, maxMs: 30_000 })));
        },
      );
    }, delay);
    timer.unref();
  }
  schedule(0);

  return {
    current: () => index,
    refresh,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => {});
    },
  };
}
