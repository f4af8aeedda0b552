// linux.sysctl → /proc/sys writes, allowed only for keys that live in a namespace the
// container has of its own (runc's rule): otherwise a container could change the host.

import { invalidArgument } from './errors';

const IPC_KEYS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

export interface SysctlOp {
  path: string;
  value: string;
}

/** `created`: the namespace types the container gets new (not joined, not the host's). */
export function sysctlOps(sysctl: Record<string, string> | undefined, created: ReadonlySet<string>, joined: ReadonlySet<string>): SysctlOp[] {
  return Object.entries(sysctl ?? {}).map(([key, value]) => {
    const field = `linux.sysctl[${JSON.stringify(key)}]`;
    if (!/^[A-Za-z0-9_.\-/]+$/.test(key) || key.includes('..')) throw invalidArgument(`${field}: invalid key`);
    if (typeof value !== 'string') throw invalidArgument(`${field}: value must be a string`);
    const own = (ns: string) => created.has(ns) || joined.has(ns);
    if (IPC_KEYS.has(key) || key.startsWith('fs.mqueue.')) {
      if (!own('ipc')) throw invalidArgument(`${field}: needs an ipc namespace of the container's own`);
    } else if (key.startsWith('net.')) {
      if (!own('network')) throw invalidArgument(`${field}: needs a network namespace of the container's own`);
    } else if (key === 'kernel.hostname' || key === 'kernel.domainname') {
      if (!own('uts')) throw invalidArgument(`${field}: needs a uts namespace of the container's own`);
    } else {
      throw invalidArgument(`${field}: not in a namespace of the container's own, it would change the host`);
    }
    return { path: '/proc/sys/' + key.replace(/\./g, '/'), value };
  });
}
