import { definePlugin, noop } from '../../lib/skel/dispatch';
import { firewall as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './firewall';

export const plugin = definePlugin({
  about: 'CNI firewall plugin (cni-ts)',
  loadConf: loadNetConf,
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  // The reference has none: rules need no daemon, pool or lock that could be unavailable.
  status: noop('firewall rules need no daemon, pool or lock: nothing can be unavailable'),
  keys,
});
