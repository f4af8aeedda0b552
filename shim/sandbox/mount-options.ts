// mount(8)-style option lists → mount(2) flags, data and propagation, with containerd's and
// runc's table: recognised words become flags, everything else joins the fs data string.

import * as L from './linux';

const FLAG_OPTIONS: Record<string, { clear: boolean; flag: number }> = {
  ro: { clear: false, flag: L.MS_RDONLY },
  rw: { clear: true, flag: L.MS_RDONLY },
  bind: { clear: false, flag: L.MS_BIND },
  rbind: { clear: false, flag: L.MS_BIND | L.MS_REC },
  nosuid: { clear: false, flag: L.MS_NOSUID },
  suid: { clear: true, flag: L.MS_NOSUID },
  nodev: { clear: false, flag: L.MS_NODEV },
  dev: { clear: true, flag: L.MS_NODEV },
  noexec: { clear: false, flag: L.MS_NOEXEC },
  exec: { clear: true, flag: L.MS_NOEXEC },
  sync: { clear: false, flag: L.MS_SYNCHRONOUS },
  async: { clear: true, flag: L.MS_SYNCHRONOUS },
  dirsync: { clear: false, flag: L.MS_DIRSYNC },
  remount: { clear: false, flag: L.MS_REMOUNT },
  mand: { clear: false, flag: L.MS_MANDLOCK },
  nomand: { clear: true, flag: L.MS_MANDLOCK },
  atime: { clear: true, flag: L.MS_NOATIME },
  noatime: { clear: false, flag: L.MS_NOATIME },
  diratime: { clear: true, flag: L.MS_NODIRATIME },
  nodiratime: { clear: false, flag: L.MS_NODIRATIME },
  relatime: { clear: false, flag: L.MS_RELATIME },
  norelatime: { clear: true, flag: L.MS_RELATIME },
  strictatime: { clear: false, flag: L.MS_STRICTATIME },
  nostrictatime: { clear: true, flag: L.MS_STRICTATIME },
  defaults: { clear: false, flag: 0 },
};

const PROPAGATION_OPTIONS: Record<string, number> = {
  private: L.MS_PRIVATE,
  rprivate: L.MS_PRIVATE | L.MS_REC,
  shared: L.MS_SHARED,
  rshared: L.MS_SHARED | L.MS_REC,
  slave: L.MS_SLAVE,
  rslave: L.MS_SLAVE | L.MS_REC,
  unbindable: L.MS_UNBINDABLE,
  runbindable: L.MS_UNBINDABLE | L.MS_REC,
};

export interface ParsedMountOptions {
  flags: number;
  /** Filesystem-specific options, comma-joined for mount(2)'s data argument. */
  data: string;
  propagation: number[];
}

export function parseMountOptions(options: readonly string[] = []): ParsedMountOptions {
  let flags = 0;
  const data: string[] = [];
  const propagation: number[] = [];
  for (const opt of options) {
    const f = FLAG_OPTIONS[opt];
    if (f) {
      flags = f.clear ? flags & ~f.flag : flags | f.flag;
      continue;
    }
    const p = PROPAGATION_OPTIONS[opt];
    if (p !== undefined) {
      propagation.push(p);
      continue;
    }
    data.push(opt);
  }
  return { flags, data: data.join(','), propagation };
}

/** The propagation flags named by an OCI `rootfsPropagation` value; undefined if unknown. */
export function propagationFlags(name: string): number | undefined {
  return PROPAGATION_OPTIONS[name];
}

/** Flags a bind mount can only get through a second MS_BIND|MS_REMOUNT call. */
export const BIND_REMOUNT_FLAGS =
  L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_NOATIME | L.MS_NODIRATIME |
  L.MS_RELATIME | L.MS_STRICTATIME | L.MS_SYNCHRONOUS | L.MS_DIRSYNC | L.MS_MANDLOCK;
