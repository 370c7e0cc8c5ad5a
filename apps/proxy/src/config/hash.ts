/**
 * Request hashing for consistent-hash load balancing (RING_HASH, MAGLEV). Envoy uses xxHash64; a
 * 32-bit FNV-1a with a murmur3 finaliser is used here instead: it is fast in JS (no BigInt), and
 * only consistency within this proxy matters (no other process has to agree on the values).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HashPolicy } from './model.ts';
import { parseQuery } from './route-select.ts';

/** 32-bit hash of a string (FNV-1a over UTF-16 code units, then fmix32 for avalanche). */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Envoy combines several hash policies with rotate-left-1 then xor. */
export function combineHash(prev: number, next: number): number {
  return (((prev << 1) | (prev >>> 31)) ^ next) >>> 0;
}

/** What hash policies read from a request. */
export interface HashInput {
  readonly headers: IncomingHttpHeaders;
  /** :path with query string. */
  readonly path: string;
  readonly sourceIp?: string;
  /** :authority, used when a header policy names 'host' or ':authority'. */
  readonly authority?: string;
}

/**
 * Evaluates the route's hash policies in order (a policy whose input is absent contributes
 * nothing; a `terminal` policy that produced a hash stops the evaluation). Undefined when no
 * policy produced a value: the load balancer then picks at random, as Envoy does.
 */
export function requestHash(policies: readonly HashPolicy[], req: HashInput): number | undefined {
  let hash: number | undefined;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    let value: string | undefined;
    switch (p.kind) {
      case 'header': {
        const v = p.header === 'host' || p.header === ':authority' ? req.authority : req.headers[p.header];
        value = v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
        break;
      }
      case 'cookie':
        value = cookieValue(req.headers.cookie, p.name);
        break;
      case 'sourceIp':
        value = req.sourceIp;
        break;
      case 'queryParameter':
        value = req.path.includes('?') ? parseQuery(req.path).get(p.name) : undefined;
        break;
      default:
        value = undefined; // filter_state: nothing is stored in filter state by this proxy.
    }
    if (value === undefined) continue;
    const h = hashString(value);
    hash = hash === undefined ? h : combineHash(hash, h);
    if (p.terminal) break;
  }
  return hash;
}

/**
 * A cookie hash policy with a ttl whose cookie is missing: Envoy generates the cookie (its value
 * derived from the downstream address), hashes this request by it and sets it on the response,
 * so the client sticks to one upstream from its first request on. Returns the cookie to set and
 * the request's cookie header as if the client had sent it, or undefined.
 */
export function cookieToGenerate(policies: readonly HashPolicy[], headers: IncomingHttpHeaders, downstreamKey: string): { name: string; value: string; ttlMs: number; path?: string; cookieHeader: string } | undefined {
  for (const p of policies) {
    if (p.kind !== 'cookie' || p.ttlMs === undefined) continue;
    if (cookieValue(headers.cookie, p.name) !== undefined) return undefined;
    const value = hashString(downstreamKey).toString(16).padStart(8, '0');
    const cookieHeader = headers.cookie ? `${headers.cookie}; ${p.name}=${value}` : `${p.name}=${value}`;
    return { name: p.name, value, ttlMs: p.ttlMs, ...(p.path ? { path: p.path } : {}), cookieHeader };
  }
  return undefined;
}

/** The Set-Cookie value for a generated hash cookie (Envoy's form: Max-Age, Path, HttpOnly). */
export function setCookieValue(c: { name: string; value: string; ttlMs: number; path?: string }): string {
  return `${c.name}="${c.value}"; Max-Age=${Math.floor(c.ttlMs / 1000)}${c.path ? `; Path=${c.path}` : ''}; HttpOnly`;
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > 0 && eq < end && header.slice(start, eq).trim() === name) {
      let v = header.slice(eq + 1, end).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
    start = end + 1;
  }
  return undefined;
}
