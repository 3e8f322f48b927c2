// Rollback: undo steps run newest first, failures are logged and never stop the rest. runSteps:
// steps at once, failures reported as the first one (ADD) or all of them (DEL, GC).
import { Rollback, runSteps } from './rollback';
import { CniError } from './skel/errors';

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

describe('runSteps', () => {
  const fail = (msg: string, code?: number) => async (): Promise<never> => {
    throw code === undefined ? new Error(msg) : new CniError(code, msg);
  };

  it('starts every step before any finishes, and resolves to their values in order', async () => {
    const started: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const step = (name: string, v: number) => async (): Promise<number> => {
      started.push(name);
      await gate;
      return v;
    };
    const done = runSteps({ mode: 'first' }, [['a', step('a', 1)], false, ['b', step('b', 2)]]);
    expect(started).toEqual(['a', 'b']);
    release();
    await expect(done).resolves.toEqual([1, undefined, 2]);
  });

  it('first: waits for every step, then throws the first failure in step order, as it was thrown', async () => {
    const finished: string[] = [];
    const slowFail = async (): Promise<never> => {
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('slow one failed');
    };
    const order = runSteps({ mode: 'first' }, [
      ['slow', slowFail],
      ['fast', fail('fast one failed', 11)],
      ['late', async () => void (await new Promise((r) => setTimeout(r, 40)), finished.push('late'))],
    ]);
    await expect(order).rejects.toThrow(/^slow one failed$/);
    // Every step had settled (and so pushed its undo) before the error came out.
    expect(finished).toEqual(['late']);
  });

  it('all: one error naming every failure in step order, code 999 when they differ', async () => {
    const e = await runSteps({ mode: 'all', label: 'bridge DEL' }, [
      ['IPAM DEL', fail('lease dir gone', 5)],
      ['ok', async () => 1],
      ['delete eth0', () => Promise.reject('busy')],
    ]).catch((x: CniError) => x);
    expect(e).toBeInstanceOf(CniError);
    expect(e).toMatchObject({ code: 999, message: 'bridge DEL: IPAM DEL: lease dir gone; delete eth0: busy' });
  });

  it('all: a lone failure is still labelled, and keeps its code', async () => {
    await expect(runSteps({ mode: 'all', label: 'ptp GC' }, [['IPAM GC', fail('locked', 11)], ['masquerade GC', async () => undefined]])).rejects.toMatchObject({
      code: 11,
      message: 'ptp GC: IPAM GC: locked',
    });
  });

  it('all: failures that share a code keep it', async () => {
    await expect(runSteps({ mode: 'all', label: 'x' }, [['a', fail('one', 11)], ['b', fail('two', 11)]])).rejects.toMatchObject({ code: 11, message: 'x: a: one; b: two' });
  });

  it('all, bare and loneAsIs: a lone failure passes as it is; several are joined without step names', async () => {
    const lone = new CniError(7, 'bad name', 'details stay');
    const report = { mode: 'all', label: 'teardown failed on 2 backends', bare: true, loneAsIs: true } as const;
    const throwLone = async (): Promise<never> => {
      throw lone;
    };
    await expect(runSteps(report, [['nftables', throwLone], ['iptables', async () => undefined]])).rejects.toBe(lone);
    await expect(runSteps(report, [['nftables', fail('nft: x')], ['iptables', fail('ipt: y')]])).rejects.toMatchObject({
      code: 999,
      message: 'teardown failed on 2 backends: nft: x; ipt: y',
    });
  });

  it('all, loneAsIs with names: the lone failure carries its step name and keeps code and details', async () => {
    const held = async (): Promise<never> => {
      throw new CniError(11, 'lock held', 'wait');
    };
    const e = await runSteps({ mode: 'all', label: 'iptables', loneAsIs: true }, [['failed to remove masquerade (ip6tables) for c1', held]]).catch((x: CniError) => x);
    expect(e).toMatchObject({ code: 11, message: 'failed to remove masquerade (ip6tables) for c1: lock held', details: 'wait' });
  });

  it('a step that throws before returning a promise fails alone; the others still run', async () => {
    const ran: string[] = [];
    const e = await runSteps({ mode: 'all', label: 'x DEL' }, [
      [
        'sync',
        () => {
          throw new Error('bad spec');
        },
      ],
      ['later', async () => void ran.push('later')],
    ]).catch((x: CniError) => x);
    expect(ran).toEqual(['later']);
    expect(e).toMatchObject({ message: 'x DEL: sync: bad spec' });
  });

  it('no steps: resolves to an empty list', async () => {
    await expect(runSteps({ mode: 'all', label: 'x' }, [])).resolves.toEqual([]);
  });
});
