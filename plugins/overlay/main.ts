import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './overlay';

// `overlay agent --config FILE` is the per-host agent (agent.ts), loaded only in that mode.
if (process.argv[2] === 'agent') {
  void import('./agent').then((m) => m.agentMain(process.argv.slice(3)));
} else {
  pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus }, 'CNI overlay plugin (cni-ts): VXLAN across hosts, registry in etcd');
}
