import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ProtoGrpcType } from "./generated/stave";
import type { StaveClient } from "./generated/stave/v1/Stave";

export type { StaveClient };

/**
 * How proto-loader maps the messages; src/generated/ is generated with the same choices
 * (scripts/gen-types.js): field names as in the proto, 64-bit integers as decimal strings
 * (this client turns offsets into `bigint`), enums as their names, defaults filled in, and
 * a oneof's case named by a virtual field.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The proto copied into the package (`npm run proto:copy`, part of `npm run build`). */
export const PROTO_PATH = path.join(__dirname, "..", "proto", "stave", "v1", "stave.proto");

let loaded: ProtoGrpcType | undefined;

/** The `stave.v1` package, loaded once. */
export function staveProto(): ProtoGrpcType {
  if (!loaded) {
    const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return loaded;
}
