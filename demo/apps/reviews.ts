/**
 * Bookinfo's reviews service in its three versions, as Istio's Java app behaves: v1 has no ratings;
 * v2 (black stars) and v3 (red stars) call ratings through their sidecar — with a 10 s timeout for
 * v2 and 2.5 s for v3, as Istio's app does (its timeout depends on the star colour) — and, when that fails, say "Ratings service is currently unavailable" under each review.
 */
import http from 'node:http';
import { type AppServer, callThroughSidecar, notFound, parseJson, propagate, sendJson, serve } from './http.ts';

export type ReviewsVersion = 'v1' | 'v2' | 'v3';

export const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
] as const;

export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';
/** Istio's reviews: 10 s for black stars (v2), 2.5 s for red (v3). */
export const RATINGS_TIMEOUT_MS = { v2: 10_000, v3: 2_500 } as const;

export interface Review {
  reviewer: string;
  text: string;
  rating?: { stars: number; color: string } | { error: string };
}

export function startReviews(o: { port: number; version: ReviewsVersion; podname: string; outboundPort: number }): Promise<AppServer> {
  const color = o.version === 'v2' ? 'black' : o.version === 'v3' ? 'red' : undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  return serve(o.port, async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://reviews');
    req.resume();
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'Reviews is healthy' });
    const m = /^\/reviews\/(\d+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return notFound(res);
    const id = Number(m[1]);
    let ratings: Record<string, number> | undefined;
    if (color) {
      const r = await callThroughSidecar(agent, o.outboundPort, 'ratings:9080', `/ratings/${id}`, propagate(req), RATINGS_TIMEOUT_MS[o.version as 'v2' | 'v3']).catch(() => undefined);
      ratings = r?.status === 200 ? parseJson<{ ratings?: Record<string, number> }>(r.body)?.ratings : undefined;
    }
    const reviews: Review[] = REVIEWS.map((rv) => {
      if (!color) return { ...rv };
      const stars = ratings?.[rv.reviewer];
      return { ...rv, rating: stars === undefined ? { error: RATINGS_UNAVAILABLE } : { stars, color } };
    });
    sendJson(res, 200, { id: String(id), podname: o.podname, clustername: 'null', reviews });
  });
}
