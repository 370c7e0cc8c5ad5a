/**
 * Node's own HTTP/1.1 parser (llhttp, the binding node:http and undici use) and the small helpers
 * the raw-socket fast path needs around it: header objects in IncomingMessage's shape, head
 * serialisation, a per-second Date cache.
 */
import { createRequire } from 'node:module';
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface ParseError extends Error {
  code: string;
  bytesParsed: number;
}

/** The native parser's surface (node:_http_common's HTTPParser); callbacks live on numeric keys. */
export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | ParseError;
  finish(): undefined | ParseError;
  close(): void;
  [k: number]: unknown;
}

interface ParserModule {
  HTTPParser: {
    new (): NativeParser;
    REQUEST: number;
    RESPONSE: number;
    kOnMessageBegin: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kOnExecute: number;
  };
  methods: string[];
}

const require = createRequire(import.meta.url);
const common = require('_http_common') as ParserModule;
export const HTTPParser = common.HTTPParser;
export const METHODS = common.methods;
export const kOnMessageBegin = HTTPParser.kOnMessageBegin;
export const kOnHeaders = HTTPParser.kOnHeaders;
export const kOnHeadersComplete = HTTPParser.kOnHeadersComplete;
export const kOnBody = HTTPParser.kOnBody;
export const kOnMessageComplete = HTTPParser.kOnMessageComplete;
export const kOnExecute = HTTPParser.kOnExecute;

/**
 * Return value of kOnHeadersComplete that makes llhttp stop after the head as for an upgrade:
 * execute() returns the offset just past the head (used to hand the connection to node:http).
 */
export const STOP_AFTER_HEAD = 2;
/** kOnHeadersComplete return value: no body follows (a response to HEAD). */
export const SKIP_BODY = 1;

const PARSER_RESOURCE = {};

export function newParser(type: number): NativeParser {
  const p = new HTTPParser();
  // maxHeaderSize 0 = Node's default (--max-http-header-size, 16 KiB); strict (not lenient) parsing.
  p.initialize(type, PARSER_RESOURCE, 0, 0);
  return p;
}

/** Headers whose duplicates node:http drops (the first wins): IncomingMessage's matchKnownFields. */
const FIRST_WINS = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires',
]);

/** Raw [name, value, …] pairs → the object IncomingMessage.headers would hold (lower-case names). */
export function headersFromRaw(raw: readonly string[], into?: IncomingHttpHeaders): IncomingHttpHeaders {
  const h = (into ?? {}) as Record<string, string | string[]>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = lowerName(raw[i]!);
    const value = raw[i + 1]!;
    const cur = h[name];
    if (cur === undefined) {
      if (name === '__proto__') continue;
      h[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') (cur as string[]).push(value);
    else if (FIRST_WINS.has(name)) continue;
    else h[name] = `${cur as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return h as IncomingHttpHeaders;
}

/** toLowerCase without allocating for names that are lower-case already (most of them). */
function lowerName(n: string): string {
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i);
    if (c >= 65 && c <= 90) return n.toLowerCase();
  }
  return n;
}

/** `name: value\r\n` lines for an OutgoingHttpHeaders object (pseudo headers skipped). */
export function headerLines(headers: OutgoingHttpHeaders, skip1?: string): string {
  let s = '';
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 || name === skip1) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) s += `${name}: ${x}\r\n`;
    else s += `${name}: ${v}\r\n`;
  }
  return s;
}

const statusLines = new Map<number, string>();
/** `HTTP/1.1 200 OK\r\n`, cached per status. */
export function statusLine(status: number): string {
  let s = statusLines.get(status);
  if (s === undefined) {
    s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    if (statusLines.size < 1000) statusLines.set(status, s);
  }
  return s;
}

let dateValue = '';
function clearDate(): void {
  dateValue = '';
}
/** The Date header value, formatted at most once per second. */
export function httpDate(): string {
  if (dateValue === '') {
    const now = Date.now();
    dateValue = new Date(now).toUTCString();
    setTimeout(clearDate, 1000 - (now % 1000)).unref();
  }
  return dateValue;
}
