import { ErrCode } from './errors';
import type { NetConf } from './dispatch';
import { validAttachments } from './gc';
import { codeOf } from './testing';

const conf = (extra: Record<string, unknown>): NetConf => ({ cniVersion: '1.1.0', name: 'n', type: 't', ...extra });
describe('validAttachments', () => {
  it('accepts both spellings, and an empty list', () => {
    const a = [{ containerID: 'c', ifname: 'eth0' }];
    expect(validAttachments(conf({ 'cni.dev/valid-attachments': a }))).toEqual(a);
    expect(validAttachments(conf({ 'cni.dev/attachments': a }))).toEqual(a);
    expect(validAttachments(conf({ 'cni.dev/valid-attachments': [] }))).toEqual([]);
  });
  it('refuses a missing list or a malformed entry (code 7): absent is not "none valid"', () => {
    expect(codeOf(() => validAttachments(conf({})))).toBe(ErrCode.InvalidConfig);
    expect(codeOf(() => validAttachments(conf({ 'cni.dev/valid-attachments': {} })))).toBe(ErrCode.InvalidConfig);
    expect(codeOf(() => validAttachments(conf({ 'cni.dev/valid-attachments': [{ containerID: 'c' }] })))).toBe(ErrCode.InvalidConfig);
  });
});
