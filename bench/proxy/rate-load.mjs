// Open-loop HTTP/1.1 load at a fixed rate (wrk2's idea): request i is due at start + i/RATE, and
// its latency runs from that due time, not from when it was written, so a stall in the system
// under test shows up in the figures instead of silently lowering the rate (no coordinated
// omission). Keep-alive connections, at most one request in flight on each (no pipelining), the
// most recently freed connection first (as Node's agent does); when all are busy, due requests
// queue and their wait counts.
//   node rate-load.mjs PORT RATE WARMUP_S SECONDS CONNECTIONS HOST
// Prints `WARM` when the warm-up ends, then one JSON line with the timed phase's figures (ms).
// The event loop spins (setImmediate) so sends leave on time: run it on a CPU of its own.
import net from 'node:net';

const [port, rate, warmup, seconds, maxConns] = process.argv.slice(2, 7).map(Number);
const host = process.argv[7] ?? '127.0.0.1';
const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: tern-rate-load\r\n\r\n`);
const interval = 1000 / rate;
const TIMEOUT_MS = 10_000;

const latencies = new Float64Array(Math.ceil(rate * seconds) + 16);
// How late the generator itself issued each timed request (its own scheduling, not queueing for a
// busy connection): large values mean the figures measure the generator, not the target.
const late = new Float64Array(latencies.length);
let lateN = 0;
let measured = 0;
let errors = 0;
let non2xx = 0;
let sent = 0;
let completed = 0;
let connectsOpened = 0;
const idle = [];
const pending = []; // due times waiting for a connection
let open = 0;

function connect() {
  open++;
  connectsOpened++;
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const c = { socket, due: -1, buf: Buffer.alloc(0), timer: undefined, dead: false };
  socket.on('connect', () => release(c));
  socket.on('data', (d) => onData(c, d));
  const lost = (err) => {
    if (c.dead) return;
    c.dead = true;
    open--;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (c.due >= 0) finish(c, false, err ? `socket: ${err.code ?? err.message}` : 'socket closed');
    clearTimeout(c.timer);
  };
  socket.on('error', lost);
  socket.on('close', () => lost());
}

function send(c, due) {
  c.due = due;
  c.buf = Buffer.alloc(0);
  c.socket.write(request);
  sent++;
  c.timer = setTimeout(() => c.socket.destroy(new Error('timeout')), TIMEOUT_MS);
}

/** A connection is free: take the oldest queued request, else wait on the idle stack. */
function release(c) {
  if (pending.length > 0) send(c, pending.shift());
  else idle.push(c);
}

let firstError = '';
let windowDue = 0;
let windowErrors = 0;
function finish(c, ok, why) {
  const due = c.due;
  c.due = -1;
  clearTimeout(c.timer);
  completed++;
  if (!ok) {
    errors++;
    if (!firstError) firstError = why;
  }
  if (due >= measureFrom && due < measureTo) {
    if (!ok) windowErrors++;
    else if (measured < latencies.length) {
      latencies[measured] = performance.now() - due;
      measured++;
    }
  }
  if (!c.dead) release(c);
  else if (open < maxConns) connect();
}

// Minimal response framing: status line, headers, then content-length or chunked body.
function onData(c, d) {
  if (c.due < 0) return; // nothing asked: ignore (the server should not send)
  c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
  const buf = c.buf;
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  let bodyDone = false;
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (cl) bodyDone = buf.length >= headEnd + 4 + Number(cl[1]);
  else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) bodyDone = buf.indexOf('\r\n0\r\n\r\n', headEnd) >= 0 || buf.subarray(headEnd + 4).indexOf('0\r\n\r\n') === 0;
  else bodyDone = status === 204 || status === 304;
  if (!bodyDone) return;
  if (status < 200 || status >= 300) non2xx++;
  finish(c, status >= 200 && status < 300, `HTTP ${status}`);
}

let measureFrom = Infinity;
let measureTo = Infinity;

for (let i = 0; i < maxConns; i++) connect();
await new Promise((r) => setTimeout(r, 100)); // connections up before the clock starts

const start = performance.now();
const warmEnd = start + warmup * 1000;
const end = warmEnd + seconds * 1000;
measureFrom = warmEnd;
measureTo = end;
let n = 0;
let next = start;
let warmed = false;

await new Promise((resolve) => {
  const tick = () => {
    const t = performance.now();
    while (next <= t && next < end) {
      if (next >= measureFrom) {
        windowDue++;
        if (lateN < late.length) late[lateN++] = t - next;
      }
      const c = idle.pop();
      if (c) send(c, next);
      else {
        pending.push(next);
        if (open < maxConns) connect();
      }
      n++;
      next = start + n * interval;
    }
    if (!warmed && t >= warmEnd) {
      warmed = true;
      process.stdout.write('WARM\n');
    }
    if (next >= end && pending.length === 0 && idle.length === open) return resolve();
    if (t > end + TIMEOUT_MS + 1000) return resolve();
    setImmediate(tick);
  };
  tick();
});

const lat = latencies.subarray(0, measured).sort();
const lag = late.subarray(0, lateN).sort();
const at = (a, p) => (a.length ? a[Math.min(a.length - 1, Math.ceil((p / 100) * a.length) - 1)] : NaN);
let sum = 0;
for (const x of lat) sum += x;
console.log(
  JSON.stringify({
    rate,
    seconds,
    due: windowDue,
    requests: measured,
    // failed or unanswered requests of the timed phase; allErrors includes the warm-up
    errors: windowDue - measured,
    allErrors: errors,
    non2xx,
    firstError,
    p50: at(lat, 50),
    p90: at(lat, 90),
    p99: at(lat, 99),
    p999: at(lat, 99.9),
    max: lat.length ? lat[lat.length - 1] : NaN,
    mean: lat.length ? sum / lat.length : NaN,
    lateP99: at(lag, 99),
    lateMax: lag.length ? lag[lag.length - 1] : NaN,
    connections: connectsOpened,
  }),
);
for (const c of idle) c.socket.destroy();
process.exit(0);
