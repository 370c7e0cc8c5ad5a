import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createOpenApiNodeHttpHandler } from 'trpc-to-openapi';
import type { App } from '../app.ts';
import { appRouter } from '../trpc/root.ts';
import { createContext } from '../trpc/trpc.ts';
import { openApiDocument } from '../trpc/openapi.ts';
import { logger } from '../log.ts';
import { register } from '../metrics.ts';

// One HTTP listener for the whole API: tRPC at /api/trpc, REST at /api/v1 (generated from the
// same procedures), the OpenAPI document, and health probes. The body is read here, once, with
// the size limit applied before any handler sees it.

export const TRPC_BASE = '/api/trpc/';
export const REST_BASE = '/api/v1';

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function errorBody(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return { message, code, data: { code, httpStatus: status, ...extra } };
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function createRequestListener(app: App) {
  // Both handlers run on node:http here, so their request and response are node:http's.
  const ctx = (opts: { req: unknown; res: unknown }) => createContext(app, opts.req as IncomingMessage, opts.res as ServerResponse);
  const trpc = createHTTPHandler({ router: appRouter, basePath: TRPC_BASE, createContext: ctx, allowMethodOverride: false });
  const rest = createOpenApiNodeHttpHandler({ router: appRouter, createContext: ctx, maxBodySize: app.config.maxBodyBytes });
  const doc = JSON.stringify(openApiDocument(app.config));

  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    try {
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
      // Unauthenticated, like the probes: Prometheus scrapes it without a token.
      if (path === '/metrics') {
        const text = await register.metrics();
        res.writeHead(200, { 'content-type': register.contentType });
        return res.end(text);
      }
      if (path === '/readyz') {
        await app.db.prisma.$queryRaw`SELECT 1`;
        return sendJson(res, 200, { status: 'ready', database: app.db.kind, revision: app.changes.revision });
      }
      if (path === '/api/openapi.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(doc);
      }
      const isTrpc = path.startsWith(TRPC_BASE);
      const isRest = path.startsWith(`${REST_BASE}/`);
      if (!isTrpc && !isRest) return sendJson(res, 404, errorBody(404, 'NOT_FOUND', `no route for ${req.method} ${path}`));

      const body = req.method === 'GET' || req.method === 'HEAD' ? '' : await readBody(req, app.config.maxBodyBytes);
      if (isTrpc) {
        (req as IncomingMessage & { body?: unknown }).body = body === '' ? undefined : body;
        return trpc(req, res);
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      let parsed: unknown;
      if (body !== '') {
        if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml') {
          // Raw YAML, as `curl --data-binary @vs.yaml` sends it: the same as {"yaml": …}.
          parsed = { yaml: body, ...Object.fromEntries(url.searchParams) };
          req.headers['content-type'] = 'application/json';
        } else {
          try {
            parsed = JSON.parse(body);
          } catch (err) {
            return sendJson(res, 400, errorBody(400, 'PARSE_ERROR', `the request body is not valid JSON: ${(err as Error).message}`));
          }
        }
      }
      (req as IncomingMessage & { body?: unknown }).body = parsed;
      // Procedures declare their paths relative to the REST base.
      req.url = req.url!.slice(REST_BASE.length);
      return rest(req, res);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        return sendJson(res, 413, errorBody(413, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${app.config.maxBodyBytes} bytes (TERN_API_MAX_BODY_BYTES)`));
      }
      if (path === '/readyz') return sendJson(res, 503, { status: 'unavailable', reason: 'database unreachable' });
      logger.error({ err }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, errorBody(500, 'INTERNAL_SERVER_ERROR', 'internal error; see the control plane log'));
    }
  };
}

export async function startHttpServer(app: App, host = app.config.apiHost, port = app.config.apiPort): Promise<http.Server & { url: string }> {
  const server = http.createServer(createRequestListener(app));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return Object.assign(server, { url: `http://${shownHost}:${actualPort}` });
}
