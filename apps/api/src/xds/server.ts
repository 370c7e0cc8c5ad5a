import * as grpc from '@grpc/grpc-js';
import { adsServiceDefinition, type AdsStream, type DeltaAdsStream, type DiscoveryResponse, type NodeMessage } from '@tern/xds';
import type { CompileOptions, PrepareMesh, PreparedMesh, ProxyIdentity } from '../compile/types.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { NotFoundError } from '../errors.ts';
import { logger } from '../log.ts';
import { xdsConnectedProxies, xdsNacksTotal, xdsPushesTotal } from '../metrics.ts';
import { DeltaConnection, SotwConnection, type AnyConnection, type Push, type RequestOutcome } from './connection.ts';
import { ConvergenceTracker, type ConvergenceRecord } from './convergence.ts';
import { MeshTracker, type MeshUpdate } from './mesh.ts';
import { TYPES, type ResourceType } from './resources.ts';
import { encodeDiscoveryResponse } from './response-encoding.ts';
import { proxyStatusView, type ProxyStatusView } from './status.ts';
import { ProxyStatusStore } from './status-store.ts';

// The ADS server: gRPC streams in, one Connection per stream, pushes when the mesh changes, proxy
// status out (API and the ProxyStatus table), convergence per revision.

/** What the server needs from the compiler (injected, so the protocol can be tested on its own). */
export interface XdsCompiler {
  prepareMesh: PrepareMesh;
  /** Throws with a message naming the metadata key when the node is not acceptable. */
  proxyIdentityFromNode(node: NodeMessage): ProxyIdentity;
}

export interface XdsOptions {
  replicaId: string;
  compile: CompileOptions;
  debounceMs: number;
  debounceMaxMs: number;
  /** Status rows: flush interval, heartbeat, and when a row counts as a dead replica's. */
  statusFlushMs?: number;
  statusHeartbeatMs?: number;
  statusStaleMs?: number;
  /** Streams that may have a response being written at once (default DEFAULT_MAX_CONCURRENT_WRITES). */
  maxConcurrentWrites?: number;
}

/**
 * Istio throttles pushes likewise (PILOT_PUSH_THROTTLE, 100). A response is serialized only when
 * its write starts and its bytes are held until the transport took them: a change reaching every
 * proxy would otherwise serialize a response per proxy at once (about 100 KB each for a proxy that
 * sees 50 services), and the malloc'd buffers, freed a moment later, stay in the process's RSS.
 */
export const DEFAULT_MAX_CONCURRENT_WRITES = 100;

/** A push older than this no longer holds status writes back (a proxy that never answers must not stall them). */
const PUSH_IN_FLIGHT_MS = 2000;

export interface ProxyConfigDump {
  id: string;
  replica: string;
  protocol: 'sotw' | 'delta';
  meshRevision: string;
  /** Per type: the last version sent and the resources the proxy was sent (Envoy JSON with "@type"), by name. */
  types: Record<ResourceType, { version: string | null; resources: Record<string, unknown>[] }>;
}

interface Live {
  conn: AnyConnection;
  call: AdsStream | DeltaAdsStream;
  /** Responses not yet handed to the stream, in order. */
  queue: Push<unknown>[];
  /** A response of this stream is being written (it holds one of the server's write slots). */
  writing: boolean;
  /** In `waitingForSlot`. */
  waiting: boolean;
  ended: boolean;
}

/** The ADS service, its state-of-the-world responses encoded by encodeDiscoveryResponse (anything else by protobufjs). */
function serviceDefinition(): grpc.ServiceDefinition {
  const def = adsServiceDefinition();
  const sotw = def.StreamAggregatedResources!;
  const fallback = sotw.responseSerialize;
  const responseSerialize = (res: DiscoveryResponse) => encodeDiscoveryResponse(res) ?? fallback(res);
  return { ...def, StreamAggregatedResources: { ...sotw, responseSerialize } };
}

export class XdsServer {
  readonly mesh: MeshTracker;
  readonly status: ProxyStatusStore;
  readonly convergence = new ConvergenceTracker(200);
  private server: grpc.Server | undefined;
  private readonly live = new Map<number, Live>();
  /** proxy id -> its newest stream on this replica. */
  private readonly byProxy = new Map<string, Live>();
  /** Every open stream, registered or not (a stream that never sent its node must end on close too). */
  private readonly calls = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  private unsubscribeMesh: (() => void) | undefined;
  private closing = false;
  private readonly maxWrites: number;
  private writes = 0;
  /** Streams with queued responses, waiting for a write slot (FIFO). */
  private readonly waitingForSlot: Live[] = [];
  private waitingHead = 0;
  address: string | undefined;

  private compiler: XdsCompiler | undefined;
  /** More gRPC services served next to ADS on the same port (telemetry); add before start(). */
  readonly extraServices: { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }[] = [];

  /** `compiler` may be a loader: it is only needed once the server starts. */
  constructor(
    prisma: PrismaClient,
    changes: ChangeFeed,
    private readonly compilerSource: XdsCompiler | (() => Promise<XdsCompiler>),
    readonly opts: XdsOptions,
  ) {
    this.maxWrites = Math.max(1, opts.maxConcurrentWrites ?? DEFAULT_MAX_CONCURRENT_WRITES);
    const prepare: PrepareMesh = (mesh, revision, options) => this.compiler!.prepareMesh(mesh, revision, options);
    this.mesh = new MeshTracker(prisma, changes, prepare, { debounceMs: opts.debounceMs, debounceMaxMs: opts.debounceMaxMs, compile: opts.compile });
    this.status = new ProxyStatusStore(prisma, {
      replicaId: opts.replicaId,
      ...(opts.statusFlushMs !== undefined ? { flushMs: opts.statusFlushMs } : {}),
      ...(opts.statusHeartbeatMs !== undefined ? { heartbeatMs: opts.statusHeartbeatMs } : {}),
      ...(opts.statusStaleMs !== undefined ? { staleMs: opts.statusStaleMs } : {}),
      busy: () => this.convergence.inFlight(PUSH_IN_FLIGHT_MS),
    });
  }

  get started(): boolean {
    return this.server !== undefined;
  }

  /** Loads the mesh, then listens. Resolves with the bound address (host:port). */
  async start(host: string, port: number): Promise<string> {
    this.compiler = typeof this.compilerSource === 'function' ? await this.compilerSource() : this.compilerSource;
    await this.mesh.start();
    const offUpdate = this.mesh.onUpdate((u) => this.onMeshUpdate(u));
    const offStaged = this.mesh.onStaged((next, current) => this.warm(next, current));
    this.unsubscribeMesh = () => {
      offUpdate();
      offStaged();
    };
    this.status.start();
    // Channelz is on by default in grpc-js and keeps trackers and traces per socket and call; nothing
    // here serves the channelz service.
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1, 'grpc.enable_channelz': 0 });
    server.addService(serviceDefinition(), {
      StreamAggregatedResources: (call: AdsStream) => this.serve(call, new SotwConnection(this.opts.replicaId)),
      DeltaAggregatedResources: (call: DeltaAdsStream) => this.serve(call, new DeltaConnection(this.opts.replicaId)),
    });
    for (const extra of this.extraServices) server.addService(extra.definition, extra.implementation);
    const hostPart = host.includes(':') ? `[${host}]` : host;
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${hostPart}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    this.address = `${host === '0.0.0.0' ? '127.0.0.1' : hostPart}:${bound}`;
    return this.address;
  }

  /** Stops accepting, ends every stream (UNAVAILABLE, so proxies reconnect to another replica), removes this replica's status rows. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.unsubscribeMesh?.();
    await this.mesh.stop();
    const server = this.server;
    if (server) {
      for (const call of [...this.calls]) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane replica shutting down; reconnect' });
      }
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      for (const l of [...this.live.values()]) this.dropped(l);
    }
    await this.status.stop();
  }

  // ---- streams ----

  private serve<Req extends { node?: NodeMessage }, Res>(call: grpc.ServerDuplexStream<Req, Res>, conn: AnyConnection) {
    if (this.closing) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane replica shutting down' });
      return;
    }
    const l: Live = { conn, call: call as unknown as Live['call'], queue: [], writing: false, waiting: false, ended: false };
    const anyCall = call as unknown as grpc.ServerDuplexStream<unknown, unknown>;
    this.calls.add(anyCall);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.calls.delete(anyCall);
      this.dropped(l);
    };
    const fail = (code: grpc.status, details: string) => {
      logger.warn({ peer: call.getPeer(), details }, 'xds: rejecting stream');
      call.emit('error', { code, details });
      finish();
    };
    call.on('data', (req: Req) => {
      if (done) return;
      try {
        if (!conn.identity) {
          if (!req.node) return fail(grpc.status.INVALID_ARGUMENT, 'the first request of a stream must carry node (id and metadata)');
          let identity: ProxyIdentity;
          try {
            identity = this.compiler!.proxyIdentityFromNode(req.node);
          } catch (err) {
            return fail(grpc.status.INVALID_ARGUMENT, `invalid node metadata: ${(err as Error).message}`);
          }
          this.register(l, identity);
        }
        const out = (conn as unknown as { handle(r: Req): RequestOutcome<unknown> }).handle(req);
        this.afterRequest(l, out);
      } catch (err) {
        logger.error({ err, proxy: conn.proxyId }, 'xds: request handling failed');
        fail(grpc.status.INTERNAL, 'internal error in the control plane; see its log');
      }
    });
    call.on('end', () => {
      finish();
      call.end();
    });
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
  }

  private register(l: Live, identity: ProxyIdentity) {
    l.conn.identity = identity;
    this.live.set(l.conn.connId, l);
    this.byProxy.set(identity.id, l);
    xdsConnectedProxies.inc();
    // A new stream gets the current mesh at once, without waiting for the debounce.
    const prepared = this.mesh.prepared;
    if (prepared) {
      try {
        l.conn.update(prepared.compileFor(identity), prepared.revision);
        l.conn.basis = prepared;
      } catch (err) {
        logger.error({ err, proxy: identity.id }, 'xds: compiling for a new proxy failed');
      }
    }
    logger.info({ proxy: identity.id, namespace: identity.namespace, kind: identity.kind, protocol: l.conn.protocol }, 'xds: proxy connected');
    this.markDirty(l);
  }

  private dropped(l: Live) {
    l.ended = true;
    l.queue.length = 0;
    this.writeDone(l);
    if (!this.live.delete(l.conn.connId)) return;
    xdsConnectedProxies.dec();
    this.convergence.disconnected(l.conn.connId);
    const id = l.conn.proxyId;
    if (this.byProxy.get(id) === l) {
      this.byProxy.delete(id);
      this.status.markGone(id);
    }
    logger.info({ proxy: id }, 'xds: proxy disconnected');
  }

  private afterRequest(l: Live, out: RequestOutcome<unknown>) {
    const conn = l.conn;
    if (out.unknownType !== undefined) logger.debug({ proxy: conn.proxyId, typeUrl: out.unknownType }, 'xds: request for a type this server does not serve; ignored');
    if (out.ack) this.convergence.ack(conn.connId, out.ack.type.url, out.ack.nonce);
    if (out.nack) {
      xdsNacksTotal.inc({ type: out.nack.type.short.toLowerCase() });
      this.convergence.nack(conn.connId, out.nack.type.url, out.nack.nonce);
      logger.warn({ proxy: conn.proxyId, type: out.nack.type.short, version: out.nack.version, error: out.nack.message }, 'xds: proxy rejected a push (NACK)');
    }
    if (out.push) this.send(l, out.push);
    if (out.ack || out.nack || out.push) this.markDirty(l);
  }

  private send(l: Live, push: Push<unknown>) {
    if (l.conn.encodeErrors.length) {
      for (const e of l.conn.encodeErrors.splice(0)) logger.error({ proxy: l.conn.proxyId, ...e }, 'xds: a compiled resource does not encode; left out');
    }
    if (l.ended || (l.call as { cancelled?: boolean }).cancelled || l.call.destroyed) return;
    // State of the world: a response not yet written is superseded by a newer one of its type
    // (which carries the whole state); it goes to the end, after the types it may depend on.
    if (l.conn.protocol === 'sotw') {
      const i = l.queue.findIndex((q) => q.type === push.type);
      if (i >= 0) l.queue.splice(i, 1);
    }
    l.queue.push(push);
    this.pump(l);
  }

  /** Starts the stream's next response if it has none being written and a write slot is free, else queues the stream for a slot. */
  private pump(l: Live) {
    if (l.writing || l.ended || !l.queue.length) return;
    if (this.writes >= this.maxWrites || this.waitingHead < this.waitingForSlot.length) {
      if (!l.waiting) {
        l.waiting = true;
        this.waitingForSlot.push(l);
      }
      return;
    }
    this.write(l);
  }

  private write(l: Live) {
    const push = l.queue.shift()!;
    l.writing = true;
    this.writes++;
    xdsPushesTotal.inc({ type: push.type.short.toLowerCase() });
    // The callback runs once the transport took the bytes (or the stream failed); a stream that
    // ends meanwhile releases its slot in `dropped`.
    (l.call as grpc.ServerDuplexStream<unknown, unknown>).write(push.response, () => this.writeDone(l));
  }

  private writeDone(l: Live) {
    if (!l.writing) return;
    l.writing = false;
    this.writes--;
    // Streams that waited go first; this one queues behind them.
    while (this.writes < this.maxWrites && this.waitingHead < this.waitingForSlot.length) {
      const next = this.waitingForSlot[this.waitingHead++]!;
      next.waiting = false;
      if (!next.writing && !next.ended && next.queue.length) this.write(next);
    }
    if (this.waitingHead === this.waitingForSlot.length) {
      this.waitingForSlot.length = 0;
      this.waitingHead = 0;
    } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waitingForSlot.length) {
      this.waitingForSlot.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
    this.pump(l);
  }

  /**
   * Compiles, ahead of the push, for the proxies a prepared revision affects: the compiler keeps
   * the results, so the push only compares and sends. Failures are left for the push to report.
   */
  private warm(next: PreparedMesh, current: PreparedMesh | undefined) {
    if (!current || !next.changedSince) return;
    try {
      const affects = next.changedSince(current);
      for (const l of this.live.values()) {
        if (l.conn.basis === current && affects(l.conn.identity!)) next.compileFor(l.conn.identity!);
      }
    } catch {
      // The push compiles again and logs what fails.
    }
  }

  private onMeshUpdate(u: MeshUpdate) {
    const pushed = new Map<number, { type: string; nonce: string }[]>();
    // Only proxies the change may reach are compiled again; the rest are current as they are. A
    // proxy whose config was not compiled from (or found current for) the previous revision, after
    // a failure say, is compiled whatever changed.
    let affects: ((p: ProxyIdentity) => boolean) | undefined;
    if (u.previous && u.prepared.changedSince) {
      try {
        affects = u.prepared.changedSince(u.previous);
      } catch (err) {
        logger.error({ err, revision: u.revision }, 'xds: finding the proxies a change affects failed; compiling for all');
      }
    }
    for (const l of this.live.values()) {
      const conn = l.conn;
      if (affects && conn.basis === u.previous) {
        let affected = true;
        try {
          affected = affects(conn.identity!);
        } catch (err) {
          logger.error({ err, proxy: conn.proxyId, revision: u.revision }, 'xds: scoping a change failed; compiling for the proxy');
        }
        if (!affected) {
          conn.basis = u.prepared;
          conn.advance(u.revision);
          this.markDirty(l, true);
          continue;
        }
      }
      let resources;
      try {
        resources = u.prepared.compileFor(conn.identity!);
      } catch (err) {
        conn.basis = undefined;
        logger.error({ err, proxy: l.conn.proxyId, revision: u.revision }, 'xds: compiling for a proxy failed; it keeps its config');
        continue;
      }
      conn.basis = u.prepared;
      const pushes = l.conn.update(resources, u.revision);
      for (const p of pushes) this.send(l, p);
      if (pushes.length) pushed.set(l.conn.connId, pushes.map((p) => ({ type: p.type.url, nonce: p.nonce })));
      this.markDirty(l);
    }
    this.convergence.begin(u.revision, u.firstChangeAt, pushed);
  }

  /** `lagging`: only the mesh revision moved (written with the heartbeat unless something else is). */
  private markDirty(l: Live, lagging = false) {
    const conn = l.conn;
    if (this.byProxy.get(conn.proxyId) !== l) return;
    const view = () => proxyStatusView(conn, this.opts.replicaId, this.mesh.meshRevision);
    if (lagging) this.status.markLagging(conn.proxyId, view);
    else this.status.markDirty(conn.proxyId, view);
  }

  // ---- what the API shows ----

  liveViews(): ProxyStatusView[] {
    return [...this.byProxy.values()].map((l) => proxyStatusView(l.conn, this.opts.replicaId, this.mesh.meshRevision));
  }

  /** Every proxy: this replica's live ones, and the others' from the ProxyStatus table (DISCONNECTED when their replica stopped reporting). */
  async listProxies(namespace?: string): Promise<ProxyStatusView[]> {
    const rows = await this.status.list();
    const out = new Map<string, ProxyStatusView>();
    for (const r of rows) {
      if (r.replicaId === this.opts.replicaId) continue; // ours are live (or on their way out)
      out.set(r.view.id, { ...r.view, replica: r.replicaId, ...(this.status.isStale(r) ? { status: 'DISCONNECTED' as const } : {}) });
    }
    for (const v of this.liveViews()) out.set(v.id, v);
    return [...out.values()].filter((v) => !namespace || v.namespace === namespace).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async getProxy(id: string): Promise<ProxyStatusView> {
    const l = this.byProxy.get(id);
    if (l) return proxyStatusView(l.conn, this.opts.replicaId, this.mesh.meshRevision);
    const row = await this.status.get(id);
    if (!row || row.replicaId === this.opts.replicaId) throw new NotFoundError(`no proxy "${id}" is connected to the control plane`);
    return { ...row.view, replica: row.replicaId, ...(this.status.isStale(row) ? { status: 'DISCONNECTED' as const } : {}) };
  }

  /** What the proxy was last sent, like Envoy's config_dump. Only the replica holding its stream knows. */
  async proxyConfig(id: string): Promise<ProxyConfigDump> {
    const l = this.byProxy.get(id);
    if (!l) {
      const row = await this.status.get(id);
      if (row && row.replicaId !== this.opts.replicaId && !this.status.isStale(row)) {
        throw new NotFoundError(`proxy "${id}" is connected to replica "${row.replicaId}", not this one ("${this.opts.replicaId}"); ask that replica for its config`);
      }
      throw new NotFoundError(`no proxy "${id}" is connected to the control plane`);
    }
    const conn = l.conn;
    const types = {} as ProxyConfigDump['types'];
    for (const t of TYPES) {
      const st = conn.types.get(t.url);
      const resources = [...(st?.sent.values() ?? [])]
        .filter((r) => r.json)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map((r) => ({ '@type': t.url, ...r.json }));
      types[t.key] = { version: st?.lastSent?.version ?? null, resources };
    }
    return { id, replica: this.opts.replicaId, protocol: conn.protocol, meshRevision: conn.desiredRevision, types };
  }

  recentConvergence(limit?: number): ConvergenceRecord[] {
    return this.convergence.recent(limit);
  }
}
