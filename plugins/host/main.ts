import { configOnly, definePlugin } from '../../lib/skel/dispatch';
import { host as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, loadNetConf } from './host';

export const plugin = definePlugin({
  about: 'CNI host plugin (cni-ts): Docker --network host',
  loadConf: loadNetConf,
  add: cmdAdd,
  // Nothing was created, so nothing is removed; any netns (or none) is fine. The config is still checked.
  del: configOnly,
  check: cmdCheck,
  // No state: nothing to collect, always available; a broken config is still refused.
  gc: configOnly,
  status: configOnly,
  // Joining the plugin's own namespace is this plugin's whole purpose.
  allowOwnNetns: true,
  keys,
});
