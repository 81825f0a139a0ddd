// OpenMP host threads: where the engine's OpenMP work runs.
//
// libgomp gives every thread that opens a parallel region its own pool of
// worker threads, kept for the life of that thread, and counts the workers of
// all pools together. Once that count exceeds the CPUs, every idle worker of
// every pool spins only ~1,000 iterations before it sleeps on a futex (the
// "throttled" wait), so each of oneDNN's parallel regions first has to wake
// its workers (tens of microseconds on a VM). Node runs our jobs on libuv's
// pool (4 threads by default, a job on whichever is free), so jobs with
// cpuThreads = 2 on a 2-CPU machine made up to 4 pools of 2 and a PP-ShiTuV2
// batch of 1 was no faster on 2 threads than on 1 (~60 parallel regions per
// image, most of them tiny).
//
// run_on_omp_host(fn) runs fn on a persistent host thread instead and waits:
// the idle host used most recently (its pool is warm), a new one only when
// all are busy (concurrent runs still run concurrently). Sequential jobs thus
// use one pool whichever libuv thread they come from.
#pragma once

#include <functional>

namespace pif {

// Runs fn on an OpenMP host thread and returns when it has; an exception fn
// throws is rethrown here. Called on a host thread, or inside a parallel
// region, fn runs in place.
void run_on_omp_host(const std::function<void()>& fn);

}  // namespace pif
