import http from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { ClientHttp2Stream, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { ClusterConfig, CorsPolicy, Endpoint, HeaderMutations, ProxySnapshot, Route, RouteAction, VirtualHost } from '../config/model.ts';
import type { LabelBase } from '../telemetry/metrics.ts';
import { grpcStatusForHttp } from './flags.ts';
import { appendXff, copyEndToEnd, isInternalAddress, newRequestId, PEER_HEADER, trustedClientAddress } from './headers.ts';
import type { HttpContext } from './context.ts';
import { applyRequestMutations, applyResponseMutations, autoHost, decide, pickHost, releaseHost, type Decision } from './routing.ts';
import { backoffMs, parseGrpcTimeout, retriableFailure, retriableResponse, retryCounters, retryPlan, RetryRun } from './retry.ts';
import { decideFault, effectiveFault, FAULT_ABORT_BODY, faultEnded, faultStarted, type FaultDecision } from './fault.ts';
import { startMirrors, type MirrorRequest } from './mirror.ts';
import { addCorsResponseHeaders, corsOrigin, corsPolicyFor, isPreflight, preflightHeaders } from './cors.ts';
import { checkRbac, RBAC_DENIED_BODY } from './rbac.ts';
import { releaseRetry, tryRetry } from './resilience/breakers.ts';
import type { UpstreamHost } from '../config/lb.ts';
import { endpointOption, upstreamErrorFlag } from './upstream.ts';
import { kTlsFailure, type TlsFailedError } from './upstream-tls.ts';
import type { FastRequest } from './h1-fast.ts';
import { headerLines } from './h1-parser.ts';
import { H1Conn, type UpstreamUser } from './h1-upstream.ts';
import { admit, release, type Ticket, type UpstreamKind } from './resilience/admission.ts';
import { localOriginOf, reportAttempt } from './resilience/outlier.ts';
import { idleClock, unwatchIdle, watchIdle, type IdleStream } from './stream-idle.ts';
import { tlsIdentity, type TlsIdentity } from './tls-peer.ts';

/** Methods a stale pooled connection may be retried for (nginx's and undici's rule). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const kEx = Symbol('tern.exchange');
type Tagged<T> = T & { [kEx]?: Exchange };

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;

type Forward = Extract<Decision, { kind: 'forward' }>;

/** A mirror's lifetime when the route has no timeout (timeout: 0s, Istio's default). */
const MIRROR_MAX_MS = 60_000;

/** Envoy's local reply bodies, so tooling that greps for them keeps working. */
const BODY = {
  UH: 'no healthy upstream',
  UF: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  UC: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
  UR: 'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
  UPE: 'upstream connect error or disconnect/reset before headers. reset reason: protocol error',
  UT: 'upstream request timeout',
} as const;

const enum Down {
  H1 = 1,
  H2 = 2,
  /** An HTTP/1.1 upgrade: the downstream is the raw socket. */
  Raw = 3,
  /** HTTP/1.1 on the raw-socket fast path (h1-fast.ts). */
  Fast = 4,
}

/**
 * One proxied HTTP request, from downstream headers to the end of both streams. Event handlers
 * are module-level functions that find their Exchange through a symbol on the emitter, so a
 * request allocates this object and the upstream request, not a dozen closures.
 */
export class Exchange implements UpstreamUser, IdleStream {
  readonly start = performance.now();
  snap!: ProxySnapshot;
  method = 'GET';
  authority = '';
  path = '/';
  scheme = 'http';
  headers!: IncomingHttpHeaders;
  grpc = false;
  down: Down = Down.H1;
  h1req?: IncomingMessage;
  h1res?: ServerResponse;
  h2?: ServerHttp2Stream;
  raw?: Socket;
  rawHead?: Buffer;
  fast?: FastRequest;
  /** The fast path's upstream connection while it carries this request. */
  upFast?: H1Conn;
  /** The upstream request head (kept for one retry on a fresh connection) and its body framing. */
  upHead = '';
  upChunked = false;
  retried = false;
  downBodyless = false;
  /** The downstream stream the body is read from. */
  body?: Readable;

  cluster?: ClusterConfig;
  endpoint?: Endpoint;
  host?: UpstreamHost;
  upReq?: ClientRequest;
  upH2?: ClientHttp2Stream;
  upRes?: IncomingMessage;
  upStart = 0;
  respMutations: readonly HeaderMutations[] | undefined;
  /** A hash-policy cookie generated for this request (ring hash / maglev with a cookie ttl). */
  setCookie: string | undefined = undefined;
  timeoutMs = 0;
  timer: NodeJS.Timeout | undefined;
  /** per_try_timeout (0 = none) and its timer, per attempt. */
  perTryMs = 0;
  tryTimer: NodeJS.Timeout | undefined = undefined;
  /** A fault delay or a retry back-off in progress. */
  waitTimer: NodeJS.Timeout | undefined = undefined;
  /** Upstream attempts sent (1 + retries); 0 until the first one leaves (fault delay, pending queue). */
  tries = 0;
  /** Retry state; only for routes with a usable retry policy. */
  rs: RetryRun | undefined = undefined;
  mirrors: MirrorRequest[] | undefined = undefined;
  /** A CORS request: the policy and the allowed origin echoed in the response. */
  cors: CorsPolicy | undefined = undefined;
  corsOrigin: string | undefined = undefined;
  vh: VirtualHost | undefined = undefined;
  action: RouteAction | undefined = undefined;
  autoHostRewrite = false;
  /** The downstream request body has ended (never set for bodyless requests). */
  bodyDone = false;
  /** Counted in the fault filter's active faults. */
  faulted = false;
  /** Circuit-breaker slots of this request (resilience/admission.ts). */
  admission: Ticket | undefined = undefined;
  /** The attempt admission lets go (sendAttempt). */
  attemptKind: UpstreamKind = 'fast';
  attemptOut: OutgoingHttpHeaders | undefined = undefined;
  /** Stream idle timeout (stream-idle.ts): last activity on the coarse clock, and the limit. */
  lastActive = 0;
  idleMs = 0;
  idlePrev: IdleStream | undefined = undefined;
  idleNext: IdleStream | undefined = undefined;

  status = 0;
  flags = '-';
  grpcStatus = -1;
  reqBytes = 0;
  respBytes = 0;
  requestId = '';
  responseStarted = false;
  downEnded = false;
  upFinished = false;
  done = false;
  labels: LabelBase;
  peerHeader: string | undefined;
  /** Inbound over mutual TLS: the connection's principals (undefined for plaintext). */
  downTls: TlsIdentity | undefined = undefined;
  h2Headers: IncomingHttpHeaders | undefined;
  originalPath = '';
  originalAuthority = '';
  upServiceTime = 0;
  routeName: string | undefined;
  /** Envoy's response code details when the proxy decided the outcome (RBAC denial). */
  details: string | undefined = undefined;

  constructor(readonly ctx: HttpContext) {
    this.labels = ctx.defaultLabels;
  }

  // ------------------------------------------------------------ downstream entry points

  fromH1(req: IncomingMessage, res: ServerResponse): void {
    this.down = Down.H1;
    this.h1req = req;
    this.h1res = res;
    this.method = req.method ?? 'GET';
    const h = req.headers;
    this.setTarget(req.url ?? '/', h.host);
    this.scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    this.downBodyless = h['content-length'] === undefined || h['content-length'] === '0' ? h['transfer-encoding'] === undefined : false;
    (res as Tagged<ServerResponse>)[kEx] = this;
    (req as Tagged<IncomingMessage>)[kEx] = this;
    res.on('close', onDownClose);
    this.body = req;
    this.run(h);
  }

  /** HTTP/1.1 request target: origin form, or absolute form (a forward-proxy request), whose authority wins over Host. */
  private setTarget(url: string, host: string | undefined): void {
    if (url.charCodeAt(0) !== 47 /* / */ && (url.startsWith('http://') || url.startsWith('https://'))) {
      const from = url.indexOf('//') + 2;
      const slash = url.indexOf('/', from);
      this.authority = slash < 0 ? url.slice(from) : url.slice(from, slash);
      this.path = slash < 0 ? '/' : url.slice(slash);
    } else {
      this.authority = host ?? '';
      this.path = url;
    }
  }

  fromFast(req: FastRequest): void {
    this.down = Down.Fast;
    this.fast = req;
    this.method = req.method;
    if ((req.conn.socket as { encrypted?: boolean }).encrypted) this.scheme = 'https';
    const h = req.headers;
    this.setTarget(req.url, h.host);
    this.downBodyless = req.bodyless;
    this.run(h);
  }

  fromH2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
    this.down = Down.H2;
    this.h2 = stream;
    this.method = (headers[':method'] as string | undefined) ?? 'GET';
    this.authority = (headers[':authority'] as string | undefined) ?? headers.host ?? '';
    this.path = (headers[':path'] as string | undefined) ?? '/';
    this.scheme = (headers[':scheme'] as string | undefined) ?? 'http';
    this.downBodyless = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    this.h2Headers = headers;
    (stream as Tagged<ServerHttp2Stream>)[kEx] = this;
    stream.on('close', onDownClose);
    stream.on('error', noop); // reported through 'close' and its rstCode
    this.body = stream;
    this.run(headers);
  }

  fromUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.down = Down.Raw;
    this.h1req = req;
    this.raw = socket;
    this.rawHead = head;
    this.method = req.method ?? 'GET';
    this.authority = req.headers.host ?? '';
    this.path = req.url ?? '/';
    this.downBodyless = true;
    (socket as Tagged<Socket>)[kEx] = this;
    socket.on('close', onDownClose);
    socket.on('error', noop);
    this.run(req.headers);
  }

  // ------------------------------------------------------------ routing and dispatch

  private run(headers: IncomingHttpHeaders): void {
    const ctx = this.ctx;
    this.headers = headers;
    this.snap = ctx.engine.snapshot();
    const ct = headers['content-type'];
    this.grpc = ct !== undefined && ct.startsWith('application/grpc');
    if (this.method === 'CONNECT') {
      this.localReply(405, '-', 'CONNECT is not supported by this proxy');
      return;
    }
    // Inbound: the calling sidecar told us who it is; metrics label the source with it.
    this.originalPath = this.path;
    this.originalAuthority = this.authority;
    const peer = headers[PEER_HEADER];
    if (!ctx.outbound) {
      const mtls = (this.downTls = ctx.downstreamMtls(this));
      if (typeof peer === 'string') {
        this.peerHeader = peer;
        this.labels = ctx.inboundLabels(peer, undefined, mtls);
      } else if (mtls !== undefined) this.labels = ctx.inboundLabels(undefined, undefined, mtls);
    }

    const table = ctx.routeTable(this.snap);
    const d = table === undefined ? undefined : decide(table, this);
    // RBAC filters come before fault, CORS and the router (Istio's order): even a request without
    // a route, or to a direct response, is authorised first.
    if (ctx.rbac !== undefined) {
      const denied = checkRbac(ctx.rbac, ctx.rbacRequest(this), d?.route, d?.vh, d?.kind === 'forward' ? d.weighted : undefined);
      if (denied !== undefined) {
        this.details = denied;
        this.routeName = d?.route?.name;
        this.localReply(403, '-', RBAC_DENIED_BODY);
        return;
      }
    }
    if (d === undefined) {
      this.localReply(404, 'NR', '');
      return;
    }
    if (d.kind === 'local') {
      this.routeName = d.route?.name;
      this.respMutations = d.mutations;
      if (ctx.cors && d.route !== undefined && this.corsCheck(d.route, d.vh)) return;
      this.localReply(d.status, d.flag, d.body ?? '', d.headers);
      return;
    }
    this.routeName = d.route.name;
    this.respMutations = d.mutations;
    this.vh = d.vh;
    // A route's idle_timeout overrides the HCM's stream_idle_timeout (0 disables either).
    const idle = d.action.idleTimeoutMs ?? ctx.hcm.streamIdleTimeoutMs;
    if (idle > 0 && this.down !== Down.Raw) watchIdle(this, idle);
    // The fault filter runs before CORS and the router (Istio's filter order).
    const fault = ctx.fault;
    if (fault !== undefined && this.down !== Down.Raw) {
      const f = decideFault(effectiveFault(fault, d.route, d.vh, d.weighted), this, d.cluster, this.grpc);
      if (f !== undefined) {
        this.faulted = true;
        faultStarted();
        if (f.delayMs > 0) {
          this.addFlag('DI');
          this.waitTimer = setTimeout(onFaultDelay, f.delayMs, this, d, f);
        } else this.faultAbort(f.abort!);
        return;
      }
    }
    this.forward(d);
  }

  /** CORS, then the router: cluster, host, upstream request. */
  forward(d: Forward): void {
    const ctx = this.ctx;
    const headers = this.headers;
    if (ctx.cors && this.corsCheck(d.route, d.vh)) return;
    const action = (this.action = d.action);
    let timeout = action.timeoutMs;
    const grpcMax = action.grpcTimeoutHeaderMaxMs;
    if (grpcMax !== undefined && this.grpc) {
      // Envoy's max_stream_duration.grpc_timeout_header_max: the grpc-timeout header is the
      // route timeout (none when absent), capped by the max unless it is 0.
      let t = parseGrpcTimeout(headers['grpc-timeout']) ?? 0;
      const off = action.grpcTimeoutHeaderOffsetMs;
      if (off !== undefined && t > off) t -= off;
      if (grpcMax > 0 && (t === 0 || t > grpcMax)) t = grpcMax;
      timeout = t;
    }
    this.timeoutMs = timeout;
    const cluster = this.snap.clusters.get(d.cluster);
    if (!cluster) {
      this.localReply(d.action.clusterNotFoundStatus, 'NC', '');
      return;
    }
    this.cluster = cluster;
    if (!ctx.outbound) this.labels = ctx.inboundLabels(this.peerHeader, cluster, this.downTls);
    const host = pickHost(ctx.engine, cluster, d.action, this, ctx.remoteAddress(this), d.action.hashPolicies.length > 0 ? this : undefined, cluster.type === 'ORIGINAL_DST' ? ctx.originalDestination(this) : undefined);
    if (!host) {
      if (ctx.outbound) this.labels = ctx.outboundLabels(cluster, undefined);
      this.localReply(503, 'UH', BODY.UH);
      return;
    }
    this.host = host;
    const ep = (this.endpoint = host.endpoint);
    // Outbound labels name the destination workload, known once the endpoint is picked.
    if (ctx.outbound) this.labels = ctx.outboundLabels(cluster, ep);
    const policy = action.retryPolicy ?? d.vh.retryPolicy;
    if (policy !== undefined && this.down !== Down.Raw) {
      this.perTryMs = policy.perTryTimeoutMs ?? 0;
      const plan = retryPlan(policy);
      if (plan !== undefined) this.rs = new RetryRun(plan);
    }

    // End-to-end headers for the upstream request.
    const out = copyEndToEnd(headers, { stripEnvoy: ctx.hcm.useRemoteAddress, upgrade: this.down === Down.Raw });
    if (this.down === Down.H1 || this.down === Down.Fast) delete out.expect; // already answered 100-continue
    const remote = ctx.remoteAddress(this);
    if (ctx.hcm.useRemoteAddress) {
      const client = trustedClientAddress(headers['x-forwarded-for'], remote, ctx.hcm.xffNumTrustedHops);
      // Envoy tells upstreams the external client's address (only for external clients).
      if (!isInternalAddress(client)) out['x-envoy-external-address'] = client;
      out['x-forwarded-for'] = appendXff(headers['x-forwarded-for'], remote);
      out['x-forwarded-proto'] = this.scheme;
    } else if (out['x-forwarded-proto'] === undefined) {
      out['x-forwarded-proto'] = this.scheme;
    }
    let rid = headers['x-request-id'];
    if (typeof rid !== 'string' || rid === '') {
      if (ctx.hcm.generateRequestId) out['x-request-id'] = rid = newRequestId();
      else rid = '';
    }
    this.requestId = rid;
    if (ctx.outbound) out[PEER_HEADER] = ctx.engine.selfPeerHeader;
    applyRequestMutations(out, d.mutations);
    this.autoHostRewrite = d.action.hostRewrite?.kind === 'auto' && d.weighted?.hostRewrite === undefined;
    this.authority = this.autoHostRewrite ? autoHost(ep) : d.authority;
    this.path = d.path;
    if (action.mirrors.length > 0 && this.down !== Down.Raw) {
      this.mirrors = startMirrors(ctx.engine, this.snap, action.mirrors, out, this.method, this.path, this.authority, this.downBodyless, this.timeoutMs > 0 ? this.timeoutMs : MIRROR_MAX_MS);
    }
    if (this.rs !== undefined) this.rs.base = out;
    this.attempt(out);
  }

  /** One upstream attempt on this.host (through admission: it may wait for a connection). */
  private attempt(out: OutgoingHttpHeaders): void {
    const cluster = this.cluster!;
    const proto = cluster.upstreamProtocol === 'downstream' ? (this.down === Down.H2 ? 'http2' : 'http1') : cluster.upstreamProtocol;
    // Circuit breakers: sent now, queued for a connection, or answered 503 UO (resilience/admission.ts).
    const kind = proto === 'http2' && this.down !== Down.Raw ? 'h2' : this.down === Down.Fast ? 'fast' : this.down === Down.Raw ? 'raw' : 'agent';
    this.attemptKind = kind;
    this.attemptOut = out;
    admit(this, kind, sendAttempt);
    if (this.downBodyless) this.startTimer();
  }

  /** Sends the attempt prepared in attempt() (called by admission, now or once a connection frees up). */
  sendAttempt(): void {
    const out = this.attemptOut!;
    const kind = this.attemptKind;
    this.tries++;
    this.upFinished = false;
    const vh = this.vh;
    if (vh !== undefined && vh.includeAttemptCountInRequest) out['x-envoy-attempt-count'] = String(this.tries);
    this.upStart = performance.now();
    if (kind === 'h2') this.sendH2(out);
    else if (kind === 'fast') this.sendFast(out);
    else this.sendH1(out);
    if (this.downBodyless || (this.tries > 1 && this.bodyDone)) this.startTimer();
  }

  // ------------------------------------------------------------ resilience (faults, CORS, retries)

  /** Adds a response flag, in Envoy's order ("UF,URX", "DI,FI"). */
  addFlag(f: string): void {
    if (this.flags === '-') this.flags = f;
    else if (!this.flags.split(',').includes(f)) this.flags = joinFlags(this.flags, f);
  }

  /** The fault filter's abort: an HTTP status, or a gRPC status (HTTP 200, as Envoy answers it). */
  faultAbort(a: NonNullable<FaultDecision['abort']>): void {
    this.addFlag('FI');
    if (a.httpStatus !== undefined) {
      this.localReply(a.httpStatus, '-', FAULT_ABORT_BODY);
      return;
    }
    const gs = a.grpcStatus!;
    if (this.grpc && this.down !== Down.Raw) {
      this.localReply(200, '-', '', { 'content-type': 'application/grpc', 'grpc-status': String(gs), 'grpc-message': encodeURIComponent(FAULT_ABORT_BODY) });
      this.grpcStatus = gs;
    } else this.localReply(200, '-', FAULT_ABORT_BODY);
  }

  /** CORS: true when a preflight was answered; a simple request gets its response headers later. */
  private corsCheck(route: Route, vh: VirtualHost | undefined): boolean {
    if (this.headers.origin === undefined) return false;
    const policy = corsPolicyFor(route, vh);
    if (policy === undefined) return false;
    const origin = corsOrigin(policy, this.headers);
    if (origin === undefined) return false;
    if (isPreflight(this.method, this.headers)) {
      this.localReply(200, '-', '', preflightHeaders(policy, origin));
      return true;
    }
    this.cors = policy;
    this.corsOrigin = origin;
    return false;
  }

  /** A response arrived on this attempt: true when it is discarded and the request retried. */
  retryResponse(status: number, headers: IncomingHttpHeaders): boolean {
    if (!retriableResponse(this.rs!.plan, status, headers, this.grpc) || !this.retryAllowed()) return false;
    reportAttempt(this, status); // outlier detection: the discarded answer counts too
    this.scheduleRetry();
    return true;
  }

  /**
   * The attempt ended in a retriable way: may another one start? Only before any response byte
   * went downstream, with retries left, a replayable body and a circuit-breaker retry slot.
   */
  private retryAllowed(): boolean {
    const rs = this.rs!;
    this.releaseSlot(); // the attempt that held it is over
    if (this.responseStarted || this.done || this.downEnded) return false;
    if (rs.left <= 0) {
      retryCounters(this.ctx.engine, this.cluster!.name).upstream_rq_retry_limit_exceeded++;
      this.addFlag('URX');
      return false;
    }
    if (rs.overflow) {
      retryCounters(this.ctx.engine, this.cluster!.name).retry_or_shadow_abandoned++;
      return false;
    }
    // max_retries / retry_budget of the cluster (counts upstream_rq_retry_overflow when full).
    if (!tryRetry(this.ctx.engine, this.cluster!)) return false;
    rs.slot = true;
    return true;
  }

  private releaseSlot(): void {
    const rs = this.rs;
    if (rs !== undefined && rs.slot) {
      rs.slot = false;
      releaseRetry(this.ctx.engine, this.cluster!);
    }
  }

  private scheduleRetry(): void {
    const rs = this.rs!;
    rs.left--;
    rs.retries++;
    retryCounters(this.ctx.engine, this.cluster!.name).upstream_rq_retry++;
    this.discardAttempt();
    // The downstream body waits (in the replay buffer or unread) until the next attempt.
    if (!this.bodyDone && !this.downBodyless) {
      if (this.down === Down.Fast) this.fast!.conn.pause();
      else this.body?.pause();
    }
    this.waitTimer = setTimeout(onRetry, backoffMs(rs.plan, rs.retries), this);
  }

  /** Drops the current attempt: its upstream stream is reset and no longer reports here. */
  private discardAttempt(): void {
    if (this.tryTimer !== undefined) {
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
    this.upFinished = true;
    const req = this.upReq as Tagged<ClientRequest> | undefined;
    if (req !== undefined) {
      this.upReq = undefined;
      req[kEx] = undefined;
      req.destroy();
    }
    const res = this.upRes as Tagged<IncomingMessage> | undefined;
    if (res !== undefined) {
      this.upRes = undefined;
      res[kEx] = undefined;
      res.destroy();
    }
    this.dropUpFast();
    const s = this.upH2 as Tagged<ClientHttp2Stream> | undefined;
    if (s !== undefined) {
      this.upH2 = undefined;
      s[kEx] = undefined;
      if (!s.destroyed) s.close(NGHTTP2_CANCEL);
    }
    const host = this.host;
    if (host !== undefined) {
      if (this.rs!.plan.previousHosts) (this.rs!.tried ??= new Set()).add(host.endpoint.key);
      this.host = undefined;
      releaseHost(host);
    }
  }

  /** The back-off is over: pick a host (another one with previous_hosts) and send again. */
  retryNow(): void {
    if (this.done || this.downEnded) {
      this.releaseSlot();
      return;
    }
    const ctx = this.ctx;
    const cluster = this.cluster!;
    const rs = this.rs!;
    const host = pickHost(ctx.engine, cluster, this.action, this, ctx.remoteAddress(this), undefined, cluster.type === 'ORIGINAL_DST' ? ctx.originalDestination(this) : undefined, rs.tried);
    if (!host) {
      this.upFinished = true;
      this.localReply(503, 'UH', BODY.UH);
      return;
    }
    this.host = host;
    this.endpoint = host.endpoint;
    if (ctx.outbound) this.labels = ctx.outboundLabels(cluster, host.endpoint);
    if (this.autoHostRewrite) this.authority = autoHost(host.endpoint);
    this.attempt(rs.base!);
  }

  /** The body outgrew the replay buffer while a retry waited: it cannot be sent again. */
  retryAbandoned(): void {
    if (this.waitTimer !== undefined) {
      clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
    }
    this.releaseSlot();
    retryCounters(this.ctx.engine, this.cluster!.name).retry_or_shadow_abandoned++;
    this.upFinished = true;
    this.localReply(503, 'UC', BODY.UC);
  }

  /** A retry: the body kept so far, then the rest as it arrives. */
  private replay(dest: Writable): void {
    const chunks = this.rs!.chunks;
    if (chunks !== undefined) for (const c of chunks) dest.write(c);
    if (this.bodyDone) dest.end();
    else if (this.down === Down.Fast) this.fast!.conn.resume();
    else this.body!.resume();
  }

  private sendH1(out: OutgoingHttpHeaders): void {
    const ep = this.endpoint!;
    out.host = this.authority;
    const pool = this.ctx.engine.pools.for(this.cluster!);
    // Upgrades use a connection of their own (no agent): a TLS endpoint gets its TLS socket directly.
    const rawTls = this.down === Down.Raw ? pool.connectTls(ep, 'http1') : undefined;
    const req = http.request({
      agent: this.down === Down.Raw ? false : pool.agent,
      ...(rawTls ? { createConnection: () => rawTls } : {}),
      ...endpointOption(this.cluster!, ep),
      ...(ep.isPipe ? { socketPath: ep.address } : { host: ep.address, port: ep.port }),
      method: this.method,
      path: this.path,
      headers: out,
      setHost: false,
    }) as Tagged<ClientRequest>;
    req[kEx] = this;
    this.upReq = req;
    req.on('response', onH1Response);
    req.on('error', onUpError);
    if (this.down === Down.Raw) {
      req.on('upgrade', onUpgrade);
      req.end();
      return;
    }
    this.pumpRequest(req);
  }

  /** HTTP/1.1 upstream from the fast path: one head string on a pooled raw connection. */
  private sendFast(out: OutgoingHttpHeaders): void {
    // Explicit keep-alive, as node:http's agent sends it (HTTP/1.0 upstreams need it).
    let head = `${this.method} ${this.path} HTTP/1.1\r\nhost: ${this.authority}\r\n${headerLines(out, 'host')}connection: keep-alive\r\n`;
    // A chunked (or otherwise unsized) downstream body is re-framed chunk by chunk.
    this.upChunked = !this.downBodyless && out['content-length'] === undefined;
    if (this.upChunked) head += 'transfer-encoding: chunked\r\n';
    this.upHead = head += '\r\n';
    const conn = this.ctx.engine.pools.for(this.cluster!).h1Pool(this.endpoint!).acquire();
    this.upFast = conn;
    if (this.tries > 1 && !this.downBodyless) {
      // A retry: the kept body, then the rest as it arrives.
      conn.send(this, head, false);
      const chunks = this.rs!.chunks;
      if (chunks !== undefined) for (const c of chunks) this.writeUpFast(conn, c);
      if (this.bodyDone) {
        if (this.upChunked) conn.write('0\r\n\r\n');
        conn.endRequest();
      } else this.fast!.conn.resume();
      return;
    }
    conn.send(this, head, this.downBodyless);
    if (!this.downBodyless) this.pumpFast();
  }

  /**
   * The fast-path body to the first attempt: what the connection held (a fault delay, a pending
   * queue, pipelining) first; reading resumes if holding it had paused the connection.
   */
  private pumpFast(): void {
    const conn = this.fast!.conn;
    conn.pumpBody(this.fast!, this);
    conn.resume();
  }

  private writeUpFast(up: H1Conn, chunk: Buffer): boolean {
    if (!this.upChunked) return up.write(chunk);
    up.socket.cork();
    up.write(`${chunk.length.toString(16)}\r\n`);
    up.write(chunk);
    const ok = up.write('\r\n');
    up.socket.uncork();
    return ok;
  }

  /** A downstream body chunk (fast path). */
  fastBody(chunk: Buffer): void {
    this.lastActive = idleClock;
    if (this.tries === 0) {
      // No upstream request yet (a fault delay, a pending queue): kept by the connection until pumpBody.
      this.fast!.conn.hold(this.fast!, chunk);
      return;
    }
    this.reqBytes += chunk.length;
    if (this.rs !== undefined) this.rs.keep(chunk);
    if (this.mirrors !== undefined) for (const m of this.mirrors) m.write(chunk);
    const up = this.upFast;
    if (up !== undefined) {
      if (!this.writeUpFast(up, chunk)) this.fast!.conn.pause();
    } else if (this.upH2 !== undefined && !this.upH2.destroyed) {
      if (!this.upH2.write(chunk)) {
        this.fast!.conn.pause();
        (this.upH2 as Tagged<ClientHttp2Stream>)[kEx] = this;
        this.upH2.once('drain', onFastUpDrain);
      }
    } else if (this.waitTimer !== undefined && this.rs !== undefined && this.rs.overflow) this.retryAbandoned();
  }

  /** The downstream body ended (fast path). */
  fastBodyEnd(): void {
    this.bodyDone = true;
    if (this.tries === 0) return; // pumpBody calls again when the upstream request starts
    if (this.mirrors !== undefined) for (const m of this.mirrors) m.end();
    const up = this.upFast;
    if (up !== undefined) {
      if (this.upChunked) up.write('0\r\n\r\n');
      up.endRequest();
    } else if (this.upH2 !== undefined && !this.upH2.destroyed) this.upH2.end();
    this.startTimer();
  }

  /** The downstream socket drained: resume the upstream response. */
  fastDrained(): void {
    if (this.upFast !== undefined) this.upFast.socket.resume();
    else this.upH2?.resume();
  }

  // UpstreamUser (h1-upstream.ts): the fast path's upstream connection reports here.

  onUpHead(status: number, headers: IncomingHttpHeaders): void {
    if (this.done || this.upFinished) {
      this.dropUpFast();
      return;
    }
    if (this.rs !== undefined && this.retryResponse(status, headers)) return;
    this.respond(status, copyEndToEnd(headers, { stripEnvoy: false, upgrade: false }), headers, false);
  }

  onUpBody(chunk: Buffer): void {
    this.respBytes += chunk.length;
    this.lastActive = idleClock;
    if (this.downEnded) return;
    if (!this.fast!.write(chunk)) this.upFast?.socket.pause();
  }

  onUpEnd(trailers: IncomingHttpHeaders | undefined): void {
    this.upFast = undefined;
    this.upFinished = true;
    if (this.downEnded) return;
    if (trailers !== undefined) this.trailers = trailers;
    this.endDownstream();
  }

  onUpError(err: NodeJS.ErrnoException, retryable: boolean): void {
    const conn = this.upFast;
    this.upFast = undefined;
    if (retryable && !this.retried && conn !== undefined && this.downBodyless && !this.done && !this.upFinished && IDEMPOTENT.has(this.method)) {
      // A pooled connection the upstream closed just as it was reused, before answering: the
      // request (no body) is sent again once, on a new connection.
      this.retried = true;
      const fresh = new H1Conn(conn.pool);
      this.upFast = fresh;
      fresh.send(this, this.upHead, true);
      return;
    }
    this.upstreamFailed(err);
  }

  cork(): void {
    this.fast?.conn.socket.cork();
  }

  uncork(): void {
    this.fast?.conn.socket.uncork();
  }

  onUpDrain(): void {
    this.fast?.conn.resume();
  }

  private dropUpFast(): void {
    const up = this.upFast;
    if (up !== undefined) {
      this.upFast = undefined;
      up.abandon();
    }
  }

  private sendH2(out: OutgoingHttpHeaders): void {
    out[':method'] = this.method;
    out[':path'] = this.path;
    out[':authority'] = this.authority;
    out[':scheme'] = 'http';
    delete out.host;
    const session = this.ctx.engine.pools.for(this.cluster!).session(this.endpoint!);
    let s: Tagged<ClientHttp2Stream>;
    try {
      s = session.request(out, { endStream: this.downBodyless }) as Tagged<ClientHttp2Stream>;
    } catch (err) {
      this.upstreamFailed(err as NodeJS.ErrnoException);
      return;
    }
    s[kEx] = this;
    this.upH2 = s;
    s.on('response', onH2Response);
    s.on('trailers', onH2Trailers);
    s.on('error', onUpError);
    s.on('close', onH2Close);
    if (!this.downBodyless) this.pumpRequest(s);
  }

  /** Streams the downstream body upstream with backpressure, counting bytes. */
  private pumpRequest(dest: Writable): void {
    if (this.downBodyless) {
      dest.end();
      if (this.down === Down.H1 && this.tries === 1) this.h1req!.resume();
      return;
    }
    if (this.tries > 1) {
      this.replay(dest);
      return;
    }
    if (this.down === Down.Fast) {
      this.pumpFast();
      return;
    }
    const src = this.body! as Tagged<Readable>;
    (dest as Tagged<Writable>)[kEx] = this;
    src.on('data', onReqData);
    src.on('end', onReqEnd);
  }

  /** At the end of the request body: the route timeout, and the current attempt's per-try timeout. */
  startTimer(): void {
    if (this.done || this.downEnded) return;
    if (this.timeoutMs > 0 && this.timer === undefined) this.timer = setTimeout(onTimeout, this.timeoutMs, this);
    if (this.perTryMs > 0 && this.tryTimer === undefined && this.waitTimer === undefined && this.tries > 0 && !this.responseStarted) {
      this.tryTimer = setTimeout(onTryTimeout, this.perTryMs, this);
    }
  }

  /** No byte either way for idleMs: 408 before the response started (Envoy's "stream timeout"), else a reset. */
  streamIdleTimedOut(): void {
    if (this.done) return;
    this.upFinished = true;
    if (this.responseStarted) this.abort('SI');
    else this.localReply(408, 'SI', 'stream timeout');
  }

  /** The per-try timeout fired before response headers: retry, or 504. */
  perTryTimedOut(): void {
    reportAttempt(this, 'timeout'); // outlier detection
    if (this.rs !== undefined && retriableFailure(this.rs.plan, 'UT') && this.retryAllowed()) {
      this.scheduleRetry();
      return;
    }
    this.upFinished = true;
    this.localReply(504, 'UT', BODY.UT);
  }

  // ------------------------------------------------------------ responses

  /** Response headers from upstream (either protocol), already filtered of hop-by-hop headers. */
  respond(status: number, headers: OutgoingHttpHeaders, upstreamHeaders: IncomingHttpHeaders, endStream: boolean): void {
    this.responseStarted = true;
    this.lastActive = idleClock;
    this.status = status;
    reportAttempt(this, status); // outlier detection: the upstream's answer to this attempt
    const ctx = this.ctx;
    if (this.tryTimer !== undefined) {
      // Envoy's per-try timeout covers the wait for response headers.
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
    if (ctx.outbound) {
      const peer = upstreamHeaders[PEER_HEADER];
      // The connection that answered names the destination's principal (plaintext: one property read).
      const upTls = tlsIdentity(this.upFast?.socket ?? this.upRes?.socket ?? this.upH2?.session?.socket);
      if (typeof peer === 'string' || upTls !== undefined) this.labels = ctx.outboundLabels(this.cluster!, this.endpoint, typeof peer === 'string' ? peer : undefined, upTls);
    } else {
      headers[PEER_HEADER] = ctx.engine.selfPeerHeader;
    }
    this.upServiceTime = performance.now() - this.upStart;
    if (!ctx.suppressEnvoyHeaders) headers['x-envoy-upstream-service-time'] = String(Math.round(this.upServiceTime));
    if (this.grpc) {
      const gs = upstreamHeaders['grpc-status'];
      if (gs !== undefined) this.grpcStatus = Number(gs);
    }
    if (this.setCookie !== undefined) {
      const cur = headers['set-cookie'];
      headers['set-cookie'] = cur === undefined ? this.setCookie : [...(Array.isArray(cur) ? cur : [String(cur)]), this.setCookie];
    }
    applyResponseMutations(headers, this.respMutations);
    if (this.rs !== undefined && this.rs.retries > 0 && status < 500) retryCounters(ctx.engine, this.cluster!.name).upstream_rq_retry_success++;
    const vh = this.vh;
    if (vh !== undefined && vh.includeAttemptCountInResponse) headers['x-envoy-attempt-count'] = String(this.tries);
    if (this.corsOrigin !== undefined) addCorsResponseHeaders(headers, this.cors!, this.corsOrigin);
    this.writeHead(status, headers, endStream);
  }

  private writeHead(status: number, headers: OutgoingHttpHeaders, endStream: boolean): void {
    switch (this.down) {
      case Down.H1: {
        const res = this.h1res!;
        if (this.ctx.draining) headers.connection = 'close';
        res.writeHead(status, headers);
        if (endStream) res.end();
        break;
      }
      case Down.H2: {
        const s = this.h2!;
        if (s.destroyed || s.closed) return;
        headers[':status'] = status;
        delete headers.host;
        if (endStream) s.respond(headers, { endStream: true });
        else {
          s.respond(headers, { waitForTrailers: true });
          s.once('wantTrailers', onWantTrailers);
        }
        break;
      }
      case Down.Fast:
        this.fast!.writeHead(status, headers, endStream);
        break;
      case Down.Raw: {
        // A refused upgrade: the body (if any) is delimited by closing the connection.
        if (status !== 101) headers.connection = 'close';
        this.raw!.write(rawHead(status, headers));
        if (endStream) this.raw!.end();
        break;
      }
    }
    if (endStream) this.downEnded = true;
  }

  /** The writable side of the downstream for the body. */
  downWritable(): Writable {
    return this.down === Down.H1 ? this.h1res! : this.down === Down.H2 ? this.h2! : this.raw!;
  }

  trailers: IncomingHttpHeaders | undefined;

  endDownstream(): void {
    this.downEnded = true;
    this.clearTimer();
    const t = this.trailers;
    if (t && this.grpc && t['grpc-status'] !== undefined) this.grpcStatus = Number(t['grpc-status']);
    switch (this.down) {
      case Down.H1:
        if (t) this.h1res!.addTrailers(filterTrailers(t));
        this.h1res!.end();
        break;
      case Down.H2:
        this.h2!.end(); // 'wantTrailers' sends them
        break;
      case Down.Raw:
        this.raw!.end();
        break;
      case Down.Fast:
        this.fast!.end(t ? filterTrailers(t) : undefined);
        break;
    }
  }

  /** A response generated by the proxy itself (Envoy's "local reply"). */
  localReply(status: number, flag: string, body: string | Buffer, extra?: OutgoingHttpHeaders): void {
    if (this.responseStarted) {
      this.abort(flag);
      return;
    }
    this.responseStarted = true;
    this.status = status;
    if (flag !== '-') this.addFlag(flag);
    this.clearTimer();
    const headers: OutgoingHttpHeaders = extra ? { ...extra } : {};
    applyResponseMutations(headers, this.respMutations);
    if (this.corsOrigin !== undefined) addCorsResponseHeaders(headers, this.cors!, this.corsOrigin);
    let payload: string | Buffer = body;
    if (this.grpc && this.down !== Down.Raw && status >= 300) {
      // gRPC clients read errors from grpc-status: answer "trailers-only", as Envoy does.
      this.status = 200;
      this.grpcStatus = grpcStatusForHttp(status);
      headers['content-type'] = 'application/grpc';
      headers['grpc-status'] = String(this.grpcStatus);
      if (body.length) headers['grpc-message'] = encodeURIComponent(body.toString());
      payload = '';
    } else if (payload.length) {
      if (headers['content-type'] === undefined) headers['content-type'] = 'text/plain';
    }
    headers['content-length'] = String(Buffer.byteLength(payload));
    this.respBytes = Buffer.byteLength(payload);
    if (!this.ctx.outbound) headers[PEER_HEADER] = this.ctx.engine.selfPeerHeader;
    if (this.down === Down.Raw) headers.connection = 'close';
    // Unread request body: HTTP/1.1 keeps the connection usable by draining it (Node does).
    if (payload.length === 0) this.writeHead(this.status, headers, true);
    else if (this.down === Down.Fast) {
      this.writeHead(this.status, headers, false);
      this.downEnded = true;
      this.fast!.end(undefined, payload);
    } else {
      this.writeHead(this.status, headers, false);
      const w = this.downWritable();
      this.downEnded = true;
      if (this.down === Down.H2) this.trailers = undefined;
      w.end(payload);
    }
    if (this.upReq) this.upReq.destroy();
    this.dropUpFast();
    if (this.upH2 && !this.upH2.destroyed) this.upH2.close(NGHTTP2_CANCEL);
  }

  /** Resets both sides after the response started (Envoy resets the downstream stream). */
  abort(flag: string): void {
    if (flag !== '-') this.addFlag(flag);
    this.clearTimer();
    this.upFinished = true;
    if (this.upReq) this.upReq.destroy();
    this.dropUpFast();
    if (this.upH2 && !this.upH2.destroyed) this.upH2.close(NGHTTP2_CANCEL);
    switch (this.down) {
      case Down.H1: this.h1res!.destroy(); break;
      case Down.Fast: this.fast!.conn.destroy(); break;
      case Down.H2: if (!this.h2!.destroyed) this.h2!.close(NGHTTP2_INTERNAL_ERROR); break;
      case Down.Raw: this.raw!.destroy(); break;
    }
  }

  upstreamFailed(err: NodeJS.ErrnoException): void {
    if (this.upFinished || this.done) return;
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    const root = err.code === 'ERR_HTTP2_STREAM_CANCEL' && cause ? cause : err;
    const flag = upstreamErrorFlag(root);
    const tlsFailure = (root as TlsFailedError)[kTlsFailure];
    if (tlsFailure !== undefined) this.details = `upstream_reset_before_response_started{connection_failure,TLS_error:_${tlsFailure}}`;
    if (!this.responseStarted) reportAttempt(this, localOriginOf(flag)); // outlier detection: local-origin failure
    if (this.rs !== undefined && !this.responseStarted) {
      const kind = flag === 'UR' && /REFUSED_STREAM/.test(err.message) ? 'REFUSED' : flag;
      if (retriableFailure(this.rs.plan, kind) && this.retryAllowed()) {
        this.scheduleRetry();
        return;
      }
    }
    this.upFinished = true;
    if (this.responseStarted) this.abort(flag);
    else if (flag === 'UPE') this.localReply(502, flag, BODY.UPE);
    else this.localReply(503, flag, BODY[flag]);
  }

  clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.tryTimer !== undefined) {
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
    if (this.waitTimer !== undefined) {
      clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
    }
  }

  /** Exactly once, when the downstream side is closed: stats, metrics and the access log. */
  finish(downstreamReset: boolean): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    unwatchIdle(this);
    if (downstreamReset && !this.downEnded && this.flags === '-') this.flags = 'DC';
    if (!this.upFinished) {
      this.upFinished = true;
      if (this.upReq && !this.upReq.destroyed && downstreamReset) this.upReq.destroy();
      if (downstreamReset) this.dropUpFast();
      if (this.upH2 && !this.upH2.destroyed && downstreamReset) this.upH2.close(NGHTTP2_CANCEL);
    }
    if (this.host) releaseHost(this.host);
    if (this.rs !== undefined) this.releaseSlot();
    if (this.faulted) faultEnded();
    // A mirror whose body was cut short is dropped; complete ones finish on their own.
    if (this.mirrors !== undefined && !this.bodyDone && !this.downBodyless) for (const m of this.mirrors) m.drop();
    release(this); // circuit breakers: pending / active request slot
    const durationMs = performance.now() - this.start;
    this.ctx.engine.metrics.recordRequest(this.labels, this.grpc ? 'grpc' : 'http', this.status, this.flags, this.grpcStatus, durationMs, this.reqBytes, this.respBytes);
    if (this.ctx.accessLog) this.ctx.engine.accessLog(this, durationMs);
  }
}

// ------------------------------------------------------------ event handlers (this = emitter)

function noop(): void {}

function sendAttempt(ex: Exchange): void {
  ex.sendAttempt();
}

function onReqData(this: Tagged<Readable>, chunk: Buffer): void {
  const ex = this[kEx]!;
  ex.reqBytes += chunk.length;
  ex.lastActive = idleClock;
  if (ex.rs !== undefined) ex.rs.keep(chunk);
  if (ex.mirrors !== undefined) for (const m of ex.mirrors) m.write(chunk);
  const dest = ex.upReq ?? ex.upH2;
  if (dest === undefined || dest.destroyed) {
    // Between attempts (a retry's back-off): the replay buffer has it, unless it overflowed.
    if (ex.waitTimer !== undefined && ex.rs !== undefined && ex.rs.overflow) ex.retryAbandoned();
    return;
  }
  if (!dest.write(chunk)) {
    this.pause();
    dest.once('drain', onReqDrain);
  }
}

function onReqDrain(this: Tagged<Writable>): void {
  this[kEx]?.body!.resume();
}

function onReqEnd(this: Tagged<Readable>): void {
  const ex = this[kEx]!;
  ex.bodyDone = true;
  if (ex.mirrors !== undefined) for (const m of ex.mirrors) m.end();
  const dest = ex.upReq ?? ex.upH2;
  if (dest && !dest.destroyed) dest.end();
  ex.startTimer();
}

function onFastUpDrain(this: Tagged<Writable>): void {
  this[kEx]?.fast!.conn.resume();
}

function onResData(this: Tagged<Readable>, chunk: Buffer): void {
  const ex = this[kEx];
  if (ex === undefined) return;
  ex.respBytes += chunk.length;
  ex.lastActive = idleClock;
  if (ex.down === Down.Fast) {
    // HTTP/2 upstream, fast-path downstream: the socket's 'drain' resumes us (fastDrained).
    if (!ex.downEnded && !ex.fast!.write(chunk)) this.pause();
    return;
  }
  const dest = ex.downWritable() as Tagged<Writable>;
  if (!dest.write(chunk)) {
    this.pause();
    dest[kEx] = ex;
    dest.once('drain', onResDrain);
  }
}

function onResDrain(this: Tagged<Writable>): void {
  const ex = this[kEx]!;
  (ex.upRes ?? ex.upH2)?.resume();
}

function onH1Response(this: Tagged<ClientRequest>, res: IncomingMessage): void {
  const ex = this[kEx];
  if (ex === undefined || ex.done || ex.upFinished) {
    res.destroy();
    return;
  }
  if (ex.rs !== undefined && ex.retryResponse(res.statusCode ?? 502, res.headers)) {
    res.destroy();
    return;
  }
  ex.upRes = res;
  (res as Tagged<IncomingMessage>)[kEx] = ex;
  const headers = copyEndToEnd(res.headers, { stripEnvoy: false, upgrade: false });
  const status = res.statusCode ?? 502;
  const bodyless = ex.method === 'HEAD' || status === 204 || status === 304 || res.headers['content-length'] === '0';
  ex.respond(status, headers, res.headers, bodyless && ex.down !== Down.H1);
  res.on('data', onResData);
  res.on('end', onH1ResEnd);
  res.on('error', onUpBodyError);
  res.on('aborted', onUpBodyAborted);
}

function onH1ResEnd(this: Tagged<IncomingMessage>): void {
  const ex = this[kEx];
  if (ex === undefined) return;
  ex.upFinished = true;
  if (ex.downEnded) return;
  const t = this.trailers;
  for (const _ in t) {
    ex.trailers = t;
    break;
  }
  ex.endDownstream();
}

function onUpBodyError(this: Tagged<Readable>, err: NodeJS.ErrnoException): void {
  const ex = this[kEx];
  if (ex !== undefined && !ex.upFinished) {
    ex.upFinished = true;
    if (!ex.downEnded) ex.abort(err.code?.startsWith('HPE_') ? 'UPE' : 'UC');
  }
}

function onUpBodyAborted(this: Tagged<IncomingMessage>): void {
  const ex = this[kEx];
  if (ex !== undefined && !ex.upFinished) {
    ex.upFinished = true;
    if (!ex.downEnded) ex.abort('UC');
  }
}

function onUpError(this: Tagged<ClientRequest | ClientHttp2Stream>, err: NodeJS.ErrnoException): void {
  this[kEx]?.upstreamFailed(err);
}

function onH2Response(this: Tagged<ClientHttp2Stream>, headers: IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
  const ex = this[kEx];
  if (ex === undefined || ex.done || ex.upFinished) return;
  const status = Number(headers[':status'] ?? 502);
  if (ex.rs !== undefined && ex.retryResponse(status, headers)) return;
  const out = copyEndToEnd(headers, { stripEnvoy: false, upgrade: false });
  const end = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  ex.respond(status, out, headers, end && ex.down === Down.H2);
  if (end) {
    ex.upFinished = true;
    if (!ex.downEnded) ex.endDownstream();
    return;
  }
  this.on('data', onResData);
  this.on('end', onH2ResEnd);
}

function onH2Trailers(this: Tagged<ClientHttp2Stream>, headers: IncomingHttpHeaders): void {
  const ex = this[kEx];
  if (ex !== undefined) ex.trailers = headers;
}

function onH2ResEnd(this: Tagged<ClientHttp2Stream>): void {
  const ex = this[kEx];
  if (ex === undefined) return;
  ex.upFinished = true;
  if (!ex.downEnded) ex.endDownstream();
}

function onH2Close(this: Tagged<ClientHttp2Stream>): void {
  const ex = this[kEx];
  if (ex === undefined || ex.upFinished || ex.done) return;
  // Closed without a complete response and without an 'error' event: a reset with NO_ERROR,
  // or the session went away.
  const err = Object.assign(new Error(`upstream stream closed (code ${this.rstCode})`), { code: 'ERR_HTTP2_STREAM_ERROR' });
  ex.upstreamFailed(err);
}

function onWantTrailers(this: Tagged<ServerHttp2Stream>): void {
  const ex = this[kEx]!;
  const t = ex.trailers;
  if (this.destroyed || this.closed) return;
  this.sendTrailers(t ? (filterTrailers(t) as http2.OutgoingHttpHeaders) : {});
}

function onDownClose(this: Tagged<ServerResponse | ServerHttp2Stream | Socket>): void {
  const ex = this[kEx]!;
  let reset: boolean;
  if (ex.down === Down.H1) reset = !ex.h1res!.writableFinished;
  else if (ex.down === Down.H2) reset = ex.h2!.rstCode !== 0 && ex.h2!.rstCode !== undefined ? true : !ex.downEnded;
  else {
    reset = false;
    const raw = ex.raw!;
    ex.reqBytes = raw.bytesRead;
    ex.respBytes = raw.bytesWritten;
  }
  ex.finish(reset);
}

function onTryTimeout(ex: Exchange): void {
  ex.tryTimer = undefined;
  if (ex.done || ex.responseStarted || ex.upFinished) return;
  ex.perTryTimedOut();
}

function onRetry(ex: Exchange): void {
  ex.waitTimer = undefined;
  ex.retryNow();
}

function onFaultDelay(ex: Exchange, d: Forward, f: FaultDecision): void {
  ex.waitTimer = undefined;
  if (ex.done || ex.downEnded) return;
  if (f.abort !== undefined) ex.faultAbort(f.abort);
  else ex.forward(d);
}

/** Envoy prints response flags in this order. */
const FLAG_ORDER = ['LH', 'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'RLSE', 'DC', 'URX', 'SI', 'IH', 'DPE', 'UMSDR', 'RFCF', 'NFCF', 'DT', 'UPE', 'NC', 'OM', 'DF', 'DO', 'DR'];

function joinFlags(flags: string, f: string): string {
  const all = [...flags.split(','), f];
  const rank = (x: string) => {
    const i = FLAG_ORDER.indexOf(x);
    return i < 0 ? FLAG_ORDER.length : i;
  };
  return all.sort((a, b) => rank(a) - rank(b)).join(',');
}

function onTimeout(ex: Exchange): void {
  ex.timer = undefined;
  if (ex.done) return;
  ex.upFinished = true;
  if (ex.responseStarted) ex.abort('UT');
  else {
    if (ex.upStart > 0 && ex.waitTimer === undefined) reportAttempt(ex, 'timeout'); // outlier detection: an attempt in flight (not queued, not in a retry back-off)
    ex.localReply(504, 'UT', BODY.UT);
  }
}

/** HTTP/1.1 upgrade accepted upstream: write the 101 to the raw downstream socket and splice. */
function onUpgrade(this: Tagged<ClientRequest>, res: IncomingMessage, upSocket: Socket, upHead: Buffer): void {
  const ex = this[kEx]!;
  const down = ex.raw!;
  if (ex.done || down.destroyed) {
    upSocket.destroy();
    return;
  }
  ex.clearTimer();
  ex.responseStarted = true;
  ex.status = res.statusCode ?? 101;
  ex.upFinished = true;
  const headers: OutgoingHttpHeaders = {};
  const raw = res.rawHeaders;
  // Keep Connection/Upgrade/Sec-WebSocket-*: they are the handshake.
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'keep-alive' || name === 'transfer-encoding' || name === PEER_HEADER) continue;
    const v = headers[name];
    headers[name] = v === undefined ? raw[i + 1]! : Array.isArray(v) ? [...v, raw[i + 1]!] : [String(v), raw[i + 1]!];
  }
  if (!ex.ctx.outbound) headers[PEER_HEADER] = ex.ctx.engine.selfPeerHeader;
  down.write(rawHead(ex.status, headers));
  if (upHead.length) down.write(upHead);
  if (ex.rawHead && ex.rawHead.length) upSocket.write(ex.rawHead);
  upSocket.on('error', noop);
  down.pipe(upSocket);
  upSocket.pipe(down);
  upSocket.on('close', () => down.destroy());
  down.on('close', () => upSocket.destroy());
  ex.downEnded = true;
}

function rawHead(status: number, headers: OutgoingHttpHeaders): string {
  let s = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const name in headers) {
    if (name.charCodeAt(0) === 58) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) s += `${name}: ${x}\r\n`;
    else s += `${name}: ${v}\r\n`;
  }
  return s + '\r\n';
}

function filterTrailers(t: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in t) if (k.charCodeAt(0) !== 58 && t[k] !== undefined) out[k] = t[k];
  return out;
}
