/**
 * Tests that need the native addon. If it cannot be loaded they fail (a build problem must
 * not hide as a skip), unless PIF_SKIP_NATIVE=1, which skips them with the reason printed
 * (for working on the TypeScript side before the addon builds).
 */
import type { TestContext } from 'node:test';

import { PifError } from '../../lib/errors.js';
import { nativeBinding, type NativeBinding } from '../../lib/native.js';

export function needNative(t: TestContext): NativeBinding | null {
  try {
    return nativeBinding();
  } catch (err) {
    if (process.env['PIF_SKIP_NATIVE'] === '1') {
      const reason = `native addon not loadable (PIF_SKIP_NATIVE=1): ${err instanceof PifError ? err.message.split('\n')[0] : String(err)}`;
      t.skip(reason);
      return null;
    }
    throw err;
  }
}
