// gRPC unary load generator: CONCURRENCY outstanding calls for SECONDS through one channel.
//   node grpc-load.mjs TARGET CONCURRENCY SECONDS  -> prints JSON {requests, rps, p50, p99}
import * as grpc from '@grpc/grpc-js';

const [target, concurrency, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const passthrough = (b) => b;
const Client = grpc.makeGenericClientConstructor(
  { Echo: { path: '/bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough } },
  'Echo',
);
const client = new Client(target, grpc.credentials.createInsecure());
const payload = Buffer.from('hello, tern');
const latencies = [];
let failures = 0;
const deadline = performance.now() + seconds * 1000;
const warmupEnd = performance.now() + 1000;
async function worker() {
  while (performance.now() < deadline) {
    const t0 = performance.now();
    await new Promise((resolve) => client.Echo(payload, (err) => { if (err) failures++; resolve(); }));
    if (t0 > warmupEnd) latencies.push(performance.now() - t0);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
latencies.sort((a, b) => a - b);
const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(JSON.stringify({ requests: latencies.length, failures, rps: latencies.length / (seconds - 1), p50: at(50), p99: at(99) }));
client.close();
