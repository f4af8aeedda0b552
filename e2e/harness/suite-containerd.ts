// One private containerd per describe block: started in its before() hook, stopped in its
// after() hook, so that a suite states only what it needs of the daemon.
import { PrivateContainerd, PrivateContainerdOptions, ensureHostTools } from './containerd';
import { importImage } from './image';

export interface SuiteContainerdOptions extends PrivateContainerdOptions {
  /** Import busybox (BUSYBOX_REF) into containerd's default namespace, for ctr. Default true. */
  busybox?: boolean;
  /** More set-up once the daemon runs (and busybox is imported); a failure stops the block. */
  setUp?: (c: PrivateContainerd) => Promise<void>;
  /** Runs in the after() hook before the daemon is stopped. */
  tearDown?: () => void;
}

/** What the block's hooks and cases use; valid once its before() hook has run. */
export interface SuiteContainerd {
  readonly c: PrivateContainerd;
}

/** Registers the block's before() (host tools checked, daemon started, busybox imported) and after() hooks. */
export function containerdForSuite(opts: SuiteContainerdOptions): SuiteContainerd {
  const { busybox = true, setUp, tearDown, ...startOptions } = opts;
  let c: PrivateContainerd | undefined;

  before(async function () {
    ensureHostTools(startOptions.version);
    c = await PrivateContainerd.start(startOptions);
    if (busybox) await importImage(c);
    await setUp?.(c);
  });

  after(async function () {
    tearDown?.();
    if (c) await c.stop();
  });

  return {
    get c(): PrivateContainerd {
      if (!c) throw new Error(`containerd ${opts.name} is not running: its before() hook failed or has not run`);
      return c;
    },
  };
}
