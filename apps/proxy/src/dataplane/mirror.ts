/**
 * Request mirroring (RouteAction.request_mirror_policies), fire and forget as in Envoy: a copy of
 * the request goes to the mirror cluster with the Host/:authority suffixed "-shadow"
 * (`reviews:9080` → `reviews-shadow:9080`), its response is read and discarded, and nothing about
 * it — refused connection, reset, slowness — reaches the caller. The copy gets the body as it
 * streams through; a mirror that cannot keep up (more than MIRROR_MAX_BUFFER bytes waiting) or
 * does not answer within the route timeout is dropped, so a dead or slow mirror costs bounded
 * memory.
 */
import http from 'node:http';
import type { ClientRequest, OutgoingHttpHeaders } from 'node:http';
import type { ClientHttp2Stream } from 'node:http2';
import type { MirrorPolicy, ProxySnapshot } from '../config/model.ts';
import type { UpstreamHost } from '../config/lb.ts';
import type { Engine } from './engine.ts';
import { pickHost, releaseHost } from './routing.ts';
import { endpointOption } from './upstream.ts';

/** Bytes a mirror may have queued before it is given up. */
export const MIRROR_MAX_BUFFER = 64 * 1024;

/** Envoy's shadow host: "-shadow" appended to the host part, before any port. */
export function shadowHost(authority: string): string {
  const colon = authority.lastIndexOf(':');
  // An IPv6 literal's colons are inside brackets; a port follows the closing bracket.
  if (colon > 0 && colon > authority.lastIndexOf(']') && /^\d+$/.test(authority.slice(colon + 1))) {
    return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  }
  return `${authority}-shadow`;
}

export class MirrorRequest {
  stream: ClientRequest | ClientHttp2Stream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(private readonly host: UpstreamHost) {}

  write(chunk: Buffer): void {
    const s = this.stream;
    if (s === undefined || s.destroyed) return;
    if (s.writableLength > MIRROR_MAX_BUFFER) {
      this.drop();
      return;
    }
    s.write(chunk);
  }

  end(): void {
    const s = this.stream;
    if (s !== undefined && !s.destroyed && !s.writableEnded) s.end();
  }

  /** Gives up on the mirror (the caller's request is unaffected). */
  drop(): void {
    const s = this.stream;
    if (s !== undefined && !s.destroyed) s.destroy();
    this.done();
  }

  done(): void {
    clearTimeout(this.timer);
    if (!this.released) {
      this.released = true;
      releaseHost(this.host);
    }
  }

  arm(timeoutMs: number): void {
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => this.drop(), timeoutMs);
      this.timer.unref();
    }
  }
}

/**
 * Starts the mirrors of a request that the policies select (runtime_fraction). `headers` are the
 * upstream request's headers (copied here); `bodyless`: no body follows (the mirrors end at once).
 */
export function startMirrors(
  engine: Engine, snap: ProxySnapshot, policies: readonly MirrorPolicy[], headers: OutgoingHttpHeaders, method: string, path: string, authority: string, bodyless: boolean, timeoutMs: number,
  random: () => number = Math.random,
): MirrorRequest[] | undefined {
  let out: MirrorRequest[] | undefined;
  for (const p of policies) {
    if (p.fraction < 1 && !(p.fraction > 0 && random() < p.fraction)) continue;
    const cluster = snap.clusters.get(p.cluster);
    if (!cluster) continue;
    const host = pickHost(engine, cluster, undefined, undefined, '');
    if (!host) continue;
    const m = new MirrorRequest(host);
    const ep = host.endpoint;
    const shadow = shadowHost(authority);
    const pool = engine.pools.for(cluster);
    try {
      if (cluster.upstreamProtocol === 'http2') {
        const h: OutgoingHttpHeaders = { ...headers, ':method': method, ':path': path, ':authority': shadow, ':scheme': 'http' };
        delete h.host;
        const s = pool.session(ep).request(h, { endStream: bodyless });
        m.stream = s;
        s.on('response', () => s.resume());
        s.on('error', noop);
        s.on('close', () => m.done());
      } else {
        const req = http.request({
          agent: pool.agent,
          ...endpointOption(cluster, ep),
          ...(ep.isPipe ? { socketPath: ep.address } : { host: ep.address, port: ep.port }),
          method,
          path,
          headers: { ...headers, host: shadow },
          setHost: false,
        });
        m.stream = req;
        req.on('response', (res) => {
          res.on('error', noop);
          res.resume();
        });
        req.on('error', noop);
        req.on('close', () => m.done());
        if (bodyless) req.end();
      }
    } catch {
      m.done();
      continue;
    }
    m.arm(timeoutMs);
    (out ??= []).push(m);
  }
  return out;
}

function noop(): void {}
