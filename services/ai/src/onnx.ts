// The fitted model as an ONNX graph (built with onnx-proto) and its serving through
// onnxruntime-node. The graph takes the request as it is — pair index, UTC day, unit price and
// UTC hour (-1: the whole day) — and computes the features itself, so any process that has the
// bytes and the layout's pair list forecasts the same numbers. The parameters are tables the
// graph gathers from by index, so the input is as narrow for 100,000 kiosks as for one:
//
//   kiosk = Gather(pair_kiosk, pair);  kw = kiosk·7 + (day + 4) mod 7     (kiosk × weekday)
//   η = Gather(level, pair) + Gather(weekday, kw)
//     + Gather(slope, pair) · (day − epoch) / 28 + Gather(elasticity, pair) · (Log(price) − Gather(log_ref, pair))
//   share = Gather(shares, hour < 0 ? K·168 (= 1) : kw·24 + hour)
//   p50 = μ = Exp(η) · share;  sd = Sqrt(μ · (1 + α·μ))  (negative-binomial standard deviation)
//   p10 = Relu(μ − z·sd)   p90 = μ + z·sd   (z = 1.2816: the 80 % interval)
//
// Any ONNX runtime (opset 13) computes the same forecasts from the bytes the registry keeps.
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { hoursPerWeek, indexOf, z90, type FeatureIndex, type FittedModel, type Layout, type Quantiles } from "./model.js";

const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const floatTensor = (name: string, dims: number[], values: ArrayLike<number>) =>
  onnx.TensorProto.create({ name, dataType: DataType.FLOAT, dims, rawData: bytesOf(Float32Array.from(values)) });

const valueInfo = (name: string, elemType: number, dims: (number | string)[]) =>
  onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => (typeof d === "number" ? onnx.TensorShapeProto.Dimension.create({ dimValue: d }) : onnx.TensorShapeProto.Dimension.create({ dimParam: d }))),
        }),
      }),
    }),
  });

const node = (opType: string, input: string[], output: string[], attribute: InstanceType<typeof onnx.AttributeProto>[] = []) =>
  onnx.NodeProto.create({ opType, input, output, name: output[0], attribute });

/** The ONNX model bytes of a fitted model. */
export function toOnnx(m: FittedModel): Uint8Array {
  const { layout: l, params: w } = m;
  const ix = indexOf(l);
  const P = l.pairs.length;
  const K = l.kiosks.length;
  const perPair = (f: (p: number) => number) => {
    const out = new Float32Array(P);
    for (let p = 0; p < P; p++) out[p] = f(p);
    return out;
  };
  const shares = new Float32Array(w.shares.length + 1);
  shares.set(w.shares);
  shares[w.shares.length] = 1;
  const table = (name: string, values: Float32Array) => onnx.TensorProto.create({ name, dataType: DataType.FLOAT, dims: [values.length], rawData: bytesOf(values) });
  const int32Tensor = (name: string, values: Int32Array) => onnx.TensorProto.create({ name, dataType: DataType.INT32, dims: [values.length], rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
  const int32Scalar = (name: string, v: number) => onnx.TensorProto.create({ name, dataType: DataType.INT32, dims: [1], rawData: new Uint8Array(Int32Array.of(v).buffer) });
  const graph = onnx.GraphProto.create({
    name: "demand_glm",
    input: [
      valueInfo("pair", DataType.INT32, ["N"]),
      valueInfo("day", DataType.INT32, ["N"]),
      valueInfo("price", DataType.FLOAT, ["N"]),
      valueInfo("hour", DataType.INT32, ["N"]),
    ],
    output: [valueInfo("p10", DataType.FLOAT, ["N"]), valueInfo("p50", DataType.FLOAT, ["N"]), valueInfo("p90", DataType.FLOAT, ["N"])],
    initializer: [
      int32Tensor("pair_kiosk", ix.pairKiosk),
      table("level", perPair((p) => w.level[p]!)),
      table("slope", perPair((p) => w.slope[ix.pairKiosk[p]!]!)),
      table("elasticity", perPair((p) => w.elasticity[ix.pairSku[p]!]!)),
      table("log_ref", perPair((p) => Math.log(l.refPrice[p]!))),
      table("weekday", Float32Array.from(w.weekday)),
      table("shares", shares),
      int32Scalar("four", 4),
      int32Scalar("seven", 7),
      int32Scalar("twenty_four", 24),
      int32Scalar("zero_i", 0),
      int32Scalar("whole_day", K * hoursPerWeek),
      floatTensor("epoch", [1], [l.epochDay]),
      floatTensor("per_28", [1], [1 / 28]),
      floatTensor("alpha", [1], [l.alpha]),
      floatTensor("one", [1], [1]),
      floatTensor("z", [1], [z90]),
    ],
    node: [
      // Kiosk × weekday (0 = Sunday: day 0 was a Thursday).
      node("Gather", ["pair_kiosk", "pair"], ["kiosk"]),
      node("Add", ["day", "four"], ["day4"]),
      node("Mod", ["day4", "seven"], ["dow"]),
      node("Mul", ["kiosk", "seven"], ["kiosk7"]),
      node("Add", ["kiosk7", "dow"], ["kw"]),
      // Trend time and log price ratio.
      node("Cast", ["day"], ["day_f"], [onnx.AttributeProto.create({ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: DataType.FLOAT })]),
      node("Sub", ["day_f", "epoch"], ["days_from_epoch"]),
      node("Mul", ["days_from_epoch", "per_28"], ["t"]),
      node("Log", ["price"], ["log_price"]),
      node("Gather", ["log_ref", "pair"], ["pair_log_ref"]),
      node("Sub", ["log_price", "pair_log_ref"], ["lpr"]),
      // η.
      node("Gather", ["level", "pair"], ["eta_level"]),
      node("Gather", ["weekday", "kw"], ["eta_weekday"]),
      node("Gather", ["slope", "pair"], ["pair_slope"]),
      node("Mul", ["pair_slope", "t"], ["eta_trend"]),
      node("Gather", ["elasticity", "pair"], ["pair_elasticity"]),
      node("Mul", ["pair_elasticity", "lpr"], ["eta_price"]),
      node("Add", ["eta_level", "eta_weekday"], ["eta_1"]),
      node("Add", ["eta_1", "eta_trend"], ["eta_2"]),
      node("Add", ["eta_2", "eta_price"], ["eta"]),
      node("Exp", ["eta"], ["mu_day"]),
      // The hour's share of the day (or 1: the whole day).
      node("Mul", ["kw", "twenty_four"], ["kw24"]),
      node("Add", ["kw24", "hour"], ["hour_slot"]),
      node("Less", ["hour", "zero_i"], ["whole"]),
      node("Where", ["whole", "whole_day", "hour_slot"], ["slot"]),
      node("Gather", ["shares", "slot"], ["share"]),
      node("Mul", ["mu_day", "share"], ["p50"]),
      // Negative-binomial quantiles (normal approximation).
      node("Mul", ["p50", "alpha"], ["alpha_mu"]),
      node("Add", ["alpha_mu", "one"], ["disp"]),
      node("Mul", ["p50", "disp"], ["variance"]),
      node("Sqrt", ["variance"], ["sd"]),
      node("Mul", ["sd", "z"], ["half_width"]),
      node("Sub", ["p50", "half_width"], ["lower"]),
      node("Relu", ["lower"], ["p10"]),
      node("Add", ["p50", "half_width"], ["p90"]),
    ],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "adminkiosk-ai",
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: 13 })],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

export type Feeds = Record<string, ort.Tensor>;

interface InputBuffers {
  pair: Int32Array;
  day: Int32Array;
  price: Float32Array;
  hour: Int32Array;
  feeds: Feeds;
}

function inputBuffers(n: number): InputBuffers {
  const pair = new Int32Array(n);
  const day = new Int32Array(n);
  const price = new Float32Array(n);
  const hour = new Int32Array(n);
  return {
    pair,
    day,
    price,
    hour,
    feeds: {
      pair: new ort.Tensor("int32", pair, [n]),
      day: new ort.Tensor("int32", day, [n]),
      price: new ort.Tensor("float32", price, [n]),
      hour: new ort.Tensor("int32", hour, [n]),
    },
  };
}

function fill(b: InputBuffers, pairIdx: ArrayLike<number>, days: ArrayLike<number>, prices: ArrayLike<number>, hours?: ArrayLike<number>): Feeds {
  const n = b.pair.length;
  for (let i = 0; i < n; i++) {
    b.pair[i] = pairIdx[i]!;
    b.day[i] = days[i]!;
    b.price[i] = prices[i]!;
  }
  if (hours) for (let i = 0; i < n; i++) b.hour[i] = hours[i]!;
  else b.hour.fill(-1);
  return b.feeds;
}

/** The graph's inputs for (pair, day, price[, UTC hour]) rows; `hours` omitted: whole days. */
export function feedsOf(pairIdx: ArrayLike<number>, days: ArrayLike<number>, prices: ArrayLike<number>, hours?: ArrayLike<number>): Feeds {
  return fill(inputBuffers(pairIdx.length), pairIdx, days, prices, hours);
}

/**
 * Input buffers (and their tensors) of request-sized batches, kept per size and lent to one
 * run at a time: a request then allocates nothing for its inputs (fresh typed arrays and
 * tensors per call cost more than the copying).
 */
class InputPool {
  private readonly free = new Map<number, InputBuffers[]>();
  static readonly largest = 4096;
  take(n: number): InputBuffers {
    return this.free.get(n)?.pop() ?? inputBuffers(n);
  }
  give(b: InputBuffers) {
    const n = b.pair.length;
    let list = this.free.get(n);
    if (!list) {
      if (this.free.size >= 64) return;
      this.free.set(n, (list = []));
    }
    if (list.length < 8) list.push(b);
  }
}

export interface QuantileArrays {
  p10: Float32Array;
  p50: Float32Array;
  p90: Float32Array;
}

/**
 * One forecast of a batch, read from the batch's arrays (no copy: building a hundred objects
 * with three numbers each costs more than the graph run itself). Read p10/p50/p90; a spread
 * (`{...q}`) copies nothing, `JSON.stringify` works.
 */
class QuantileView implements Quantiles {
  constructor(
    private readonly batch: QuantileArrays,
    private readonly i: number,
  ) {}
  get p10() {
    return this.batch.p10[this.i]!;
  }
  get p50() {
    return this.batch.p50[this.i]!;
  }
  get p90() {
    return this.batch.p90[this.i]!;
  }
  toJSON(): Quantiles {
    return { p10: this.p10, p50: this.p50, p90: this.p90 };
  }
}

/** A loaded model: its layout and an ONNX Runtime session. */
export interface ServedModel {
  version: number;
  layout: Layout;
  /** Pair and kiosk indexes of the layout. */
  index: FeatureIndex;
  session: ort.InferenceSession;
  /** Forecasts for (pair, day, price[, UTC hour 0..23]); `hours` omitted: whole days. Each is a read-only view (see QuantileView). */
  predict(pairIdx: number[], days: number[], prices: number[], hours?: number[]): Promise<Quantiles[]>;
  /** The same as arrays (for bulk runs: no object per forecast). */
  predictArrays(pairIdx: ArrayLike<number>, days: ArrayLike<number>, prices: ArrayLike<number>, hours?: ArrayLike<number>): Promise<QuantileArrays>;
  release(): Promise<void>;
}

export async function loadModel(version: number, layout: Layout, bytes: Uint8Array): Promise<ServedModel> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const index = indexOf(layout);
  const pool = new InputPool();
  const predictArrays: ServedModel["predictArrays"] = async (pairIdx, days, prices, hours) => {
    const n = pairIdx.length;
    const buffers = n <= InputPool.largest ? pool.take(n) : inputBuffers(n);
    try {
      const out = await session.run(fill(buffers, pairIdx, days, prices, hours));
      return { p10: out["p10"]!.data as Float32Array, p50: out["p50"]!.data as Float32Array, p90: out["p90"]!.data as Float32Array };
    } finally {
      if (n <= InputPool.largest) pool.give(buffers);
    }
  };
  return {
    version,
    layout,
    index,
    session,
    predictArrays,
    async predict(pairIdx, days, prices, hours) {
      const n = pairIdx.length;
      if (n === 0) return [];
      const batch = await predictArrays(pairIdx, days, prices, hours);
      const out = new Array<Quantiles>(n);
      for (let i = 0; i < n; i++) out[i] = new QuantileView(batch, i);
      return out;
    },
    release: () => session.release(),
  };
}
