import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, loadYaml, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
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

/**
 * Tern's CRDs as deploy/kubernetes ships them. loadYaml, not a plain YAML parse: client-node
 * serializes by its model, and keys it does not map (x-kubernetes-preserve-unknown-fields as
 * written in YAML) would be dropped on the way out.
 */
export function ternCrds(): V1CustomResourceDefinition[] {
  const dir = path.join(repo, 'deploy/kubernetes/base/crds');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.tern.dev.yaml')).map((f) => loadYaml<V1CustomResourceDefinition>(fs.readFileSync(path.join(dir, f), 'utf8')));
}

/** Creates the CRDs and waits until the API server serves each (Established). */
export async function registerCrds(kc: KubeConfig, crds: readonly V1CustomResourceDefinition[]): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const crd of crds) await ext.createCustomResourceDefinition({ body: crd });
  for (const crd of crds) {
    for (let i = 0; ; i++) {
      const got = await ext.readCustomResourceDefinition({ name: crd.metadata!.name! });
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${crd.metadata!.name} not established within 10 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
