// The fitted model as an ONNX graph (built with onnx-proto) and its serving through
// onnxruntime-node. The parameters are tables the graph gathers from by index, so the
// input is as narrow for 100,000 kiosks as for one:
//
//   pair [N] int32 ──Gather(pair_params [P,3]: level, slope of its kiosk, elasticity of its SKU)→ [N,3]
//   x [N,3] = (1, t, log price ratio) ──Mul, ReduceSum(axis 1)→ [N,1]
//   kiosk_weekday [N] int32 (kiosk·7 + weekday) ──Gather(weekday [K·7,1])→ [N,1]        ─Add→ η
//   hour_slot [N] int32 ((kiosk·7 + weekday)·24 + hour, or K·168: the whole day) ──Gather(shares [K·168+1,1])→ share
//   μ = Exp(η) · share = p50;  sd = Sqrt(μ · (1 + α·μ))  (negative-binomial standard deviation)
//   p10 = Relu(μ − z·sd)   p90 = μ + z·sd   (z = 1.2816: the 80 % interval)
//
// Any ONNX runtime (opset 13) computes the same forecasts from the bytes the registry keeps.
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { weekdayOf } from "./generator.js";
import { hoursPerWeek, indexOf, trendOf, z90, type FeatureIndex, type FittedModel, type Layout, type Quantiles } from "./model.js";

const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;

const bytesOf = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const floatTensor = (name: string, dims: number[], values: ArrayLike<number>) =>
  onnx.TensorProto.create({ name, dataType: DataType.FLOAT, dims, rawData: bytesOf(Float32Array.from(values)) });
const int64Tensor = (name: string, values: number[]) =>
  onnx.TensorProto.create({ name, dataType: DataType.INT64, dims: [values.length], rawData: bytesOf(BigInt64Array.from(values.map(BigInt))) });

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
  const pairParams = new Float32Array(P * 3);
  for (let p = 0; p < P; p++) {
    pairParams[p * 3] = w.level[p]!;
    pairParams[p * 3 + 1] = w.slope[ix.pairKiosk[p]!]!;
    pairParams[p * 3 + 2] = w.elasticity[ix.pairSku[p]!]!;
  }
  const shares = new Float32Array(w.shares.length + 1);
  shares.set(w.shares);
  shares[w.shares.length] = 1;
  const graph = onnx.GraphProto.create({
    name: "demand_glm",
    input: [
      valueInfo("pair", DataType.INT32, ["N"]),
      valueInfo("kiosk_weekday", DataType.INT32, ["N"]),
      valueInfo("hour_slot", DataType.INT32, ["N"]),
      valueInfo("x", DataType.FLOAT, ["N", 3]),
    ],
    output: [valueInfo("p10", DataType.FLOAT, ["N", 1]), valueInfo("p50", DataType.FLOAT, ["N", 1]), valueInfo("p90", DataType.FLOAT, ["N", 1])],
    initializer: [
      onnx.TensorProto.create({ name: "pair_params", dataType: DataType.FLOAT, dims: [P, 3], rawData: bytesOf(pairParams) }),
      floatTensor("weekday", [l.kiosks.length * 7, 1], w.weekday),
      onnx.TensorProto.create({ name: "shares", dataType: DataType.FLOAT, dims: [shares.length, 1], rawData: bytesOf(shares) }),
      int64Tensor("sum_axes", [1]),
      floatTensor("alpha", [1], [l.alpha]),
      floatTensor("one", [1], [1]),
      floatTensor("z", [1], [z90]),
    ],
    node: [
      node("Gather", ["pair_params", "pair"], ["coef"]),
      node("Mul", ["coef", "x"], ["terms"]),
      node("ReduceSum", ["terms", "sum_axes"], ["eta_pair"], [onnx.AttributeProto.create({ name: "keepdims", type: onnx.AttributeProto.AttributeType.INT, i: 1 })]),
      node("Gather", ["weekday", "kiosk_weekday"], ["eta_weekday"]),
      node("Add", ["eta_pair", "eta_weekday"], ["eta"]),
      node("Exp", ["eta"], ["mu_day"]),
      node("Gather", ["shares", "hour_slot"], ["share"]),
      node("Mul", ["mu_day", "share"], ["p50"]),
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

/** The graph's inputs for (pair, day, price[, UTC hour]) rows; `hours` omitted: whole days. */
export function feedsOf(layout: Layout, ix: FeatureIndex, pairIdx: ArrayLike<number>, days: ArrayLike<number>, prices: ArrayLike<number>, hours?: ArrayLike<number>): Feeds {
  const n = pairIdx.length;
  const pair = new Int32Array(n);
  const kioskWeekday = new Int32Array(n);
  const slot = new Int32Array(n);
  const x = new Float32Array(n * 3);
  const whole = layout.kiosks.length * hoursPerWeek;
  for (let i = 0; i < n; i++) {
    const p = pairIdx[i]!;
    const day = days[i]!;
    const kw = ix.pairKiosk[p]! * 7 + weekdayOf(day);
    pair[i] = p;
    kioskWeekday[i] = kw;
    slot[i] = hours ? kw * 24 + hours[i]! : whole;
    x[i * 3] = 1;
    x[i * 3 + 1] = trendOf(layout, day);
    x[i * 3 + 2] = Math.log(prices[i]! / layout.refPrice[p]!);
  }
  return {
    pair: new ort.Tensor("int32", pair, [n]),
    kiosk_weekday: new ort.Tensor("int32", kioskWeekday, [n]),
    hour_slot: new ort.Tensor("int32", slot, [n]),
    x: new ort.Tensor("float32", x, [n, 3]),
  };
}

export interface QuantileArrays {
  p10: Float32Array;
  p50: Float32Array;
  p90: Float32Array;
}

/** A loaded model: its layout and an ONNX Runtime session. */
export interface ServedModel {
  version: number;
  layout: Layout;
  /** Pair and kiosk indexes of the layout. */
  index: FeatureIndex;
  session: ort.InferenceSession;
  /** Forecasts for (pair, day, price[, UTC hour 0..23]); `hours` omitted: whole days. */
  predict(pairIdx: number[], days: number[], prices: number[], hours?: number[]): Promise<Quantiles[]>;
  /** The same as arrays (for bulk runs: no object per forecast). */
  predictArrays(pairIdx: ArrayLike<number>, days: ArrayLike<number>, prices: ArrayLike<number>, hours?: ArrayLike<number>): Promise<QuantileArrays>;
  release(): Promise<void>;
}

export async function loadModel(version: number, layout: Layout, bytes: Uint8Array): Promise<ServedModel> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const index = indexOf(layout);
  const predictArrays: ServedModel["predictArrays"] = async (pairIdx, days, prices, hours) => {
    const out = await session.run(feedsOf(layout, index, pairIdx, days, prices, hours));
    return { p10: out["p10"]!.data as Float32Array, p50: out["p50"]!.data as Float32Array, p90: out["p90"]!.data as Float32Array };
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
      const { p10, p50, p90 } = await predictArrays(pairIdx, days, prices, hours);
      const out = new Array<Quantiles>(n);
      for (let i = 0; i < n; i++) out[i] = { p10: p10[i]!, p50: p50[i]!, p90: p90[i]! };
      return out;
    },
    release: () => session.release(),
  };
}
