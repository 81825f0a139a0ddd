// The addon's one way to include node-addon-api: every native/addon file includes this header,
// never <napi.h> directly, so every inline copy of node-addon-api in the addon agrees.
//
// worker_threads: while a worker's environment stops (Worker.terminate(), process.exit() in
// the worker) JS can no longer run, and every N-API call that could run JS fails. A binding
// called then (its JS was interrupted mid-call) throws Napi::Error, and node-addon-api's
// callback wrapper converts it with napi_throw, which fails too: without the define below it
// rethrows into Node's C frames and std::terminate aborts the whole process. With it, an
// exception that cannot be thrown any more is dropped. (It must precede napi.h.)
#pragma once

#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>
