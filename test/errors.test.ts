/** Conversion of native errors into typed errors. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  captureCaller,
  fromNativeError,
  InvalidArgumentError,
  ModelFormatError,
  ModelLimitError,
  ModelNotFoundError,
  ModelParamsError,
  ModelUnsupportedError,
  PifError,
  PifIoError,
} from '../lib/errors.js';

function nativeError(
  code: string,
  message: string,
  file: string,
  offset: number,
  where: string,
): Error {
  return Object.assign(new Error(message), { code, file, offset, where });
}

describe('fromNativeError', () => {
  const table: [string, new (...a: never[]) => PifError][] = [
    ['PIF_MODEL_FORMAT', ModelFormatError],
    ['PIF_MODEL_PARAMS', ModelParamsError],
    ['PIF_MODEL_NOT_FOUND', ModelNotFoundError],
    ['PIF_MODEL_LIMIT', ModelLimitError],
    ['PIF_IO', PifIoError],
    ['PIF_MODEL_UNSUPPORTED', ModelUnsupportedError],
    ['PIF_INVALID_ARG', InvalidArgumentError],
  ];
  for (const [code, cls] of table) {
    test(`${code} → ${cls.name}`, () => {
      const e = fromNativeError(
        nativeError(code, 'bad varint', '/m/inference.pdmodel', 1234, 'op 7 (conv2d)'),
      );
      assert.ok(e instanceof cls);
      assert.ok(e instanceof PifError);
      assert.equal(e.code, code);
      assert.equal(e.name, cls.name);
      assert.equal(e.file, '/m/inference.pdmodel');
      assert.equal(e.offset, 1234);
      assert.equal(e.where, 'op 7 (conv2d)');
      assert.equal(e.message, 'bad varint (/m/inference.pdmodel, op 7 (conv2d), byte 1234)');
      assert.ok(e.cause instanceof Error);
    });
  }

  test('offset -1 means none; a message that names the file is kept as is', () => {
    const e = fromNativeError(
      nativeError('PIF_MODEL_PARAMS', '/m/a.pdiparams: runs short', '/m/a.pdiparams', -1, ''),
    );
    assert.ok(e instanceof ModelParamsError);
    assert.equal(e.offset, undefined);
    assert.equal(e.where, undefined);
    assert.equal(e.message, '/m/a.pdiparams: runs short');
  });

  test('unknown codes and foreign errors are passed through', () => {
    const te = new TypeError('expected a string');
    assert.equal(fromNativeError(te), te);
    const pe = new ModelFormatError('x');
    assert.equal(fromNativeError(pe), pe);
    const odd = fromNativeError('a string');
    assert.ok(odd instanceof PifError);
    assert.equal(odd.code, 'PIF_INTERNAL');
  });

  test("the converted error carries the caller's stack", async () => {
    async function publicApi(): Promise<never> {
      const convert = captureCaller(publicApi);
      await new Promise((r) => setImmediate(r));
      throw convert(nativeError('PIF_MODEL_FORMAT', 'bad', '/m/f', 0, ''));
    }
    async function userCode(): Promise<never> {
      return publicApi();
    }
    await assert.rejects(userCode(), (err: unknown) => {
      assert.ok(err instanceof ModelFormatError);
      const stack = err.stack ?? '';
      assert.match(stack, /^ModelFormatError: bad/);
      assert.match(stack, /userCode/);
      assert.ok(stack.includes(fileURLToPath(import.meta.url)));
      assert.doesNotMatch(stack.split('\n')[1] ?? '', /publicApi/);
      return true;
    });
  });
});
