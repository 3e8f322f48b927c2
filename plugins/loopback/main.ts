import { definePlugin, stateless } from '../../lib/skel/dispatch';
import { loopback as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, cmdDel, loadNetConf } from './loopback';

export const plugin = definePlugin({
  about: 'CNI loopback plugin (cni-ts)',
  loadConf: loadNetConf,
  add: cmdAdd, del: cmdDel, check: cmdCheck,
  // The reference has neither (plugins: loopback.go "FIXME GC", "FIXME Status"): lo is the
  // netns's own device, so nothing outlives the container and nothing can be unavailable.
  gc: stateless, status: stateless,
  keys,
});
