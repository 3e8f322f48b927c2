import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './tuning';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc }, 'CNI tuning plugin (cni-ts)');
