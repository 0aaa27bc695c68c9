import { expect } from 'chai';
import {
  TURN_BYTES,
  charge,
  decodeOnTurn,
  hasBudget,
  waitForTurn,
} from '../../lib/websocket/read-turns.js';
import type { Reader } from '../../lib/websocket/read-turns.js';

const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A reader that logs its grant as `name`. */
function reader(log: string[], name: string, lastSize: number): Reader {
  return {
    lastSize,
    granted: () => {
      log.push(name);
    },
  };
}

describe('read turns (one budget of decoded bytes per macrotask, shared)', () => {
  beforeEach(macrotask); // a fresh turn: what earlier tests charged is forgotten

  it('has budget until the bytes charged in this macrotask reach TURN_BYTES, and again after it', async () => {
    expect(hasBudget()).to.equal(true);
    expect(charge(TURN_BYTES - 1)).to.equal(true);
    expect(charge(1)).to.equal(false);
    expect(hasBudget()).to.equal(false);
    await macrotask();
    expect(hasBudget()).to.equal(true);
  });

  it('grants waiting readers after a macrotask, those of small messages first, then one large per budget', async () => {
    const log: string[] = [];
    waitForTurn(reader(log, 'large 1', TURN_BYTES));
    waitForTurn(reader(log, 'large 2', TURN_BYTES));
    waitForTurn(reader(log, 'small 1', 100));
    waitForTurn(reader(log, 'small 2', 100));
    expect(log).to.deep.equal([]);
    await macrotask();
    expect(log).to.deep.equal(['small 1', 'small 2', 'large 1']);
    await macrotask();
    expect(log).to.deep.equal(['small 1', 'small 2', 'large 1', 'large 2']);
  });

  it('grants as many large readers as their last sizes fit in one budget', async () => {
    const log: string[] = [];
    const quarter = TURN_BYTES / 4;
    for (const name of ['a', 'b', 'c', 'd', 'e']) waitForTurn(reader(log, name, quarter));
    await macrotask();
    expect(log).to.deep.equal(['a', 'b', 'c', 'd']);
    await macrotask();
    expect(log).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
  });

  it('decodes on a later turn, in call order, charging that turn; a throw rejects with it', async () => {
    const order: string[] = [];
    const error = new SyntaxError('bad');
    const first = decodeOnTurn(() => {
      order.push('first');
      return 1;
    }, TURN_BYTES);
    const second = decodeOnTurn(() => {
      order.push('second');
      throw error;
    }, 10);
    const third = decodeOnTurn(() => {
      order.push('third');
      return Promise.resolve('async');
    }, TURN_BYTES);
    second.catch(() => undefined);
    expect(order).to.deep.equal([]);
    await macrotask();
    // The small one goes first; one large per turn (its decode spends the budget).
    expect(order).to.deep.equal(['second', 'first']);
    expect(hasBudget()).to.equal(false);
    expect(await first).to.equal(1);
    await second.then(
      () => expect.fail('resolved'),
      (reason: unknown) => expect(reason).to.equal(error),
    );
    await macrotask();
    expect(order).to.deep.equal(['second', 'first', 'third']);
    expect(await third).to.equal('async');
  });
});
