// The S3-compatible artifact store signs its requests with AWS Signature Version 4 written
// here (services/fleet/src/releases/s3.ts). No bucket is reachable from the tests, so the
// signing is checked against the example requests AWS publishes for S3 with their
// signatures ("Signature Calculations for the Authorization Header: Transferring Payload
// in a Single Chunk", AmazonS3/latest/API/sig-v4-header-based-auth.html).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signV4 } from "../src/releases/s3.js";

const credentials = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const sign = (method: string, url: string, headers: Record<string, string>, payloadHash: string) =>
  signV4({ method, url: new URL(url), headers, payloadHash, region: "us-east-1", service: "s3", amzDate: "20130524T000000Z", credentials });

describe("AWS Signature Version 4 (AWS's published S3 examples)", () => {
  it("GET Object with a range", () => {
    const s = sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", { range: "bytes=0-9" }, emptyHash);
    expect(s.canonicalRequest).toBe(
      ["GET", "/test.txt", "", "host:examplebucket.s3.amazonaws.com", "range:bytes=0-9", `x-amz-content-sha256:${emptyHash}`, "x-amz-date:20130524T000000Z", "", "host;range;x-amz-content-sha256;x-amz-date", emptyHash].join("\n"),
    );
    expect(createHash("sha256").update(s.canonicalRequest).digest("hex")).toBe("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    expect(s.signature).toBe("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    expect(s.headers["authorization"]).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });

  it("PUT Object with a signed payload", () => {
    const body = "Welcome to Amazon S3.";
    const payloadHash = createHash("sha256").update(body).digest("hex");
    expect(payloadHash).toBe("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const s = sign("PUT", "https://examplebucket.s3.amazonaws.com/test%24file.text", { date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY" }, payloadHash);
    expect(s.signature).toBe("98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  });

  it("GET with query parameters (ListObjects, and a parameter without a value)", () => {
    expect(sign("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {}, emptyHash).signature).toBe("34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    expect(sign("GET", "https://examplebucket.s3.amazonaws.com/?lifecycle", {}, emptyHash).signature).toBe("fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  });
});
