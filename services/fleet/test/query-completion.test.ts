// The admin web's query bar completion (web/src/fleet/query/completion.ts) for the fields
// that take an argument: stock("SKU") offers the SKUs fleet knows, alerts(…) and alert(…)
// the severities and rule kinds, and what may follow once the argument is closed.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { QueryFieldSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { accept, suggest, type Language } from "../../../web/src/fleet/query/completion.js";

// As GetQueryLanguage describes them (service.ts), with two SKUs in fleet's stock projection.
const lang: Language = {
  aggregates: ["count", "avg", "min", "max"],
  fields: [
    create(QueryFieldSchema, { name: "paper", type: "number", operators: ["=", "<", ">"], description: "paper %" }),
    create(QueryFieldSchema, { name: "stock", type: "number", operators: ["=", "<", ">"], description: "units on hand", argument: "a SKU", argumentRequired: true, argumentValues: ["SNK-CHOC-DARK", "SNK-WATER-05"] }),
    create(QueryFieldSchema, { name: "alerts", type: "number", operators: ["=", "<", ">"], description: "open alerts", argument: "a severity or a rule kind", argumentValues: ["info", "warning", "critical", "low_paper"] }),
  ],
};
const at = (text: string) => suggest(lang, text, text.length).items.map((s) => s.text);

describe("query bar completion for stock and alerts", () => {
  it("offers stock( (it needs a SKU), alerts and alerts(, and alert(", () => {
    expect(at("st")).toEqual(["stock("]);
    expect(at("ale")).toEqual(["alerts", "alerts(", "alert("]);
  });

  it("inside stock(\"…\" the SKUs fleet knows, closing the call; then the operators", () => {
    expect(at('stock("')).toEqual(['SNK-CHOC-DARK")', 'SNK-WATER-05")']);
    expect(at('paper < 5 and stock("SNK-W')).toEqual(['SNK-WATER-05")']);
    expect(at("stock(SNK-C")).toEqual(["SNK-CHOC-DARK)"]);
    const text = 'stock("SNK-W';
    const s = suggest(lang, text, text.length);
    expect(accept(text, text.length, s.start, s.items[0]!).text).toBe('stock("SNK-WATER-05") ');
    expect(at('stock("SNK-WATER-05") ')).toEqual(["=", "<", ">"]);
  });

  it("inside alerts( and alert( the severities and rule kinds", () => {
    expect(at("alerts(c")).toEqual(["critical)"]);
    expect(at("alert(low")).toEqual(["low_paper)"]);
    expect(at("| sort alerts(w")).toEqual(["warning)"]);
  });
});
