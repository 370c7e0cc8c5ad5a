import net from 'node:net';

// The launcher checks its ports before starting anything, so a taken port is one clear line
// naming the port and the setting that moves it, not a child's stack trace.

export interface PortNeed {
  host: string;
  port: number;
  /** What would listen there, e.g. "the console". */
  what: string;
  /** The environment variable that changes it. */
  setting: string;
}

/** Whether `host:port` can be listened on right now (the socket is closed again at once). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The first need whose port is taken, in the order given. */
export async function firstTakenPort(needs: PortNeed[]): Promise<PortNeed | undefined> {
  for (const n of needs) if (!(await portFree(n.host, n.port))) return n;
  return undefined;
}

export function describeTakenPort(n: PortNeed): string {
  return `port ${n.port} on ${n.host} (${n.what}) is already in use. Stop what listens there (\`ss -ltnp 'sport = :${n.port}'\` shows it) or choose another port with ${n.setting}.`;
}

/** A TCP connection to host:port succeeds (something listens). */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
