import { expect } from 'chai';
import type { ReceiveChannel } from '../lib/channel-types.js';
import { Channel } from '../lib/channel.js';
import { ClosedSendError } from '../lib/errors.js';
import { fromReadableStream, toReadableStream, toWritableStream } from '../lib/streams.js';
import { rejection } from './helpers/outcomes.js';

/** Lets every queued microtask (stream internals use them) run to the end. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function readAll<T>(stream: ReadableStream<T>): Promise<T[]> {
  const values: T[] = [];
  const reader = stream.getReader();
  for (;;) {
    const result = await reader.read();
    if (result.done) return values;
    values.push(result.value);
  }
}

describe('toReadableStream()', () => {
  it('yields the channel values in order and closes after a normal close', async () => {
    const channel = new Channel<number>(Infinity);
    for (const n of [1, 2, 3]) channel.trySend(n);
    channel.close();
    expect(await readAll(toReadableStream(channel))).to.deep.equal([1, 2, 3]);
  });

  it('takes a value from the channel only when the reader asks for one', async () => {
    const channel = new Channel<string>();
    const steps: string[] = [];
    const sent = channel.send('a').then(() => steps.push('send resolved'));
    const reader = toReadableStream(channel).getReader();
    await settle();
    expect(steps).to.deep.equal([]);
    expect(channel.isEmpty).to.equal(false);
    const read = await reader.read();
    await sent;
    expect(read).to.deep.equal({ done: false, value: 'a' });
    expect(steps).to.deep.equal(['send resolved']);
    channel.close();
    expect(await reader.read()).to.deep.equal({ done: true, value: undefined });
  });

  it('errors with the close cause, as the same object, after the values', async () => {
    const cause = new Error('upstream failed');
    const channel = new Channel<number>(Infinity);
    channel.trySend(1);
    channel.close(cause);
    const reader = toReadableStream(channel).getReader();
    expect(await reader.read()).to.deep.equal({ done: false, value: 1 });
    expect(await rejection(reader.read())).to.equal(cause);
  });

  it('errors with the reason when the channel is cancelled during a read', async () => {
    const reason = new Error('cancelled elsewhere');
    const channel = new Channel<number>();
    const reader = toReadableStream(channel).getReader();
    const read = reader.read();
    await settle();
    channel.cancel(reason);
    expect(await rejection(read)).to.equal(reason);
  });

  it('cancels the channel with the reason when the stream is cancelled', async () => {
    const reason = new Error('reader gave up');
    const undelivered: number[] = [];
    const channel = new Channel<number>(2, { onUndelivered: (n) => undelivered.push(n) });
    channel.trySend(1);
    channel.trySend(2);
    const waitingSend = rejection(channel.send(3));
    const stream = toReadableStream(channel);
    await stream.cancel(reason);
    expect(channel.isClosedForReceive).to.equal(true);
    expect(await rejection(channel.receive())).to.equal(reason);
    expect(await waitingSend).to.equal(reason);
    expect(undelivered).to.deep.equal([1, 2, 3]);
  });

  it('cancels the channel when the stream is cancelled while a read waits', async () => {
    const reason = new Error('stop');
    const channel = new Channel<number>();
    const reader = toReadableStream(channel).getReader();
    const read = reader.read();
    await settle();
    await reader.cancel(reason);
    expect(await read).to.deep.equal({ done: true, value: undefined });
    expect(await rejection(channel.send(1))).to.equal(reason);
  });

  it('withdraws a waiting receive when the stream is cancelled, so no value is handed to it', async () => {
    const reason = new Error('reader gave up');
    const channel = new Channel<number>();
    // A ReceiveChannel whose cancel takes effect only later (a remote channel, say): the
    // stream must not rely on it to end its own waiting receive.
    let cancelled: unknown;
    const deferred = {
      receiveCatching: channel.receiveCatching.bind(channel),
      cancel(why: unknown): void {
        cancelled = why;
      },
    } as unknown as ReceiveChannel<number>;
    const reader = toReadableStream(deferred).getReader();
    const read = reader.read();
    await settle();
    await reader.cancel(reason);
    expect(await read).to.deep.equal({ done: true, value: undefined });
    expect(cancelled).to.equal(reason);
    // Nobody waits on the channel any more: the value stays with its sender.
    expect(channel.trySend(1)).to.deep.equal({ ok: false, closed: false });
  });

  it('on cancel with a read waiting, a racing send is rejected and its value goes to onUndelivered', async () => {
    const reason = new Error('reader gave up');
    const undelivered: number[] = [];
    const channel = new Channel<number>(0, { onUndelivered: (n) => undelivered.push(n) });
    const reader = toReadableStream(channel).getReader();
    const read = reader.read();
    await settle();
    const cancelling = reader.cancel(reason);
    expect(await rejection(channel.send(7))).to.equal(reason);
    await cancelling;
    expect(await read).to.deep.equal({ done: true, value: undefined });
    expect(undelivered).to.deep.equal([7]);
  });

  it('throws a TypeError for something that is not a channel', () => {
    expect(() => toReadableStream({} as never)).to.throw(
      TypeError,
      'Expected channel to be a ReceiveChannel, got object',
    );
  });
});

describe('fromReadableStream()', () => {
  /** A source stream that counts pulls and enqueues 0, 1, 2, … up to `count`. */
  function counting(count: number): { stream: ReadableStream<number>; pulls: () => number } {
    let pulls = 0;
    const stream = new ReadableStream<number>(
      {
        pull(controller): void {
          if (pulls === count) controller.close();
          else controller.enqueue(pulls);
          pulls++;
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, pulls: () => pulls };
  }

  it('receives every chunk in order, then is closed normally', async () => {
    const channel = fromReadableStream(counting(4).stream);
    const values: number[] = [];
    for await (const n of channel) values.push(n);
    expect(values).to.deep.equal([0, 1, 2, 3]);
    expect(channel.isClosedForReceive).to.equal(true);
  });

  it('reads the next chunk only once the previous one was received (capacity 0)', async () => {
    const source = counting(10);
    const channel = fromReadableStream(source.stream);
    await settle();
    expect(source.pulls()).to.equal(1);
    expect(await channel.receive()).to.equal(0);
    await settle();
    expect(source.pulls()).to.equal(2);
    channel.cancel();
  });

  it('reads ahead as many chunks as its capacity', async () => {
    const source = counting(10);
    const channel = fromReadableStream(source.stream, { capacity: 3 });
    await settle();
    // Three chunks buffered, a fourth read and waiting in send.
    expect(source.pulls()).to.equal(4);
    expect([channel.tryReceive(), channel.tryReceive()]).to.deep.equal([
      { ok: true, value: 0 },
      { ok: true, value: 1 },
    ]);
    channel.cancel();
  });

  it('closes the channel with the stream error after the chunks before it', async () => {
    const failure = new Error('source broke');
    let step = 0;
    const stream = new ReadableStream<string>(
      {
        pull(controller): void {
          if (step++ === 0) controller.enqueue('first');
          else controller.error(failure);
        },
      },
      { highWaterMark: 0 },
    );
    const channel = fromReadableStream(stream);
    expect(await channel.receive()).to.equal('first');
    expect(await rejection(channel.receive())).to.equal(failure);
  });

  it('closes the channel with an Error (cause undefined) when the stream errors with undefined', async () => {
    const stream = new ReadableStream<number>({
      start(controller): void {
        controller.enqueue(1);
      },
      pull(controller): void {
        controller.error();
      },
    });
    const received: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const n of fromReadableStream(stream)) received.push(n);
      })(),
    );
    expect(received).to.deep.equal([1]);
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal('The stream failed with undefined as its error');
    expect(Object.hasOwn(error as Error, 'cause')).to.equal(true);
    expect((error as Error).cause).to.equal(undefined);
  });

  it('cancels the stream at once when the channel is cancelled, even while a read waits', async () => {
    const reason = new Error('consumer left');
    const cancelled: unknown[] = [];
    const stream = new ReadableStream<number>({
      cancel(why): void {
        cancelled.push(why);
      },
    });
    const channel = fromReadableStream(stream);
    await settle();
    channel.cancel(reason);
    await settle();
    expect(cancelled).to.deep.equal([reason]);
    expect(stream.locked).to.equal(false);
  });

  it('cancels the stream when the consumer stops with consume()', async () => {
    const cancelled: unknown[] = [];
    const source = new ReadableStream<number>({
      start(controller): void {
        controller.enqueue(1);
        controller.enqueue(2);
      },
      cancel(why): void {
        cancelled.push(why);
      },
    });
    const channel = fromReadableStream(source);
    expect(await channel.consume((ch) => ch.receive())).to.equal(1);
    await settle();
    expect(cancelled).to.have.length(1);
    expect((cancelled[0] as DOMException).name).to.equal('AbortError');
  });

  it('throws a TypeError for a non-stream or a locked stream', () => {
    expect(() => fromReadableStream(42 as never)).to.throw(
      TypeError,
      'Expected stream to be a ReadableStream, got 42 (number)',
    );
    const stream = new ReadableStream();
    stream.getReader();
    expect(() => fromReadableStream(stream)).to.throw(TypeError);
  });
});

describe('toWritableStream()', () => {
  it('sends every chunk in order and closes the channel when the stream closes', async () => {
    const channel = new Channel<number>(Infinity);
    const writer = toWritableStream(channel).getWriter();
    await writer.write(1);
    await writer.write(2);
    await writer.close();
    const values: number[] = [];
    for await (const n of channel) values.push(n);
    expect(values).to.deep.equal([1, 2]);
  });

  it('completes a write only when the channel accepted it', async () => {
    const channel = new Channel<string>();
    const writer = toWritableStream(channel).getWriter();
    const steps: string[] = [];
    const write = writer.write('a').then(() => steps.push('write done'));
    await settle();
    expect(steps).to.deep.equal([]);
    expect(await channel.receive()).to.equal('a');
    await write;
    expect(steps).to.deep.equal(['write done']);
    await writer.close();
  });

  it('pipes from a ReadableStream with backpressure, through to the end', async () => {
    const channel = new Channel<number>(1);
    let pulls = 0;
    const source = new ReadableStream<number>(
      {
        pull(controller): void {
          if (pulls === 5) controller.close();
          else controller.enqueue(pulls);
          pulls++;
        },
      },
      { highWaterMark: 0 },
    );
    const piped = source.pipeTo(toWritableStream(channel));
    await settle();
    // One chunk buffered in the channel, one write waiting in send: the pipe stops there.
    expect(pulls).to.equal(2);
    const values: number[] = [];
    for await (const n of channel) values.push(n);
    await piped;
    expect(values).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('on abort withdraws a waiting write and closes the channel with the reason', async () => {
    const reason = new Error('producer failed');
    const undelivered: string[] = [];
    const channel = new Channel<string>(0, { onUndelivered: (v) => undelivered.push(v) });
    const writer = toWritableStream(channel).getWriter();
    const write = rejection(writer.write('never'));
    await settle();
    await writer.abort(reason);
    expect(await write).to.equal(reason);
    expect(undelivered).to.deep.equal(['never']);
    expect(channel.isClosedForSend).to.equal(true);
    expect(await rejection(channel.receive())).to.equal(reason);
  });

  it('closes the channel with an AbortError when aborted without a reason', async () => {
    const channel = new Channel<number>(Infinity);
    await toWritableStream(channel).abort();
    const error = await rejection(channel.receive());
    expect((error as DOMException).name).to.equal('AbortError');
  });

  it('errors the stream at once when the consumer cancels the channel, stopping a pipe', async () => {
    const reason = new Error('consumer left');
    const cancelled: unknown[] = [];
    const channel = new Channel<number>();
    const source = new ReadableStream<number>({
      cancel(why): void {
        cancelled.push(why);
      },
    });
    const piped = rejection(source.pipeTo(toWritableStream(channel)));
    await settle();
    channel.cancel(reason);
    expect(await piped).to.equal(reason);
    expect(cancelled).to.deep.equal([reason]);
  });

  it('withdraws a waiting write when someone else closes the channel, so a pipe stops', async () => {
    const undelivered: number[] = [];
    const cancelled: unknown[] = [];
    // Rendezvous, and the consumer is gone: the first write waits in send for good.
    const channel = new Channel<number>(0, { onUndelivered: (n) => undelivered.push(n) });
    const source = new ReadableStream<number>({
      start(controller): void {
        controller.enqueue(1);
        controller.enqueue(2);
      },
      cancel(why): void {
        cancelled.push(why);
      },
    });
    const piped = rejection(source.pipeTo(toWritableStream(channel)));
    await settle();
    expect(undelivered).to.deep.equal([]);
    channel.close();
    const error = await piped;
    expect(error).to.be.instanceOf(ClosedSendError);
    expect(cancelled).to.deep.equal([error]);
    expect(undelivered).to.deep.equal([1]);
    expect(channel.isClosedForReceive).to.equal(true);
  });

  it('errors with ClosedSendError when the channel is closed normally by someone else', async () => {
    const channel = new Channel<number>(Infinity);
    const writer = toWritableStream(channel).getWriter();
    channel.close();
    expect(await rejection(writer.closed)).to.be.instanceOf(ClosedSendError);
    expect(await rejection(writer.write(1))).to.be.instanceOf(ClosedSendError);
  });

  it('throws a TypeError for something that is not a channel', () => {
    expect(() => toWritableStream(null as never)).to.throw(
      TypeError,
      'Expected channel to be a SendChannel, got null',
    );
  });
});
