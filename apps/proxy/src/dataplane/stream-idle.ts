/**
 * Stream idle timeouts (the HCM's stream_idle_timeout, 5 min by default; a route's idle_timeout
 * overrides it, 0 disables): a stream with no bytes in either direction for that long is ended —
 * 408 if its response has not started, a reset otherwise (Envoy's flag SI).
 *
 * Every request has one, so it must cost next to nothing: instead of a timer per stream re-armed
 * on every chunk, streams stamp a coarse clock on activity and one sweep checks them. The clock
 * and the sweep tick every SWEEP_MS, so a timeout fires within ±SWEEP_MS of its setting.
 */
export const SWEEP_MS = 250;

export interface IdleStream {
  /** Coarse time (idleClock) of the last byte either way. */
  lastActive: number;
  idleMs: number;
  streamIdleTimedOut(): void;
}

/** The coarse clock streams stamp on activity (ms, performance.now() at the last sweep). */
export let idleClock = performance.now();

const watched = new Set<IdleStream>();
let sweep: NodeJS.Timeout | undefined;

export function watchIdle(s: IdleStream, idleMs: number): void {
  s.idleMs = idleMs;
  s.lastActive = idleClock;
  watched.add(s);
  if (sweep === undefined) {
    idleClock = performance.now();
    s.lastActive = idleClock;
    sweep = setInterval(sweepIdle, SWEEP_MS);
    sweep.unref();
  }
}

export function unwatchIdle(s: IdleStream): void {
  if (!watched.delete(s) || watched.size > 0 || sweep === undefined) return;
  clearInterval(sweep);
  sweep = undefined;
}

function sweepIdle(): void {
  const now = (idleClock = performance.now());
  for (const s of watched) {
    if (now - s.lastActive < s.idleMs) continue;
    watched.delete(s);
    s.streamIdleTimedOut();
  }
  if (watched.size === 0 && sweep !== undefined) {
    clearInterval(sweep);
    sweep = undefined;
  }
}
