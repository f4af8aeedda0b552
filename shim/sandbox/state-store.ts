// Sandbox metadata persisted as JSON under <root>/<namespace>/<id>/state.json, written after
// every state change with write-to-temp-then-rename so a crash never leaves half a file.

import * as fs from 'fs';
import * as path from 'path';
import { validateId } from './ids';
import type { StdioConfig } from './stdio';
import type { Timestamp } from './timestamp';

/** 'pausing' while Pause freezes the cgroup, 'paused' once it is frozen (until Resume or the init's exit). */
export type SandboxStatus = 'creating' | 'created' | 'running' | 'pausing' | 'paused' | 'stopped';

export interface SandboxRecord {
  id: string;
  namespace: string;
  bundle: string;
  /** Host path the container's rootfs is mounted on. */
  rootfs: string;
  rootfsMounted: boolean;
  /** Host pid of the init process (0 until spawned). */
  pid: number;
  /** /proc/<pid>/stat start time, so a recycled pid is never mistaken for ours. */
  pidStartTime?: string;
  /** The init runs in a pid namespace of its own (its exit kills every process in it). */
  privatePidNamespace: boolean;
  /** The container's cgroup directories (one per hierarchy), so a cleanup without the shim can remove them. */
  cgroupPaths?: string[];
  status: SandboxStatus;
  exitStatus?: number;
  exitedAt?: Timestamp;
  createdAt: string;
  stdio: StdioConfig;
}

export const DEFAULT_STATE_ROOT = '/run/burrow';
const STATE_FILE = 'state.json';

export function stateRoot(): string {
  return process.env.BURROW_ROOT || DEFAULT_STATE_ROOT;
}

export class StateStore {
  constructor(readonly root: string = stateRoot()) {}

  dir(namespace: string, id: string): string {
    validateId(namespace, 'namespace');
    validateId(id);
    return path.join(this.root, namespace, id);
  }

  /** Creates the sandbox's directory; false if it already exists. */
  claim(namespace: string, id: string): boolean {
    const dir = this.dir(namespace, id);
    for (let attempt = 0; ; attempt++) {
      fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o711 });
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        // Another process removed the emptied namespace directory in between: once more.
        if (code === 'ENOENT' && attempt === 0) continue;
        throw new Error(`error creating sandbox state dir ${JSON.stringify(dir)}: ${(err as Error).message}`);
      }
    }
  }

  save(record: SandboxRecord): void {
    const dir = this.dir(record.namespace, record.id);
    const file = path.join(dir, STATE_FILE);
    const tmp = `${file}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch (err) {
      throw new Error(`error writing sandbox metadata file ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
  }

  load(namespace: string, id: string): SandboxRecord | undefined {
    const file = path.join(this.dir(namespace, id), STATE_FILE);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`error reading sandbox metadata file ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
    try {
      return JSON.parse(text) as SandboxRecord;
    } catch (err) {
      throw new Error(`error parsing sandbox metadata file ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
  }

  list(namespace: string): string[] {
    // Validated like every other path component, so "../x" cannot list outside the root.
    validateId(namespace, 'namespace');
    const dir = path.join(this.root, namespace);
    try {
      return fs.readdirSync(dir).filter((name) => fs.existsSync(path.join(dir, name, STATE_FILE)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  remove(namespace: string, id: string): void {
    const dir = this.dir(namespace, id);
    fs.rmSync(dir, { recursive: true, force: true });
    // Drop the namespace directory with its last sandbox; a racing claim simply recreates it.
    try {
      fs.rmdirSync(path.dirname(dir));
    } catch {
      // Not empty, or already gone.
    }
  }
}
