/**
 * container config: which container to join and where libcni keeps its result cache.
 * Nothing on the system is read or changed before loadNetConf returns.
 */
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { container as validateContainer } from '../../lib/generated/validators';

/** libcni's default CacheDir; its result cache is `<cacheDir>/results`. */
export const DEFAULT_CACHE_DIR = '/var/lib/cni';

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface ContainerConf {
  cniVersion: string;
  name: string;
  /** The container whose network namespace the joiner shares. */
  target: string;
  /** Where the target came from, for messages. */
  targetSource: string;
  /** libcni's cache dir (the parent of `results/`). */
  cacheDir: string;
}

/**
 * The target container, later sources winning (as tuning does for `mac`): the static
 * `container` key, then CNI_ARGS `CONTAINER=`, then `args.cni.container`, then
 * `runtimeConfig.container` (capability `container`), which is the runtime speaking per call.
 */
function pickTarget(args: CmdArgs): { target?: string; source: string } {
  let target: string | undefined;
  let source = '';
  const c = args.conf;
  if (typeof c.container === 'string') [target, source] = [c.container, 'container'];
  const fromEnv = args.argsMap.CONTAINER;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!CONTAINER_ID_RE.test(fromEnv)) {
      throw new CniError(ErrCode.InvalidEnvironment, `invalid CNI_ARGS CONTAINER="${fromEnv}": not a container ID`);
    }
    [target, source] = [fromEnv, 'CNI_ARGS CONTAINER'];
  }
  const fromArgs = c.args?.cni?.container;
  if (typeof fromArgs === 'string') [target, source] = [fromArgs, 'args.cni.container'];
  const fromRt = c.runtimeConfig?.container;
  if (typeof fromRt === 'string') [target, source] = [fromRt, 'runtimeConfig.container'];
  return { target, source };
}

/**
 * Validates the config. `needTarget` is false for DEL/GC/STATUS, which never look at the
 * target (a DEL must succeed after the target is gone).
 */
export function loadNetConf(args: CmdArgs, needTarget: boolean): ContainerConf {
  const c = args.conf;
  validateConf(validateContainer, c, 'container');
  const { target, source } = pickTarget(args);
  if (needTarget) {
    if (!target) {
      throw new CniError(
        ErrCode.InvalidConfig,
        'no target container given',
        'set "container" in the config, runtimeConfig.container (capability "container"), args.cni.container or CNI_ARGS CONTAINER=<id>',
      );
    }
    if (args.containerID && target === args.containerID) {
      throw new CniError(ErrCode.InvalidConfig, `container "${target}" cannot join its own network namespace`);
    }
  }
  return Object.freeze({
    cniVersion: c.cniVersion,
    name: c.name,
    target: target ?? '',
    targetSource: source,
    cacheDir: c.cacheDir ?? DEFAULT_CACHE_DIR,
  });
}
