import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import {
  plainToStruct,
  createAdsClient,
  TYPE_URL,
  type AdsClient as GrpcAdsClient,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type JsonObject,
  type NodeMessage,
} from '@tern/xds';
import { Backoff } from './backoff.ts';
import { DeltaSession } from './delta.ts';
import { isFullState, shortTypeName, sortedNames } from './resources.ts';
import type { Session, SessionHost, TypeState } from './session.ts';
import { silentLogger, type AdsLogger, type ConfigSink, type HeldResource } from './sink.ts';
import { SotwSession } from './sotw.ts';

import { statusOf, type AdsStatus } from './status.ts';

/** `sotw` = Envoy bootstrap api_type GRPC, `delta` = DELTA_GRPC. */
export type AdsMode = 'sotw' | 'delta';

export interface AdsNodeOptions {
  id: string;
  cluster: string;
  /** Plain JSON, sent as google.protobuf.Struct (Istio puts its pod/workload facts here). */
  metadata?: JsonObject;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  userAgentVersion?: string;
}

export interface AdsHooks {
  onStatus?(status: AdsStatus): void;
  onConnected?(server: string): void;
  onDisconnected?(server: string, error: Error | undefined): void;
  onAck?(typeUrl: string, version: string): void;
  onNack?(typeUrl: string, message: string): void;
}

export interface AdsClientOptions {
  /** host:port of each control plane; the first is tried first, the next on every failure. */
  servers: readonly string[];
  node: AdsNodeOptions;
  mode?: AdsMode;
  sink: ConfigSink;
  logger?: AdsLogger;
  hooks?: AdsHooks;
  /** Default: insecure (plain-text gRPC). */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ClientOptions;
  backoff?: { baseMs?: number; maxMs?: number; random?: () => number };
  /** Resource types to subscribe to, in request order. Default: CDS, EDS, LDS, RDS (Envoy's order). */
  typeUrls?: readonly string[];
}

export const DEFAULT_TYPE_URLS: readonly string[] = [TYPE_URL.cluster, TYPE_URL.endpoint, TYPE_URL.listener, TYPE_URL.route];

const require = createRequire(import.meta.url);
const PROXY_VERSION = (require('../../package.json') as { version: string }).version;

interface Stream {
  readonly server: string;
  readonly grpcClient: GrpcAdsClient;
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  readonly session: Session<DiscoveryResponse> | Session<DeltaDiscoveryResponse>;
  ended: boolean;
  healthy: boolean;
}

/**
 * The sidecar's Aggregated Discovery Service client. Keeps one ADS stream to a control plane,
 * applies what arrives to the sink (ACK) or rejects it (NACK, the last good configuration stays),
 * and on any stream failure keeps the current configuration and reconnects with backoff, rotating
 * through the configured servers.
 */
export class AdsClient {
  readonly mode: AdsMode;
  private readonly servers: readonly string[];
  private readonly sink: ConfigSink;
  private readonly logger: AdsLogger;
  private readonly hooks: AdsHooks;
  private readonly backoff: Backoff;
  private readonly host: SessionHost;
  private readonly states = new Map<string, TypeState>();
  private serverIndex = 0;
  private stream: Stream | undefined;
  private connected = false;
  private connectedSince: Date | undefined;
  private reconnects = 0;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private inSink = false;
  private unsubscribeSink: (() => unknown) | undefined;
  private closed = false;
  // Responses, subscription updates and prunes run one at a time, in arrival order.
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: AdsClientOptions) {
    if (options.servers.length === 0) throw new Error('AdsClient: servers: at least one control-plane address is required');
    if (!options.node.id) throw new Error('AdsClient: node.id: must be a non-empty string');
    this.mode = options.mode ?? 'sotw';
    if (this.mode !== 'sotw' && this.mode !== 'delta') throw new Error(`AdsClient: mode: must be "sotw" or "delta", got ${JSON.stringify(this.mode)}`);
    this.servers = [...options.servers];
    this.sink = options.sink;
    this.logger = options.logger ?? silentLogger;
    this.hooks = options.hooks ?? {};
    this.backoff = new Backoff(options.backoff?.baseMs, options.backoff?.maxMs, options.backoff?.random);
    const typeUrls = options.typeUrls ?? DEFAULT_TYPE_URLS;
    for (const t of typeUrls) this.states.set(t, { held: new Map(), raw: new Map() });
    const node = buildNode(options.node);
    const self = this;
    this.host = {
      typeUrls,
      node,
      logger: this.logger,
      state: (t) => self.stateOf(t),
      wanted: (t) => sortedNames(self.sink.wantedNames(t)),
      apply: (t, set, version, bytes) => self.apply(t, set, version, bytes),
      reuse: (t) => {
        const s = self.stateOf(t);
        return (name, bytes) => (s.raw.get(name)?.equals(bytes) ? s.held.get(name)?.json : undefined);
      },
      rejected: (t, message, version, nonce) => self.rejected(t, message, version, nonce),
      prune: (t, keep) => self.prune(t, keep),
    };
  }

  /** Opens the first stream. Idempotent. */
  start(): this {
    if (this.started || this.closed) return this;
    this.started = true;
    this.unsubscribeSink = this.sink.onChange?.(() => {
      // Our own updates resync right after; only outside changes need one here.
      if (!this.inSink) void this.resync();
    });
    this.connect();
    return this;
  }

  /**
   * Re-reads the wanted RDS/EDS names from the sink and updates the subscriptions. The client calls
   * this itself after every applied response; call it when the configuration changed by other means.
   */
  resync(): Promise<void> {
    return this.enqueue(async () => {
      await this.stream?.session.resync();
    });
  }

  status(): AdsStatus {
    return statusOf({
      mode: this.mode,
      connected: this.connected,
      server: this.stream?.server ?? this.servers[this.serverIndex],
      servers: this.servers,
      connectedSince: this.connectedSince,
      reconnects: this.reconnects,
      lastError: this.lastError,
      states: this.states,
    });
  }

  /** Ends the stream, cancels timers and closes the gRPC channel; the configuration stays in the sink. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribeSink?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stream) this.endStream(this.stream, undefined);
    await this.chain;
  }

  // ------------------------------------------------------------------ connection

  private connect(): void {
    this.timer = undefined;
    if (this.closed) return;
    const server = this.servers[this.serverIndex]!;
    const grpcClient = createAdsClient(server, this.options.credentials ?? grpc.credentials.createInsecure(), this.options.channelOptions);
    const call = this.mode === 'sotw' ? grpcClient.StreamAggregatedResources() : grpcClient.DeltaAggregatedResources();
    const write = (msg: DiscoveryRequest | DeltaDiscoveryRequest) => {
      if (!stream.ended) (call as grpc.ClientDuplexStream<typeof msg, unknown>).write(msg);
    };
    const session = this.mode === 'sotw' ? new SotwSession(this.host, write) : new DeltaSession(this.host, write);
    const stream: Stream = { server, grpcClient, call, session, ended: false, healthy: false };
    this.stream = stream;
    this.logger.info({ server, mode: this.mode }, 'ADS stream opening');

    call.on('data', (res: DiscoveryResponse | DeltaDiscoveryResponse) => {
      if (stream.ended) return;
      if (!stream.healthy) {
        // The server answers: this stream counts as healthy, the next failure backs off from the start.
        stream.healthy = true;
        this.backoff.reset();
        this.markConnected(stream);
      }
      void this.enqueue(() => (session as Session<typeof res>).onResponse(res));
    });
    // 'error' comes for a non-OK status (and must be listened to); 'status' always comes last.
    call.on('error', (err: Error) => this.endStream(stream, err));
    call.on('status', (st: grpc.StatusObject) => this.endStream(stream, new Error(`the control plane ended the stream (${grpc.status[st.code]}${st.details ? `: ${st.details}` : ''})`)));
    this.watchReady(stream);
    void this.enqueue(() => session.start());
  }

  /** "connected" for the status page = the channel is READY (a server may send nothing for a while). */
  private watchReady(stream: Stream): void {
    const channel = stream.grpcClient.getChannel();
    const check = () => {
      if (stream.ended) return;
      const state = channel.getConnectivityState(false);
      if (state === grpc.connectivityState.READY) return this.markConnected(stream);
      if (state === grpc.connectivityState.SHUTDOWN) return;
      try {
        channel.watchConnectivityState(state, Infinity, check);
      } catch {
        // channel shut down meanwhile
      }
    };
    check();
  }

  private markConnected(stream: Stream): void {
    if (this.connected || stream !== this.stream || stream.ended) return;
    this.connected = true;
    this.connectedSince = new Date();
    this.lastError = undefined;
    this.logger.info({ server: stream.server }, 'ADS connected');
    this.callHook(() => this.hooks.onConnected?.(stream.server));
    this.emitStatus();
  }

  private endStream(stream: Stream, err: Error | undefined): void {
    if (stream.ended) return;
    stream.ended = true;
    const wasConnected = this.connected && this.stream === stream;
    if (this.stream === stream) this.connected = false;
    stream.call.removeAllListeners('data');
    // Keep an error listener: cancel() emits one and an unhandled 'error' would throw.
    stream.call.on('error', () => {});
    stream.call.cancel();
    stream.grpcClient.close();
    if (this.closed) {
      this.logger.info({ server: stream.server }, 'ADS client closed');
      this.emitStatus();
      return;
    }
    this.lastError = err?.message;
    this.logger.warn({ server: stream.server, err: err?.message, wasConnected }, 'ADS stream ended; keeping the current configuration');
    this.callHook(() => this.hooks.onDisconnected?.(stream.server, err));
    this.serverIndex = (this.serverIndex + 1) % this.servers.length;
    this.reconnects++;
    const delay = this.backoff.next();
    this.logger.info({ next: this.servers[this.serverIndex], delayMs: delay }, 'ADS reconnect scheduled');
    this.timer = setTimeout(() => this.connect(), delay);
    this.emitStatus();
  }

  // ------------------------------------------------------------------ state

  private stateOf(typeUrl: string): TypeState {
    let s = this.states.get(typeUrl);
    if (!s) {
      s = { held: new Map(), raw: new Map() };
      this.states.set(typeUrl, s);
    }
    return s;
  }

  private async apply(typeUrl: string, set: Map<string, HeldResource>, version: string, bytes: ReadonlyMap<string, Buffer>): Promise<void> {
    await this.toSink(typeUrl, set, version);
    const s = this.stateOf(typeUrl);
    const raw = new Map<string, Buffer>();
    for (const name of set.keys()) {
      const b = bytes.get(name) ?? s.raw.get(name);
      if (b) raw.set(name, b);
    }
    s.held = set;
    s.raw = raw;
    s.version = version;
    s.lastUpdate = new Date();
    s.lastNack = undefined;
    this.logger.debug({ type: shortTypeName(typeUrl), version, resources: set.size }, 'ADS update applied');
    this.callHook(() => this.hooks.onAck?.(typeUrl, version));
    this.emitStatus();
  }

  private rejected(typeUrl: string, message: string, version: string, nonce: string): void {
    this.stateOf(typeUrl).lastNack = { message, version, nonce, at: new Date() };
    this.logger.warn({ type: shortTypeName(typeUrl), version, nonce, error: message }, 'ADS update rejected (NACK); keeping the previous configuration');
    this.callHook(() => this.hooks.onNack?.(typeUrl, message));
    this.emitStatus();
  }

  private async prune(typeUrl: string, keep: ReadonlySet<string>): Promise<void> {
    if (isFullState(typeUrl)) return;
    const s = this.stateOf(typeUrl);
    const set = new Map([...s.held].filter(([name]) => keep.has(name)));
    if (set.size === s.held.size) return;
    try {
      await this.toSink(typeUrl, set, undefined);
      s.held = set;
      for (const name of [...s.raw.keys()]) if (!keep.has(name)) s.raw.delete(name);
    } catch (err) {
      // Keep what the sink still has; the stale names go with the next accepted update.
      this.logger.warn({ type: shortTypeName(typeUrl), err: (err as Error).message }, 'ADS: dropping unsubscribed resources failed');
    }
  }

  private async toSink(typeUrl: string, set: Map<string, HeldResource>, versionInfo: string | undefined): Promise<void> {
    this.inSink = true;
    try {
      const result = this.sink.replaceType(typeUrl, set, versionInfo);
      if (result instanceof Promise) await result;
    } finally {
      this.inSink = false;
    }
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    // After close() nothing more reaches the sink or the wire.
    const run = this.chain.then(() => (this.closed ? undefined : task())).catch((err: unknown) => {
      this.logger.error({ err: (err as Error)?.message ?? String(err) }, 'ADS client internal error');
    });
    this.chain = run;
    return run;
  }

  private emitStatus(): void {
    if (this.hooks.onStatus) this.callHook(() => this.hooks.onStatus?.(this.status()));
  }

  private callHook(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: (err as Error)?.message }, 'ADS status hook threw');
    }
  }
}

export function buildNode(node: AdsNodeOptions): NodeMessage {
  const out: NodeMessage = {
    id: node.id,
    cluster: node.cluster,
    metadata: plainToStruct(node.metadata ?? {}),
    user_agent_name: 'tern-proxy',
    user_agent_version: node.userAgentVersion ?? PROXY_VERSION,
  };
  if (node.locality) out.locality = node.locality;
  return out;
}
