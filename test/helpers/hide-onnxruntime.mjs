// `node --import ./test/helpers/hide-onnxruntime.mjs ...`: this process sees no onnxruntime-node,
// as on a machine where it is not installed (it is an optional peer dependency): resolving it
// fails with ERR_MODULE_NOT_FOUND, as Node's resolver does for a missing package.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'onnxruntime-node' || specifier.startsWith('onnxruntime-node/')) {
    const err = new Error("Cannot find package 'onnxruntime-node' imported from " + context.parentURL);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}`),
);
