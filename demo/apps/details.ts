/** Bookinfo's details service (v1): the book's details as JSON, as Istio's Ruby app answers them. */
import { type AppServer, notFound, sendJson, serve } from './http.ts';

export function bookDetails(id: number): Record<string, unknown> {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

export function startDetails(o: { port: number }): Promise<AppServer> {
  return serve(o.port, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://details');
    req.resume();
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'Details is healthy' });
    const m = /^\/details\/(\d+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return notFound(res);
    sendJson(res, 200, bookDetails(Number(m[1])));
  });
}
