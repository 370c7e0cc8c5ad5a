import type { ChangeEvent } from '@tern/shared';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { advanceSnapshot, loadSnapshot, type MeshSnapshot } from '../store/snapshot.ts';
import type { CompileOptions, PrepareMesh, PreparedMesh } from '../compile/types.ts';
import { logger } from '../log.ts';

// The mesh the ADS server compiles from: one snapshot, kept current by following the change feed
// (policy and registry changes alike), prepared once per revision. Changes are debounced: a burst
// of writes becomes one push, at most `debounceMaxMs` after its first change. The first change of
// a batch is read and prepared at once, while the debounce runs (the process is idle then): when
// no other change follows — the common case of one click — the push goes out as the quiet period
// ends, without reading or preparing on the way. Later changes of the batch are read on top of it
// when the batch fires, so a burst still costs one extra preparation at most.

export interface MeshUpdate {
  prepared: PreparedMesh;
  /** The prepared mesh this one replaces (what proxies' current config was compiled from). */
  previous: PreparedMesh | undefined;
  revision: string;
  /** When the first change of this batch reached this replica (ms since epoch). */
  firstChangeAt: number;
}

/** A revision read and prepared ahead of its push. */
interface Staged {
  snapshot: MeshSnapshot;
  revision: bigint;
  prepared: PreparedMesh;
}

export interface MeshTrackerOptions {
  debounceMs: number;
  debounceMaxMs: number;
  compile: CompileOptions;
}

export class MeshTracker {
  private snapshot: MeshSnapshot | undefined;
  private revision = 0n;
  private current: PreparedMesh | undefined;
  private target = 0n;
  private firstChangeAt = 0;
  private quiet: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Ahead of `revision`, not yet published; `staging` while it is being read and prepared. */
  private staged: Staged | undefined;
  private staging: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(u: MeshUpdate) => void>();
  private readonly stagedListeners = new Set<(next: PreparedMesh, current: PreparedMesh | undefined) => void>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
    private readonly prepare: PrepareMesh,
    private readonly opts: MeshTrackerOptions,
  ) {}

  get prepared(): PreparedMesh | undefined {
    return this.current;
  }

  /** The revision the prepared mesh reflects. */
  get meshRevision(): string {
    return this.revision.toString();
  }

  onUpdate(fn: (u: MeshUpdate) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** A revision was prepared ahead of its push (which may still fold in later changes): a chance to warm caches. */
  onStaged(fn: (next: PreparedMesh, current: PreparedMesh | undefined) => void): () => void {
    this.stagedListeners.add(fn);
    return () => this.stagedListeners.delete(fn);
  }

  async start(): Promise<void> {
    // Subscribe first: what arrives while the snapshot loads is applied after it.
    this.unsubscribe = this.changes.subscribe((e) => this.onChange(e));
    const { snapshot, revision } = await this.prisma.$transaction(
      async (tx) => {
        const row = await tx.revisionCounter.findUnique({ where: { id: 1 } });
        return { snapshot: await loadSnapshot(tx), revision: row?.value ?? 0n };
      },
      { isolationLevel: 'RepeatableRead' },
    );
    this.snapshot = snapshot;
    this.revision = revision;
    this.current = this.prepare(snapshot, revision.toString(), this.opts.compile);
    if (this.target > this.revision) this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.quiet) clearTimeout(this.quiet);
    if (this.deadline) clearTimeout(this.deadline);
    await this.staging;
    await this.running;
  }

  private onChange(e: ChangeEvent) {
    const rev = BigInt(e.revision);
    if (rev <= this.target || rev <= this.revision) return;
    const first = this.target <= this.revision;
    if (first) this.firstChangeAt = Date.now();
    this.target = rev;
    if (!this.snapshot) return;
    this.schedule();
    if (first && !this.running && !this.staging) this.staging = this.stage(rev).finally(() => (this.staging = undefined));
  }

  /** Reads and prepares `to` ahead of the push; on failure the push does the work itself. */
  private async stage(to: bigint) {
    const from = this.revision;
    try {
      const snapshot = await advanceSnapshot(this.prisma, this.snapshot!, from, to);
      if (this.stopped || this.revision !== from) return;
      this.staged = { snapshot, revision: to, prepared: this.prepare(snapshot, to.toString(), this.opts.compile) };
      for (const fn of this.stagedListeners) fn(this.staged.prepared, this.current);
    } catch (err) {
      logger.debug({ err: (err as Error).message, revision: to.toString() }, 'xds: preparing a change ahead of its push failed; the push will');
    }
  }

  private schedule() {
    if (this.stopped) return;
    if (this.quiet) clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.fire(), this.opts.debounceMs);
    this.deadline ??= setTimeout(() => this.fire(), Math.max(this.opts.debounceMaxMs - (Date.now() - this.firstChangeAt), 0));
  }

  private fire() {
    if (this.quiet) clearTimeout(this.quiet);
    if (this.deadline) clearTimeout(this.deadline);
    this.quiet = this.deadline = undefined;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.advance().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.fire();
      }
    });
  }

  private async advance() {
    await this.staging;
    const to = this.target;
    if (to <= this.revision || !this.snapshot) return;
    const firstChangeAt = this.firstChangeAt;
    const staged = this.staged && this.staged.revision > this.revision && this.staged.revision <= to ? this.staged : undefined;
    this.staged = undefined;
    const from = staged?.revision ?? this.revision;
    let next = staged?.snapshot ?? this.snapshot;
    if (to > from) {
      try {
        next = await advanceSnapshot(this.prisma, next, from, to);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'xds: cannot read the changes; retrying');
        if (!this.stopped) setTimeout(() => this.fire(), 1000).unref();
        return;
      }
    }
    if (this.stopped) return;
    this.snapshot = next;
    this.revision = to;
    // Changes that arrived while reading start a new batch.
    if (this.target > to) this.firstChangeAt = Date.now();
    let prepared: PreparedMesh;
    try {
      prepared = to === from && staged ? staged.prepared : this.prepare(next, to.toString(), this.opts.compile);
    } catch (err) {
      logger.error({ err, revision: to.toString() }, 'xds: preparing the mesh failed; proxies keep their current config');
      return;
    }
    const previous = this.current;
    this.current = prepared;
    for (const fn of this.listeners) fn({ prepared, previous, revision: to.toString(), firstChangeAt });
  }
}
