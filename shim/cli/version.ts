import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../package-root';

export function shimVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** runc's shim format; containerd never parses it. */
export function printVersion(): void {
  process.stdout.write(
    `containerd-shim-burrow-v2:\n  Version:  ${shimVersion()}\n  Runtime:  io.containerd.burrow.v2\n  Node version: ${process.version}\n\n`,
  );
}
