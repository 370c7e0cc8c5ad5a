export declare const LOCK_FILE: string;
export declare class DirLockedError extends Error {
  readonly pid: number;
  constructor(dir: string, pid: number);
}
export declare function acquireDirLock(dir: string, opts?: { waitMs?: number }): { release(): void };
