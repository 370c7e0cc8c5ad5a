/** Bookinfo's ratings service (v1): the two reviewers' stars as JSON, as Istio's Node app answers them. */
import { type AppServer, notFound, sendJson, serve } from './http.ts';

export const RATINGS: Record<string, number> = { Reviewer1: 5, Reviewer2: 4 };

export function startRatings(o: { port: number }): Promise<AppServer> {
  return serve(o.port, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://ratings');
    req.resume();
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'Ratings is healthy' });
    const m = /^\/ratings\/(\d+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return notFound(res);
    sendJson(res, 200, { id: Number(m[1]), ratings: RATINGS });
  });
}
