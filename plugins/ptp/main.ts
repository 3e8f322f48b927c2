import { pluginMain } from '../../lib/skel/dispatch';
// host-local runs in-process when CNI_PATH resolves it to our own build (saves a Node start).
import '../../ipam/host-local/register';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './ptp';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus }, 'CNI ptp plugin (cni-ts)');
