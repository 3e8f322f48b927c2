import { configOnly, definePlugin } from '../../lib/skel/dispatch';
import { none as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, loadNetConf } from './none';

export const plugin = definePlugin({
  about: 'CNI none plugin (cni-ts): Docker --network none',
  loadConf: loadNetConf,
  add: cmdAdd,
  // Nothing to undo (none.ts says why lo stays up); the config is still checked.
  del: configOnly,
  check: cmdCheck,
  // No state: nothing to collect, always available; a broken config is still refused.
  gc: configOnly,
  status: configOnly,
  keys,
});
