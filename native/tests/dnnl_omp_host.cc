// OpenMP host threads (native/runtime/omp_host.h), which every Executor::run
// goes through: the task runs on another, persistent thread with the OpenMP
// thread count it sets; sequential calls reuse one host (one libgomp pool);
// a nested call runs in place; exceptions come back to the caller; concurrent
// callers each get a host and all finish.
#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/omp_host.h"
#include "tests/harness.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {

PIF_TEST(dnnl, omp_host) {
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id first, second, nested;
  int team = 0;
  run_on_omp_host([&] {
    first = std::this_thread::get_id();
    omp_set_num_threads(2);
#pragma omp parallel
    {
#pragma omp single
      team = omp_get_num_threads();
    }
    run_on_omp_host([&] { nested = std::this_thread::get_id(); });
  });
  run_on_omp_host([&] { second = std::this_thread::get_id(); });
  if (first == caller) FAILF("the task ran on the calling thread");
  if (second != first) FAILF("a sequential call did not reuse the idle host");
  if (nested != first) FAILF("a nested call did not run in place");
  if (team != 2) FAILF("team of " + std::to_string(team) + " threads, want 2");

  bool thrown = false;
  try {
    run_on_omp_host([] { throw std::runtime_error("from the host"); });
  } catch (const std::runtime_error& e) {
    thrown = std::string(e.what()) == "from the host";
  }
  if (!thrown) FAILF("the task's exception did not reach the caller");

  // Concurrent callers: each task waits until all have started, so they can
  // only finish if each ran on a host of its own.
  constexpr int kCallers = 4;
  std::atomic<int> started{0}, finished{0};
  std::vector<std::thread> callers;
  for (int k = 0; k < kCallers; ++k) {
    callers.emplace_back([&] {
      run_on_omp_host([&] {
        started.fetch_add(1);
        while (started.load() < kCallers) std::this_thread::yield();
        finished.fetch_add(1);
      });
    });
  }
  for (std::thread& t : callers) t.join();
  if (finished.load() != kCallers) FAILF("concurrent calls did not all finish");
}

}  // namespace pif::test
