// The containerd generations the e2e matrix runs against, and where each one's
// binaries are. 1.6 is bookworm's system package; 1.7 (trixie) and 2.1 (sid)
// are Debian .debs that scripts/setup-host.sh unpacks with `dpkg -x` into a
// private prefix. Each version brings its own ctr and containerd-shim-runc-v2:
// a ctr must talk to a daemon of its own generation, and the runc shim is the
// yardstick Burrow is compared with, so it must be the one that version ships.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CONTAINERD_VERSIONS = ['1.6', '1.7', '2.1'] as const;
export type ContainerdVersion = (typeof CONTAINERD_VERSIONS)[number];

/** Where scripts/setup-host.sh unpacks the non-system containerd .debs. */
export const MATRIX_PREFIX = '/opt/burrow-e2e';

export interface ContainerdBinaries {
  version: ContainerdVersion;
  /** Dir holding containerd, ctr and containerd-shim-runc-v2 of this version. */
  binDir: string;
  containerd: string;
  ctr: string;
  shimRuncV2: string;
  /** containerd config file format: 2 for 1.x, 3 for 2.x (plugin ids differ). */
  configVersion: 2 | 3;
}

export function isContainerdVersion(v: string): v is ContainerdVersion {
  return (CONTAINERD_VERSIONS as readonly string[]).includes(v);
}

export function containerdBinaries(version: ContainerdVersion): ContainerdBinaries {
  if (!isContainerdVersion(version)) {
    throw new Error(`containerd version "${version}" is not one of ${CONTAINERD_VERSIONS.join(', ')}`);
  }
  const binDir = version === '1.6' ? '/usr/bin' : path.join(MATRIX_PREFIX, `containerd-${version}`, 'usr', 'bin');
  return {
    version,
    binDir,
    containerd: path.join(binDir, 'containerd'),
    ctr: path.join(binDir, 'ctr'),
    shimRuncV2: path.join(binDir, 'containerd-shim-runc-v2'),
    configVersion: version.startsWith('1.') ? 2 : 3,
  };
}

/** Names every missing binary of that version (empty: all present and executable). */
export function missingBinaries(version: ContainerdVersion): string[] {
  const b = containerdBinaries(version);
  return [b.containerd, b.ctr, b.shimRuncV2].filter((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * Versions a test file iterates over. BURROW_E2E_CONTAINERD=1.7,2.1 narrows the
 * matrix for a local run; CI leaves it unset and runs all of them.
 */
export function matrixVersions(): ContainerdVersion[] {
  const env = process.env.BURROW_E2E_CONTAINERD?.trim();
  if (!env) return [...CONTAINERD_VERSIONS];
  const wanted = env.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = wanted.filter((v) => !isContainerdVersion(v));
  if (bad.length > 0) {
    throw new Error(`BURROW_E2E_CONTAINERD: unknown version(s) ${bad.join(', ')}; known: ${CONTAINERD_VERSIONS.join(', ')}`);
  }
  return wanted as ContainerdVersion[];
}
