import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

// Istio's certificate service (istio/api security/v1alpha1/ca.proto, package istio.v1.auth), so
// that Istio-aware agents can ask Tern's control plane for workload certificates. The proto is
// embedded as text: it is small and stable, and this keeps the wire format next to its types.
// See docs/security.md.

export const ISTIO_CA_PROTO = `
syntax = "proto3";
package istio.v1.auth;
import "google/protobuf/struct.proto";

message IstioCertificateRequest {
  // PEM-encoded certificate request.
  string csr = 1;
  // Requested certificate validity, in seconds.
  int64 validity_duration = 3;
  // Optional: Istio uses it for impersonation (ImpersonatedIdentity); Tern refuses that.
  google.protobuf.Struct metadata = 4;
}

message IstioCertificateResponse {
  // PEM-encoded certificate chain: leaf first, root last.
  repeated string cert_chain = 1;
}

service IstioCertificateService {
  rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse) {}
}
`;

export const ISTIO_CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** Call metadata a Tern sidecar sends: its xDS node id (recorded with the certificate, for visibility only). */
export const PROXY_ID_METADATA = 'tern-proxy-id';
/** Response metadata Tern's CA sends: every root workloads must trust, PEM (binary header: PEM has newlines). */
export const TRUST_BUNDLE_METADATA = 'tern-trust-bundle-bin';

/** google.protobuf.Struct in protobufjs object form (camelCase Value fields, as protobufjs bundles them). */
export interface CaStructMessage {
  fields?: Record<string, { stringValue?: string; numberValue?: number; boolValue?: boolean; structValue?: CaStructMessage; listValue?: { values?: unknown[] }; nullValue?: number }>;
}

export interface IstioCertificateRequest {
  csr: string;
  /** Seconds; 0 = the server's default. */
  validity_duration: number;
  metadata?: CaStructMessage;
}

export interface IstioCertificateResponse {
  cert_chain: string[];
}

export type CreateCertificateHandler = grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse>;

let types: { req: protobuf.Type; res: protobuf.Type } | undefined;

function caTypes() {
  if (types) return types;
  const root = new protobuf.Root();
  // The well-known Struct ships with protobufjs (its `common` descriptors).
  const struct = protobuf.common.get('google/protobuf/struct.proto');
  if (!struct) throw new Error('protobufjs lacks google/protobuf/struct.proto');
  root.addJSON(struct.nested!);
  protobuf.parse(ISTIO_CA_PROTO, root, { keepCase: true });
  root.resolveAll();
  types = { req: root.lookupType('istio.v1.auth.IstioCertificateRequest'), res: root.lookupType('istio.v1.auth.IstioCertificateResponse') };
  return types;
}

const toObjectOptions = { longs: Number, defaults: true, arrays: true } as const;

function codec<T extends object>(type: () => protobuf.Type) {
  return {
    serialize: (v: T) => Buffer.from(type().encode(type().fromObject(v as Record<string, unknown>)).finish()),
    deserialize: (b: Buffer) => type().toObject(type().decode(b), toObjectOptions) as T,
  };
}

/** The service definition, for `server.addService(istioCertificateServiceDefinition(), { CreateCertificate })`. */
export function istioCertificateServiceDefinition(): grpc.ServiceDefinition {
  const req = codec<IstioCertificateRequest>(() => caTypes().req);
  const res = codec<IstioCertificateResponse>(() => caTypes().res);
  return {
    CreateCertificate: {
      path: ISTIO_CREATE_CERTIFICATE_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: 'createCertificate',
    },
  } as grpc.ServiceDefinition;
}

export interface IstioCertificateClient extends grpc.Client {
  CreateCertificate(req: IstioCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: IstioCertificateResponse) => void): grpc.ClientUnaryCall;
}

/** A client for the control plane's CA at `address` (the xDS port). */
export function createIstioCertificateClient(address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): IstioCertificateClient {
  const Ctor = grpc.makeGenericClientConstructor(istioCertificateServiceDefinition() as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>, 'istio.v1.auth.IstioCertificateService');
  return new Ctor(address, credentials, options) as unknown as IstioCertificateClient;
}
