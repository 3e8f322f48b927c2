/** host-local executable: allocates addresses from local ranges, leases kept under dataDir. */
import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './host-local';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus }, 'CNI host-local plugin (cni-ts)');
