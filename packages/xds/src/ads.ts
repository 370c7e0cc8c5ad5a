import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_INCLUDE_DIRS } from './protos.ts';
import type { Json, JsonObject } from './json.ts';

/** google.protobuf.Any as @grpc/proto-loader hands it over (bytes untouched). */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

/** google.protobuf.Struct in proto-loader's object form. */
export interface StructMessage {
  fields?: Record<string, ValueMessage>;
}
/**
 * google.protobuf.Value as grpc-js carries it. Its definition comes from protobufjs' bundled
 * well-known types, whose field names are camelCase even under keepCase: snake_case keys would be
 * silently dropped on the wire.
 */
export interface ValueMessage {
  nullValue?: string;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMessage;
  listValue?: { values?: ValueMessage[] };
}

export interface NodeMessage {
  id?: string;
  cluster?: string;
  metadata?: StructMessage;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  user_agent_name?: string;
  user_agent_version?: string;
  client_features?: string[];
}

export interface StatusMessage {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: NodeMessage;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: StatusMessage;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier?: string };
}

export interface DeltaDiscoveryRequest {
  node?: NodeMessage;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: StatusMessage;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource?: AnyMessage;
  aliases?: string[];
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane?: { identifier?: string };
}

export type AdsStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaAdsStream = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export interface AdsHandlers extends grpc.UntypedServiceImplementation {
  StreamAggregatedResources: grpc.handleBidiStreamingCall<DiscoveryRequest, DiscoveryResponse>;
  DeltaAggregatedResources: grpc.handleBidiStreamingCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
}

export interface AdsClient extends grpc.Client {
  StreamAggregatedResources(options?: grpc.CallOptions): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  DeltaAggregatedResources(options?: grpc.CallOptions): grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
}

type AdsClientConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => AdsClient;

let loaded: { service: grpc.ServiceDefinition; client: AdsClientConstructor } | undefined;

function load() {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
    includeDirs: PROTO_INCLUDE_DIRS,
  });
  // Go through the package definition so the method paths are exactly Envoy's.
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const ctor = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
  loaded = { service: ctor.service, client: ctor as unknown as AdsClientConstructor };
  return loaded;
}

/** `envoy.service.discovery.v3.AggregatedDiscoveryService`, for `server.addService`. */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  return load().service;
}

/** A client for the ADS service at `address` (host:port). */
export function createAdsClient(address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): AdsClient {
  const Ctor = load().client;
  return new Ctor(address, credentials, options);
}

/** google.protobuf.Struct (proto-loader form) -> plain JSON. */
export function structToPlain(struct: StructMessage | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = valueToPlain(v);
  return out;
}

function valueToPlain(v: ValueMessage): Json {
  if (v.structValue != null) return structToPlain(v.structValue);
  if (v.listValue != null) return (v.listValue.values ?? []).map(valueToPlain);
  if (v.stringValue != null) return v.stringValue;
  if (v.numberValue != null) return v.numberValue;
  if (v.boolValue != null) return v.boolValue;
  return null;
}

/** Plain JSON -> google.protobuf.Struct (proto-loader form), for Node.metadata. */
export function plainToStruct(obj: JsonObject): StructMessage {
  const fields: Record<string, ValueMessage> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = plainToValue(v);
  return { fields };
}

function plainToValue(v: Json): ValueMessage {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(plainToValue) } };
  return { structValue: plainToStruct(v) };
}
