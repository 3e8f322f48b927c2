import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './host';

// allowOwnNetns: joining the plugin's own namespace is this plugin's whole purpose.
pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus }, 'CNI host plugin (cni-ts): Docker --network host', {
  allowOwnNetns: true,
});
