// The benchmark's upstream app: the smallest keep-alive responder Node can be, so the ratio
// "proxy CPU per request / upstream CPU per request" compares like with like.
//   node upstream.mjs PORT [h1|h2c|grpc]
import http from 'node:http';
import http2 from 'node:http2';

const port = Number(process.argv[2]);
const mode = process.argv[3] ?? 'h1';
const body = Buffer.from('hello, tern\n');

if (mode === 'h1') {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => process.send?.('ready'));
} else if (mode === 'h2c') {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length });
    stream.end(body);
  });
  server.listen(port, '127.0.0.1', () => process.send?.('ready'));
} else if (mode === 'grpc') {
  const grpc = await import('@grpc/grpc-js');
  const server = new grpc.Server();
  const passthrough = (b) => b;
  server.addService(
    { Echo: { path: '/bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough } },
    { Echo: (call, cb) => cb(null, call.request) },
  );
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    process.send?.('ready');
  });
}
