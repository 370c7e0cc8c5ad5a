/**
 * Bookinfo's productpage, as Istio's Python app behaves: GET /productpage calls details (3 s
 * timeout) and reviews (3 s timeout, tried twice: ~6 s at most) through its own sidecar, passing
 * `end-user` from the signed-in user's cookie and the trace headers of the request; POST /login
 * (form `user=`) sets the `user` cookie, GET /logout clears it.
 */
import http from 'node:http';
import { type AppServer, callThroughSidecar, notFound, parseJson, propagate, sendJson, serve } from './http.ts';
import type { Review } from './reviews.ts';

export const PRODUCT = {
  id: 0,
  title: 'The Comedy of Errors',
  descriptionHtml: '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
};

export const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
export const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
export const CALL_TIMEOUT_MS = 3_000;
/** Istio's productpage tries reviews twice (its loop "for _ in range(2)"). */
export const REVIEWS_ATTEMPTS = 2;

interface Fetched<T> {
  status: number;
  value: T | undefined;
}

export function startProductpage(o: { port: number; outboundPort: number }): Promise<AppServer> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

  async function get<T>(authority: string, path: string, headers: Record<string, string>): Promise<Fetched<T>> {
    try {
      const r = await callThroughSidecar(agent, o.outboundPort, authority, path, headers, CALL_TIMEOUT_MS);
      return { status: r.status, value: r.status === 200 ? parseJson<T>(r.body) : undefined };
    } catch {
      return { status: 0, value: undefined };
    }
  }

  async function reviews(headers: Record<string, string>): Promise<Fetched<{ podname?: string; reviews?: Review[] }>> {
    let last: Fetched<{ reviews?: Review[] }> = { status: 0, value: undefined };
    for (let i = 0; i < REVIEWS_ATTEMPTS; i++) {
      last = await get('reviews:9080', `/reviews/${PRODUCT.id}`, headers);
      if (last.status === 200 && last.value) return last;
    }
    return last;
  }

  return serve(o.port, async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://productpage');
    const user = cookie(req, 'user');
    if (req.method === 'POST' && url.pathname === '/login') {
      const form = new URLSearchParams(await readBody(req));
      const name = (form.get('user') ?? form.get('username') ?? '').trim();
      const headers: Record<string, string> = { location: '/productpage', 'content-length': '0' };
      if (name) headers['set-cookie'] = `user=${encodeURIComponent(name)}; Path=/; HttpOnly; SameSite=Lax`;
      res.writeHead(302, headers);
      return res.end();
    }
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound(res);
    if (url.pathname === '/logout') {
      res.writeHead(302, { location: '/productpage', 'set-cookie': 'user=; Path=/; Max-Age=0; SameSite=Lax', 'content-length': '0' });
      return res.end();
    }
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'Product page is healthy' });
    if (url.pathname === '/' ) {
      res.writeHead(302, { location: '/productpage', 'content-length': '0' });
      return res.end();
    }
    if (url.pathname !== '/productpage') return notFound(res);
    const headers = propagate(req);
    delete headers['end-user'];
    if (user) headers['end-user'] = user;
    const [details, revs] = await Promise.all([get<Record<string, unknown>>('details:9080', `/details/${PRODUCT.id}`, headers), reviews(headers)]);
    const html = renderProductPage({ user, details: details.value, reviews: revs.value });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
    res.end(req.method === 'HEAD' ? undefined : html);
  });
}

function cookie(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = decodeURIComponent(part.slice(eq + 1).trim());
      return v || undefined;
    }
  }
  return undefined;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
      if (body.length > 8192) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const DETAIL_ROWS: [string, string][] = [['type', 'Type'], ['pages', 'Pages'], ['publisher', 'Publisher'], ['language', 'Language'], ['ISBN-10', 'ISBN-10'], ['ISBN-13', 'ISBN-13']];

/** The page, laid out as Istio's productpage.html (sans Bootstrap), the same texts and error messages. */
export function renderProductPage(p: { user: string | undefined; details: Record<string, unknown> | undefined; reviews: { podname?: string; reviews?: Review[] } | undefined }): string {
  const signIn = p.user
    ? `<span class="user">Welcome ${esc(p.user)}</span> <a class="btn" href="/logout">Sign out</a>`
    : `<form method="post" action="/login" class="login"><input name="user" placeholder="User Name" aria-label="User Name"> <button type="submit">Sign in</button></form>`;
  const details = p.details
    ? `<h4 class="text-center text-primary">Book Details</h4><dl>${DETAIL_ROWS.map(([k, label]) => `<dt>${label}:</dt><dd>${esc(p.details![k] ?? '')}</dd>`).join('')}</dl>`
    : `<h4 class="text-center text-primary">Error fetching product details!</h4><p>${DETAILS_ERROR}</p>`;
  const reviews = p.reviews?.reviews
    ? `<h4 class="text-center text-primary">Book Reviews</h4>${p.reviews.reviews.map(renderReview).join('')}${p.reviews.podname ? `<dl><dt>Reviews served by:</dt><dd class="podname"><u>${esc(p.reviews.podname)}</u></dd></dl>` : ''}`
    : `<h4 class="text-center text-primary">Error fetching product reviews!</h4><p>${REVIEWS_ERROR}</p>`;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Simple Bookstore App</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#222}
nav{background:#222;color:#eee;padding:.6em 1.2em;display:flex;justify-content:space-between;align-items:center}
nav a{color:#9cf}.container{max-width:60em;margin:1em auto;padding:0 1em}
h3,h4.text-center{text-align:center}.cols{display:flex;gap:2em}.cols>div{flex:1}
blockquote{border-left:4px solid #ddd;margin:1em 0;padding:.3em 1em}small{color:#777;display:block}
.glyphicon{font-style:normal;font-size:1.2em}dt{font-weight:bold}
</style></head>
<body><nav><a class="brand" href="/productpage">BookInfo Sample</a><div>${signIn}</div></nav>
<div class="container">
<h3 class="text-center text-primary">${esc(PRODUCT.title)}</h3>
<p>Summary: ${PRODUCT.descriptionHtml}</p>
<div class="cols"><div class="details">${details}</div><div class="reviews">${reviews}</div></div>
</div></body></html>
`;
}

function renderReview(r: Review): string {
  let rating = '';
  if (r.rating && 'stars' in r.rating) {
    const full = Math.max(0, Math.min(5, r.rating.stars));
    rating = `<font color="${esc(r.rating.color)}">${'<span class="glyphicon glyphicon-star">&#9733;</span>'.repeat(full)}${'<span class="glyphicon glyphicon-star-empty">&#9734;</span>'.repeat(5 - full)}</font>`;
  } else if (r.rating && 'error' in r.rating) {
    rating = `<p><i>${esc(r.rating.error)}</i></p>`;
  }
  return `<blockquote><p>${esc(r.text)}</p><small>${esc(r.reviewer)}</small>${rating}</blockquote>`;
}
