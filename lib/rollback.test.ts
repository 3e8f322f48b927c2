// Rollback: undo steps run newest first, failures are logged and never stop the rest.
import { Rollback, failpoint } from './rollback';

describe('Rollback', () => {
  it('runs the undo steps in reverse order', async () => {
    const order: string[] = [];
    const undo = new Rollback();
    undo.push('delete veth', async () => order.push('veth'));
    undo.push('release IPAM', async () => order.push('ipam'));
    undo.push('remove masquerade', async () => order.push('masq'));
    await undo.run(() => {});
    expect(order).toEqual(['masq', 'ipam', 'veth']);
  });

  it('keeps going after a failed step and logs it', async () => {
    const order: string[] = [];
    const log: string[] = [];
    const undo = new Rollback();
    undo.push('delete veth', async () => order.push('veth'));
    undo.push('release IPAM', async () => {
      throw new Error('ipam exited 1');
    });
    undo.push('remove route', async () => order.push('route'));
    await expect(undo.run((s) => log.push(s))).resolves.toBeUndefined();
    expect(order).toEqual(['route', 'veth']);
    expect(log).toEqual(['rollback: failed to release IPAM: ipam exited 1']);
  });

  it('logs a step that throws something other than an Error', async () => {
    const log: string[] = [];
    const undo = new Rollback();
    undo.push('delete link', () => Promise.reject('link busy'));
    await undo.run((s) => log.push(s));
    expect(log).toEqual(['rollback: failed to delete link: link busy']);
  });

  it('does nothing after commit', async () => {
    const fn = jest.fn(async () => {});
    const undo = new Rollback();
    undo.push('x', fn);
    undo.commit();
    await undo.run(() => {});
    expect(fn).not.toHaveBeenCalled();
  });

  it('runs each step once even if run twice', async () => {
    const fn = jest.fn(async () => {});
    const undo = new Rollback();
    undo.push('x', fn);
    await undo.run(() => {});
    await undo.run(() => {});
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('keeps the original error in the usual try/catch pattern', async () => {
    const undo = new Rollback();
    const add = async (): Promise<void> => {
      try {
        undo.push('delete veth', async () => {
          throw new Error('undo failed');
        });
        throw new Error('IPAM failed');
      } catch (e) {
        await undo.run(() => {});
        throw e;
      }
    };
    await expect(add()).rejects.toThrow('IPAM failed');
  });

  it('logs to stderr by default', async () => {
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const undo = new Rollback();
      undo.push('delete veth', async () => {
        throw new Error('nope');
      });
      await undo.run();
      expect(spy).toHaveBeenCalledWith('rollback: failed to delete veth: nope\n');
    } finally {
      spy.mockRestore();
    }
  });
});

describe('failpoint', () => {
  const saved = process.env.CNI_TS_FAILPOINT;
  afterEach(() => {
    if (saved === undefined) delete process.env.CNI_TS_FAILPOINT;
    else process.env.CNI_TS_FAILPOINT = saved;
  });

  it('throws only for the named point', () => {
    process.env.CNI_TS_FAILPOINT = 'post-ipam';
    expect(() => failpoint('post-veth')).not.toThrow();
    expect(() => failpoint('post-ipam')).toThrow('failpoint post-ipam triggered');
  });

  it('is silent when unset', () => {
    delete process.env.CNI_TS_FAILPOINT;
    expect(() => failpoint('post-ipam')).not.toThrow();
  });
});
