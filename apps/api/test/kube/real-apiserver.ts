import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../ports.ts';

// The real kube-apiserver (v1.20, with Debian's etcd) for the integration tier: what an in-process
// fake would get wrong (TokenReview, admission webhooks, server-side apply). Started from
// ../shared/kubernetes/start-apiserver.sh; TERN_KUBE_APISERVER_DIR points elsewhere.

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

function scriptDir(): string {
  const candidates = [process.env.TERN_KUBE_APISERVER_DIR, path.join(repo, '../shared/kubernetes'), '/work/shared/kubernetes'].filter((d): d is string => Boolean(d));
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'start-apiserver.sh')));
  if (!found) throw new Error(`no kube-apiserver for the integration tests: looked in ${candidates.join(', ')} (set TERN_KUBE_APISERVER_DIR)`);
  return found;
}


export interface RealApiServer {
  /** An admin kubeconfig (system:masters token). */
  kubeconfig: string;
  server: string;
  stop(): Promise<void>;
}

export async function startRealApiServer(): Promise<RealApiServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-kube-'));
  const [apiPort, etcdPort] = [await freePort(), await freePort()];
  const env = { ...process.env, API_PORT: String(apiPort), ETCD_PORT: String(etcdPort) };
  const stopPids = async () => {
    for (const f of ['apiserver.pid', 'etcd.pid']) {
      try {
        process.kill(Number(fs.readFileSync(path.join(dir, f), 'utf8').trim()), 'SIGTERM');
      } catch {
        // not started, or gone
      }
    }
  };
  await new Promise<void>((resolve, reject) => {
    execFile('bash', [path.join(scriptDir(), 'start-apiserver.sh'), dir], { env, timeout: 90_000 }, (err, _out, stderr) => {
      if (!err) return resolve();
      const log = ['apiserver.log', 'etcd.log'].map((f) => { try { return fs.readFileSync(path.join(dir, f), 'utf8').slice(-1500); } catch { return ''; } }).join('\n');
      void stopPids().then(() => reject(new Error(`kube-apiserver did not start: ${err.message}\n${stderr}\n${log}`)));
    });
  });
  return {
    kubeconfig: path.join(dir, 'kubeconfig'),
    server: `https://127.0.0.1:${apiPort}`,
    stop: async () => {
      await stopPids();
      await new Promise((r) => setTimeout(r, 300));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
