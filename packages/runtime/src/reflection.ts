// gRPC server reflection (grpc.reflection.v1 and v1alpha), answered from the
// descriptors protobuf-es embeds in the generated code, so `buf curl --reflect` and
// grpcurl can list and call every RPC a service serves.
import { createRegistry, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { Health } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { ServerReflection as ServerReflectionV1 } from "@adminkiosk/proto/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ServerReflectionV1alpha } from "@adminkiosk/proto/grpc/reflection/v1alpha/reflection_pb";

const notFound = 5; // grpc status NOT_FOUND, as the reflection protocol reports it

// The two protocol versions carry the same fields; requests are copied into this
// version-neutral shape (no $typeName) so one answer serves both.
type Request = {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
};

interface AnyVersionRequest {
  host: string;
  messageRequest: Request["messageRequest"] | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } };
}

function neutral(req: AnyVersionRequest): Request {
  const m = req.messageRequest;
  if (m.case === "fileContainingExtension")
    return { host: req.host, messageRequest: { case: m.case, value: { containingType: m.value.containingType, extensionNumber: m.value.extensionNumber } } };
  return { host: req.host, messageRequest: m };
}

export function registerReflection(router: ConnectRouter, services: DescService[]) {
  const [v1, v1alpha] = reflectionImplementations(services);
  router.service(ServerReflectionV1, v1);
  router.service(ServerReflectionV1alpha, v1alpha);
}

/** Both reflection versions' handlers, for Connect (above) and the grpc-js server (grpc.ts). */
export function reflectionImplementations(services: DescService[]): [ServiceImpl<typeof ServerReflectionV1>, ServiceImpl<typeof ServerReflectionV1alpha>] {
  const all = [...services, Health, ServerReflectionV1, ServerReflectionV1alpha];
  const files = new Map<string, DescFile>();
  const collect = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(collect);
  };
  all.forEach((s) => collect(s.file));
  const registry = createRegistry(...files.values());
  const serviceNames = all.map((s) => s.typeName);

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const direct = registry.get(symbol) ?? registry.getExtension(symbol);
    if (direct) return direct.file;
    // A method: "pkg.Service.Method".
    const dot = symbol.lastIndexOf(".");
    const service = registry.getService(symbol.slice(0, dot));
    return service?.methods.some((m) => m.name === symbol.slice(dot + 1)) ? service.file : undefined;
  };

  // Answers one request; `sent` holds the files already sent on this stream.
  const answer = (req: Request, sent: Set<string>) => {
    const base = { validHost: req.host, originalRequest: req };
    const error = (message: string) => ({ ...base, messageResponse: { case: "errorResponse" as const, value: { errorCode: notFound, errorMessage: message } } });
    const withDependencies = (file: DescFile | undefined, what: string) => {
      if (!file) return error(`${what} not found`);
      const out: Uint8Array[] = [];
      const add = (f: DescFile, root: boolean) => {
        if (!root && sent.has(f.name)) return;
        sent.add(f.name);
        out.push(toBinary(FileDescriptorProtoSchema, f.proto));
        f.dependencies.forEach((d) => add(d, false));
      };
      add(file, true);
      return { ...base, messageResponse: { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: out } } };
    };
    const m = req.messageRequest;
    switch (m.case) {
      case "listServices":
        return { ...base, messageResponse: { case: "listServicesResponse" as const, value: { service: serviceNames.map((name) => ({ name })) } } };
      case "fileByFilename":
        return withDependencies(files.get(m.value), `file ${m.value}`);
      case "fileContainingSymbol":
        return withDependencies(fileOfSymbol(m.value), `symbol ${m.value}`);
      case "fileContainingExtension": {
        const extendee = registry.getMessage(m.value.containingType);
        const ext = extendee && registry.getExtensionFor(extendee, m.value.extensionNumber);
        return withDependencies(ext?.file, `extension ${m.value.extensionNumber} of ${m.value.containingType}`);
      }
      case "allExtensionNumbersOfType": {
        if (!registry.getMessage(m.value)) return error(`type ${m.value} not found`);
        const numbers = [...registry].flatMap((d) => (d.kind === "extension" && d.extendee.typeName === m.value ? [d.number] : []));
        return { ...base, messageResponse: { case: "allExtensionNumbersResponse" as const, value: { baseTypeName: m.value, extensionNumber: numbers } } };
      }
      default:
        return error("unsupported reflection request");
    }
  };

  return [
    {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const req of requests) yield answer(neutral(req), sent);
      },
    },
    {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const req of requests) yield answer(neutral(req), sent);
      },
    },
  ];
}
