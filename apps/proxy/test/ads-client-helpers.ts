/**
 * Test support for the ADS client suites: a scriptable in-test ADS server (real gRPC on loopback),
 * an in-memory ConfigSink, resource builders and small waiting helpers.
 */
import * as grpc from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  EXTENSION_TYPE_URL,
  packAny,
  TYPE_URL,
  type AnyMessage,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type JsonObject,
} from '@tern/xds';
import type { ConfigSink, HeldResource } from '../src/ads/index.ts';

// ------------------------------------------------------------------ waiting

export async function eventually<T>(fn: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An async FIFO: push from event handlers, await `next()` in tests. */
class Queue<T> {
  private items: T[] = [];
  private waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  next(what: string, timeoutMs = 5000): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const done = (x: T) => {
        clearTimeout(timer);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }
  get pending(): T[] {
    return [...this.items];
  }
}

// ------------------------------------------------------------------ fake ADS server

export class FakeStream<Req, Res> {
  readonly requests = new Queue<Req>();
  readonly all: Req[] = [];
  ended = false;
  constructor(
    readonly kind: 'sotw' | 'delta',
    readonly call: grpc.ServerDuplexStream<Req, Res>,
  ) {
    call.on('data', (r: Req) => {
      this.all.push(r);
      this.requests.push(r);
    });
    const done = () => {
      this.ended = true;
    };
    call.on('end', done);
    call.on('error', done);
    call.on('cancelled', done);
  }
  next(what = 'a request', timeoutMs?: number): Promise<Req> {
    return this.requests.next(what, timeoutMs);
  }
  /** The next request of `typeUrl`, failing on any other type in between. */
  async nextOf(typeUrl: string, timeoutMs?: number): Promise<Req> {
    const r = await this.next(`a ${typeUrl} request`, timeoutMs);
    const t = (r as { type_url?: string }).type_url;
    if (t !== typeUrl) throw new Error(`expected a request for ${typeUrl}, got one for ${t}: ${JSON.stringify(r)}`);
    return r;
  }
  send(res: Res): void {
    this.call.write(res);
  }
  /** No request arrives within `ms` (for "nothing more was sent" checks). */
  async quiet(ms = 150): Promise<Req[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.requests.pending;
  }
}

export type SotwStream = FakeStream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaStream = FakeStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export class FakeAdsServer {
  private server: grpc.Server | undefined;
  private readonly sotw = new Queue<SotwStream>();
  private readonly delta = new Queue<DeltaStream>();
  readonly streams: FakeStream<unknown, unknown>[] = [];
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Listens on `port` (0 = ephemeral; pass the old port to come back on the same address). */
  async start(port = this.port): Promise<this> {
    const server = new grpc.Server();
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
        const s = new FakeStream('sotw', call);
        this.streams.push(s as FakeStream<unknown, unknown>);
        this.sotw.push(s);
      },
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => {
        const s = new FakeStream('delta', call);
        this.streams.push(s as FakeStream<unknown, unknown>);
        this.delta.push(s);
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    return this;
  }

  nextSotwStream(timeoutMs = 5000): Promise<SotwStream> {
    return this.sotw.next('a state-of-the-world ADS stream', timeoutMs);
  }
  nextDeltaStream(timeoutMs = 5000): Promise<DeltaStream> {
    return this.delta.next('a delta ADS stream', timeoutMs);
  }

  /** Dies: every open stream is cut and the port closes. */
  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

/** A loopback port with nothing listening on it. */
export async function deadAddress(): Promise<string> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `127.0.0.1:${port}`;
}

// ------------------------------------------------------------------ resources

export function cluster(name: string, opts: { eds?: boolean; serviceName?: string } = {}): JsonObject {
  const eds = opts.eds ?? true;
  const json: JsonObject = { '@type': TYPE_URL.cluster, name, connect_timeout: '1s' };
  if (eds) {
    json.type = 'EDS';
    json.eds_cluster_config = { eds_config: { ads: {} }, ...(opts.serviceName ? { service_name: opts.serviceName } : {}) };
  } else {
    json.type = 'STRICT_DNS';
  }
  return json;
}

export function cla(clusterName: string, port = 8080): JsonObject {
  return {
    '@type': TYPE_URL.endpoint,
    cluster_name: clusterName,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }],
  };
}

export function listener(name: string, routeConfigName: string, port = 15001): JsonObject {
  return {
    '@type': TYPE_URL.listener,
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': EXTENSION_TYPE_URL.httpConnectionManager,
              stat_prefix: name,
              rds: { route_config_name: routeConfigName, config_source: { ads: {} } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } }],
            },
          },
        ],
      },
    ],
  };
}

export function routeConfig(name: string, clusterName = 'a'): JsonObject {
  return {
    '@type': TYPE_URL.route,
    name,
    virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: clusterName } }] }],
  };
}

export function any(json: JsonObject): AnyMessage {
  return packAny(json);
}

export function sotwResponse(typeUrl: string, version: string, nonce: string, resources: (JsonObject | AnyMessage)[]): DiscoveryResponse {
  return { version_info: version, type_url: typeUrl, nonce, resources: resources.map((r) => ('type_url' in r ? (r as AnyMessage) : packAny(r as JsonObject))) };
}

export function deltaResponse(
  typeUrl: string,
  version: string,
  nonce: string,
  resources: { name: string; version: string; json?: JsonObject; any?: AnyMessage }[],
  removed: string[] = [],
): DeltaDiscoveryResponse {
  return {
    system_version_info: version,
    type_url: typeUrl,
    nonce,
    removed_resources: removed,
    resources: resources.map((r) => ({ name: r.name, version: r.version, resource: r.any ?? (r.json ? packAny(r.json) : undefined) })),
  };
}

// ------------------------------------------------------------------ in-memory sink

/** Mirrors the real store's error: the message says which resource and field are wrong. */
export class FakeConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A ConfigSink that keeps the sets it is given and derives the wanted EDS/RDS names the way the
 * real store does (EDS clusters' service_name or name; HCM rds.route_config_name).
 */
export class MemorySink implements ConfigSink {
  readonly sets = new Map<string, Map<string, HeldResource>>();
  readonly calls: { typeUrl: string; names: string[] }[] = [];
  /** Return a message to make replaceType throw a ConfigError-like error. */
  reject: ((typeUrl: string, set: Map<string, HeldResource>) => string | undefined) | undefined;

  replaceType(typeUrl: string, resources: Map<string, HeldResource>): void {
    const msg = this.reject?.(typeUrl, resources);
    if (msg) throw new FakeConfigError(msg);
    this.sets.set(typeUrl, new Map(resources));
    this.calls.push({ typeUrl, names: [...resources.keys()].sort() });
  }

  names(typeUrl: string): string[] {
    return [...(this.sets.get(typeUrl)?.keys() ?? [])].sort();
  }

  version(typeUrl: string, name: string): string | undefined {
    return this.sets.get(typeUrl)?.get(name)?.version;
  }

  wantedNames(typeUrl: string): string[] {
    const out: string[] = [];
    if (typeUrl === TYPE_URL.endpoint) {
      for (const { json } of this.sets.get(TYPE_URL.cluster)?.values() ?? []) {
        if (json.type !== 'EDS') continue;
        const eds = json.eds_cluster_config as JsonObject | undefined;
        out.push(typeof eds?.service_name === 'string' && eds.service_name ? eds.service_name : (json.name as string));
      }
    } else if (typeUrl === TYPE_URL.route) {
      for (const { json } of this.sets.get(TYPE_URL.listener)?.values() ?? []) {
        for (const chain of (json.filter_chains as JsonObject[] | undefined) ?? []) {
          for (const f of (chain.filters as JsonObject[] | undefined) ?? []) {
            const rds = (f.typed_config as JsonObject | undefined)?.rds as JsonObject | undefined;
            if (typeof rds?.route_config_name === 'string') out.push(rds.route_config_name);
          }
        }
      }
    }
    return out;
  }
}
