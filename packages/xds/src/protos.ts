import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';

// The Envoy v3 protos ship inside @grpc/grpc-js-xds; proto-loader and protobufjs need all four
// include dirs, in this order (../shared/STACK.md).
const require = createRequire(import.meta.url);
const xdsPackageDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const protobufjsDir = path.dirname(require.resolve('protobufjs/package.json'));
export const PROTO_INCLUDE_DIRS = [
  ...['envoy-api', 'xds', 'protoc-gen-validate', 'googleapis'].map((dir) => path.join(xdsPackageDir, 'deps', dir)),
  // google/protobuf/descriptor.proto (imported by the validate annotations) ships with protobufjs.
  protobufjsDir,
];

/** Every proto file Tern reads or writes; loading only these keeps start-up near 100 ms. */
export const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/service/status/v3/csds.proto',
  'envoy/admin/v3/config_dump.proto',
  'google/rpc/status.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/wrappers.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/timestamp.proto',
  'google/protobuf/any.proto',
  'google/protobuf/empty.proto',
];

let root: protobuf.Root | undefined;

/** One protobufjs Root with every type Tern uses, loaded once per process. */
export function protoRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    if (target in protobuf.common) return target;
    for (const dir of PROTO_INCLUDE_DIRS) {
      const candidate = path.join(dir, target);
      if (fsExists(candidate)) return candidate;
    }
    return target;
  };
  r.loadSync(PROTO_FILES, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

import { existsSync as fsExists } from 'node:fs';

const typeCache = new Map<string, protobuf.Type>();

/** Looks up a message type by full name (`envoy.config.route.v3.RouteConfiguration`) or type URL. */
export function messageType(nameOrTypeUrl: string): protobuf.Type {
  const cached = typeCache.get(nameOrTypeUrl);
  if (cached) return cached;
  const name = typeNameOf(nameOrTypeUrl);
  let found: protobuf.ReflectionObject | null = null;
  try {
    found = protoRoot().lookup(name);
  } catch {
    found = null;
  }
  if (!(found instanceof protobuf.Type)) throw new UnknownTypeError(name);
  typeCache.set(nameOrTypeUrl, found);
  return found;
}

export class UnknownTypeError extends Error {
  constructor(readonly typeName: string) {
    super(`unknown message type "${typeName}"`);
  }
}

/** `type.googleapis.com/envoy.config.listener.v3.Listener` -> `envoy.config.listener.v3.Listener`. */
export function typeNameOf(nameOrTypeUrl: string): string {
  const slash = nameOrTypeUrl.lastIndexOf('/');
  return slash >= 0 ? nameOrTypeUrl.slice(slash + 1) : nameOrTypeUrl.replace(/^\./, '');
}

export function typeUrlOf(typeName: string): string {
  return `type.googleapis.com/${typeName.replace(/^\./, '')}`;
}
