import { definePlugin, noop } from '../../lib/skel/dispatch';
import { tuning as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, loadConf } from './tuning';

export const plugin = definePlugin({
  about: 'CNI tuning plugin (cni-ts)',
  loadConf,
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  // The reference has none (tuning.go "FIXME Status"): no daemon, pool or lock that could be unavailable.
  status: noop('tuning changes only the container\'s own interface: nothing it depends on can be unavailable'),
  keys,
});
