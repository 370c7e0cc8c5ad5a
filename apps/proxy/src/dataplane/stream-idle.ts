/**
 * Stream idle timeouts (the HCM's stream_idle_timeout, 5 min by default; a route's idle_timeout
 * overrides it, 0 disables): a stream with no bytes in either direction for that long is ended —
 * 408 if its response has not started, a reset otherwise (Envoy's flag SI).
 *
 * Every request has one, so it must cost next to nothing: instead of a timer per stream re-armed
 * on every chunk, streams stamp a coarse clock on activity and one sweep checks them. Streams are
 * kept in an intrusive doubly linked list (no allocation, no hashing per request) and the sweep
 * timer, once started, keeps running (unref'd). The clock and the sweep tick every SWEEP_MS, so a
 * timeout fires within ±SWEEP_MS of its setting.
 */
export const SWEEP_MS = 250;

export interface IdleStream {
  /** Coarse time (idleClock) of the last byte either way. */
  lastActive: number;
  /** 0 when not watched. */
  idleMs: number;
  idlePrev: IdleStream | undefined;
  idleNext: IdleStream | undefined;
  streamIdleTimedOut(): void;
}

/** The coarse clock streams stamp on activity (ms, performance.now() at the last sweep). */
export let idleClock = performance.now();

let head: IdleStream | undefined;
let sweep: NodeJS.Timeout | undefined;

export function watchIdle(s: IdleStream, idleMs: number): void {
  if (s.idleMs > 0) return;
  s.idleMs = idleMs;
  s.lastActive = idleClock;
  s.idlePrev = undefined;
  s.idleNext = head;
  if (head !== undefined) head.idlePrev = s;
  head = s;
  if (sweep === undefined) {
    idleClock = s.lastActive = performance.now();
    sweep = setInterval(sweepIdle, SWEEP_MS);
    sweep.unref();
  }
}

export function unwatchIdle(s: IdleStream): void {
  if (s.idleMs === 0) return;
  s.idleMs = 0;
  const { idlePrev: prev, idleNext: next } = s;
  if (prev !== undefined) prev.idleNext = next;
  else head = next;
  if (next !== undefined) next.idlePrev = prev;
  s.idlePrev = s.idleNext = undefined;
}

function sweepIdle(): void {
  const now = (idleClock = performance.now());
  let s = head;
  while (s !== undefined) {
    const next = s.idleNext;
    if (now - s.lastActive >= s.idleMs) {
      unwatchIdle(s);
      s.streamIdleTimedOut();
    }
    s = next;
  }
}
