// Same-origin proxy to the control plane's API (tRPC at /api/trpc, REST at /api/v1). The browser
// never talks to the control plane directly, so its HttpOnly session cookie works without CORS,
// and the control plane's address is read per request (TERN_API_URL), not baked into the build.

export const dynamic = 'force-dynamic';

const DEFAULT_API_URL = 'http://127.0.0.1:8080';

// Hop-by-hop headers, and ones fetch() recomputes (it decompresses, so length/encoding change).
const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'expect']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'set-cookie']);

function apiBase(): string {
  return (process.env.TERN_API_URL || DEFAULT_API_URL).replace(/\/+$/, '');
}

async function forward(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const target = `${apiBase()}${url.pathname}${url.search}`;
  const headers = new Headers();
  req.headers.forEach((value, key) => {
    if (!DROP_REQUEST.has(key)) headers.set(key, value);
  });
  headers.set('x-forwarded-host', url.host);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: req.method,
      headers,
      body: hasBody ? await req.arrayBuffer() : undefined,
      redirect: 'manual',
      signal: req.signal,
    });
  } catch {
    // Same error shape as the API's own, so the console shows it like any other.
    return Response.json(
      { error: { message: 'the console could not reach the control plane', code: -32603, data: { code: 'SERVICE_UNAVAILABLE', httpStatus: 502 } } },
      { status: 502 },
    );
  }
  const out = new Headers();
  upstream.headers.forEach((value, key) => {
    if (!DROP_RESPONSE.has(key)) out.set(key, value);
  });
  for (const cookie of upstream.headers.getSetCookie()) out.append('set-cookie', cookie);
  // The body is streamed through, so tRPC subscriptions (server-sent events) work too.
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: out });
}

export { forward as GET, forward as POST, forward as PUT, forward as PATCH, forward as DELETE, forward as HEAD };
