import { configOnly, definePlugin } from '../../lib/skel/dispatch';
import { none as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, loadNetConf } from './none';

export const plugin = definePlugin({
  about: 'CNI none plugin (cni-ts): Docker --network none',
  loadConf: loadNetConf,
  // DEL, GC, STATUS: nothing was created and no state is kept, but a broken config is still refused.
  add: cmdAdd, check: cmdCheck, del: configOnly, gc: configOnly, status: configOnly,
  keys,
});
