#include "addon/job.h"

#include <exception>
#include <new>

#include "common/error.h"
#include "retrieval/similarity.h"
#include "runtime/omp_host.h"

namespace pif {
namespace addon {

Napi::Error make_error(Napi::Env env, const ErrorInfo& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", e.code);
  err.Set("file", e.file);
  err.Set("offset", Napi::Number::New(env, static_cast<double>(e.offset)));
  err.Set("where", e.where);
  return err;
}

void throw_arg(Napi::Env env, const std::string& msg) {
  ErrorInfo e;
  e.code = kInvalidArg;
  e.message = msg;
  throw make_error(env, e);
}

JobBase::JobBase(Napi::Env env)
    : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}

void JobBase::Execute() {
  try {
    // Every job's work on an OpenMP host thread (runtime/omp_host.h), not only model runs:
    // training steps, retrieval and preprocessing open parallel regions too, and each libuv
    // thread that does would keep a libgomp pool of its own, which throttles every pool's idle
    // workers into slow futex sleeps once they outnumber the CPUs.
    run_on_omp_host([this] { RunWork(); });
    return;
  } catch (const ModelError& e) {
    err_ = {e.code(), e.what(), e.file(), e.where(), e.offset()};
  } catch (const retrieval::RetrievalError& e) {
    err_ = {kInvalidArg, e.what(), "", "", -1};
  } catch (const std::bad_alloc&) {
    err_ = {code::kLimit, "out of memory (the model, its inputs or results are too large here)", "",
            "", -1};
  } catch (const std::exception& e) {
    err_ = {code::kInternal, std::string("internal error: ") + e.what(), "", "", -1};
  }
  SetError(err_.message);
}

// Settles the promise on the JS thread. Node also completes a job that is in flight while a
// worker_thread's environment stops: it waits for Execute, then calls OnOK/OnError with JS
// disabled, and Object::Set, Resolve and Reject all fail with Napi::Error. Nobody can observe
// the promise then, so it is dropped here rather than left to node-addon-api's wrapper (see
// addon/napi_include.h). Any other exception becomes a rejection: the wrapper converts only
// Napi::Error, and anything else escaping would terminate the process.
void JobBase::Settle(bool ok) {
  Napi::Env env = Env();
  try {
    Napi::HandleScope scope(env);
    try {
      if (ok)
        deferred_.Resolve(ResultValue(env));
      else
        deferred_.Reject(make_error(env, err_).Value());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      // Building the result ran out of memory, or the like: still a rejection.
      deferred_.Reject(
          make_error(env, {code::kInternal, std::string("internal error: ") + e.what(), "", "", -1})
              .Value());
    }
  } catch (const Napi::Error&) {
    // The environment is going away (JS cannot run): nothing is left to settle.
  } catch (const std::exception&) {
    // Making the PIF_INTERNAL error failed as well: the same.
  }
}

}  // namespace addon
}  // namespace pif
