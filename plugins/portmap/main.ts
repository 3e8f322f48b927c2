import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './portmap';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc }, 'CNI portmap plugin (cni-ts)');
