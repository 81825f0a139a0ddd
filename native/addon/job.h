// The addon's one asynchronous pattern. Every exported function that does file, model or
// numeric work validates and copies its arguments into a plain struct on the main thread (JS
// may reuse its buffers as soon as the call returns), then hands a work function that owns
// that struct to start_job():
//
//   return start_job(env, [args = std::move(args)]() mutable { return do_work(args); },
//                    [](Napi::Env env, Result& r) { return to_js(env, r); });
//
// The work function runs off the main thread (the event loop never blocks on it); C++
// exceptions thrown there (ModelError and its stable codes, RetrievalError, bad_alloc, any
// std::exception) are converted into an Error carrying `code`, `file`, `offset` and `where`.
// The promise is then settled on the main thread with to_js(result) or that error. C++
// exceptions never cross into JS unconverted. (lib/ adds the caller's stack to the rejection.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "addon/napi_include.h"
#include "common/error.h"

namespace pif {
namespace addon {

// Every code lives in common/error.h; the addon uses them by name.
using code::kInvalidArg;

// What a JS Error from the addon carries besides its message.
struct ErrorInfo {
  std::string code, message, file, where;
  int64_t offset = -1;
};

Napi::Error make_error(Napi::Env env, const ErrorInfo& e);

// A PIF_INVALID_ARG error, thrown on the main thread while arguments are read.
[[noreturn]] void throw_arg(Napi::Env env, const std::string& msg);

// The untyped half of a job: error conversion and settling the promise.
class JobBase : public Napi::AsyncWorker {
 public:
  explicit JobBase(Napi::Env env);
  Napi::Promise Promise() { return deferred_.Promise(); }
  // Holds `o` alive until the job is done (a buffer the work reads in place).
  void Keep(Napi::Object o) { kept_ = Napi::Persistent(o); }

 protected:
  virtual void RunWork() = 0;                          // worker thread
  virtual Napi::Value ResultValue(Napi::Env env) = 0;  // main thread

 private:
  void Execute() override;
  void OnOK() override { Settle(true); }
  void OnError(const Napi::Error&) override { Settle(false); }
  void Settle(bool ok);

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference kept_;
  ErrorInfo err_;
};

// A job whose work function returns a plain result, converted by `to_js` on the main thread.
template <typename WorkFn, typename ToJsFn>
class Job final : public JobBase {
 public:
  using Output = std::invoke_result_t<WorkFn&>;
  Job(Napi::Env env, WorkFn work, ToJsFn to_js)
      : JobBase(env), work_(std::move(work)), to_js_(std::move(to_js)) {}

 private:
  void RunWork() override { result_.emplace(work_()); }
  Napi::Value ResultValue(Napi::Env env) override { return to_js_(env, *result_); }

  WorkFn work_;
  ToJsFn to_js_;
  std::optional<Output> result_;
};

// Queues `work` (a callable that owns its copied inputs) and returns the promise it settles.
// `keep`, when given, is held alive until then.
template <typename WorkFn, typename ToJsFn>
Napi::Promise start_job(Napi::Env env, WorkFn work, ToJsFn to_js, Napi::Object keep = {}) {
  auto* job = new Job<WorkFn, ToJsFn>(env, std::move(work), std::move(to_js));
  if (!keep.IsEmpty()) job->Keep(keep);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

}  // namespace addon
}  // namespace pif
