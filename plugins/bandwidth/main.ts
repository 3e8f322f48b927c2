import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './bandwidth';

// STATUS: nothing to be unavailable about (no daemon, no pool); the skeleton answers success.
pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc }, 'CNI bandwidth plugin (cni-ts)');
