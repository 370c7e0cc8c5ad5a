import net from 'node:net';

const isFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/**
 * A port that is free now, for a process to bind later. Chosen at random below Linux's ephemeral
 * range (32768+): a port the kernel hands out (to a `listen(0)` or an outgoing connection of a
 * test file running alongside) cannot take it in the meantime, as it could with one from listen(0).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await isFree(port)) return port;
  }
}

/** `size` consecutive ports free now, from a multiple of 100 in the same range (the demo mesh's port block). */
export async function freePortBlock(size: number): Promise<number> {
  for (;;) {
    const base = 20000 + 100 * Math.floor(Math.random() * (12000 / 100 - 1));
    let ok = true;
    for (let p = base; p < base + size && ok; p++) ok = await isFree(p);
    if (ok) return base;
  }
}

/** A free port outside [base, base + size). */
export async function freePortOutside(base: number, size: number): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < base || port >= base + size) return port;
  }
}
