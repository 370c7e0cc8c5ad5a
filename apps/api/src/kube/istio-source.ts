import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiException, ApisApi, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { kubeConfigFromEnv, kubeErrorCode } from './client.ts';
import { chooseListTargets, IMPORTABLE_GROUPS, ISTIO_GROUPS, UNSUPPORTED_KIND_REASONS, VERSION_PREFERENCE, type ClusterObject, type ImportSkip, type ListTarget, type ServedResource } from './istio-import.ts';

// Reads Istio's resources from a cluster for `tern import istio`, with the user's kubeconfig.
// Loaded by the CLI through a dynamic import only, so other commands do not load client-node.

/** A failure to read the cluster, with the message the user sees. */
export class ClusterReadError extends Error {}

/** --kubeconfig, else KUBECONFIG, else ~/.kube/config (as kubectl), else the pod's service account. */
export function loadUserKubeConfig(opts: { kubeconfig?: string | undefined; context?: string | undefined }, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const fallback = path.join(env.HOME ?? os.homedir(), '.kube', 'config');
  const file = opts.kubeconfig ?? (env.KUBECONFIG?.trim() || (fs.existsSync(fallback) ? fallback : undefined));
  let kc: KubeConfig;
  try {
    kc = kubeConfigFromEnv({ ...env, KUBECONFIG: file ?? '' });
  } catch (err) {
    const msg = (err as Error).message;
    throw new ClusterReadError(file ? `cannot use kubeconfig ${file}: ${msg}` : `${msg}, or pass --kubeconfig FILE (no ${fallback} either)`);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) throw new ClusterReadError(`kubeconfig ${file ?? ''}: no context "${opts.context}"`);
    kc.setCurrentContext(opts.context);
  }
  return kc;
}

/** The API server's own message, if the error carries a Kubernetes Status. */
function statusMessage(err: unknown): string | undefined {
  if (!(err instanceof ApiException)) return undefined;
  let body: unknown = err.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.trim() || undefined;
    }
  }
  const m = (body as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : undefined;
}

function describe(err: unknown, server: string, what: string): ClusterReadError {
  const code = kubeErrorCode(err);
  if (err instanceof ApiException || (code !== undefined && code >= 100)) {
    const hint = code === 401 ? ' (the kubeconfig\'s credential was not accepted)' : code === 403 ? ' (your Kubernetes user may not do this: check RBAC)' : '';
    return new ClusterReadError(`the Kubernetes API server at ${server} refused to ${what}: HTTP ${code}${statusMessage(err) ? `: ${statusMessage(err)}` : ''}${hint}`);
  }
  const e = err as { message?: string; cause?: { message?: string }; code?: string };
  const detail = [e.message, e.cause?.message].filter(Boolean).join(': ');
  return new ClusterReadError(`cannot reach the Kubernetes API server at ${server}: ${detail || String(err)}`);
}

export interface ReadOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
}

export interface ReadResult {
  objects: ClusterObject[];
  /** Kinds read, at the version each was read at. */
  targets: ListTarget[];
  /** Kinds Tern does not import that could not even be listed (reported, never fatal). */
  unlisted: ImportSkip[];
}

/** Every object of every Istio kind the cluster serves (in one namespace, or all), for the import. */
export async function readIstioObjects(kc: KubeConfig, opts: ReadOptions = {}): Promise<ReadResult> {
  const server = kc.getCurrentCluster()?.server ?? '(no server)';
  let groups;
  try {
    groups = await kc.makeApiClient(ApisApi).getAPIVersions();
  } catch (err) {
    throw describe(err, server, 'list its API groups');
  }
  const istio = groups.groups.filter((g) => (ISTIO_GROUPS as readonly string[]).includes(g.name));
  if (!istio.some((g) => IMPORTABLE_GROUPS.includes(g.name))) {
    throw new ClusterReadError(`no Istio resources API in this cluster: ${server} serves neither networking.istio.io nor security.istio.io (are Istio's CRDs installed?)`);
  }
  const objectsApi = kc.makeApiClient(CustomObjectsApi);
  const served: ServedResource[] = [];
  for (const g of istio) {
    const rank = (v: string) => ((VERSION_PREFERENCE as readonly string[]).includes(v) ? (VERSION_PREFERENCE as readonly string[]).indexOf(v) : VERSION_PREFERENCE.length);
    const versions = g.versions.map((v) => v.version).sort((a, b) => rank(a) - rank(b));
    for (const version of versions) {
      let list;
      try {
        list = await objectsApi.getAPIResources({ group: g.name, version });
      } catch (err) {
        // A version removed between the two discovery calls: the others still answer.
        if (kubeErrorCode(err) === 404) continue;
        throw describe(err, server, `list the resources of ${g.name}/${version}`);
      }
      for (const r of list.resources) served.push({ group: g.name, version, name: r.name, kind: r.kind, namespaced: r.namespaced, verbs: r.verbs });
    }
  }

  const targets = chooseListTargets(served).filter((t) => t.namespaced);
  const objects: ClusterObject[] = [];
  const unlisted: ImportSkip[] = [];
  for (const t of targets) {
    const importable = IMPORTABLE_GROUPS.includes(t.group) && !(t.kind in UNSUPPORTED_KIND_REASONS);
    let cont: string | undefined;
    try {
      do {
        const common = { group: t.group, version: t.version, plural: t.name, limit: 500, ...(cont ? { _continue: cont } : {}), ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}) };
        const page = (opts.namespace ? await objectsApi.listNamespacedCustomObject({ ...common, namespace: opts.namespace }) : await objectsApi.listCustomObjectForAllNamespaces(common)) as {
          items?: ClusterObject[];
          metadata?: { continue?: string };
        };
        for (const item of page.items ?? []) {
          // List items of custom resources carry apiVersion and kind; filled in case a server omits them.
          objects.push({ ...item, apiVersion: item.apiVersion ?? `${t.group}/${t.version}`, kind: item.kind ?? t.kind });
        }
        cont = page.metadata?.continue || undefined;
      } while (cont);
    } catch (err) {
      const e = describe(err, server, `list ${t.name}.${t.group}`);
      // Forbidden to list a kind Tern would skip anyway: say so, but import the rest.
      if (!importable && kubeErrorCode(err) !== undefined) {
        unlisted.push({ apiVersion: `${t.group}/${t.version}`, kind: t.kind, namespace: opts.namespace ?? '*', name: '*', reason: `not listed (${e.message}); Tern does not import ${t.kind} anyway` });
        continue;
      }
      throw e;
    }
  }
  return { objects, targets, unlisted };
}
