import { definePlugin } from '../../lib/skel/dispatch';
import { overlay as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './overlay';

export const plugin = definePlugin({
  about: 'CNI overlay plugin (cni-ts): VXLAN across hosts, registry in etcd',
  loadConf: loadNetConf,
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus,
  keys,
  // `overlay agent --config FILE` is the per-host agent (agent.ts), loaded only in that mode.
  commands: { agent: (argv) => import('./agent').then((m) => m.agentMain(argv)) },
});
