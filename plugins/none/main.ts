import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './none';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus }, 'CNI none plugin (cni-ts): Docker --network none');
