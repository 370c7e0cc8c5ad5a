import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { kubeErrorCode } from './client.ts';

// A client-node informer (ListWatch, what makeInformer builds) made to survive a real cluster:
// - lists in pages (`limit` + `continue`), re-listing from scratch when a continue token expires;
// - asks for watch bookmarks, so a quiet resource's resume version stays fresh and a restart
//   rarely needs a full re-list;
// - restarts after errors with exponential backoff: client-node's informer stops for good on
//   anything but a 410 (a 500, a 403 while RBAC propagates, a dropped connection during the list).
// client-node handles 410 itself (re-list) and resumes a watch the server closed cleanly.

export type ListPage<T extends KubernetesObject> = (page: { limit: number; _continue?: string }) => Promise<KubernetesListObject<T>>;

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export interface ResilientInformerOptions<T extends KubernetesObject> {
  name: string;
  kubeConfig: KubeConfig;
  /** The watch path, e.g. /api/v1/pods. */
  path: string;
  listPage: ListPage<T>;
  pageSize: number;
  backoff: Backoff;
  onChange: () => void;
  /** After the first complete list: the cache holds the whole collection. */
  onSynced?: () => void;
  onError?: (err: unknown, restartInMs: number) => void;
}

/** Adds allowWatchBookmarks to every watch the ListWatch opens (it has no option for it). */
class BookmarkWatch extends Watch {
  override watch(path: string, params: Record<string, unknown>, cb: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    return super.watch(path, { ...params, allowWatchBookmarks: true }, cb, done);
  }
}

export async function listAllPages<T extends KubernetesObject>(listPage: ListPage<T>, pageSize: number): Promise<KubernetesListObject<T>> {
  for (let attempt = 0; ; attempt++) {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    try {
      do {
        const page = await listPage({ limit: pageSize, ...(cont ? { _continue: cont } : {}) });
        items.push(...page.items);
        // Every page of one list is the same snapshot: its version is where the watch starts.
        resourceVersion ??= page.metadata?.resourceVersion;
        cont = page.metadata?._continue || undefined;
      } while (cont);
      return { metadata: { resourceVersion: resourceVersion ?? '' }, items } as KubernetesListObject<T>;
    } catch (err) {
      // A continue token outlived its snapshot: start a consistent list again (a few times).
      if (cont !== undefined && kubeErrorCode(err) === 410 && attempt < 3) continue;
      throw err;
    }
  }
}

export class ResilientInformer<T extends KubernetesObject> {
  readonly cache: ListWatch<T>;
  synced = false;
  restarts = 0;
  lastError: unknown;
  private failures = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  get name(): string {
    return this.opts.name;
  }

  constructor(private readonly opts: ResilientInformerOptions<T>) {
    this.cache = new ListWatch<T>(opts.path, new BookmarkWatch(opts.kubeConfig), () => this.list(), false);
    const changed = () => {
      this.failures = 0;
      opts.onChange();
    };
    this.cache.on('add', changed);
    this.cache.on('update', changed);
    this.cache.on('delete', changed);
    this.cache.on('error', (err) => this.failed(err));
  }

  private async list(): Promise<KubernetesListObject<T>> {
    const list = await listAllPages(this.opts.listPage, this.opts.pageSize);
    // ListWatch does not look at its stopped flag between the list and the watch: without this a
    // stop() during a list would leave a watch open.
    if (this.stopped) throw new Error(`informer ${this.opts.name} stopped`);
    this.failures = 0;
    if (!this.synced) {
      this.synced = true;
      // After the ListWatch has filled its cache from this list (it does so right after we return).
      setImmediate(() => this.opts.onSynced?.());
    }
    // A re-list may change nothing the callbacks see, yet the caller should recompute once.
    setImmediate(() => this.opts.onChange());
    return list;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.cache.start();
  }

  private failed(err: unknown): void {
    // stop() aborts the watch request: client-node reports that as an error too.
    if (this.stopped) return;
    this.lastError = err;
    const delay = Math.min(this.opts.backoff.maxMs, this.opts.backoff.initialMs * 2 ** this.failures);
    this.failures += 1;
    this.opts.onError?.(err, delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.restarts += 1;
      // Resumes the watch from the last version seen; a 410 there turns into a re-list.
      this.cache.start().catch((e: unknown) => this.failed(e));
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.cache.stop();
  }
}
