import net from 'node:net';

/**
 * A port that is free now, for a process to bind later. Chosen at random below Linux's ephemeral
 * range (32768+): a port the kernel hands out (to a `listen(0)` or an outgoing connection of a
 * test file running alongside) cannot take it in the meantime, as it could with one from listen(0).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
