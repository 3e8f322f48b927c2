import { configOnly, definePlugin } from '../../lib/skel/dispatch';
import { host as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, loadNetConf } from './host';

export const plugin = definePlugin({
  about: 'CNI host plugin (cni-ts): Docker --network host',
  loadConf: loadNetConf,
  // DEL, GC, STATUS: nothing was created and no state is kept, but a broken config is still refused.
  add: cmdAdd, check: cmdCheck, del: configOnly, gc: configOnly, status: configOnly,
  // Joining the plugin's own namespace is this plugin's whole purpose.
  allowOwnNetns: true,
  keys,
});
