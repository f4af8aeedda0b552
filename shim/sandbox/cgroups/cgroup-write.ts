// One value for one cgroup interface file, as planned from linux.resources (pure data: the
// v1 and v2 conversions produce lists of these, the managers write them).

export interface FileValue {
  file: string;
  value: string;
}

export interface CgroupWrite {
  /** The spec field under linux.resources it comes from, for errors ("memory.limit"). */
  field: string;
  /** The controller whose directory holds the file ("memory", "cpuset"…; "cgroup" for core files). */
  controller: string;
  /** Files to try in order: the first that exists is written (blkio.weight or blkio.bfq.weight). */
  choices: FileValue[];
  /** Only for runc's tolerated cases: nothing to do when no file exists (e.g. "max" swap without swap accounting). */
  optional?: boolean;
  /** Given what the file says after the write: why the kernel did not take the value, if it did not. */
  check?: (readBack: string) => string | undefined;
}

export function write(
  field: string,
  controller: string,
  file: string,
  value: string | number,
  extra: Pick<CgroupWrite, 'optional' | 'check'> = {},
): CgroupWrite {
  return { field, controller, choices: [{ file, value: String(value) }], ...extra };
}

/** The kernel stores byte limits rounded down to a page: the read-back is a little lower, never higher. */
export function byteLimitCheck(value: number, file: string): (readBack: string) => string | undefined {
  return (readBack) => {
    const got = Number(readBack.trim());
    if (value < 0 || (got <= value && value - got < 65536)) return undefined;
    return `the kernel did not apply it: ${file} still reads ${readBack.trim()} (this kernel ignores the limit)`;
  };
}
