// Creating and editing a product (admins): name, SKU (fixed once created), category,
// description, price in the currency's major units, tax rate, images and whether kiosks sell it.
// catalog checks everything; its InvalidArgument is shown next to the field it names.
import { useId, useState } from "react";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { ProductService, type Product } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { describeError } from "../api/errors";
import { ErrorNotice } from "../ui/feedback";
import { FormField } from "../ui/form";

/** Digits after the point in `currency` (2 for EUR, 0 for JPY); 2 when unknown. */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** "12.50" in EUR → 1250n; undefined when it is not an amount with at most the currency's digits. */
export function toMinor(text: string, currency: string): bigint | undefined {
  const digits = currencyDigits(currency);
  const m = /^(\d{1,13})(?:[.,](\d*))?$/.exec(text.trim());
  if (!m || (m[2] ?? "").length > digits) return undefined;
  return BigInt(m[1]!) * 10n ** BigInt(digits) + BigInt((m[2] ?? "").padEnd(digits, "0") || "0");
}

export function fromMinor(minor: bigint, currency: string): string {
  const digits = currencyDigits(currency);
  if (digits === 0) return String(minor);
  const s = String(minor).padStart(digits + 1, "0");
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

export function ProductEditor({ product, onDone }: { product?: Product; onDone: (sku?: string) => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [form, setForm] = useState({
    sku: product?.sku ?? "",
    name: product?.name ?? "",
    category: product?.category ?? "",
    description: product?.description ?? "",
    currency: product?.currency ?? "EUR",
    price: product ? fromMinor(product.priceMinor, product.currency) : "",
    tax: product ? String(product.taxRateBasisPoints / 100) : "",
    images: product?.imageUrls.join("\n") ?? "",
    active: product?.active ?? true,
  });
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  const onSuccess = (res: { product?: Product }) => {
    void queryClient.invalidateQueries();
    onDone(res.product?.sku);
  };
  const create = useMutation(ProductService.method.createProduct, { onSuccess });
  const update = useMutation(ProductService.method.updateProduct, { onSuccess });
  const save = product ? update : create;
  // catalog names create's fields product.<name>, update's <name>.
  const said: Record<string, string> = {};
  for (const [k, v] of Object.entries(save.error ? describeError(save.error).fields : {})) said[k.replace(/^product\./, "").replace(/\[\d+\]$/, "")] = v;
  const priceMinor = toMinor(form.price, form.currency);
  const taxBp = form.tax.trim() === "" ? 0 : Math.round(Number(form.tax.replace(",", ".")) * 100);
  const mine = {
    price: form.price !== "" && priceMinor === undefined ? `An amount in ${form.currency || "the currency"} with at most ${currencyDigits(form.currency)} decimals, e.g. 12.50` : undefined,
    tax: Number.isNaN(taxBp) ? "A percentage, e.g. 21" : undefined,
  };
  const fields = {
    sku: form.sku.trim(),
    name: form.name.trim(),
    category: form.category.trim(),
    description: form.description.trim(),
    priceMinor: priceMinor ?? 0n,
    currency: form.currency.trim().toUpperCase(),
    taxRateBasisPoints: taxBp,
    imageUrls: form.images.split("\n").map((u) => u.trim()).filter(Boolean),
    active: form.active,
  };
  return (
    <form
      className="form form-columns card-inset"
      aria-label={product ? `Edit ${product.name}` : "New product"}
      data-testid="product-editor"
      onSubmit={(e) => {
        e.preventDefault();
        if (mine.price || mine.tax || priceMinor === undefined) return;
        if (product) update.mutate({ ...fields, sku: product.sku, updateImageUrls: true });
        else create.mutate({ product: fields });
      }}
    >
      <FormField id={`${id}-name`} label="Name" error={said["name"]}>
        <input id={`${id}-name`} value={form.name} onChange={set("name")} required maxLength={200} />
      </FormField>
      <FormField id={`${id}-sku`} label="SKU" hint={product ? "Fixed for the product's life" : "Letters, digits, '.', '_' and '-'"} error={said["sku"]}>
        <input id={`${id}-sku`} value={form.sku} onChange={set("sku")} required disabled={Boolean(product)} maxLength={64} className="mono" />
      </FormField>
      <FormField id={`${id}-category`} label="Category" hint="e.g. snacks, drinks" error={said["category"]}>
        <input id={`${id}-category`} value={form.category} onChange={set("category")} required maxLength={100} />
      </FormField>
      <FormField id={`${id}-currency`} label="Currency" hint="ISO 4217, e.g. EUR" error={said["currency"]}>
        <input id={`${id}-currency`} value={form.currency} onChange={set("currency")} required maxLength={3} />
      </FormField>
      <FormField id={`${id}-price`} label="Price (tax included)" error={mine.price ?? said["price_minor"]}>
        <input id={`${id}-price`} value={form.price} onChange={set("price")} required inputMode="decimal" placeholder="0.00" />
      </FormField>
      <FormField id={`${id}-tax`} label="Tax rate (%)" hint="Included in the price" error={mine.tax ?? said["tax_rate_basis_points"]}>
        <input id={`${id}-tax`} value={form.tax} onChange={set("tax")} inputMode="decimal" placeholder="21" />
      </FormField>
      <FormField id={`${id}-description`} label="Description" error={said["description"]}>
        <textarea id={`${id}-description`} value={form.description} onChange={set("description")} rows={3} maxLength={2000} />
      </FormField>
      <FormField id={`${id}-images`} label="Image URLs" hint="One http(s) URL a line, at most 10" error={said["image_urls"]}>
        <textarea id={`${id}-images`} value={form.images} onChange={set("images")} rows={3} />
      </FormField>
      <label className="checkbox">
        <input type="checkbox" checked={form.active} onChange={(e) => setForm({ ...form, active: e.target.checked })} /> Sold at kiosks (active)
      </label>
      {save.error && <ErrorNotice error={save.error} compact />}
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={save.isPending}>
          {save.isPending ? "Saving…" : product ? "Save product" : "Create product"}
        </button>
        <button type="button" className="button button-quiet" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}
