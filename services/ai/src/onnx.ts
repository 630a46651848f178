// The fitted GLM as an ONNX graph (built with onnx-proto) and its serving through
// onnxruntime-node. The graph:
//
//   features [N, F] ─MatMul(W [F,1])─Add(b [1])─Exp→ μ [N,1]
//   sd = Sqrt(μ · (1 + α·μ))                       (negative-binomial standard deviation)
//   p10 = Relu(μ − z·sd)   p50 = μ   p90 = μ + z·sd  (z = 1.2816: the 80 % interval)
//
// Any ONNX runtime (opset 13) computes the same forecasts from the bytes the registry keeps.
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { featureCount, indexOf, writeFeatures, z90, type FittedModel, type Layout, type Quantiles } from "./model.js";

const { onnx } = onnxProto;

const floatTensor = (name: string, dims: number[], values: ArrayLike<number>) =>
  onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, floatData: Array.from(values) });

const valueInfo = (name: string, dims: (number | string)[]) =>
  onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => (typeof d === "number" ? onnx.TensorShapeProto.Dimension.create({ dimValue: d }) : onnx.TensorShapeProto.Dimension.create({ dimParam: d }))),
        }),
      }),
    }),
  });

const node = (opType: string, input: string[], output: string[]) => onnx.NodeProto.create({ opType, input, output, name: output[0] });

/** The ONNX model bytes of a fitted GLM. */
export function toOnnx(m: FittedModel): Uint8Array {
  const f = featureCount(m.layout);
  const graph = onnx.GraphProto.create({
    name: "demand_glm",
    input: [valueInfo("features", ["N", f])],
    output: [valueInfo("p10", ["N", 1]), valueInfo("p50", ["N", 1]), valueInfo("p90", ["N", 1])],
    initializer: [
      floatTensor("W", [f, 1], m.weights),
      floatTensor("b", [1], [0]),
      floatTensor("alpha", [1], [m.layout.alpha]),
      floatTensor("one", [1], [1]),
      floatTensor("z", [1], [z90]),
    ],
    node: [
      node("MatMul", ["features", "W"], ["eta0"]),
      node("Add", ["eta0", "b"], ["eta"]),
      node("Exp", ["eta"], ["p50"]),
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

/** A loaded model: its layout and an ONNX Runtime session. */
export interface ServedModel {
  version: number;
  layout: Layout;
  session: ort.InferenceSession;
  predict(pairIdx: number[], days: number[], prices: number[]): Promise<Quantiles[]>;
  release(): Promise<void>;
}

export async function loadModel(version: number, layout: Layout, bytes: Uint8Array): Promise<ServedModel> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const f = featureCount(layout);
  const ix = indexOf(layout);
  return {
    version,
    layout,
    session,
    async predict(pairIdx, days, prices) {
      const n = pairIdx.length;
      if (n === 0) return [];
      const x = new Float32Array(n * f);
      for (let i = 0; i < n; i++) writeFeatures(layout, ix, pairIdx[i]!, days[i]!, prices[i]!, x, i * f);
      const out = await session.run({ features: new ort.Tensor("float32", x, [n, f]) });
      const p10 = out["p10"]!.data as Float32Array;
      const p50 = out["p50"]!.data as Float32Array;
      const p90 = out["p90"]!.data as Float32Array;
      return Array.from({ length: n }, (_, i) => ({ p10: p10[i]!, p50: p50[i]!, p90: p90[i]! }));
    },
    release: () => session.release(),
  };
}
