// `containerd --version` prints e.g.
//   containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3   (Debian)
//   containerd containerd.io 1.7.25 bcc810d6b9066471b0b6fa75f557a15a1cbf31bb      (Docker's packages)
//   containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376
import { InstallerError } from './errors';

export interface ContainerdVersion {
  major: number;
  minor: number;
  patch: number;
  /** The version word as printed (`1.6.20~ds1`, `v2.1.4`). */
  raw: string;
}

export function parseContainerdVersion(output: string): ContainerdVersion {
  const words = output.trim().split(/\s+/);
  if (words[0] !== 'containerd' || words.length < 3) {
    throw new InstallerError(`cannot read the containerd version from ${JSON.stringify(output.trim())}`);
  }
  // The third word is the version; the module path before it varies between packagers.
  const raw = words[2];
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(raw);
  if (!m) throw new InstallerError(`cannot read the containerd version from ${JSON.stringify(output.trim())}`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), raw };
}
