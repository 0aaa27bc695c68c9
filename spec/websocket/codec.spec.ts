import { expect } from 'chai';
import * as v from 'valibot';
import { z } from 'zod';
import { DecodeError, EncodeError } from '../../lib/errors.js';
import { binary, json, raw, text } from '../../lib/websocket/codec.js';

function thrown(block: () => unknown): unknown {
  try {
    block();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('websocket codecs', () => {
  describe('json()', () => {
    it('encodes with JSON.stringify and decodes text frames with JSON.parse', () => {
      const codec = json<{ a: number[] }>();
      expect(codec.encode({ a: [1, 2] })).to.equal('{"a":[1,2]}');
      expect(codec.decode('{"a":[3]}')).to.deep.equal({ a: [3] });
    });

    it('rejects a value JSON cannot encode with EncodeError carrying the value', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      for (const value of [10n, cyclic, undefined, () => 1]) {
        const error = thrown(() => json().encode(value));
        expect(error).to.be.instanceOf(EncodeError);
        expect(error).to.include({ name: 'EncodeError', code: 'ERR_WEBSOCKET_ENCODE' });
        expect((error as EncodeError).value).to.equal(value);
        expect((error as EncodeError).message).to.match(
          /^Expected a value that JSON can encode, got/,
        );
      }
      expect((thrown(() => json().encode(10n)) as Error).cause).to.be.instanceOf(TypeError);
    });

    it('fails invalid JSON with DecodeError 1007 carrying the payload and the parse error', () => {
      const error = thrown(() => json().decode('{nope')) as DecodeError;
      expect(error).to.be.instanceOf(DecodeError);
      expect(error).to.include({
        name: 'DecodeError',
        code: 'ERR_WEBSOCKET_DECODE',
        closeCode: 1007,
      });
      expect(error.data).to.equal('{nope');
      expect(error.cause).to.be.instanceOf(SyntaxError);
      expect(error.issues).to.equal(undefined);
    });

    it('fails an empty text frame (not JSON) with 1007 and a binary frame with 1003', () => {
      expect(thrown(() => json().decode(''))).to.include({ closeCode: 1007 });
      const bytes = new Uint8Array([123, 125]);
      const error = thrown(() => json().decode(bytes)) as DecodeError;
      expect(error).to.include({ closeCode: 1003 });
      expect(error.data).to.equal(bytes);
      expect(error.message).to.equal('Expected a text frame, got a binary frame');
    });

    it('validates through a zod schema: output type in, issues on failure', () => {
      const codec = json(z.object({ at: z.string().transform((s) => new Date(s)) }));
      const decoded = codec.decode('{"at":"2024-01-02T00:00:00.000Z"}') as { at: Date };
      expect(decoded.at).to.be.instanceOf(Date);
      expect(codec.encode({ at: '2024-01-02' })).to.equal('{"at":"2024-01-02"}');
      const error = thrown(() => codec.decode('{"at":5}')) as DecodeError;
      expect(error).to.be.instanceOf(DecodeError);
      expect(error.closeCode).to.equal(1007);
      expect(error.issues).to.have.length(1);
      expect(error.issues?.[0]?.path).to.deep.equal(['at']);
      expect(error.data).to.equal('{"at":5}');
    });

    it('validates through a valibot schema', () => {
      const codec = json(v.object({ n: v.number() }));
      expect(codec.decode('{"n":1}')).to.deep.equal({ n: 1 });
      const error = thrown(() => codec.decode('{"n":"1"}')) as DecodeError;
      expect(error.issues?.[0]?.message).to.be.a('string');
    });

    it('returns a promise for an asynchronous schema, rejecting with DecodeError', async () => {
      const codec = json(z.object({ n: z.number() }).refine(async (o) => o.n > 0));
      expect(await codec.decode('{"n":1}')).to.deep.equal({ n: 1 });
      const error = await Promise.resolve(codec.decode('{"n":-1}')).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(DecodeError);
    });

    it('refuses a schema that is not a Standard Schema with TypeError', () => {
      expect(() => json({} as never)).to.throw(TypeError, /^Expected a Standard Schema/);
      expect(() => json(null as never)).to.throw(TypeError, /got null$/);
    });
  });

  describe('text()', () => {
    it('passes strings both ways, including the empty string', () => {
      expect(text().encode('')).to.equal('');
      expect(text().decode('')).to.equal('');
    });

    it('fails a binary frame with 1003 and a non-string with EncodeError', () => {
      expect(thrown(() => text().decode(new Uint8Array(0)))).to.include({ closeCode: 1003 });
      expect(thrown(() => text().encode(1 as never))).to.be.instanceOf(EncodeError);
    });
  });

  describe('binary()', () => {
    it('passes Uint8Array both ways and copies views on shared memory', () => {
      const bytes = new Uint8Array([1, 2]);
      expect(binary().encode(bytes)).to.equal(bytes);
      expect(binary().decode(bytes)).to.equal(bytes);
      const shared = new Uint8Array(new SharedArrayBuffer(2));
      const encoded = binary().encode(shared);
      expect((encoded as Uint8Array).buffer).to.be.instanceOf(ArrayBuffer);
    });

    it('fails a text frame with 1003 and anything but a Uint8Array with EncodeError', () => {
      expect(thrown(() => binary().decode('x'))).to.include({ closeCode: 1003 });
      const error = thrown(() => binary().encode(new ArrayBuffer(1) as never)) as Error;
      expect(error).to.be.instanceOf(EncodeError);
      expect(error.message).to.equal('Expected a Uint8Array to send as binary, got an object');
    });
  });

  describe('raw()', () => {
    it('keeps text as string and binary as Uint8Array', () => {
      expect(raw().decode('a')).to.equal('a');
      const bytes = new Uint8Array(0);
      expect(raw().decode(bytes)).to.equal(bytes);
      expect(raw().encode('a')).to.equal('a');
      expect(raw().encode(bytes)).to.equal(bytes);
    });
  });
});
