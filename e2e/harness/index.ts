// One import for e2e suites: `import { PrivateContainerd, importImage, ... } from './harness'`.
export * from './bundle';
export * from './command';
export * from './containerd';
export * from './cri-host';
export * from './image';
export * from './leaks';
export * from './mounts';
export { assertStaticBinary } from './oci-archive';
export * from './pause-image';
export * from './runtimes';
export * from './procfs';
export * from './suite-containerd';
export { repoRoot, buildDir, isUnder, sleep } from './paths';
export * from './versions';
