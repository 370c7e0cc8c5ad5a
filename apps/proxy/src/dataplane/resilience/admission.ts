/**
 * Admission of upstream requests against the cluster's circuit breakers, in front of the
 * connection pools, as Envoy's ConnPoolImplBase::newStream does it:
 *  - HTTP/2 (and upgrades, which bring their own connection): only max_requests applies.
 *  - HTTP/1.1 with an idle keep-alive connection to the endpoint: the request takes it at once.
 *  - Otherwise the request is *pending* (max_pending_requests; beyond it: overflow) until a
 *    connection is ready for it: a new one, once connected, when max_connections allows, else one
 *    released by another request. Like Envoy, a request waiting for its new connection to
 *    connect holds a pending slot: with max_requests_per_connection 1 every request does.
 * Overflow answers 503 UO with x-envoy-overloaded at once (no upstream connection is touched).
 *
 * A request holds one ticket from admission to Exchange.finish (release()); admitting it again
 * (a retry attempt) reuses its active-request slot and only waits for a connection.
 */
import type { ClientRequest, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ClusterConfig, Endpoint } from '../../config/model.ts';
import type { UpstreamPools } from '../upstream.ts';
import type { H1Conn } from '../h1-upstream.ts';
import { OVERFLOW_BODY, OVERFLOW_FLAG, type BreakerRegistry, type ClusterBreakers, type Priority } from './breakers.ts';

/** How the request reaches the upstream: fast-path HTTP/1.1 pool, http.Agent, HTTP/2, or an upgrade. */
export type UpstreamKind = 'fast' | 'agent' | 'h2' | 'raw';

/** What admission needs of an Exchange. */
export interface AdmissionSubject {
  readonly ctx: { readonly engine: { readonly breakers: BreakerRegistry; readonly pools: UpstreamPools }; readonly suppressEnvoyHeaders: boolean };
  readonly cluster?: ClusterConfig | undefined;
  readonly endpoint?: Endpoint | undefined;
  readonly done: boolean;
  readonly responseStarted: boolean;
  /** The connection/request `send` opened (to learn when a new connection is connected). */
  readonly upFast?: H1Conn | undefined;
  readonly upReq?: ClientRequest | undefined;
  localReply(status: number, flag: string, body: string, extra?: OutgoingHttpHeaders): void;
  /** This request's slots, kept on the request itself: a WeakMap entry per request costs the GC. */
  admission: Ticket | undefined;
}

/** Sends `ex`'s request (a function of the request, so no closure is made per request). */
type Send = (ex: AdmissionSubject) => void;

interface Waiting {
  readonly ex: AdmissionSubject;
  readonly kind: UpstreamKind;
  readonly send: Send;
  readonly ticket: Ticket;
}

export interface Ticket {
  readonly b: ClusterBreakers;
  readonly priority: Priority;
  /** Holds an active-request slot (max_requests). */
  active: boolean;
  /** Holds a pending slot (max_pending_requests): queued, or waiting for its new connection. */
  pending: boolean;
  waiting: Waiting | undefined;
}


function releasePending(t: Ticket): void {
  if (!t.pending) return;
  t.pending = false;
  t.b.releasePending(t.priority);
}

/** The pending queue of one cluster (FIFO; a request whose endpoint has no connection yet waits on). */
class PendingQueue {
  readonly items: Waiting[] = [];
  private unsubscribe: (() => void) | undefined;
  private scheduled = false;

  constructor(
    readonly b: ClusterBreakers,
    readonly pools: UpstreamPools,
  ) {}

  push(w: Waiting): void {
    this.items.push(w);
    this.unsubscribe ??= this.b.onSlot(() => this.schedule());
  }

  remove(w: Waiting): void {
    const i = this.items.indexOf(w);
    if (i >= 0) this.items.splice(i, 1);
    this.idle();
  }

  private idle(): void {
    if (this.items.length === 0 && this.unsubscribe) {
      this.unsubscribe();
      this.unsubscribe = undefined;
    }
  }

  /** Drains after the current event (a connection closing or being released is mid-callback). */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  drain(): void {
    for (let i = 0; i < this.items.length; ) {
      const w = this.items[i]!;
      const ex = w.ex;
      const t = w.ticket;
      if (ex.done || ex.responseStarted || ex.cluster === undefined || ex.endpoint === undefined) {
        this.items.splice(i, 1);
        t.waiting = undefined;
        releasePending(t);
        continue;
      }
      const pool = this.pools.for(ex.cluster);
      const fast = w.kind === 'fast';
      if (pool.hasIdle(ex.endpoint, fast)) {
        this.items.splice(i, 1);
        t.waiting = undefined;
        releasePending(t);
        start(ex, t, w.send);
      } else if (this.b.canConnect()) {
        this.items.splice(i, 1);
        t.waiting = undefined;
        connectThenStart(ex, t, w.send, w.kind);
      } else i++;
    }
    this.idle();
  }
}

const queues = new WeakMap<ClusterBreakers, PendingQueue>();

function queueFor(b: ClusterBreakers, pools: UpstreamPools): PendingQueue {
  let q = queues.get(b);
  if (!q) queues.set(b, (q = new PendingQueue(b, pools)));
  return q;
}

/** Envoy's overflow local reply. */
function overflow(ex: AdmissionSubject, t: Ticket): void {
  releasePending(t);
  ex.localReply(503, OVERFLOW_FLAG, OVERFLOW_BODY, ex.ctx.suppressEnvoyHeaders ? undefined : { 'x-envoy-overloaded': 'true' });
}

/** Takes the active-request slot (once per request) and sends. False on overflow (answered). */
function start(ex: AdmissionSubject, t: Ticket, send: Send): boolean {
  if (!t.active) {
    if (!t.b.tryRequest(t.priority)) {
      overflow(ex, t);
      return false;
    }
    t.active = true;
  }
  send(ex);
  return true;
}

/** Sends on a new connection; the request stays pending until that connection is connected. */
function connectThenStart(ex: AdmissionSubject, t: Ticket, send: Send, kind: UpstreamKind): void {
  if (!start(ex, t, send)) return;
  const done = () => releasePending(t);
  if (kind === 'fast') {
    const s = ex.upFast?.socket;
    if (s !== undefined && s.connecting) whenConnected(s, done);
    else done();
    return;
  }
  const req = ex.upReq;
  if (req === undefined || req.destroyed) return done();
  // The agent hands the socket over on the next tick.
  req.once('socket', (s: Socket) => (s.connecting ? whenConnected(s, done) : done()));
  req.once('close', done);
}

function whenConnected(s: Socket, cb: () => void): void {
  s.once('connect', cb);
  s.once('close', cb);
}

/**
 * Sends the request to ex.endpoint now, later (when a connection is available), or answers
 * 503 UO. `send` must open the upstream request synchronously (it takes the idle connection or
 * opens the new one admission counted on). release(ex) must follow once, when the request ends.
 */
export function admit<T extends AdmissionSubject>(ex: T, kind: UpstreamKind, send: (ex: T) => void, priority: Priority = 'default'): void {
  admitAny(ex, kind, send as Send, priority);
}

function admitAny(ex: AdmissionSubject, kind: UpstreamKind, send: Send, priority: Priority): void {
  const engine = ex.ctx.engine;
  const cluster = ex.cluster!;
  const b = engine.breakers.for(cluster);
  let t = ex.admission;
  if (!t) ex.admission = t = { b, priority, active: false, pending: false, waiting: undefined };
  if (kind === 'h2' || kind === 'raw') {
    start(ex, t, send);
    return;
  }
  const pool = engine.pools.for(cluster);
  const q = queueFor(b, engine.pools);
  const fast = kind === 'fast';
  if (q.items.length === 0 && pool.hasIdle(ex.endpoint!, fast)) {
    start(ex, t, send);
    return;
  }
  if (!t.pending) {
    if (!b.tryPending(t.priority)) return overflow(ex, t);
    t.pending = true;
  }
  if (q.items.length === 0 && b.canConnect()) return connectThenStart(ex, t, send, kind);
  // No new connection may open: wait (Envoy counts the connection it could not create), and
  // close an idle connection to another endpoint so the slot is not held by nobody.
  b.counters.upstream_cx_overflow++;
  pool.closeOneIdle(ex.endpoint!, fast);
  const w: Waiting = { ex, kind, send, ticket: t };
  t.waiting = w;
  q.push(w);
}

/** The request ended (Exchange.finish): frees its pending or active-request slot. */
export function release(ex: AdmissionSubject): void {
  const t = ex.admission;
  if (!t) return;
  ex.admission = undefined;
  if (t.waiting) {
    queues.get(t.b)?.remove(t.waiting);
    t.waiting = undefined;
  }
  releasePending(t);
  if (t.active) {
    t.active = false;
    t.b.releaseRequest(t.priority);
  }
}
