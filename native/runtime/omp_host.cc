#include "runtime/omp_host.h"

#include <omp.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pif {
namespace {

thread_local bool on_host = false;

// cv.wait(lock, pred) without std::condition_variable::wait: GCC 12's libstdc++ versions that
// symbol GLIBCXX_3.4.30, above the prebuilt binary's floor (3.4.29, scripts/package-prebuild.mjs);
// wait_until on the steady clock is inline (pthread_cond_clockwait, glibc 2.30).
template <typename Pred>
void wait_for_pred(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Pred pred) {
  while (!pred()) cv.wait_until(lock, std::chrono::steady_clock::now() + std::chrono::hours(1));
}

// One host thread: waits for a task, runs it, signals done.
struct Host {
  std::mutex mu;
  std::condition_variable cv;
  const std::function<void()>* task = nullptr;
  std::exception_ptr error;
  bool done = false;

  void loop() {
    on_host = true;
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      wait_for_pred(cv, lock, [this] { return task != nullptr; });
      try {
        (*task)();
      } catch (...) {
        error = std::current_exception();
      }
      task = nullptr;
      done = true;
      cv.notify_all();
    }
  }
};

// Idle hosts, most recently used last. Hosts are never destroyed: they are
// detached and live until the process exits (an addon is never unloaded),
// so no static destructor has to stop a thread that may be in a job.
struct Hosts {
  std::mutex mu;
  std::vector<Host*> idle;

  Host* take() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        Host* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    Host* h = new Host();
    std::thread([h] { h->loop(); }).detach();
    return h;
  }
  void give_back(Host* h) {
    std::lock_guard<std::mutex> lock(mu);
    idle.push_back(h);
  }
};

Hosts& hosts() {
  static Hosts* h = new Hosts();  // leaked on purpose: see Hosts
  return *h;
}

}  // namespace

void run_on_omp_host(const std::function<void()>& fn) {
  static const bool off = [] {
    const char* e = std::getenv("PIF_OMP_HOST");
    return e && std::string(e) == "0";
  }();
  if (off || on_host || omp_in_parallel()) return fn();
  Host* h = hosts().take();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(h->mu);
    h->task = &fn;
    h->done = false;
    h->error = nullptr;
    h->cv.notify_all();
    wait_for_pred(h->cv, lock, [h] { return h->done; });
    error = h->error;
  }
  hosts().give_back(h);
  if (error) std::rethrow_exception(error);
}

}  // namespace pif
