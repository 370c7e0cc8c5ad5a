import { changeEventSchema, type ChangeEvent } from '@tern/shared';
import type { Database } from './db.ts';
import type { ResourceStore } from './resources.ts';
import { CHANGE_CHANNEL } from './writer.ts';
import { logger } from '../log.ts';

type Listener = (e: ChangeEvent) => void;

/**
 * What changed, in revision order, for this replica. Notifications are a hint: revisions are
 * dense, so a gap (or a lost listening connection) makes the feed read the change log instead
 * of trusting what arrived.
 */
export class ChangeFeed {
  private lastSeen = 0n;
  private readonly listeners = new Set<Listener>();
  private queue: Promise<void> = Promise.resolve();
  private unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly db: Database,
    private readonly resources: ResourceStore,
  ) {}

  async start(): Promise<void> {
    this.lastSeen = BigInt(await this.resources.currentRevision());
    this.unlisten = await this.db.listen(CHANGE_CHANNEL, (payload) => this.onNotify(payload), () => this.enqueue(() => this.catchUp()));
  }

  get revision(): string {
    return this.lastSeen.toString();
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    await this.queue;
  }

  private onNotify(payload: string) {
    const parsed = changeEventSchema.safeParse(safeJson(payload));
    if (!parsed.success) return;
    const e = parsed.data;
    this.enqueue(async () => {
      const rev = BigInt(e.revision);
      if (rev <= this.lastSeen) return;
      if (rev === this.lastSeen + 1n) this.deliver(e);
      else await this.catchUp();
    });
  }

  private enqueue(fn: () => Promise<void> | void) {
    this.queue = this.queue.then(fn).catch((err) => logger.warn({ err: (err as Error).message }, 'change feed: catch-up failed; will retry on the next change'));
  }

  private async catchUp() {
    for (;;) {
      const batch = await this.resources.changesSince(this.lastSeen.toString(), 500);
      for (const e of batch) this.deliver(e);
      if (batch.length < 500) return;
    }
  }

  private deliver(e: ChangeEvent) {
    this.lastSeen = BigInt(e.revision);
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        logger.error({ err }, 'change feed listener failed');
      }
    }
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
